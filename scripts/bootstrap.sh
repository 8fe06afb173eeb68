#!/usr/bin/env bash
# Creates (or refreshes) the project-local virtual environment .venv with everything the demo and
# the tests need. Idempotent: a second run with nothing changed takes a few seconds.
#
# With COMFYUI_PATH set (another ComfyUI checkout for the demo and the tests), that tree's own
# requirements.txt is installed into .venv too, constrained to the tested torch pair (pip may not
# replace torch or torchvision). Lines pip cannot install (e.g. offline) are skipped with a warning
# that names them. Stamped per tree and requirements file, so it is done once.
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

# Another ComfyUI tree: its own import-time needs (newer trees want SQLAlchemy, comfy-aimdo, ...).
if [ -n "${COMFYUI_PATH:-}" ]; then
  tree="$(cd "$COMFYUI_PATH" 2>/dev/null && pwd || true)"
  reqs="$tree/requirements.txt"
  if [ -z "$tree" ] || [ ! -f "$reqs" ]; then
    echo "[bootstrap] WARNING: COMFYUI_PATH=$COMFYUI_PATH has no requirements.txt: installing nothing for it" \
      "(point COMFYUI_PATH at the folder that holds ComfyUI's main.py and requirements.txt)." >&2
  else
    comfy_stamp="$venv/.mindedit-comfyui-deps"
    comfy_want="$tree $(sha256sum "$reqs" | cut -c1-16) $torch_pair"
    if [ ! -f "$comfy_stamp" ] || [ "$(head -n 1 "$comfy_stamp")" != "$comfy_want" ]; then
      echo "[bootstrap] installing $reqs into $venv (torch pair kept: $torch_pair)"
      constraints="$venv/.mindedit-torch-constraints.txt"
      tr ' ' '\n' <<< "$torch_pair" > "$constraints"
      skipped=()
      if ! "$venv/bin/python" -m pip install -q -r "$reqs" -c "$constraints"; then
        echo "[bootstrap] the whole file did not install; retrying line by line" >&2
        while IFS= read -r line || [ -n "$line" ]; do
          line="${line%%#*}"
          line="${line#"${line%%[![:space:]]*}"}"
          line="${line%"${line##*[![:space:]]}"}"
          [ -z "$line" ] && continue
          if ! "$venv/bin/python" -m pip install -q "$line" -c "$constraints"; then
            skipped+=("$line")
          fi
        done < "$reqs"
      fi
      { echo "$comfy_want"; printf '%s\n' "${skipped[@]+"${skipped[@]}"}"; } > "$comfy_stamp"
    fi
    mapfile -t skipped < <(tail -n +2 "$comfy_stamp" | sed '/^$/d')
    if [ "${#skipped[@]}" -gt 0 ]; then
      echo "[bootstrap] WARNING: not installed from $reqs (pip could not get them): ${skipped[*]}." \
        "ComfyUI may fail to start if it imports them; install them into $venv by hand." >&2
    fi
  fi
fi
