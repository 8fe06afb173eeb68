"""The two losses of joint training (the method's Eq. 4-6).

- text: cross-entropy of the answer tokens, computed from the final hidden states *at the supervised
  positions only* (the LM head over the full ``[B, T, vocab]`` would cost GBs for the 7B model's
  152k vocabulary and thousands of image tokens); it equals the model's own loss;
- embed: ``1 - cos(v_insight, CLIP target)``, per sample for plain embeddings, averaged over tokens for
  plus embeddings.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .collate import IGNORE_INDEX


def answer_cross_entropy(last_hidden: torch.Tensor, labels: torch.Tensor, lm_head) -> torch.Tensor:
    """Mean CE over supervised tokens; position t predicts token t+1 (the usual shift)."""
    shifted = labels[:, 1:]
    positions = shifted != IGNORE_INDEX
    if not positions.any():
        raise ValueError("The batch has no supervised answer token (all labels are -100).")
    hidden = last_hidden[:, :-1][positions]
    logits = lm_head(hidden).float()
    return F.cross_entropy(logits, shifted[positions])


def cosine_similarity(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-sample cosine: ``[B]`` (plain, ``[B,D]``) or the token mean (plus, ``[B,T,D]``)."""
    cos = F.cosine_similarity(pred.float(), target.float().to(pred.device), dim=-1)
    return cos if cos.ndim == 1 else cos.mean(dim=1)


def embed_loss(pred: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(1 - cos).mean()`` and the detached mean cosine (for logs)."""
    cos = cosine_similarity(pred, target)
    return (1.0 - cos).mean(), cos.detach().mean()
