#!/usr/bin/env bash
# Creates (or refreshes) the project-local virtual environment .venv with everything the demo and
# the tests need. Idempotent: a second run with nothing changed takes a few seconds.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
py="${PYTHON:-python3}"
venv="$here/.venv"
stamp="$venv/.mindedit-deps"
# The tested torch pair: on these machines pip takes both from local disk. ComfyUI and the
# LLaVA-OneVision processor need a torchvision that imports beside torch.
torch_pair="torch==2.14.1 torchvision==0.29.1"
want="$(cat pyproject.toml requirements.txt | sha256sum | cut -c1-16) $torch_pair"
if [ ! -x "$venv/bin/python" ]; then
  echo "[bootstrap] creating $venv"
  "$py" -m venv "$venv"
fi
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "[bootstrap] installing dependencies into $venv (first time: a few minutes)"
  "$venv/bin/python" -m pip install -q --upgrade pip
  # shellcheck disable=SC2086
  "$venv/bin/python" -m pip install -q $torch_pair
  "$venv/bin/python" -m pip install -q -e ".[train,eval,dev]"
  echo "$want" > "$stamp"
fi
