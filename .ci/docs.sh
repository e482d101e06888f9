#!/usr/bin/env bash
# CI: build the documentation (warnings are errors). The tutorials are rendered with the outputs
# stored in them (full-size runs, `python -m benchmarks.tutorials`); nothing is executed here --
# the test suite runs them at their quick size.
#
#   bash .ci/docs.sh
#
# Runs in the active virtual environment ($VIRTUAL_ENV), else in .venv of the repository root
# (create it first, e.g. with `bash run.sh test`). Output: docs/_build/html.
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
echo "[docs] python=$py"

"$py" -m pip install -q -e ".[doc]"

rm -rf docs/api/generated
"$(dirname "$py")/sphinx-build" -W --keep-going -b html docs docs/_build/html
echo "[docs] built docs/_build/html/index.html"
