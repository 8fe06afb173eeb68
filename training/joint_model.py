"""The trainable module: the MLLM (LoRA-wrapped or not) + the vision head, returning the losses.

One module so that `accelerate` wraps a single thing (DDP / FSDP / DeepSpeed) and its forward is
what computes both losses. Layer m is read with a forward hook on decoder layer m that keeps the
tensor *with* its graph (the core's inference hook detaches it); it is the same tensor the inference
hook reads (the raw output of decoder layer m). With gradient checkpointing the layer runs again
during backward; the hook keeps only the first call of each forward.
"""

from __future__ import annotations

import torch
from torch import nn

from mindedit_core.mllm import find_decoder_layers
from mindedit_core.vision_head import VisionHead

from .losses import answer_cross_entropy, embed_loss


def unwrap_peft(model: nn.Module) -> nn.Module:
    """The transformers model under a peft wrapper (LoRA layers stay injected in it)."""
    get_base = getattr(model, "get_base_model", None)
    return get_base() if callable(get_base) else model


class _FirstOutput:
    def __init__(self) -> None:
        self.hidden: torch.Tensor | None = None

    def __call__(self, module, args, output) -> None:
        if self.hidden is None:
            self.hidden = output[0] if isinstance(output, (tuple, list)) else output
        return None


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
        pixel_values: torch.Tensor,
        image_sizes: torch.Tensor,
        labels: torch.Tensor,
        prompt_mask: torch.Tensor,
        target: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        core = unwrap_peft(self.mllm)
        capture = _FirstOutput()
        handle = None
        if self.head is not None:
            handle = find_decoder_layers(core)[self.layer - 1].register_forward_hook(capture)
        try:
            outputs = core.model(
                input_ids=input_ids,
                attention_mask=attention_mask,
                pixel_values=pixel_values.to(core.dtype),
                image_sizes=image_sizes,
                use_cache=False,
            )
        finally:
            if handle is not None:
                handle.remove()
        metrics: dict[str, torch.Tensor] = {}
        total = None
        if self.text_loss:
            ce = answer_cross_entropy(outputs.last_hidden_state, labels, core.lm_head)
            metrics["ce"] = ce.detach()
            total = ce
        if self.head is not None:
            if target is None:
                raise ValueError("The vision head is trained but the batch has no CLIP target.")
            if capture.hidden is None:
                raise RuntimeError(f"Decoder layer {self.layer} did not run: cannot read its hidden states.")
            pred = self.head(capture.hidden.float(), prompt_mask)
            loss, cos = embed_loss(pred, target)
            metrics["embed"] = loss.detach()
            metrics["cos"] = cos
            total = self.lambda_embed * loss if total is None else total + self.lambda_embed * loss
        metrics["loss"] = total
        return metrics
