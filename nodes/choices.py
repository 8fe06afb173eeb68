"""Where a `Choices` combo's options come from (read each time ComfyUI asks for ``/object_info``).

The node declarations (``mindedit_core.node_specs``) name a combo's source by key; this module maps
each key to the function that lists it in the running ComfyUI.
"""

from __future__ import annotations

from collections.abc import Callable

import folder_paths

from ..mindedit_core.node_schema import Choices
from . import model_folders


def ipadapter_files() -> list[str]:
    try:
        return folder_paths.get_filename_list(model_folders.IPADAPTER_FOLDER)
    except KeyError:  # folder not registered yet (the pack's on_load registers it)
        return []


PROVIDERS: dict[str, Callable[[], list[str]]] = {
    "llm_folders": model_folders.llm_choices,
    "mindedit_checkpoints": model_folders.checkpoint_choices,
    "ipadapter_files": ipadapter_files,
}


def resolve(choices: Choices) -> list[str]:
    try:
        provider = PROVIDERS[choices.key]
    except KeyError:
        raise KeyError(
            f"no provider for the combo options {choices.key!r}: register one in nodes/choices.py"
        ) from None
    return list(provider())
