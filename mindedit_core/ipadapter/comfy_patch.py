"""Install IP-Adapter attention on a ComfyUI MODEL (a ``ModelPatcher``), composing with other patches.

How ComfyUI calls us (``comfy/ldm/modules/attention.py``, ``BasicTransformerBlock.forward``): for a
cross-attention layer whose key ``(block_kind, block_id, transformer_index)`` (or, when that is
absent, ``(block_kind, block_id)``) is in ``transformer_options["patches_replace"]["attn2"]``, it
runs ``to_q``/``to_k``/``to_v`` itself, calls ``replacement(q, k, v, extra_options)`` and applies
``to_out`` to the result. ``extra_options`` carries ``n_heads``, ``sigmas``, ``cond_or_uncond``,
``original_shape`` (latent shape) and the rest of ``transformer_options``.

Our replacement sits on the 3-tuple key. It computes the text attention, or delegates to whatever
replacement was on that site before (another pack's or an earlier MIND-Edit apply: we never
clobber) and to one installed later on the site's 2-tuple key, which our 3-tuple key hides from
ComfyUI (found through the live table, see `comfy_contract`), then adds the image attention. A
pack that finds our 3-tuple key taken and joins it through ``.add`` (ComfyUI_IPAdapter_plus on SDXL)
has its term run too (`MindEditAttn2Patch.add`). So packs compose in either order.

Which sites: those of the MODEL in hand (`sites.sites_in_unet`, in the order adapter files number
them), paired with the adapter's per-site projections by `sites_for_model`: 16 in SD1.5, 70 in SDXL. The MODEL is typed by `ComfyModelPatcher`; nothing here imports
ComfyUI, and the ComfyUI node passes ComfyUI's own attention function so that ``weight=0``
reproduces the unpatched model bit for bit.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from ..embeds import unconditional_embeds
from .attention import (
    BATCH_MAPPINGS,
    AttentionFn,
    assemble_for_chunks,
    decoupled_attention,
    mask_for_tokens,
    sdpa_attention,
)
from .comfy_contract import (
    LIVE_ATTN2_KEY,
    ComfyModelPatcher,
    ModelSampling,
    attn2_table,
    check_model_patcher,
    install_live_attn2,
)
from .sites import CONTEXT_DIMS, FAMILY_NAMES, SITES_BY_FAMILY, Site, describe_layout, sites_in_unet
from .weights import FIX_HINT, IPAdapter, IPAdapterFileError, SiteProjections

log = logging.getLogger(__name__)


class IPAdapterModelMismatch(ValueError):
    """The adapter does not fit the MODEL it is applied to; the message names both sides and the fix."""


class PreparedEmbeds:
    """Per-site image keys/values for one apply, computed once (float32, CPU) and cast lazily.

    ``weight``, the schedule window (as sigmas) and the mask are shared by all site replacements.
    """

    def __init__(
        self,
        site_kv: dict[int, tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]],
        *,
        weight: float,
        sigma_start: float,
        sigma_end: float,
        mask: torch.Tensor | None,
        batch_mapping: str,
    ) -> None:
        self.site_kv = site_kv  # adapter number -> (k_pos, v_pos, k_neg, v_neg), each [N, T_ip, W]
        self.weight = float(weight)
        self.sigma_start = float(sigma_start)
        self.sigma_end = float(sigma_end)
        self.mask = mask
        self.batch_mapping = batch_mapping
        self._cast: dict[tuple, tuple[torch.Tensor, ...]] = {}
        self._masks: dict[tuple, torch.Tensor] = {}
        self._last_sigmas: torch.Tensor | None = None
        self._last_active = True

    def is_active(self, extra_options: dict) -> bool:
        """Whether the current step lies in ``[start_at, end_at]`` (sigmas fall as sampling proceeds)."""
        if self.weight == 0:
            return False
        sigmas = extra_options.get("sigmas")
        if sigmas is None:
            return True
        # All sites of one UNet call share the same sigmas tensor: read it (a device sync on GPU)
        # once per call. Holding the reference keeps the identity check safe.
        if sigmas is not self._last_sigmas:
            sigma = float(sigmas.detach().reshape(-1)[0].item())
            self._last_sigmas = sigmas
            self._last_active = self.sigma_end <= sigma <= self.sigma_start
        return self._last_active

    def kv_for(self, number: int, q: torch.Tensor, extra_options: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """Image keys/values for the whole batch of ``q``: cond chunks positive, uncond chunks negative."""
        labels = tuple(extra_options.get("cond_or_uncond") or (0,))
        per_chunk = q.shape[0] // len(labels)
        cache_key = (number, labels, per_chunk, q.device, q.dtype)
        cached = self._cast.get(cache_key)
        if cached is None:
            k_pos, v_pos, k_neg, v_neg = self.site_kv[number]
            k = assemble_for_chunks(k_pos, k_neg, labels, per_chunk, self.batch_mapping)
            v = assemble_for_chunks(v_pos, v_neg, labels, per_chunk, self.batch_mapping)
            cached = (k.to(device=q.device, dtype=q.dtype), v.to(device=q.device, dtype=q.dtype))
            self._cast[cache_key] = cached
        return cached

    def mask_for(self, q: torch.Tensor, extra_options: dict) -> torch.Tensor | None:
        if self.mask is None:
            return None
        labels = tuple(extra_options.get("cond_or_uncond") or (0,))
        per_chunk = q.shape[0] // len(labels)
        shape = extra_options.get("original_shape")
        latent_hw = (int(shape[-2]), int(shape[-1])) if shape is not None and len(shape) >= 4 else None
        cache_key = (q.shape[1], latent_hw, labels, per_chunk, q.device, q.dtype)
        cached = self._masks.get(cache_key)
        if cached is None:
            resized = mask_for_tokens(self.mask, q.shape[1], latent_hw)
            resized = assemble_for_chunks(resized, resized, labels, per_chunk, "per_latent")
            cached = resized.to(device=q.device, dtype=q.dtype)
            self._masks[cache_key] = cached
        return cached


class MindEditAttn2Patch:
    """The callable installed on one attn2 key: text attention (or the replacements chained on this
    site) + image attention."""

    def __init__(
        self,
        site: Site,
        prepared: PreparedEmbeds,
        previous: Any = None,
        attention_fn: AttentionFn = sdpa_attention,
        hidden_at_apply: Any = None,
    ) -> None:
        self.site = site
        self.prepared = prepared
        self.previous = previous  # the replacement this site had when we were applied
        self.attention_fn = attention_fn
        # the site's 2-tuple replacement at apply time: already hidden from ComfyUI then, not ours to revive
        self.hidden_at_apply = hidden_at_apply
        self.joined: list[tuple[Any, dict]] = []  # terms added by `add` (ComfyUI_IPAdapter_plus on SDXL)

    def add(self, callback: Any, **kwargs: Any) -> None:
        """Join a term onto this site the way ComfyUI_IPAdapter_plus does when it finds a 3-tuple key
        taken (its ``Attn2Replace.add``; it patches SDXL on 3-tuple keys, so applied after us it calls
        this): ``callback(out, q, k, v, extra_options, **kwargs)`` is added to the text attention while
        the step's sigma lies in ``[kwargs["sigma_end"], kwargs["sigma_start"]]``. As with that pack's
        own patches, the object is shared with the MODEL it was cloned from, which sees the term too."""
        self.joined.append((callback, dict(kwargs)))

    def _run_joined(self, out: torch.Tensor, q, k, v, extra_options: dict) -> torch.Tensor:
        if not self.joined:
            return out
        sigmas = extra_options.get("sigmas")
        sigma = float(sigmas.detach().reshape(-1)[0].item()) if sigmas is not None else 999999999.9
        for callback, kwargs in self.joined:
            if kwargs.get("sigma_end", 0.0) <= sigma <= kwargs.get("sigma_start", 999999999.9):
                out = out + callback(out, q, k, v, extra_options, **kwargs)
        return out

    def __call__(
        self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, extra_options: dict
    ) -> torch.Tensor:
        heads = extra_options["n_heads"]
        if self.previous is not None:
            out = self.previous(q, k, v, extra_options)
            later = self._later_replacement(extra_options)
            if later is not None:  # each adds its own term to the text attention: keep both terms
                text = self.attention_fn(q, k, v, heads, extra_options)
                out = out + (later(q, k, v, extra_options) - text)
        else:
            later = self._later_replacement(extra_options)
            if later is not None:
                out = later(q, k, v, extra_options)
            else:
                out = self.attention_fn(q, k, v, heads, extra_options)
        out = self._run_joined(out, q, k, v, extra_options)
        if not self.prepared.is_active(extra_options):
            return out
        image_k, image_v = self.prepared.kv_for(self.site.adapter_number, q, extra_options)
        return decoupled_attention(
            q,
            out,
            image_k,
            image_v,
            heads,
            weight=self.prepared.weight,
            mask=self.prepared.mask_for(q, extra_options),
            attention_fn=self.attention_fn,
            extra_options=extra_options,
        )

    def _later_replacement(self, extra_options: dict) -> Any | None:
        """A replacement installed on this site's 2-tuple key after us, which ComfyUI will not call.

        Returned once per layer call: a chain of several MIND-Edit applies runs it once, and a
        replacement that calls back into ours is not run again (no recursion).
        """
        live = extra_options.get(LIVE_ATTN2_KEY)
        if not live:
            return None
        kind, block, _ = self.site.comfy_key
        later = live.get((kind, block))
        if later is None or later is self.previous or later is self.hidden_at_apply:
            return None
        if extra_options.get(_LATER_RUN_KEY) is later:
            return None
        extra_options[_LATER_RUN_KEY] = later
        return later

    def to(self, *args: Any, **kwargs: Any) -> MindEditAttn2Patch:
        """ComfyUI calls ``.to(device)`` on replacements; tensors are cast lazily per call instead."""
        if self.previous is not None and hasattr(self.previous, "to"):
            self.previous = self.previous.to(*args, **kwargs)
        return self


# Set in ``extra_options`` (one dict per layer call) by the patch that ran the later 2-tuple replacement.
_LATER_RUN_KEY = "mindedit_later_attn2_run"


def _match_rows(t: torch.Tensor, rows: int) -> torch.Tensor:
    """Repeat the last row / drop extra rows so ``t`` has ``rows`` rows."""
    if t.shape[0] >= rows:
        return t[:rows]
    return torch.cat([t, t[-1:].expand(rows - t.shape[0], *t.shape[1:])], dim=0)


SitePairs = list[tuple[Site, SiteProjections]]


def _family_of_model(model_patcher: ComfyModelPatcher, context_dim: int) -> str:
    """How the MODEL's family reads in an error: ComfyUI's model config name, else its context width."""
    config = getattr(getattr(model_patcher, "model", None), "model_config", None)
    family = next((f for f, dim in CONTEXT_DIMS.items() if dim == context_dim), None)
    named = f"an {FAMILY_NAMES[family]}-family checkpoint" if family else "a checkpoint of another family"
    config_name = f", ComfyUI model type {type(config).__name__}" if config is not None else ""
    return f"{named} ({context_dim}-wide cross-attention context{config_name})"


def sites_for_model(model_patcher: ComfyModelPatcher, adapter: IPAdapter) -> SitePairs:
    """Pair the adapter's per-site projections with the cross-attention layers of the MODEL in hand.

    The MODEL's sites are read off its UNet (`sites_in_unet`) in the order the adapter file numbers
    them, so any checkpoint with the family's layout fits (SDXL fine-tunes included). A UNet with the
    family's blocks but fewer transformer layers (the tiny test UNets) keeps the sites it has, with a
    warning. Raises `IPAdapterModelMismatch` naming both sides for an adapter of the other family, an
    unknown layout, or a width that differs. MODELs that cannot be inspected (not an LDM UNet,
    duck-typed fakes) get the family's released layout.
    """
    name = adapter.info.source
    read = sites_in_unet(getattr(getattr(model_patcher, "model", None), "diffusion_model", None))
    if read is None:
        if not adapter.sites:
            raise IPAdapterFileError(
                f"IP-Adapter {name} numbers {len(adapter.ip_adapter)} attention sites; {adapter.family_name} has "
                f"{len(SITES_BY_FAMILY[adapter.family])}. {FIX_HINT}"
            )
        return adapter.sites
    model_sites, context_dim = read
    if context_dim != adapter.info.context_dim:
        raise IPAdapterModelMismatch(
            f"IP-Adapter {Path(name).name} is an {adapter.family_name} adapter ({adapter.info.context_dim}-wide "
            f"image tokens), but the MODEL is {_family_of_model(model_patcher, context_dim)}. An adapter only "
            f"works with checkpoints of its own family. {FIX_HINT}"
        )
    numbers = list(adapter.info.site_numbers)
    if len(model_sites) != len(numbers):
        numbers = _numbers_of_partial_unet(adapter, model_sites)
    pairs = []
    for model_site, number in zip(model_sites, numbers):
        proj = adapter.ip_adapter[str(number)]
        if model_site.width != proj.width:
            real = sorted({s.width for s in SITES_BY_FAMILY[adapter.family]})
            raise IPAdapterModelMismatch(
                f"IP-Adapter {name}: site {number} ({model_site.label}) has to_k_ip width {proj.width}, but the "
                f"MODEL's attention there is {model_site.width} wide. Use an adapter made for this checkpoint's "
                f"UNet (real {adapter.family_name} widths are {'/'.join(map(str, real))})."
            )
        pairs.append((replace(model_site, index=(number - 1) // 2, adapter_number=number), proj))
    return pairs


def _numbers_of_partial_unet(adapter: IPAdapter, model_sites: tuple[Site, ...]) -> list[int]:
    """File site numbers for a UNet that has only some of the family's sites (a warning), or the error."""
    by_key = {site.comfy_key: site for site, _ in adapter.sites}
    if not by_key or any(site.comfy_key not in by_key for site in model_sites):
        family_sites = SITES_BY_FAMILY[adapter.family]
        raise IPAdapterModelMismatch(
            f"IP-Adapter {Path(adapter.info.source).name} patches {len(adapter.info.site_numbers)} cross-attention "
            f"layers ({adapter.family_name}: {describe_layout(family_sites)}), but the MODEL's UNet has "
            f"{len(model_sites)} ({describe_layout(model_sites)}): an unknown layout (a distilled or pruned "
            "UNet?). Use an IP-Adapter trained for this checkpoint's UNet, or a checkpoint with the "
            f"{adapter.family_name} layout."
        )
    keys = {site.comfy_key for site in model_sites}
    missing = [site for site, _ in adapter.sites if site.comfy_key not in keys]
    log.warning(
        "MIND-Edit IP-Adapter: the MODEL has no cross-attention at %d of %d %s sites (%s); the adapter acts "
        "only where the layers exist.",
        len(missing),
        len(adapter.sites),
        adapter.family_name,
        ", ".join(s.label for s in missing),
    )
    return [by_key[site.comfy_key].adapter_number for site in model_sites]


def _percent_to_sigma(model_patcher: ComfyModelPatcher, percent: float) -> float:
    sampling: ModelSampling = model_patcher.get_model_object("model_sampling")
    return float(sampling.percent_to_sigma(percent))


def apply_ipadapter(
    model_patcher: ComfyModelPatcher,
    ipadapter: IPAdapter,
    pos_embeds: torch.Tensor,
    neg_embeds: torch.Tensor | None = None,
    *,
    weight: float = 1.0,
    start_at: float = 0.0,
    end_at: float = 1.0,
    attn_mask: torch.Tensor | None = None,
    batch_mapping: str = "all",
    attention_fn: AttentionFn = sdpa_attention,
) -> ComfyModelPatcher:
    """Return a clone of ``model_patcher`` with IP-Adapter attention on every attn2 site of its UNet
    (16 in SD1.5, 70 in SDXL; see `sites_for_model`).

    ``pos_embeds``/``neg_embeds`` are CLIP-vision-shaped (`EMBEDS`): ``[N,1024]`` plain or
    ``[N,257,1280]`` plus; without ``neg_embeds`` the unconditional pass gets `unconditional_embeds`
    (zeros). ``batch_mapping="all"``: every latent sees all N embeddings (their tokens
    are concatenated); ``"per_latent"``: latent i uses embedding i (the last one repeats).
    ``start_at``/``end_at`` are fractions of the schedule. ``weight`` may be negative.
    """
    check_model_patcher(model_patcher)
    if batch_mapping not in BATCH_MAPPINGS:
        raise ValueError(f"batch_mapping must be one of {BATCH_MAPPINGS}, got {batch_mapping!r}.")
    if not 0.0 <= start_at <= end_at <= 1.0:
        raise ValueError(
            f"start_at ({start_at}) and end_at ({end_at}) must satisfy 0 <= start_at <= end_at <= 1 "
            "(fractions of the sampling schedule)."
        )
    ipadapter.check_embeds(pos_embeds, what="positive EMBEDS")
    if neg_embeds is None:
        neg_embeds = unconditional_embeds(pos_embeds)
    ipadapter.check_embeds(neg_embeds, what="negative EMBEDS")
    sites = sites_for_model(model_patcher, ipadapter)

    pos_tokens = ipadapter.project(pos_embeds.detach().cpu().float())
    neg_tokens = ipadapter.project(_match_rows(neg_embeds.detach().cpu().float(), pos_embeds.shape[0]))
    if batch_mapping == "all":  # every latent attends to all reference embeddings at once
        pos_tokens = pos_tokens.reshape(1, -1, pos_tokens.shape[-1])
        neg_tokens = neg_tokens.reshape(1, -1, neg_tokens.shape[-1])
    with torch.no_grad():
        site_kv = {
            site.adapter_number: (
                proj.to_k_ip(pos_tokens),
                proj.to_v_ip(pos_tokens),
                proj.to_k_ip(neg_tokens),
                proj.to_v_ip(neg_tokens),
            )
            for site, proj in sites
        }
    mask = None
    if attn_mask is not None:
        mask = attn_mask.detach().cpu().float()
        mask = mask.unsqueeze(0) if mask.ndim == 2 else mask
    prepared = PreparedEmbeds(
        site_kv,
        weight=weight,
        sigma_start=_percent_to_sigma(model_patcher, start_at),
        sigma_end=_percent_to_sigma(model_patcher, end_at),
        mask=mask,
        batch_mapping=batch_mapping,
    )

    patched = model_patcher.clone()
    install_live_attn2(patched)
    existing = attn2_table(patched.model_options)
    for site, _ in sites:
        kind, block, index = site.comfy_key
        hidden = existing.get((kind, block))
        previous = existing.get(site.comfy_key, hidden)
        patch = MindEditAttn2Patch(
            site, prepared, previous=previous, attention_fn=attention_fn, hidden_at_apply=hidden
        )
        patched.set_model_attn2_replace(patch, kind, block, index)
    return patched
