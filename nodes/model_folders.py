"""Where the pack's models live in a ComfyUI install, and how a widget value maps back to a path.

Three model folders, under ComfyUI's ``models/`` (and any extra roots users declare in
``extra_model_paths.yaml``, which ComfyUI reads before custom nodes load):

- ``LLM``: vision-language model folders of a supported family in Hugging Face layout (``models/LLM/<name>/config.json``);
- ``mindedit``: MIND-Edit checkpoint folders (``models/mindedit/<name>/mindedit.json``);
- ``ipadapter``: IP-Adapter weight files (``models/ipadapter/*.safetensors|.bin``), the same folder
  ComfyUI_IPAdapter_plus uses, so users keep one copy.

Registration is idempotent and only touches ``folder_paths`` bookkeeping: nothing is loaded or
scanned at import. Listing happens when ComfyUI asks for ``/object_info``.
"""

from __future__ import annotations

import os
from pathlib import Path

import folder_paths

from ..mindedit_core.mllm.families import family_names

LLM_FOLDER = "LLM"
MINDEDIT_FOLDER = "mindedit"
IPADAPTER_FOLDER = "ipadapter"

# Marker files: a folder is offered in a dropdown only when it has one of these.
HF_MODEL_MARKER = "config.json"
MINDEDIT_MARKER = "mindedit.json"

# Shown in a dropdown that would otherwise be empty: ComfyUI's own "value not in list" error for an
# empty list names nothing useful, so the node raises an actionable error for this value instead.
NO_MODEL_FOLDER = "(no model folder found in models/LLM: see docs/MODELS.md)"
NONE_CHOICE = "none"

# How deep below a root a model folder may sit ("llava-hf/llava-onevision-qwen2-0.5b-ov-hf").
MAX_DEPTH = 2

DOWNLOAD_HINT = (
    "Download one with `python -m devkit.download_models --what llava-0.5b --models-dir <ComfyUI>/models` "
    "(see docs/MODELS.md for every file and folder)."
)


def register_model_folders() -> None:
    """Make ComfyUI aware of ``models/LLM``, ``models/mindedit`` and ``models/ipadapter``.

    Paths already known (from ``extra_model_paths.yaml`` or another pack) are kept; the default
    folder is appended once. ``ipadapter`` gets ComfyUI's weight-file extensions so its file list
    matches what ComfyUI_IPAdapter_plus shows.
    """
    models_dir = folder_paths.models_dir
    for name in (LLM_FOLDER, MINDEDIT_FOLDER, IPADAPTER_FOLDER):
        folder_paths.add_model_folder_path(name, os.path.join(models_dir, name))
    paths, extensions = folder_paths.folder_names_and_paths[IPADAPTER_FOLDER]
    if not extensions:
        folder_paths.folder_names_and_paths[IPADAPTER_FOLDER] = (
            paths,
            set(folder_paths.supported_pt_extensions),
        )


def search_roots(folder_name: str) -> list[Path]:
    """Every root ComfyUI knows for ``folder_name``, in priority order."""
    try:
        return [Path(p) for p in folder_paths.get_folder_paths(folder_name)]
    except KeyError:
        return []


def _marked_subfolders(root: Path, marker: str) -> list[str]:
    """Relative POSIX paths of folders under ``root`` (depth <= MAX_DEPTH) holding ``marker``."""
    found: list[str] = []
    if not root.is_dir():
        return found
    frontier = [root]
    for _ in range(MAX_DEPTH):
        next_frontier = []
        for folder in frontier:
            try:
                children = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
            except OSError:
                continue
            for child in children:
                if (child / marker).is_file():
                    found.append(child.relative_to(root).as_posix())
                else:
                    next_frontier.append(child)
        frontier = next_frontier
    return found


def list_model_folders(folder_name: str, marker: str) -> list[str]:
    """Sorted, de-duplicated names of marked folders across all roots of ``folder_name``."""
    names: set[str] = set()
    for root in search_roots(folder_name):
        names.update(_marked_subfolders(root, marker))
    return sorted(names)


def llm_choices() -> list[str]:
    """Dropdown values for the MLLM folder (never empty: see `NO_MODEL_FOLDER`)."""
    return list_model_folders(LLM_FOLDER, HF_MODEL_MARKER) or [NO_MODEL_FOLDER]


def checkpoint_choices() -> list[str]:
    """Dropdown values for the MIND-Edit checkpoint: ``none`` first, then every checkpoint folder."""
    return [NONE_CHOICE, *list_model_folders(MINDEDIT_FOLDER, MINDEDIT_MARKER)]


def _example_folders(folder_name: str) -> str:
    """``models/LLM/<repo name>/`` for each supported family's example repo (the family table)."""
    if folder_name != LLM_FOLDER:
        return f"models/{folder_name}/<name>/"
    from ..mindedit_core.mllm.families import FAMILIES

    names = [f"models/{folder_name}/{f.example_repo.split('/')[-1]}/" for f in FAMILIES.values()]
    return f"a {family_names()} folder such as " + " or ".join(names)


def _roots_text(folder_name: str) -> str:
    roots = search_roots(folder_name)
    return ", ".join(str(r) for r in roots) if roots else f"(no folder registered for {folder_name!r})"


def resolve_model_folder(folder_name: str, name: str, marker: str) -> Path:
    """The folder a dropdown value names; a clear `FileNotFoundError` when it is not there (any more)."""
    if name == NO_MODEL_FOLDER or not name:
        raise FileNotFoundError(
            f"MIND-Edit: no model folder was found in models/{folder_name} (searched: "
            f"{_roots_text(folder_name)}). Each model is a folder holding {marker} and the weights, e.g. "
            f"{_example_folders(folder_name)}. {DOWNLOAD_HINT} "
            "Then refresh the browser (R) so the dropdown lists it."
        )
    for root in search_roots(folder_name):
        candidate = (root / name).resolve()
        if (candidate / marker).is_file():
            return candidate
    raise FileNotFoundError(
        f"MIND-Edit: the folder {name!r} was not found in models/{folder_name} with a {marker} inside "
        f"(searched: {_roots_text(folder_name)}). Expected {folder_name}/{name}/{marker}. Check the "
        f"folder name, or pick another one in the dropdown (press R to refresh the lists). {DOWNLOAD_HINT}"
    )


def resolve_llm_folder(name: str) -> Path:
    return resolve_model_folder(LLM_FOLDER, name, HF_MODEL_MARKER)


def resolve_checkpoint_folder(name: str) -> Path | None:
    """``None`` for the ``none`` choice (base model, no vision head), else the checkpoint folder."""
    if name == NONE_CHOICE:
        return None
    return resolve_model_folder(MINDEDIT_FOLDER, name, MINDEDIT_MARKER)
