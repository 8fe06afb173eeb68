#!/usr/bin/env bash
# The whole test suite: lint, format check, then every test (unit + real headless ComfyUI).
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -m "not comfyui"` for the fast tests.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
bash scripts/bootstrap.sh
py="$here/.venv/bin/python"
"$py" -m ruff check .
"$py" -m ruff format --check .
set +e
"$py" -m pytest "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
  echo "pytest collected no tests: that is a failure" >&2
  exit 1
fi
exit "$rc"
