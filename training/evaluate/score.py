"""Score a generated run against the targets: CLIP-I, LPIPS, PSNR, SSIM, per item, per edit type, overall.

Every convention is recorded in ``summary.json`` (and from there in the report): the resolution both
images are resized to, value range, PSNR/SSIM parameters, LPIPS backbone and weight files, CLIP model.
Optional masked variants (``--masked``) score PSNR/SSIM inside the edit region (``*_edit``) and outside
it (``*_keep``: how well the rest of the image was preserved) for records that have a mask.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path

from PIL import Image

from .metrics import DEFAULT_RESOLUTION, METRIC_NAMES, load_metric_image, load_metric_mask, psnr, ssim
from .metrics.images import resize_square
from .run_files import (
    SCORES_FILE,
    SUMMARY_FILE,
    atomic_write_bytes,
    atomic_write_json,
    read_manifest,
    read_run,
)
from .selection import DatasetSelection, load_selection

log = logging.getLogger(__name__)

PSNR_CAP = 100.0  # dB: an identical pair's +inf is averaged as this (and counted in the summary)
THUMB_SIZE = 128
MASKED_METRICS = ("psnr_edit", "ssim_edit", "psnr_keep", "ssim_keep")


@dataclass
class ScoreSettings:
    resolution: int = DEFAULT_RESOLUTION
    metrics: tuple[str, ...] = METRIC_NAMES
    clip_model: str | None = None
    lpips_backbone: str = "alex"
    lpips_backbone_file: str | None = None
    lpips_heads_file: str | None = None
    masked: bool = False
    thumbs: int = 6
    device: str = "cpu"

    def __post_init__(self) -> None:
        unknown = [m for m in self.metrics if m not in METRIC_NAMES]
        if unknown:
            raise ValueError(f"Unknown metrics {unknown}: expected a subset of {METRIC_NAMES}.")
        if "clip_i" in self.metrics and not self.clip_model:
            raise ValueError(
                "CLIP-I needs a local CLIP model folder: pass --clip-model DIR (default model: "
                "openai/clip-vit-base-patch32, downloaded once with `hf download`), or leave clip_i out "
                "of --metrics."
            )


def conventions(settings: ScoreSettings, lpips_model=None, clip_scorer=None) -> dict:
    """The conventions written into the summary and the report."""
    out = {
        "resolution": f"{settings.resolution}x{settings.resolution} (result and target resized, PIL bicubic)",
        "value_range": "RGB in [0, 1]",
        "psnr": f"10*log10(1/MSE), data_range=1, MSE over all pixels and channels; identical pair = inf, "
        f"averaged as {PSNR_CAP:g} dB",
        "ssim": "Wang et al.: 11x11 Gaussian window, sigma 1.5, K1=0.01, K2=0.03, data_range=1, population "
        "covariance, mean over valid positions and the 3 RGB channels (= scikit-image gaussian_weights=True, "
        "use_sample_covariance=False)",
        "aggregation": "arithmetic mean over items; per edit type and overall",
    }
    if "lpips" in settings.metrics:
        verified = getattr(lpips_model, "backbone_verified", None)
        sha = getattr(lpips_model, "backbone_sha256", None)
        check = (
            "torchvision's own file (sha256 prefix matches its name)"
            if verified
            else "NOT torchvision's file: LPIPS not comparable with published values"
            if verified is False
            else "not checked"
        )
        out["lpips"] = (
            f"LPIPS v0.1, {settings.lpips_backbone} backbone, inputs in [-1, 1]; backbone weights "
            f"{getattr(lpips_model, 'backbone_file', '?')} (sha256 {sha[:16] + '...' if sha else '?'}, {check}), "
            f"linear heads {getattr(lpips_model, 'heads_file', '?')}"
        )
    if "clip_i" in settings.metrics:
        pre = getattr(clip_scorer, "preprocess", None)
        out["clip_i"] = f"cosine of projected CLIP image embeddings; model {settings.clip_model}; " + (
            f"shortest side {pre.size} bicubic, centre crop {pre.crop}, CLIP mean/std" if pre else ""
        )
    if settings.masked:
        out["masked"] = (
            "psnr/ssim_edit: inside the edit mask; psnr/ssim_keep: outside it (masked records only)"
        )
    return out


def _mean(values: list[float]) -> float | None:
    finite = [PSNR_CAP if math.isinf(v) else v for v in values if v is not None and not math.isnan(v)]
    return sum(finite) / len(finite) if finite else None


def aggregate(rows: list[dict], metric_keys: list[str]) -> dict:
    """Means overall and per edit type (``None`` type becomes ``"(none)"``)."""
    groups: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        groups[str(row.get("edit_type") or "(none)")].append(row)

    def summarise(items: list[dict]) -> dict:
        out: dict = {"count": len(items)}
        for key in metric_keys:
            out[key] = _mean([r[key] for r in items if r.get(key) is not None])
        return out

    overall = summarise(rows)
    overall["psnr_inf_count"] = sum(1 for r in rows if r.get("psnr") is not None and math.isinf(r["psnr"]))
    return {"overall": overall, "by_type": {k: summarise(v) for k, v in sorted(groups.items())}}


def _save_thumbs(run: Path, item_id: str, images: dict[str, Image.Image]) -> None:
    import io

    from .run_files import safe_name

    for role, image in images.items():
        buffer = io.BytesIO()
        resize_square(image.convert("RGB"), THUMB_SIZE).save(buffer, format="PNG")
        atomic_write_bytes(run / "thumbs" / f"{safe_name(item_id)}_{role}.png", buffer.getvalue())


def score_run(
    run: str | Path,
    settings: ScoreSettings,
    *,
    selection: DatasetSelection | None = None,
    lpips_model=None,
    clip_scorer=None,
) -> dict:
    """Score every finished item of ``run``; writes ``scores.jsonl`` and ``summary.json``; returns the summary.

    ``selection`` defaults to the dataset recorded in ``run.json``. ``lpips_model``/``clip_scorer`` may be
    passed in (tests, or to reuse them across runs); otherwise they are loaded from the settings.
    """
    run = Path(run)
    info = read_run(run)
    selection = selection or DatasetSelection.from_json(info["dataset"])
    finished = read_manifest(run)
    records = load_selection(selection)
    if "lpips" in settings.metrics and lpips_model is None:
        from .metrics import load_lpips

        lpips_model = load_lpips(
            settings.lpips_backbone,
            backbone_file=settings.lpips_backbone_file,
            heads_file=settings.lpips_heads_file,
            device=settings.device,
        )
    if "clip_i" in settings.metrics and clip_scorer is None:
        from .metrics import ClipImageScorer

        clip_scorer = ClipImageScorer.from_folder(settings.clip_model, device=settings.device)

    rows: list[dict] = []
    missing: list[str] = []
    no_target: list[str] = []
    for record in records:
        if record.id not in finished:
            missing.append(record.id)
            continue
        if record.target is None:
            no_target.append(record.id)
            continue
        row = _score_item(run, record, finished[record.id], settings, lpips_model, clip_scorer)
        if len(rows) < settings.thumbs:
            _save_thumbs(
                run,
                record.id,
                {
                    "source": record.load_source(),
                    "target": record.load_target(),
                    "result": row.pop("_result"),
                },
            )
        row.pop("_result", None)
        rows.append(row)
    if missing:
        log.warning(
            "%s: %d of %d selected items have no result yet (not scored).", run, len(missing), len(records)
        )
    if no_target:
        log.warning("%s: %d items have no target image (not scored).", run, len(no_target))

    metric_keys = list(settings.metrics) + (list(MASKED_METRICS) if settings.masked else [])
    summary = {
        "run": str(run.resolve()),
        "method": info["method"],
        "dataset": selection.to_json(),
        "selected": len(records),
        "scored": len(rows),
        "missing": missing,
        "no_target": no_target,
        "metrics": metric_keys,
        "settings": asdict(settings),
        "conventions": conventions(settings, lpips_model, clip_scorer),
        **aggregate(rows, metric_keys),
    }
    import json

    text = "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows)
    atomic_write_bytes(run / SCORES_FILE, text.encode("utf-8"))
    atomic_write_json(run / SUMMARY_FILE, summary)
    return summary


def _score_item(
    run: Path, record, manifest_row: dict, settings: ScoreSettings, lpips_model, clip_scorer
) -> dict:
    with Image.open(run / manifest_row["file"]) as opened:
        result_image = opened.convert("RGB")
    target_image = record.load_target()
    result = load_metric_image(result_image, settings.resolution)
    target = load_metric_image(target_image, settings.resolution)
    row: dict = {"id": record.id, "edit_type": record.edit_type, "masked": record.mask is not None}
    if "psnr" in settings.metrics:
        row["psnr"] = psnr(result, target)[0]
    if "ssim" in settings.metrics:
        row["ssim"] = ssim(result, target)[0]
    if "lpips" in settings.metrics:
        row["lpips"] = lpips_model.distance(result, target)[0]
    if "clip_i" in settings.metrics:
        row["clip_i"] = clip_scorer.similarity([result_image], [target_image])[0]
    if settings.masked:
        mask_image = record.load_mask()
        if mask_image is not None:
            inside = load_metric_mask(mask_image, settings.resolution)
            for region, selected in (("edit", inside), ("keep", ~inside)):
                row[f"psnr_{region}"] = _safe(psnr, result, target, selected)
                row[f"ssim_{region}"] = _safe(ssim, result, target, selected)
    row["_result"] = result_image
    return row


def _safe(metric, result, target, mask) -> float | None:
    """A masked metric, or None when the region is empty (e.g. a mask covering the whole image)."""
    try:
        return metric(result, target, mask)[0]
    except ValueError:
        return None
