"""Nodes that run the MLLM on an image + instruction: refine (prompts), embeds (v_insight), or both.

All three share one input layout (and `mllm_pass.compute_pass`), so a graph that uses the refine
and the embed node on the same inputs runs the MLLM once. Widget order is part of saved workflows:
never reorder or rename these inputs.
"""

from __future__ import annotations

import torch

from ..mindedit_core.images import DEFAULT_MAX_SIDE as DEFAULT_MAX_IMAGE_SIDE
from ..mindedit_core.mllm import DEFAULT_MAX_NEW_TOKENS, PassOptions, require_vision_head
from .comfy_mllm_patcher import MLLMHandle
from .mllm_loader import CATEGORY, MLLM_TYPE
from .mllm_pass import PassOutcome, compute_pass

DEFAULT_INSTRUCTION = "make it look like autumn"
SEED_MAX = 0xFFFFFFFFFFFFFFFF


def mllm_inputs() -> dict:
    """The input spec every MLLM-running node shares (required + optional)."""
    return {
        "required": {
            "mllm": (MLLM_TYPE, {"tooltip": "The MLLM from 'MIND-Edit MLLM Loader'."}),
            "image": (
                "IMAGE",
                {"tooltip": "The source image to edit (only the first image of a batch is read)."},
            ),
            "instruction": (
                "STRING",
                {
                    "multiline": True,
                    "default": DEFAULT_INSTRUCTION,
                    "tooltip": "What to change, in your own words (it may be vague, e.g. 'make it cosier'). "
                    "The MLLM turns it into precise positive and negative prompts for Stable Diffusion.",
                },
            ),
            "seed": (
                "INT",
                {
                    "default": 0,
                    "min": 0,
                    "max": SEED_MAX,
                    "control_after_generate": "fixed",
                    "tooltip": "Seed for the MLLM's sampling. Keep it 'fixed' so re-queueing with a new "
                    "KSampler seed reuses the cached prompts instead of running the MLLM again.",
                },
            ),
            "max_new_tokens": (
                "INT",
                {
                    "default": DEFAULT_MAX_NEW_TOKENS,
                    "min": 16,
                    "max": 2048,
                    "step": 8,
                    "tooltip": "Upper bound on the MLLM's answer length; the answer normally stops earlier.",
                },
            ),
            "max_image_side": (
                "INT",
                {
                    "default": DEFAULT_MAX_IMAGE_SIDE,
                    "min": 64,
                    "max": 4096,
                    "step": 8,
                    "tooltip": "The image is downscaled to this longest side before the MLLM reads it "
                    "(visual tokens at 384 / 1024 px: LLaVA-OneVision ~1,500 / ~7,400, Qwen2.5-VL ~200 / ~1,400, "
                    "Qwen3-VL ~140 / ~1,000). Only affects the MLLM, not the edit.",
                },
            ),
        },
        "optional": {
            "mask": (
                "MASK",
                {
                    "tooltip": "Optional edit region (white = edit). The MLLM sees it outlined on the image "
                    "and describes only that area. Leave empty for a mask-free edit."
                },
            ),
        },
    }


def negative_embeds_like(v_insight: torch.Tensor) -> torch.Tensor:
    """The unconditional embedding paired with v_insight: zeros of the same shape.

    Zeros is ComfyUI_IPAdapter_plus's default when no negative is given and what plain adapters were
    trained with. Plus adapters' reference negative is the encoder's output for a blank image, which
    needs the CLIP vision encoder the method does away with; zeros is the documented stand-in.
    """
    return torch.zeros_like(v_insight)


def require_head(mllm: MLLMHandle) -> None:
    """Fail before the MLLM runs: without a vision head there is no v_insight to wait for."""
    require_vision_head(mllm.mllm, described_as=mllm.description)


def embeds_of(outcome: PassOutcome) -> tuple[torch.Tensor, torch.Tensor]:
    """(pos_embeds, neg_embeds) of a pass run with a vision head."""
    return outcome.v_insight, negative_embeds_like(outcome.v_insight)


def _run(mllm, image, instruction, seed, max_new_tokens, max_image_side, mask) -> PassOutcome:
    options = PassOptions(
        seed=int(seed), max_new_tokens=int(max_new_tokens), max_image_side=int(max_image_side)
    )
    return compute_pass(mllm, image, mask, instruction, options)


class MindEditRefineInstruction:
    """Vague instruction -> precise positive / negative prompts."""

    DESCRIPTION = (
        "Runs the MIND-Edit MLLM on the image and your instruction and outputs refined positive and "
        "negative prompts (connect them to CLIP Text Encode's 'text' input), the raw answer and a status "
        "line that shows parser fallbacks."
    )
    CATEGORY = CATEGORY
    FUNCTION = "refine"
    RETURN_TYPES = ("STRING", "STRING", "STRING", "STRING")
    RETURN_NAMES = ("positive", "negative", "raw_answer", "status")
    OUTPUT_TOOLTIPS = (
        "Refined positive prompt for Stable Diffusion.",
        "Refined negative prompt.",
        "The MLLM's answer before parsing (for inspection).",
        "'ok' or the parser's fallback warning, plus the model used.",
    )

    @classmethod
    def INPUT_TYPES(cls):
        return mllm_inputs()

    def refine(self, mllm, image, instruction, seed, max_new_tokens, max_image_side, mask=None):
        outcome = _run(mllm, image, instruction, seed, max_new_tokens, max_image_side, mask)
        return (outcome.positive, outcome.negative, outcome.raw, outcome.status)


class MindEditInsightEmbeds:
    """v_insight as IP-Adapter EMBEDS (positive + negative)."""

    DESCRIPTION = (
        "Predicts v_insight with the MIND-Edit vision head and outputs it as EMBEDS for the MIND-Edit "
        "IP-Adapter node (or ComfyUI_IPAdapter_plus 'IPAdapter Embeds'). With the same inputs as the "
        "refine node, the MLLM runs once for both."
    )
    CATEGORY = CATEGORY
    FUNCTION = "embed"
    RETURN_TYPES = ("EMBEDS", "EMBEDS")
    RETURN_NAMES = ("pos_embeds", "neg_embeds")
    OUTPUT_TOOLTIPS = (
        "v_insight, shaped like the CLIP-vision output the IP-Adapter expects ([1,1024] plain, [1,257,1280] plus).",
        "The matching unconditional embedding (zeros).",
    )

    @classmethod
    def INPUT_TYPES(cls):
        return mllm_inputs()

    def embed(self, mllm, image, instruction, seed, max_new_tokens, max_image_side, mask=None):
        require_head(mllm)
        return embeds_of(_run(mllm, image, instruction, seed, max_new_tokens, max_image_side, mask))


class MindEditRefineAndEmbed:
    """Both outputs of one MLLM pass, for simple graphs (one instruction box)."""

    DESCRIPTION = (
        "MIND-Edit in one node: refined positive / negative prompts and v_insight EMBEDS from a single "
        "MLLM pass. Connect the prompts to CLIP Text Encode and the embeds to the IP-Adapter node."
    )
    CATEGORY = CATEGORY
    FUNCTION = "run"
    RETURN_TYPES = ("STRING", "STRING", "EMBEDS", "EMBEDS", "STRING", "STRING")
    RETURN_NAMES = ("positive", "negative", "pos_embeds", "neg_embeds", "raw_answer", "status")
    OUTPUT_TOOLTIPS = (
        MindEditRefineInstruction.OUTPUT_TOOLTIPS[0],
        MindEditRefineInstruction.OUTPUT_TOOLTIPS[1],
        MindEditInsightEmbeds.OUTPUT_TOOLTIPS[0],
        MindEditInsightEmbeds.OUTPUT_TOOLTIPS[1],
        MindEditRefineInstruction.OUTPUT_TOOLTIPS[2],
        MindEditRefineInstruction.OUTPUT_TOOLTIPS[3],
    )

    @classmethod
    def INPUT_TYPES(cls):
        return mllm_inputs()

    def run(self, mllm, image, instruction, seed, max_new_tokens, max_image_side, mask=None):
        require_head(mllm)
        outcome = _run(mllm, image, instruction, seed, max_new_tokens, max_image_side, mask)
        pos, neg = embeds_of(outcome)
        return (outcome.positive, outcome.negative, pos, neg, outcome.raw, outcome.status)
