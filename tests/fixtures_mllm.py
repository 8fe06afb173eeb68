"""MLLM fixtures: the tiny folders of every family, MIND-Edit checkpoints for them, loaded runners.

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


@pytest.fixture(scope="session")
def tiny_qwen2_5_vl_dir(fixture_cache) -> Path:
    """Tiny Qwen2.5-VL (real patch 14, 2x2 merge and pixel budget)."""
    from devkit.fixtures.qwen_vl import tiny_qwen2_5_vl

    return tiny_qwen2_5_vl(fixture_cache)


@pytest.fixture(scope="session")
def tiny_qwen3_vl_dir(fixture_cache) -> Path:
    """Tiny Qwen3-VL (real patch 16, 2x2 merge, DeepStack, pixel budget)."""
    from devkit.fixtures.qwen_vl import tiny_qwen3_vl

    return tiny_qwen3_vl(fixture_cache)


@pytest.fixture(scope="session")
def tiny_qwen3_5_dir(fixture_cache) -> Path:
    """Tiny Qwen3.5 (3 linear-attention layers + 1 full-attention layer, patch 16, thinking template)."""
    from devkit.fixtures.qwen3_5 import tiny_qwen3_5

    return tiny_qwen3_5(fixture_cache)


@pytest.fixture(scope="session")
def tiny_gemma4_dir(fixture_cache) -> Path:
    """Tiny Gemma 4 (sliding/full layers, per-layer inputs, KV sharing, 280-token image budget)."""
    from devkit.fixtures.gemma4 import tiny_gemma4

    return tiny_gemma4(fixture_cache)


FAMILY_FIXTURES = {
    "llava_onevision": "tiny_llava_dir",
    "qwen2_5_vl": "tiny_qwen2_5_vl_dir",
    "qwen3_vl": "tiny_qwen3_vl_dir",
    "qwen3_5": "tiny_qwen3_5_dir",
    "gemma4": "tiny_gemma4_dir",
}


@pytest.fixture(scope="session", params=sorted(FAMILY_FIXTURES))
def family_dir(request) -> tuple[str, Path]:
    """``(model_type, folder)`` of each family's tiny fixture in turn."""
    return request.param, request.getfixturevalue(FAMILY_FIXTURES[request.param])


@pytest.fixture(scope="session")
def family_mllm(family_dir):
    """``(model_type, MindEditMLLM)``: the family's tiny model (CPU, fp32) with a random plain head."""
    import torch

    from mindedit_core.mllm import MindEditMLLM, load_mllm
    from mindedit_core.vision_head import VisionHead, VisionHeadConfig, default_layer

    model_type, folder = family_dir
    base = load_mllm(folder, device="cpu", dtype="float32")
    torch.manual_seed(0)
    config = VisionHeadConfig.for_kind("plain", hidden_size=64, layer=default_layer(base.num_layers))
    head = VisionHead(config).eval()
    head.target_norm.fill_(2.5)
    return model_type, MindEditMLLM(base.model, base.processor, head, model_dir=str(folder))


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
