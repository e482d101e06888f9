#!/usr/bin/env bash
# One-command setup and run for scwlm.
#
#   bash run.sh demo [scwlm demo options]   set up .venv, install scwlm, run the CPU demo (figure + W1 table)
#   bash run.sh test [pytest options]       set up .venv, install scwlm with test extras, run the test suite
#
# The environment goes to .venv (override with SCWLM_VENV). PyTorch is installed first as
# `torch==2.13.0` (the CPU build on machines that carry it locally; set SCWLM_TORCH to another
# pip requirement, e.g. "torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu", to choose),
# so that scwlm's own range `torch>=2.1` never pulls a multi-GB CUDA build.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"
venv="${SCWLM_VENV:-$here/.venv}"
python="${PYTHON:-python3}"

if [ ! -x "$venv/bin/python" ]; then
  echo "[run.sh] creating $venv"
  "$python" -m venv "$venv"
fi
vpy="$venv/bin/python"
if ! "$vpy" -c "import torch" >/dev/null 2>&1; then
  echo "[run.sh] installing PyTorch (${SCWLM_TORCH:-torch==2.13.0})"
  # shellcheck disable=SC2086
  "$vpy" -m pip install -q ${SCWLM_TORCH:-torch==2.13.0}
fi
stamp="$venv/.scwlm-installed"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "[run.sh] installing scwlm and its test extras"
  "$vpy" -m pip install -q -e ".[test]"
  touch "$stamp"
fi

cmd="${1:-}"
[ $# -gt 0 ] && shift
case "$cmd" in
  demo) exec "$venv/bin/scwlm" demo "$@" ;;
  test) exec "$vpy" -m pytest "$@" ;;
  *) echo "usage: bash run.sh demo|test [options]" >&2; exit 2 ;;
esac
