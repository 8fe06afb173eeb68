"""Nodes that run the MLLM on an image + instruction: refine (prompts), embeds (v_insight), or both.

All three share one input layout (and `mllm_pass.compute_pass`), so a graph that uses the refine
and the embed node on the same inputs runs the MLLM once. Widget order is part of saved workflows:
never reorder or rename these inputs.
"""

from __future__ import annotations

import torch

from ..mindedit_core.images import DEFAULT_MAX_SIDE as DEFAULT_MAX_IMAGE_SIDE
from ..mindedit_core.instruction_checks import empty_instruction_problem, require_instruction
from ..mindedit_core.mllm import DEFAULT_MAX_NEW_TOKENS, PassOptions, require_vision_head
from ..mindedit_core.mllm.families.texts import image_tokens_hint
from ..mindedit_core.prompt_styles import SD_TAGS, STYLE_NAMES
from ..mindedit_core.prompting import MAX_INSTRUCTION_CHARS, bound_instruction
from ..mindedit_core.source_checks import check_source_size, flat_source_warning
from .comfy_mllm_patcher import MLLMHandle
from .mllm_loader import CATEGORY, MLLM_TYPE
from .mllm_pass import PassOutcome, compute_pass
from .node_spec import Input, NodeSpec, Output, declare

DEFAULT_INSTRUCTION = "make it look like autumn"
SEED_MAX = 0xFFFFFFFFFFFFFFFF


MLLM_INPUTS = (
    Input(
        "mllm",
        MLLM_TYPE,
        "The MLLM from 'MIND-Edit MLLM Loader', or (prompts only) a VLM your server serves, from 'MIND-Edit "
        "Remote VLM (OpenAI-compatible)'.",
    ),
    Input("image", "IMAGE", "The source image to edit (only the first image of a batch is read)."),
    Input(
        "instruction",
        "STRING",
        "What to change, in your own words (it may be vague, e.g. 'make it cosier'). The MLLM turns it "
        f"into precise positive and negative prompts for Stable Diffusion. At most {MAX_INSTRUCTION_CHARS:,} "
        "characters are read (a longer one is cut, and the status says so).",
        options={"multiline": True, "default": DEFAULT_INSTRUCTION},
    ),
    Input(
        "seed",
        "INT",
        "Seed for the MLLM's sampling. Keep it 'fixed' so re-queueing with a new KSampler seed reuses the "
        "cached prompts instead of running the MLLM again.",
        options={"default": 0, "min": 0, "max": SEED_MAX, "control_after_generate": "fixed"},
    ),
    Input(
        "max_new_tokens",
        "INT",
        "Upper bound on the MLLM's answer length; the answer normally stops earlier.",
        options={"default": DEFAULT_MAX_NEW_TOKENS, "min": 16, "max": 2048, "step": 8},
    ),
    Input(
        "max_image_side",
        "INT",
        "The image is downscaled to this longest side before the MLLM reads it (visual tokens at 384 / "
        f"1024 px: {image_tokens_hint()}). Only affects the MLLM, not the edit.",
        options={"default": DEFAULT_MAX_IMAGE_SIDE, "min": 64, "max": 4096, "step": 8},
    ),
    Input(
        "mask",
        "MASK",
        "Optional edit region (white = edit). The MLLM sees it outlined on the image and describes only "
        "that area. Leave empty for a mask-free edit.",
        optional=True,
    ),
)


# Added after the shared inputs (saved workflows append its value; older ones get the default).
STYLE_INPUT = Input(
    "style",
    list(STYLE_NAMES),
    "What the refined positive text is. 'sd_tags': comma-separated phrases for CLIP Text Encode "
    "(SD1.5 / SDXL, the MIND-Edit method). 'edit_instruction': one imperative sentence saying what "
    "changes, how it looks afterwards and what stays, for instruction editors (Qwen-Image-Edit, FLUX.1 "
    "Kontext, FLUX.2). The negative prompt is the same in both. The status line names the style that ran.",
    optional=True,
    options={"default": SD_TAGS.name},
)


def _spec(
    node_id: str, display_name: str, description: str, function: str, outputs, extra_inputs=()
) -> NodeSpec:
    return NodeSpec(
        node_id=node_id,
        display_name=display_name,
        category=CATEGORY,
        description=description,
        function=function,
        inputs=MLLM_INPUTS + tuple(extra_inputs),
        outputs=tuple(outputs),
    )


def require_head(mllm: MLLMHandle) -> None:
    """Fail before the MLLM runs: without a vision head there is no v_insight to wait for."""
    require_vision_head(mllm.mllm, described_as=mllm.description)


def embeds_of(outcome: PassOutcome) -> tuple[torch.Tensor, torch.Tensor]:
    """(pos_embeds, neg_embeds) of a pass run with a vision head: neg_embeds is the checkpoint's stored
    blank-image embedding for plus heads (zeros for plain, and for old plus checkpoints, said on the status
    line), see `mindedit_core.checkpoint.negative`."""
    return outcome.v_insight, outcome.neg_embeds


class _MLLMNode:
    """What every MLLM-running node shares beyond its declaration: the queue-time checks."""

    @classmethod
    def VALIDATE_INPUTS(cls, instruction=None):
        return empty_instruction_problem(instruction) or True


def _run(
    mllm, image, instruction, seed, max_new_tokens, max_image_side, mask, style=SD_TAGS.name
) -> PassOutcome:
    require_instruction(instruction)  # a linked one was not checked at queue time
    check_source_size(image, where="MIND-Edit (MLLM)")
    options = PassOptions(
        seed=int(seed),
        max_new_tokens=int(max_new_tokens),
        max_image_side=int(max_image_side),
        style=style or SD_TAGS.name,
    )
    return compute_pass(mllm, image, mask, bound_instruction(instruction).text, options)


def status_of(outcome: PassOutcome, instruction: str, image: torch.Tensor) -> str:
    """The pass's status line, with warnings first: a blank source, an instruction that was cut."""
    note = bound_instruction(instruction).note
    warnings = [flat_source_warning(image), f"WARNING: {note}" if note else None]
    return " | ".join([w for w in warnings if w] + [outcome.status])


POSITIVE = Output("positive", "STRING", "Refined positive prompt for Stable Diffusion.")
REFINED_POSITIVE = Output(
    "positive",
    "STRING",
    "The refined positive text: SD tag phrases for CLIP Text Encode, or (style 'edit_instruction') one "
    "edit instruction for an instruction editor's text encoder.",
)
NEGATIVE = Output("negative", "STRING", "Refined negative prompt.")
RAW_ANSWER = Output("raw_answer", "STRING", "The MLLM's answer before parsing (for inspection).")
STATUS = Output(
    "status", "STRING", "'ok' or the parser's fallback warning, any instruction cut, and the model used."
)
POS_EMBEDS = Output(
    "pos_embeds",
    "EMBEDS",
    "v_insight, shaped like the CLIP-vision output the IP-Adapter expects ([1,1024] plain, [1,257,1280] plus).",
)
NEG_EMBEDS = Output(
    "neg_embeds",
    "EMBEDS",
    "The matching unconditional embedding: a plus checkpoint's stored blank-image embedding (what IP-Adapter "
    "Plus was trained with), zeros for plain heads. Connect it to the IP-Adapter node's neg_embed; "
    "ComfyUI_IPAdapter_plus's 'IPAdapter Embeds' needs it (or a CLIP vision model).",
)


@declare(
    _spec(
        "MindEditRefineInstruction",
        "MIND-Edit Refine Instruction (-> prompts)",
        "Runs the MIND-Edit MLLM on the image and your instruction and outputs refined positive and "
        "negative prompts (connect them to CLIP Text Encode's 'text' input), the raw answer and a status "
        "line that shows parser fallbacks. Works with any supported VLM and no MIND-Edit checkpoint, or "
        "with a VLM your own server serves ('MIND-Edit Remote VLM (OpenAI-compatible)'). Style "
        "'edit_instruction' writes one instruction for Qwen-Image-Edit / FLUX.1 Kontext instead of SD tags.",
        "refine",
        (REFINED_POSITIVE, NEGATIVE, RAW_ANSWER, STATUS),
        extra_inputs=(STYLE_INPUT,),
    )
)
class MindEditRefineInstruction(_MLLMNode):
    """Vague instruction -> precise positive / negative prompts (or an edit instruction)."""

    def refine(
        self, mllm, image, instruction, seed, max_new_tokens, max_image_side, mask=None, style=SD_TAGS.name
    ):
        outcome = _run(mllm, image, instruction, seed, max_new_tokens, max_image_side, mask, style)
        return (outcome.positive, outcome.negative, outcome.raw, status_of(outcome, instruction, image))


@declare(
    _spec(
        "MindEditInsightEmbeds",
        "MIND-Edit Insight Embeds (-> IP-Adapter EMBEDS)",
        "Predicts v_insight with the MIND-Edit vision head and outputs it as EMBEDS for the MIND-Edit "
        "IP-Adapter node (or ComfyUI_IPAdapter_plus 'IPAdapter Embeds'). With the same inputs as the "
        "refine node, the MLLM runs once for both.",
        "embed",
        (POS_EMBEDS, NEG_EMBEDS),
    )
)
class MindEditInsightEmbeds(_MLLMNode):
    """v_insight as IP-Adapter EMBEDS (positive + negative)."""

    def embed(self, mllm, image, instruction, seed, max_new_tokens, max_image_side, mask=None):
        require_head(mllm)
        return embeds_of(_run(mllm, image, instruction, seed, max_new_tokens, max_image_side, mask))


@declare(
    _spec(
        "MindEditRefineAndEmbed",
        "MIND-Edit (refine + embed)",
        "MIND-Edit in one node: refined positive / negative prompts and v_insight EMBEDS from a single "
        "MLLM pass. Connect the prompts to CLIP Text Encode and the embeds to the IP-Adapter node.",
        "run",
        (POSITIVE, NEGATIVE, POS_EMBEDS, NEG_EMBEDS, RAW_ANSWER, STATUS),
    )
)
class MindEditRefineAndEmbed(_MLLMNode):
    """Both outputs of one MLLM pass, for simple graphs (one instruction box)."""

    def run(self, mllm, image, instruction, seed, max_new_tokens, max_image_side, mask=None):
        require_head(mllm)
        outcome = _run(mllm, image, instruction, seed, max_new_tokens, max_image_side, mask)
        pos, neg = embeds_of(outcome)
        status = status_of(outcome, instruction, image)
        return (outcome.positive, outcome.negative, pos, neg, outcome.raw, status)


NODE_CLASSES = [MindEditRefineInstruction, MindEditInsightEmbeds, MindEditRefineAndEmbed]
