#!/usr/bin/env bash
# The README's first command: set up .venv (idempotent), then run both shipped workflows in a real
# headless ComfyUI. Real models when MINDEDIT_MODELS_DIR names a ComfyUI models/ folder (docs/MODELS.md),
# tiny generated ones otherwise. Extra arguments go to `python -m devkit.demo` (see --help).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
bash scripts/bootstrap.sh
exec "$here/.venv/bin/python" -m devkit.demo "$@"
