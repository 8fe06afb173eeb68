"""IP-Adapter fixtures: tiny adapter files in every layout, and a stand-in for ComfyUI's ModelPatcher.

- `ipadapter_files`: ``{(kind, layout): path}`` for kind in plain/plus, layout in bin/safetensors/legacy,
  with real SD1.5 site widths (320/640/1280).
- `ipadapter_sites16_files`: ``{kind: path}`` (safetensors) whose site widths match the tiny
  "sites16" SD1.5 checkpoint (320 everywhere), for ComfyUI runs.
- `sdxl_ipadapter_tiny_files`: ``{kind: path}`` for the SDXL ViT-H kinds (plain, plus, plus-face), 70
  sites as wide as the tiny SDXL checkpoint's (320), for ComfyUI runs.
- `ipadapter_bigg_file` (the ViT-bigG ``ip-adapter_sdxl``), `not_an_ipadapter_file`: for the error tests.
- `FakeModelPatcher`: `mindedit_core.ipadapter.comfy_contract.ComfyModelPatcher` without ComfyUI
  (clone deep-copies ``model_options``; replace keys are ``(block, id, index)``; keyed wrappers), so the
  patch logic is testable without starting ComfyUI. ``tests/test_ipadapter_contract.py`` runs it and
  ComfyUI's real ``ModelPatcher`` through the same asserts. `FakeModelPatcher.call_attn2` runs one
  cross-attention layer the way ComfyUI's sampler and ``BasicTransformerBlock`` do (wrappers, then
  3-tuple key before 2-tuple key, ``extra_options`` without the patch tables).
"""

from __future__ import annotations

import copy
import math
from pathlib import Path

import pytest


class FakeModelSampling:
    """SD1.5's discrete schedule (scaled-linear betas), enough for `percent_to_sigma`."""

    def __init__(self) -> None:
        import torch

        betas = torch.linspace(0.00085**0.5, 0.012**0.5, 1000, dtype=torch.float64) ** 2
        alphas = torch.cumprod(1.0 - betas, dim=0)
        self.sigmas = ((1 - alphas) / alphas) ** 0.5

    def sigma(self, timestep: float) -> float:
        t = min(max(float(timestep), 0.0), 999.0)
        low, high = int(math.floor(t)), int(math.ceil(t))
        w = t - low
        log_sigma = (1 - w) * self.sigmas[low].log() + w * self.sigmas[high].log()
        return float(log_sigma.exp())

    def percent_to_sigma(self, percent: float) -> float:
        if percent <= 0.0:
            return 999999999.9
        if percent >= 1.0:
            return 0.0
        return self.sigma((1.0 - percent) * 999.0)


class FakeModelPatcher:
    def __init__(self, model: object | None = None) -> None:
        self.model = model
        self.model_options: dict = {"transformer_options": {}}
        self.sampling = FakeModelSampling()
        self.wrappers: dict[str, dict[str, list]] = {}

    def clone(self) -> FakeModelPatcher:
        other = FakeModelPatcher(self.model)
        other.model_options = copy.deepcopy(self.model_options)
        other.sampling = self.sampling
        other.wrappers = {
            kind: {k: list(v) for k, v in keyed.items()} for kind, keyed in self.wrappers.items()
        }
        return other

    def add_wrapper_with_key(self, wrapper_type: str, key: str, wrapper) -> None:
        self.wrappers.setdefault(wrapper_type, {}).setdefault(key, []).append(wrapper)

    def get_wrappers(self, wrapper_type: str, key: str) -> list:
        return self.wrappers.get(wrapper_type, {}).get(key, [])

    def set_model_attn2_replace(self, patch, block_name, number, transformer_index=None) -> None:
        to = self.model_options["transformer_options"]
        key = (block_name, number) if transformer_index is None else (block_name, number, transformer_index)
        to.setdefault("patches_replace", {}).setdefault("attn2", {})[key] = patch

    def get_model_object(self, name: str):
        if name == "model_sampling":
            return self.sampling
        raise AttributeError(name)

    def attn2_patches(self) -> dict:
        return self.model_options["transformer_options"].get("patches_replace", {}).get("attn2", {})

    def call_attn2(self, key: tuple, q, k, v, extra: dict):
        """One attn2 layer ``key`` (3-tuple) as ComfyUI runs it in a sampling step; None if unpatched."""
        options = {**copy.copy(self.model_options["transformer_options"]), **extra}
        found: dict = {}

        def layer(*args, **kwargs):  # UNetModel._forward(x, timesteps, context, y, control, options)
            table = options.get("patches_replace", {}).get("attn2", {})
            replacement = table.get(key, table.get(key[:2]))
            if replacement is not None:
                extra_options = {n: o for n, o in options.items() if n not in ("patches", "patches_replace")}
                found["out"] = replacement(q, k, v, extra_options)

        chain = [w for keyed in self.wrappers.get("diffusion_model", {}).values() for w in keyed]

        def run(index: int, *args, **kwargs):
            if index == len(chain):
                return layer(*args, **kwargs)
            return chain[index](lambda *a, **kw: run(index + 1, *a, **kw), *args, **kwargs)

        run(0, None, None, None, None, None, options)
        return found.get("out")


@pytest.fixture(scope="session")
def ipadapter_files(fixture_cache: Path) -> dict[tuple[str, str], Path]:
    from devkit.fixtures.ipadapter_files import KINDS, LAYOUTS, ipadapter_file

    return {
        (kind, layout): ipadapter_file(fixture_cache, kind, layout) for kind in KINDS for layout in LAYOUTS
    }


@pytest.fixture(scope="session")
def ipadapter_sites16_files(fixture_cache: Path) -> dict[str, Path]:
    from devkit.fixtures.ipadapter_files import KINDS, SITES16_TINY_WIDTHS, ipadapter_file

    return {
        kind: ipadapter_file(fixture_cache, kind, "safetensors", site_widths=SITES16_TINY_WIDTHS)
        for kind in KINDS
    }


@pytest.fixture(scope="session")
def ipadapter_bigg_file(fixture_cache: Path) -> Path:
    from devkit.fixtures.ipadapter_files import bigg_ipadapter_file

    return bigg_ipadapter_file(fixture_cache)


@pytest.fixture(scope="session")
def sdxl_ipadapter_tiny_files(fixture_cache: Path) -> dict[str, Path]:
    from devkit.fixtures.ipadapter_files import SDXL_KINDS, sdxl_ipadapter_file

    return {kind: sdxl_ipadapter_file(fixture_cache, kind) for kind in SDXL_KINDS}


@pytest.fixture(scope="session")
def not_an_ipadapter_file(fixture_cache: Path) -> Path:
    from devkit.fixtures.ipadapter_files import not_an_ipadapter_file as make

    return make(fixture_cache)


@pytest.fixture(scope="session")
def loaded_ipadapters(ipadapter_files) -> dict:
    """``{kind: IPAdapter}`` loaded once from the safetensors files (real widths)."""
    from mindedit_core.ipadapter import load_ipadapter

    return {kind: load_ipadapter(ipadapter_files[(kind, "safetensors")]) for kind in ("plain", "plus")}
