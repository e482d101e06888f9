#!/usr/bin/env bash
# CI: build the documentation (warnings are errors), executing the tutorials at their quick size.
#
#   bash .ci/docs.sh
#
# Runs in the active virtual environment ($VIRTUAL_ENV), else in .venv of the repository root
# (create it first, e.g. with `bash run.sh test`). Real data for the tutorials are found through
# SCWLM_DATA_DIR (default: ../shared/datasets beside the clone, as in .ci/run); a tutorial whose
# data are missing is rendered without executing it. Output: docs/_build/html.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [ -n "${VIRTUAL_ENV:-}" ] && [ -x "$VIRTUAL_ENV/bin/python" ]; then
  py="$VIRTUAL_ENV/bin/python"
elif [ -x .venv/bin/python ]; then
  py=".venv/bin/python"
else
  echo "[docs] no virtual environment: activate one or create .venv (bash run.sh test)" >&2
  exit 2
fi
if [ -z "${SCWLM_DATA_DIR:-}" ] && [ -d ../shared/datasets ]; then
  SCWLM_DATA_DIR="$(cd ../shared/datasets && pwd)"
  export SCWLM_DATA_DIR
fi
echo "[docs] python=$py SCWLM_DATA_DIR=${SCWLM_DATA_DIR:-<unset>}"

"$py" -m pip install -q -e ".[doc]"

# the notebooks' kernel: a "python3" kernel spec of this interpreter in a private JUPYTER_PATH,
# so that a user-level python3 kernel of another environment is never used
kernels="$(mktemp -d)"
trap 'rm -rf "$kernels"' EXIT
"$py" -m ipykernel install --prefix "$kernels" --name python3 --display-name "Python 3 (scwlm docs)" >/dev/null
export JUPYTER_PATH="$kernels/share/jupyter${JUPYTER_PATH:+:$JUPYTER_PATH}"

export SCWLM_TUTORIAL_QUICK=1
# many tiny tensor operations: on a small shared CI machine one thread per process avoids OpenMP
# oversubscription (numba, used by scanpy's UMAP, would otherwise reset torch's thread count)
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" NUMBA_NUM_THREADS="${NUMBA_NUM_THREADS:-1}"
unset MPLBACKEND  # the notebooks draw with ipykernel's inline backend

rm -rf docs/api/generated
"$(dirname "$py")/sphinx-build" -W --keep-going -b html docs docs/_build/html
echo "[docs] built docs/_build/html/index.html"
