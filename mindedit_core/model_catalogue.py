"""The models the pack knows by name: listed in the loader's dropdown, fetched on first use.

The VLMs are the releases of the supported families (``mindedit_core.mllm.families``: the one
place that names them, with sizes); this module turns them into what the loader node lists and
fetches (``nodes/model_folders.py``: a known model that is not on disk is listed by its folder name
and downloaded into ``models/LLM/<name>`` when the node first runs) and what the download helper
(``python -m devkit.download_models``) offers. ``MINDEDIT_CHECKPOINTS`` lists published MIND-Edit
checkpoint folders the same way (none is published yet).
"""

from __future__ import annotations

from dataclasses import dataclass

# A Hugging Face VLM folder: configs, weights, tokenizer (json/txt/model) and the chat template.
VLM_PATTERNS = ("*.json", "*.safetensors", "*.jinja", "*.txt", "*.model")

# Published MIND-Edit checkpoints (folder name -> repo, size, description): none yet.
MINDEDIT_CHECKPOINTS: dict[str, tuple[str, str, str]] = {}


@dataclass(frozen=True)
class KnownModel:
    """A model folder the pack can fetch: ``folder`` under its models/ folder, from ``repo_id``."""

    folder: str
    repo_id: str
    approx_size: str
    description: str
    allow_patterns: tuple[str, ...] = VLM_PATTERNS


def folder_name(repo_id: str) -> str:
    """The folder a repository lands in (its name, as the download helper has always done)."""
    return repo_id.split("/")[-1]


def vlm_downloads() -> dict[str, tuple[str, str, str]]:
    """The download helper's VLM rows: --what key -> (repo, size, description), in table order."""
    from .mllm.families import releases

    return {
        release.key: (release.repo, release.download_size, family.release_description(release))
        for family, release in releases()
    }


def known_vlms() -> dict[str, KnownModel]:
    """Folder name -> known VLM, in the families' table order."""
    return {
        folder_name(repo): KnownModel(folder_name(repo), repo, size, description)
        for repo, size, description in vlm_downloads().values()
    }


def known_checkpoints() -> dict[str, KnownModel]:
    return {
        name: KnownModel(name, repo, size, description)
        for name, (repo, size, description) in MINDEDIT_CHECKPOINTS.items()
    }
