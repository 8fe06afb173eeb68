"""Nodes that run the MLLM on an image + instruction: refine (prompts), embeds (v_insight), or both.

All three share one input layout (and `mllm_pass.compute_pass`), so a graph that uses the refine
and the embed node on the same inputs runs the MLLM once. Widget order is part of saved workflows:
never reorder or rename these inputs.
"""

from __future__ import annotations

import torch

from ..mindedit_core.instruction_checks import empty_instruction_problem, require_instruction
from ..mindedit_core.mllm import PassOptions, require_vision_head
from ..mindedit_core.node_specs import INSIGHT_EMBEDS, REFINE_AND_EMBED, REFINE_INSTRUCTION
from ..mindedit_core.prompt_styles import SD_TAGS
from ..mindedit_core.prompting import bound_instruction
from ..mindedit_core.source_checks import check_source_size, flat_source_warning
from .comfy_mllm_patcher import MLLMHandle
from .mllm_pass import PassOutcome, compute_pass
from .node_spec import implements


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


@implements(REFINE_INSTRUCTION)
class MindEditRefineInstruction(_MLLMNode):
    """Vague instruction -> precise positive / negative prompts (or an edit instruction)."""

    def refine(
        self, mllm, image, instruction, seed, max_new_tokens, max_image_side, mask=None, style=SD_TAGS.name
    ):
        outcome = _run(mllm, image, instruction, seed, max_new_tokens, max_image_side, mask, style)
        return (outcome.positive, outcome.negative, outcome.raw, status_of(outcome, instruction, image))


@implements(INSIGHT_EMBEDS)
class MindEditInsightEmbeds(_MLLMNode):
    """v_insight as IP-Adapter EMBEDS (positive + negative)."""

    def embed(self, mllm, image, instruction, seed, max_new_tokens, max_image_side, mask=None):
        require_head(mllm)
        return embeds_of(_run(mllm, image, instruction, seed, max_new_tokens, max_image_side, mask))


@implements(REFINE_AND_EMBED)
class MindEditRefineAndEmbed(_MLLMNode):
    """Both outputs of one MLLM pass, for simple graphs (one instruction box)."""

    def run(self, mllm, image, instruction, seed, max_new_tokens, max_image_side, mask=None):
        require_head(mllm)
        outcome = _run(mllm, image, instruction, seed, max_new_tokens, max_image_side, mask)
        pos, neg = embeds_of(outcome)
        status = status_of(outcome, instruction, image)
        return (outcome.positive, outcome.negative, pos, neg, outcome.raw, status)


NODE_CLASSES = [MindEditRefineInstruction, MindEditInsightEmbeds, MindEditRefineAndEmbed]
