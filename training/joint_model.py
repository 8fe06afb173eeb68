"""The trainable module: the MLLM (LoRA-wrapped or not) + the vision head, returning the losses.

One module so that `accelerate` wraps a single thing (DDP / FSDP / DeepSpeed) and its forward is
what computes both losses. Layer m is read with the core's hook (`mindedit_core.mllm.capture_layer`)
keeping the tensor *with* its graph (``detach=False``): the same tensor inference reads (the raw
output of decoder layer m). With gradient checkpointing the layer runs again during backward; the
hook keeps only the first call of each forward.

The image inputs are whatever the family's processor produced (LLaVA-OneVision: ``pixel_values`` +
``image_sizes``; Qwen2.5-VL / Qwen3-VL: ``pixel_values`` + ``image_grid_thw``); they are passed on
by name, floating ones cast to the model's dtype.
"""

from __future__ import annotations

from contextlib import nullcontext

import torch
from torch import nn

from mindedit_core.mllm import capture_layer
from mindedit_core.vision_head import VisionHead

from .losses import answer_cross_entropy, embed_loss


def unwrap_peft(model: nn.Module) -> nn.Module:
    """The transformers model under a peft wrapper (LoRA layers stay injected in it)."""
    get_base = getattr(model, "get_base_model", None)
    return get_base() if callable(get_base) else model


class JointModel(nn.Module):
    def __init__(
        self,
        mllm: nn.Module,
        head: VisionHead | None,
        *,
        layer: int,
        text_loss: bool,
        lambda_embed: float,
    ) -> None:
        super().__init__()
        self.mllm = mllm
        self.head = head
        self.layer = layer
        self.text_loss = text_loss
        self.lambda_embed = lambda_embed
        if head is None and not text_loss:
            raise ValueError("Nothing to train: no text loss and no vision head.")

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        labels: torch.Tensor,
        prompt_mask: torch.Tensor,
        target: torch.Tensor | None = None,
        keep_prediction: bool = False,
        **image_inputs: torch.Tensor,
    ) -> dict[str, torch.Tensor]:
        """The losses (``loss``, ``ce``, ``embed``, ``cos``); with ``keep_prediction`` also the head's
        output as ``prediction`` (evaluation of input dependence)."""
        core = unwrap_peft(self.mllm)
        images = {k: v.to(core.dtype) if v.is_floating_point() else v for k, v in image_inputs.items()}
        reading = capture_layer(core, self.layer, detach=False) if self.head is not None else nullcontext()
        with reading as capture:
            outputs = core.model(
                input_ids=input_ids, attention_mask=attention_mask, use_cache=False, **images
            )
        metrics: dict[str, torch.Tensor] = {}
        total = None
        if self.text_loss:
            ce = answer_cross_entropy(outputs.last_hidden_state, labels, core.lm_head)
            metrics["ce"] = ce.detach()
            total = ce
        if self.head is not None:
            if target is None:
                raise ValueError("The vision head is trained but the batch has no CLIP target.")
            if capture is None or capture.hidden is None:
                raise RuntimeError(f"Decoder layer {self.layer} did not run: cannot read its hidden states.")
            pred = self.head(capture.hidden.float(), prompt_mask, input_ids=input_ids)
            loss, cos = embed_loss(pred, target)
            metrics["embed"] = loss.detach()
            metrics["cos"] = cos
            if keep_prediction:
                metrics["prediction"] = pred.detach()
            total = self.lambda_embed * loss if total is None else total + self.lambda_embed * loss
        metrics["loss"] = total
        return metrics
