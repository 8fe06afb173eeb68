"""Image-projection models: CLIP-vision embeddings -> the extra context tokens of the UNet.

Parameter names follow the IP-Adapter files exactly (``proj``, ``norm``; ``latents``, ``proj_in``,
``layers.{i}.0.to_kv``, ``layers.{i}.1.{0,1,3}``, ...), so ``load_state_dict`` takes the file's
``image_proj`` section unchanged and a mismatch is a loud error instead of a silent re-init.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class LinearTokenProjection(nn.Module):
    """Plain adapter: ``[B, in_dim]`` -> linear -> ``[B, tokens, context_dim]`` -> LayerNorm."""

    def __init__(self, in_dim: int = 1024, context_dim: int = 768, tokens: int = 4) -> None:
        super().__init__()
        self.in_dim = in_dim
        self.context_dim = context_dim
        self.tokens = tokens
        self.proj = nn.Linear(in_dim, tokens * context_dim)
        self.norm = nn.LayerNorm(context_dim)

    def forward(self, embeds: torch.Tensor) -> torch.Tensor:
        tokens = self.proj(embeds.to(self.proj.weight.dtype))
        return self.norm(tokens.reshape(embeds.shape[0], self.tokens, self.context_dim))


class PerceiverAttention(nn.Module):
    """Latent queries attend to ``[image features ; latents]`` (keys ``norm1 norm2 to_q to_kv to_out``)."""

    def __init__(self, dim: int, heads: int, dim_head: int) -> None:
        super().__init__()
        self.heads = heads
        self.dim_head = dim_head
        inner = heads * dim_head
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_kv = nn.Linear(dim, inner * 2, bias=False)
        self.to_out = nn.Linear(inner, dim, bias=False)

    def forward(self, features: torch.Tensor, latents: torch.Tensor) -> torch.Tensor:
        features = self.norm1(features)
        latents = self.norm2(latents)
        batch, n_latents, _ = latents.shape
        q = self.to_q(latents)
        k, v = self.to_kv(torch.cat([features, latents], dim=1)).chunk(2, dim=-1)

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.reshape(batch, t.shape[1], self.heads, self.dim_head).transpose(1, 2)

        out = F.scaled_dot_product_attention(split(q), split(k), split(v))
        return self.to_out(out.transpose(1, 2).reshape(batch, n_latents, self.heads * self.dim_head))


class _FeedForward(nn.Sequential):
    """LayerNorm, Linear x mult, GELU, Linear back: indices 0, 1, 3 as in the files."""

    def __init__(self, dim: int, mult: int) -> None:
        super().__init__(
            nn.LayerNorm(dim),
            nn.Linear(dim, dim * mult, bias=False),
            nn.GELU(),
            nn.Linear(dim * mult, dim, bias=False),
        )


class PerceiverResampler(nn.Module):
    """Plus adapter: ``[B, N, in_dim]`` hidden states -> ``[B, queries, out_dim]`` via learnt latents."""

    def __init__(
        self,
        in_dim: int = 1280,
        dim: int = 768,
        out_dim: int = 768,
        depth: int = 4,
        heads: int = 12,
        dim_head: int = 64,
        queries: int = 16,
        ff_mult: int = 4,
    ) -> None:
        super().__init__()
        self.in_dim = in_dim
        self.context_dim = out_dim
        self.tokens = queries
        self.latents = nn.Parameter(torch.zeros(1, queries, dim))
        self.proj_in = nn.Linear(in_dim, dim)
        self.proj_out = nn.Linear(dim, out_dim)
        self.norm_out = nn.LayerNorm(out_dim)
        self.layers = nn.ModuleList(
            nn.ModuleList([PerceiverAttention(dim, heads, dim_head), _FeedForward(dim, ff_mult)])
            for _ in range(depth)
        )

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        features = self.proj_in(features.to(self.proj_in.weight.dtype))
        latents = self.latents.expand(features.shape[0], -1, -1)
        for attention, feed_forward in self.layers:
            latents = attention(features, latents) + latents
            latents = feed_forward(latents) + latents
        return self.norm_out(self.proj_out(latents))
