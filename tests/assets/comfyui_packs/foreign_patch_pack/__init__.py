"""Test-only ComfyUI pack for the IP-Adapter tests: stands in for "another pack" and for probes.

- ``MindEditTest_CountingAttn2Patch``: puts a counting replacement on every SD1.5 attn2 key (or, with
  ``keys="from_model"``, on every attn2 the MODEL's UNet has: 70 in SDXL). Where a
  replacement is already installed it wraps it (calls it, records its class name): applied *after*
  MIND-Edit it proves our 16 replacements are called; applied *before* it is a foreign patch that
  ours must keep calling. Where none is installed it computes ComfyUI's plain attention, so it
  changes nothing numerically.
- ``MindEditTest_TwoTupleAttn2Patch``: plays ComfyUI_IPAdapter_plus's way of patching: a new
  replacement on every SD1.5 site's 2-tuple key ``(block_kind, block_id)`` (or, where that key is
  taken, nothing new), computing ComfyUI's attention plus a constant ``offset``, and counting calls.
- ``MindEditTest_JoiningAttn2Patch``: plays ComfyUI_IPAdapter_plus on SDXL: 3-tuple keys read off the
  MODEL's UNet; a new replacement (ComfyUI's attention plus its term) where a key is free, else
  ``existing.add(term, **kwargs)`` as that pack's ``set_model_patch_replace`` does. Its term adds a
  constant ``offset`` and counts calls.
- ``MindEditTest_ReportCounts``: an output node taking the sampled LATENT (so it runs after
  sampling) that reports the counts for a tag in its UI output (``/history`` -> outputs).
- ``MindEditTest_RandomEmbeds``: seeded random ``EMBEDS`` of a given shape (no MLLM in these tests).

Nothing here imports the MIND-Edit pack: it behaves like an unrelated pack.
"""

from __future__ import annotations

import json

import torch

SD15_ATTN2_KEYS = (
    [("input", b, 0) for b in (1, 2, 4, 5, 7, 8)]
    + [("output", b, 0) for b in range(3, 12)]
    + [("middle", 0, 0)]
)
CALLS: dict[str, dict[str, dict]] = {}


class CountingAttn2:
    def __init__(self, tag: str, key: tuple, wrapped=None):
        self.tag = tag
        self.key = key
        self.wrapped = wrapped

    def __call__(self, q, k, v, extra_options):
        entry = CALLS.setdefault(self.tag, {}).setdefault(
            "/".join(map(str, self.key)), {"calls": 0, "wrapped": type(self.wrapped).__name__}
        )
        entry["calls"] += 1
        if self.wrapped is not None:
            return self.wrapped(q, k, v, extra_options)
        from comfy.ldm.modules.attention import optimized_attention

        return optimized_attention(
            q,
            k,
            v,
            extra_options["n_heads"],
            attn_precision=extra_options.get("attn_precision"),
            transformer_options=extra_options,
        )


def attn2_keys_of(model) -> list[tuple]:
    """Every (kind, block, layer) attn2 key of the MODEL's LDM UNet."""
    unet = model.model.diffusion_model
    found = []
    blocks = [("input", i, b) for i, b in enumerate(unet.input_blocks)]
    blocks += [("middle", 0, unet.middle_block)] + [
        ("output", i, b) for i, b in enumerate(unet.output_blocks)
    ]
    for kind, number, container in blocks:
        for child in container:
            for layer, _ in enumerate(getattr(child, "transformer_blocks", [])):
                found.append((kind, number, layer))
    return found


class MindEditTestCountingAttn2Patch:
    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {"model": ("MODEL",), "tag": ("STRING", {"default": "probe"})},
            "optional": {"keys": (["sd15", "from_model"], {"default": "sd15"})},
        }

    RETURN_TYPES = ("MODEL",)
    FUNCTION = "patch"
    CATEGORY = "testing"

    def patch(self, model, tag, keys="sd15"):
        patched = model.clone()
        existing = patched.model_options["transformer_options"].get("patches_replace", {}).get("attn2", {})
        CALLS.pop(tag, None)
        for key in SD15_ATTN2_KEYS if keys == "sd15" else attn2_keys_of(model):
            patched.set_model_attn2_replace(
                CountingAttn2(tag, key, existing.get(key)), key[0], key[1], key[2]
            )
        return (patched,)


class AddingAttn2:
    def __init__(self, tag: str, key: tuple, offset: float):
        self.tag = tag
        self.key = key
        self.offset = offset

    def __call__(self, q, k, v, extra_options):
        entry = CALLS.setdefault(self.tag, {}).setdefault(
            "/".join(map(str, self.key)), {"calls": 0, "wrapped": "NoneType"}
        )
        entry["calls"] += 1
        from comfy.ldm.modules.attention import optimized_attention

        out = optimized_attention(
            q,
            k,
            v,
            extra_options["n_heads"],
            attn_precision=extra_options.get("attn_precision"),
            transformer_options=extra_options,
        )
        return out + self.offset


class MindEditTestTwoTupleAttn2Patch:
    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": ("MODEL",),
                "tag": ("STRING", {"default": "two-tuple"}),
                "offset": ("FLOAT", {"default": 0.05, "min": -10.0, "max": 10.0}),
            }
        }

    RETURN_TYPES = ("MODEL",)
    FUNCTION = "patch"
    CATEGORY = "testing"

    def patch(self, model, tag, offset):
        patched = model.clone()
        CALLS.pop(tag, None)
        for kind, block, _ in SD15_ATTN2_KEYS:
            patched.set_model_attn2_replace(AddingAttn2(tag, (kind, block), offset), kind, block)
        return (patched,)


class MindEditTestReportCounts:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"samples": ("LATENT",), "tag": ("STRING", {"default": "probe"})}}

    RETURN_TYPES = ()
    OUTPUT_NODE = True
    FUNCTION = "report"
    CATEGORY = "testing"

    def report(self, samples, tag):
        return {"ui": {"counts": [json.dumps(CALLS.get(tag, {}))]}}


class JoinedTerm:
    """ComfyUI_IPAdapter_plus's callback protocol: ``term(out, q, k, v, extra_options, **kwargs)``."""

    def __init__(self, tag: str, key: tuple):
        self.tag = tag
        self.key = key

    def __call__(self, out, q, k, v, extra_options, offset=0.0, **kwargs):
        entry = CALLS.setdefault(self.tag, {}).setdefault(
            "/".join(map(str, self.key)), {"calls": 0, "wrapped": ""}
        )
        entry["calls"] += 1
        return torch.full_like(out, offset)


class OwnReplacement:
    """Like that pack's ``Attn2Replace``: ComfyUI's attention plus every joined term in its window."""

    def __init__(self, term, **kwargs):
        self.terms = [(term, kwargs)]

    def add(self, term, **kwargs):
        self.terms.append((term, kwargs))

    def __call__(self, q, k, v, extra_options):
        from comfy.ldm.modules.attention import optimized_attention

        out = optimized_attention(q, k, v, extra_options["n_heads"])
        sigma = float(extra_options["sigmas"].reshape(-1)[0]) if "sigmas" in extra_options else 1e9
        for term, kwargs in self.terms:
            if kwargs["sigma_end"] <= sigma <= kwargs["sigma_start"]:
                out = out + term(out, q, k, v, extra_options, **kwargs)
        return out


class MindEditTestJoiningAttn2Patch:
    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": ("MODEL",),
                "tag": ("STRING", {"default": "joining"}),
                "offset": ("FLOAT", {"default": 0.05, "min": -10.0, "max": 10.0, "step": 0.01}),
            }
        }

    RETURN_TYPES = ("MODEL",)
    FUNCTION = "patch"
    CATEGORY = "testing"

    def patch(self, model, tag, offset):
        patched = model.clone()
        CALLS.pop(tag, None)
        options = patched.model_options["transformer_options"].copy()
        replace = options.get("patches_replace", {}).copy()
        table = replace.get("attn2", {}).copy()
        kwargs = {"offset": offset, "sigma_start": 1e9, "sigma_end": 0.0}
        for key in attn2_keys_of(model):
            if key in table:
                table[key].add(JoinedTerm(tag, key), **kwargs)
            else:
                table[key] = OwnReplacement(JoinedTerm(tag, key), **kwargs)
        replace["attn2"] = table
        options["patches_replace"] = replace
        patched.model_options["transformer_options"] = options
        return (patched,)


class MindEditTestRandomEmbeds:
    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "kind": (["plain", "plus"],),
                "batch": ("INT", {"default": 1, "min": 1, "max": 16}),
                "seed": ("INT", {"default": 0, "min": 0, "max": 2**31 - 1}),
                "scale": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 100.0}),
            }
        }

    RETURN_TYPES = ("EMBEDS",)
    FUNCTION = "make"
    CATEGORY = "testing"

    def make(self, kind, batch, seed, scale):
        shape = (batch, 1024) if kind == "plain" else (batch, 257, 1280)
        return (torch.randn(shape, generator=torch.Generator().manual_seed(seed)) * scale,)


NODE_CLASS_MAPPINGS = {
    "MindEditTest_CountingAttn2Patch": MindEditTestCountingAttn2Patch,
    "MindEditTest_TwoTupleAttn2Patch": MindEditTestTwoTupleAttn2Patch,
    "MindEditTest_JoiningAttn2Patch": MindEditTestJoiningAttn2Patch,
    "MindEditTest_ReportCounts": MindEditTestReportCounts,
    "MindEditTest_RandomEmbeds": MindEditTestRandomEmbeds,
}
