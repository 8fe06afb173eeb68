"""Fixtures of the evaluation area: the tiny SD1.5 diffusers folder, a matching plain IP-Adapter, a
tiny CLIP vision encoder (for CLIP-I and the IP-Adapter baseline), random LPIPS backbone weights, a
tiny HumanEdit-schema split, and a deterministic stand-in for the MLLM.

Everything is generated (seeded) into the fixture cache once and reused.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from devkit.fixtures.atomic import build_once
from mindedit_core.mllm import PassCalls, PassOptions, PassRequest, PassResult
from mindedit_core.prompting import parse_refinement

# Plain SD1.5 adapters consume CLIP ViT-H/14 `image_embeds` of width 1024; the tiny MLLM
# checkpoint's head has that width too, so all three tiny models fit together.
EVAL_EMBED_DIM = 1024


@pytest.fixture(scope="session")
def eval_cache(fixture_cache: Path) -> Path:
    path = fixture_cache / "eval"
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def sd15_diffusers_dir(eval_cache: Path) -> Path:
    from devkit.fixtures.sd15_diffusers import build_sd15_diffusers

    return build_sd15_diffusers(eval_cache)


@pytest.fixture(scope="session")
def eval_ipadapter_file(eval_cache: Path) -> Path:
    from devkit.fixtures.sd15_diffusers import build_tiny_ipadapter

    return build_tiny_ipadapter(eval_cache, image_embed_dim=EVAL_EMBED_DIM)


@pytest.fixture(scope="session")
def eval_clip_vision_dir(eval_cache: Path) -> Path:
    """A tiny `CLIPVisionModelWithProjection` folder (32 px, projection 1024) with IP-Adapter's CLIP
    preprocessing saved beside it: the training fixture's builder, shrunk for the metric tests."""
    from devkit.fixtures.clip_vision import build_tiny_clip_vision

    return build_tiny_clip_vision(
        eval_cache, seed=3, hidden_size=32, image_size=32, patch_size=8, projection_dim=EVAL_EMBED_DIM
    )


@pytest.fixture(scope="session")
def lpips_random_backbone(eval_cache: Path) -> Path:
    """A torchvision-layout AlexNet ``features`` state dict with seeded random weights."""

    def write(folder: Path) -> None:
        import torch

        from training.evaluate.metrics.lpips_net import LPIPS

        torch.manual_seed(5)
        model = LPIPS("alex")
        for module in model.features:
            if isinstance(module, torch.nn.Conv2d):
                torch.nn.init.kaiming_normal_(module.weight)
                torch.nn.init.normal_(module.bias, std=0.05)
        state = {f"features.{k}": v for k, v in model.features.state_dict().items()}
        torch.save(state, folder / "alexnet-random.pth")

    return build_once(eval_cache / "lpips-alex-random-v1", write) / "alexnet-random.pth"


@pytest.fixture(scope="session")
def eval_humanedit_dir(eval_cache: Path) -> Path:
    """6 HumanEdit-schema rows (64 px, masked, 6 edit types)."""
    from devkit.fixtures.edit_dataset import build_humanedit_fixture

    return build_humanedit_fixture(eval_cache / "datasets", num_rows=6, size=64, seed=1)


class StubMLLM(PassCalls):
    """A deterministic `MindEditMLLMLike` (checked in tests/test_mllm_protocol.py): the refined prompt
    is derived from the instruction, `v_insight` from a hash of (instruction, image bytes). Counts every
    pass, so tests can prove which items were (re)computed."""

    def __init__(self, dim: int = EVAL_EMBED_DIM) -> None:
        self.dim = dim
        self.calls: list[str] = []
        self.has_head = True
        self.negative_embeds = None  # no stored plus negative (plain-sized embeddings)
        self.default_options = PassOptions()

    def torch_modules(self) -> dict:
        return {}

    def _embed(self, image, instruction: str):
        import torch

        digest = hashlib.sha256(instruction.encode() + image.tobytes()).digest()
        generator = torch.Generator().manual_seed(int.from_bytes(digest[:4], "little"))
        return torch.randn(1, self.dim, generator=generator)

    def run(self, request: PassRequest) -> PassResult:
        self.calls.append(request.instruction)
        text = f'optimized_prompt: "a photo, {request.instruction.lower()}"\nnegative_prompt: "blurry, low quality"'
        refined = parse_refinement(text, request.instruction) if request.wants_prompts else None
        v_insight = self._embed(request.image, request.instruction) if request.wants_embeds else None
        return PassResult(refined, v_insight, text if request.wants_prompts else "")


@pytest.fixture()
def stub_mllm() -> StubMLLM:
    return StubMLLM()
