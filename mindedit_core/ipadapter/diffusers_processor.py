"""The same IP-Adapter attention for a diffusers ``UNet2DConditionModel``, SD1.5 or SDXL (used by
training/evaluate).

diffusers is only needed by the caller's UNet: nothing here imports it. The processor follows the
diffusers attention-processor calling convention (``processor(attn, hidden_states,
encoder_hidden_states, attention_mask, temb)``) and adds the image term through
`attention.decoupled_attention`, the function the ComfyUI patch uses.

Usage::

    state = install_ipadapter_processors(unet, adapter)         # once
    state.set_embeds(adapter, pos, neg, cfg=True)               # per batch: rows [uncond ; cond]
    state.weight = 0.8; state.mask = mask                       # optional
    unet(latents_in, t, encoder_hidden_states=text_embeds)      # plain tensor, as without IP-Adapter
    restore_processors(unet, state.original_processors)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch.nn import functional as F

from ..embeds import unconditional_embeds
from .attention import decoupled_attention, mask_for_tokens, sdpa_attention
from .weights import IPAdapter, SiteProjections


@dataclass
class IPAdapterRunState:
    """What all processors of one UNet share: the image tokens of the current batch, weight, mask.

    ``tokens`` rows must follow the UNet batch (for classifier-free guidance diffusers pipelines
    stack ``[uncond ; cond]``; `set_embeds` does that). ``mask`` is ``[B or 1, H, W]``, any size: one
    per latent, the same for the uncond and cond halves.
    """

    tokens: torch.Tensor | None = None
    weight: float = 1.0
    mask: torch.Tensor | None = None
    latent_hw: tuple[int, int] | None = None
    original_processors: dict[str, Any] = field(default_factory=dict)

    def set_embeds(
        self,
        adapter: IPAdapter,
        positive: torch.Tensor,
        negative: torch.Tensor | None = None,
        *,
        cfg: bool = True,
    ) -> None:
        """Project CLIP-vision-shaped embeddings; with ``cfg`` stack ``[negative ; positive]`` rows.

        ``negative`` defaults to `unconditional_embeds` (zeros); one row repeats over the batch.
        """
        pos = adapter.project(positive)
        if not cfg:
            self.tokens = pos
            return
        self.tokens = torch.cat([adapter.project(unconditional_embeds(positive, negative)), pos], dim=0)


class MindEditIPAttnProcessor:
    """Cross-attention processor: diffusers' standard attention plus the IP-Adapter image term."""

    def __init__(self, projections: SiteProjections, state: IPAdapterRunState) -> None:
        self.projections = projections
        self.state = state

    def __call__(
        self,
        attn: Any,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        temb: torch.Tensor | None = None,
        *args: Any,
        **kwargs: Any,
    ) -> torch.Tensor:
        residual = hidden_states
        if attn.spatial_norm is not None:
            hidden_states = attn.spatial_norm(hidden_states, temb)
        input_ndim = hidden_states.ndim
        if input_ndim == 4:
            batch, channels, height, width = hidden_states.shape
            hidden_states = hidden_states.view(batch, channels, height * width).transpose(1, 2)
        context = hidden_states if encoder_hidden_states is None else encoder_hidden_states
        batch, ctx_len, _ = context.shape
        if attention_mask is not None:
            attention_mask = attn.prepare_attention_mask(attention_mask, ctx_len, batch)
            attention_mask = attention_mask.view(batch, attn.heads, -1, attention_mask.shape[-1])
        if attn.group_norm is not None:
            hidden_states = attn.group_norm(hidden_states.transpose(1, 2)).transpose(1, 2)
        q = attn.to_q(hidden_states)
        if encoder_hidden_states is not None and attn.norm_cross:
            context = attn.norm_encoder_hidden_states(context)
        k, v = attn.to_k(context), attn.to_v(context)
        text_out = _text_attention(q, k, v, attn.heads, attention_mask)

        state = self.state
        if state.tokens is not None and encoder_hidden_states is not None:
            tokens = state.tokens.to(device=q.device, dtype=self.projections.to_k_ip.weight.dtype)
            image_k = self.projections.to_k_ip(tokens).to(q.dtype)
            image_v = self.projections.to_v_ip(tokens).to(q.dtype)
            mask = None
            if state.mask is not None:
                mask = mask_for_tokens(state.mask, q.shape[1], state.latent_hw)
                if mask.shape[0] not in (1, q.shape[0]):
                    # one mask per latent; with CFG the batch is [uncond ; cond], each half B latents
                    if q.shape[0] % mask.shape[0]:
                        raise ValueError(
                            f"IP-Adapter mask has {mask.shape[0]} rows for a UNet batch of {q.shape[0]}: "
                            "give one mask, or one per latent."
                        )
                    mask = mask.repeat(q.shape[0] // mask.shape[0], 1, 1)
            text_out = decoupled_attention(
                q,
                text_out,
                image_k,
                image_v,
                attn.heads,
                weight=state.weight,
                mask=mask,
                attention_fn=sdpa_attention,
            )

        out = attn.to_out[1](attn.to_out[0](text_out))
        if input_ndim == 4:
            out = out.transpose(-1, -2).reshape(batch, channels, height, width)
        if attn.residual_connection:
            out = out + residual
        return out / attn.rescale_output_factor


def _text_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int, attention_mask: torch.Tensor | None
) -> torch.Tensor:
    if attention_mask is None:
        return sdpa_attention(q, k, v, heads)
    batch, q_len, inner = q.shape
    dim_head = inner // heads

    def split(t: torch.Tensor) -> torch.Tensor:
        return t.reshape(batch, -1, heads, dim_head).transpose(1, 2)

    out = F.scaled_dot_product_attention(split(q), split(k), split(v), attn_mask=attention_mask)
    return out.transpose(1, 2).reshape(batch, q_len, inner).to(q.dtype)


def install_ipadapter_processors(unet: Any, adapter: IPAdapter) -> IPAdapterRunState:
    """Put a `MindEditIPAttnProcessor` on each cross-attention of a diffusers SD1.5 or SDXL UNet.

    The adapter numbers its sites by position among *all* processors (``attn1`` even, ``attn2`` odd)
    in diffusers' module order, so position i of ``unet.attn_processors`` is adapter site i.
    Returns the shared state; ``state.original_processors`` restores the UNet.
    """
    state = IPAdapterRunState()
    original = dict(unet.attn_processors)
    state.original_processors = original
    processors: dict[str, Any] = {}
    for position, (name, processor) in enumerate(original.items()):
        if name.endswith("attn2.processor"):
            key = str(position)
            if key not in adapter.ip_adapter:
                raise ValueError(
                    f"{adapter.info.source}: UNet processor {name} is at position {position}, which the adapter "
                    f"has no to_k_ip/to_v_ip for; the UNet is not shaped like the adapter's {adapter.family_name} "
                    f"({len(original)} processors). Use an adapter of this UNet's family."
                )
            processors[name] = MindEditIPAttnProcessor(adapter.ip_adapter[key], state)
        else:
            processors[name] = processor
    unet.set_attn_processor(processors)
    return state


def restore_processors(unet: Any, original: dict[str, Any]) -> None:
    """Undo `install_ipadapter_processors`."""
    unet.set_attn_processor(dict(original))
