#!/usr/bin/env bash
# Extracts the second ComfyUI the CI tests on (upstream 0.33.0, a source tarball kept beside the
# repository) into .cache/ once, and prints the tree's path (for COMFYUI_PATH).
#
#   COMFYUI_PATH="$(bash scripts/comfyui_tree.sh)" bash scripts/test.sh -m comfyui
#
# The tarball: $MINDEDIT_COMFYUI_TARBALL, default ../shared/comfyui/ComfyUI-0.33.0.tar.gz (relative
# to the repository). Extraction is atomic (a temporary folder renamed), so a killed run leaves no
# half tree that looks usable.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tarball="${MINDEDIT_COMFYUI_TARBALL:-$here/../shared/comfyui/ComfyUI-0.33.0.tar.gz}"
name="$(basename "$tarball" .tar.gz)"
target="$here/.cache/$name"
marker="$target/.mindedit-extracted"
if [ ! -f "$marker" ]; then
  if [ ! -f "$tarball" ]; then
    echo "[comfyui_tree] ERROR: $tarball not found. CI tests the pack on two ComfyUI versions; put the" \
      "ComfyUI 0.33.0 source tarball there, or set MINDEDIT_COMFYUI_TARBALL to it." >&2
    exit 1
  fi
  tmp="$here/.cache/.$name.tmp-$$"
  rm -rf "$tmp" && mkdir -p "$tmp"
  tar -xzf "$tarball" -C "$tmp"
  top="$(find "$tmp" -mindepth 1 -maxdepth 1 -type d | head -n 1)"
  if [ ! -f "$top/main.py" ]; then
    rm -rf "$tmp"
    echo "[comfyui_tree] ERROR: $tarball holds no ComfyUI tree (no <folder>/main.py)." >&2
    exit 1
  fi
  rm -rf "$target"
  mv "$top" "$target"
  rm -rf "$tmp"
  echo "$(basename "$tarball")" > "$marker"
  echo "[comfyui_tree] extracted $tarball into $target" >&2
fi
echo "$target"
