"""MLLM fixtures: the tiny LLaVA-OneVision folder, MIND-Edit checkpoints for it, loaded runners.

Models are generated once into the versioned cache (see `devkit.fixtures.cache_root`) and reused.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


@pytest.fixture(scope="session")
def tiny_llava_dir(fixture_cache) -> Path:
    """Tiny LLaVA-OneVision with tied embeddings (like the 0.5B model)."""
    from devkit.fixtures.llava_onevision import tiny_llava_onevision

    return tiny_llava_onevision(fixture_cache, tie_word_embeddings=True)


@pytest.fixture(scope="session")
def tiny_llava_untied_dir(fixture_cache) -> Path:
    """Tiny LLaVA-OneVision with untied embeddings (like the 7B model)."""
    from devkit.fixtures.llava_onevision import tiny_llava_onevision

    return tiny_llava_onevision(fixture_cache, tie_word_embeddings=False)


@pytest.fixture(scope="session")
def tiny_ckpt_plain(fixture_cache, tiny_llava_dir) -> Path:
    """Checkpoint: random plain head ([B,1024]) + random non-zero LoRA."""
    from devkit.fixtures.llava_onevision import tiny_mindedit_checkpoint

    return tiny_mindedit_checkpoint(fixture_cache, kind="plain", with_lora=True)


@pytest.fixture(scope="session")
def tiny_ckpt_plus(fixture_cache, tiny_llava_dir) -> Path:
    """Checkpoint: random plus head ([B,257,1280]), no LoRA."""
    from devkit.fixtures.llava_onevision import tiny_mindedit_checkpoint

    return tiny_mindedit_checkpoint(fixture_cache, kind="plus", with_lora=False)


@pytest.fixture(scope="session")
def tiny_mllm_plain(tiny_llava_dir, tiny_ckpt_plain):
    """A loaded `MindEditMLLM` (CPU, fp32) with the plain head and merged LoRA. Do not mutate."""
    from mindedit_core.mllm import load_mllm

    return load_mllm(tiny_llava_dir, device="cpu", dtype="fp32", checkpoint_dir=tiny_ckpt_plain)


@pytest.fixture(scope="session")
def tiny_mllm_base(tiny_llava_dir):
    """The tiny base model alone (no checkpoint, no head)."""
    from mindedit_core.mllm import load_mllm

    return load_mllm(tiny_llava_dir, device="cpu", dtype="fp32")


@pytest.fixture()
def comfy_image() -> np.ndarray:
    """A ComfyUI-style IMAGE: float32 [1,H,W,3] in 0..1 (deterministic, non-square, > 384 px)."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:300, 0:420]
    base = np.stack([x / 420, y / 300, 0.5 + 0.0 * x], axis=-1)
    return (0.8 * base + 0.2 * rng.random((300, 420, 3)))[None].astype(np.float32)


@pytest.fixture()
def comfy_mask() -> np.ndarray:
    """A ComfyUI-style MASK [1,H,W] marking a rectangle of `comfy_image`."""
    mask = np.zeros((1, 300, 420), dtype=np.float32)
    mask[0, 80:200, 120:300] = 1.0
    return mask
