"""The models the pack knows by name: listed in the loader's dropdown, fetched on first use.

One catalogue for the loader node (``nodes/model_folders.py``: a known model that is not on disk is
listed by its folder name and downloaded into ``models/LLM/<name>`` when the node first runs) and for
the download helper (``python -m devkit.download_models``). ``MINDEDIT_CHECKPOINTS`` lists published
MIND-Edit checkpoint folders the same way (none is published yet).
"""

from __future__ import annotations

from dataclasses import dataclass

# A Hugging Face VLM folder: configs, weights, tokenizer (json/txt/model) and the chat template.
VLM_PATTERNS = ("*.json", "*.safetensors", "*.jinja", "*.txt", "*.model")

# The VLMs MIND-Edit can sit on (docs/MODELS.md: sizes, VRAM, layer m): key -> (repo, size, description).
VLMS = {
    "llava-0.5b": (
        "llava-hf/llava-onevision-qwen2-0.5b-ov-hf",
        "1.8 GB",
        "LLaVA-OneVision 0.5B (Qwen2-0.5B + SigLIP), the MLLM for small GPUs; layer m 18 of 24",
    ),
    "llava-7b": (
        "llava-hf/llava-onevision-qwen2-7b-ov-hf",
        "16 GB",
        "LLaVA-OneVision 7B (the paper's MLLM); ~15 GiB VRAM in bf16, ~6 GiB in 4-bit; layer m 21 of 28",
    ),
    "qwen2.5-vl-3b": (
        "Qwen/Qwen2.5-VL-3B-Instruct",
        "7.5 GB",
        "Qwen2.5-VL 3B Instruct; ~7.5 GiB VRAM in bf16, ~3 GiB in 4-bit (est.); layer m 27 of 36",
    ),
    "qwen2.5-vl-7b": (
        "Qwen/Qwen2.5-VL-7B-Instruct",
        "16.6 GB",
        "Qwen2.5-VL 7B Instruct; ~16 GiB VRAM in bf16, ~6.5 GiB in 4-bit (est.); layer m 21 of 28",
    ),
    "qwen3-vl-2b": (
        "Qwen/Qwen3-VL-2B-Instruct",
        "4.3 GB",
        "Qwen3-VL 2B Instruct (transformers >= 4.57); ~4.5 GiB VRAM in bf16, ~2 GiB in 4-bit (est.); layer m 21 of 28",
    ),
    "qwen3-vl-4b": (
        "Qwen/Qwen3-VL-4B-Instruct",
        "8.9 GB",
        "Qwen3-VL 4B Instruct (transformers >= 4.57); ~9 GiB VRAM in bf16, ~3.5 GiB in 4-bit (est.); layer m 27 of 36",
    ),
    "qwen3-vl-8b": (
        "Qwen/Qwen3-VL-8B-Instruct",
        "17.5 GB",
        "Qwen3-VL 8B Instruct (transformers >= 4.57); ~17 GiB VRAM in bf16, ~6.5 GiB in 4-bit (est.); layer m 27 of 36",
    ),
}

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


def known_vlms() -> dict[str, KnownModel]:
    """Folder name -> known VLM, in catalogue order."""
    return {
        folder_name(repo): KnownModel(folder_name(repo), repo, size, description)
        for repo, size, description in VLMS.values()
    }


def known_checkpoints() -> dict[str, KnownModel]:
    return {
        name: KnownModel(name, repo, size, description)
        for name, (repo, size, description) in MINDEDIT_CHECKPOINTS.items()
    }
