"""CLIP ViT-H/14 target embeddings of the edited (target) images: what the vision head learns to predict.

Both kinds an SD1.5 IP-Adapter consumes are computed in one pass:
``plain`` = ``image_embeds`` ``[1024]`` (ip-adapter_sd15) and ``plus`` = ``hidden_states[-2]``
``[257,1280]`` (ip-adapter-plus_sd15). Preprocessing is IP-Adapter's (`CLIPImageProcessor` as saved
in the encoder folder: shortest side 224 bicubic, center crop, CLIP mean/std).

Batched, resumable (complete shards are kept; their ids are skipped on the next run), with a progress
bar. The encoder folder is the transformers layout of ``h94/IP-Adapter/models/image_encoder`` (the
one ComfyUI users know as ``CLIP-ViT-H-14-laion2B-s32B-b79K``)::

    python -m training.build_targets --format humanedit --data /data/HumanEdit \\
        --clip /models/IP-Adapter/models/image_encoder --out runs/targets [--kinds plain plus]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import torch

from .cli_errors import add_verbose_flag, run_command
from .data.record import EditRecord
from .parent_watch import watch_launcher
from .shards import Shard, shard_from_env
from .target_store import MANIFEST_NAME, SHARD_GLOB, UNCONDITIONAL_NAME, TargetStore, target_key

log = logging.getLogger(__name__)

TARGET_KINDS = ("plain", "plus")
CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]


def ipadapter_clip_processor(image_size: int = 224):
    """IP-Adapter's CLIP preprocessing: shortest side -> ``image_size`` (bicubic), center crop, CLIP norm."""
    from transformers import CLIPImageProcessor

    return CLIPImageProcessor(
        do_resize=True,
        size={"shortest_edge": image_size},
        resample=3,  # PIL bicubic
        do_center_crop=True,
        crop_size={"height": image_size, "width": image_size},
        do_rescale=True,
        rescale_factor=1 / 255,
        do_normalize=True,
        image_mean=CLIP_MEAN,
        image_std=CLIP_STD,
        do_convert_rgb=True,
    )


def load_clip_vision(folder: str | Path, *, device: str = "cpu", dtype: torch.dtype = torch.float32):
    """``(model, processor)`` from a local `CLIPVisionModelWithProjection` folder."""
    from transformers import CLIPImageProcessor, CLIPVisionModelWithProjection

    folder = Path(folder)
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(
            f"{folder} is not a CLIP vision model folder (no config.json). Use the transformers-format "
            "encoder of IP-Adapter (h94/IP-Adapter, subfolder models/image_encoder)."
        )
    model = CLIPVisionModelWithProjection.from_pretrained(folder, torch_dtype=dtype).to(device).eval()
    if (folder / "preprocessor_config.json").is_file():
        processor = CLIPImageProcessor.from_pretrained(folder)
    else:
        log.warning(
            "%s has no preprocessor_config.json: using IP-Adapter's standard CLIP preprocessing.", folder
        )
        processor = ipadapter_clip_processor(model.config.image_size)
    return model, processor


@torch.no_grad()
def encode_images(model, processor, images: list, kinds: Sequence[str]) -> dict[str, torch.Tensor]:
    """``{kind: [B, ...]}`` CLIP targets for a batch of PIL images."""
    pixels = processor(images=images, return_tensors="pt")["pixel_values"]
    pixels = pixels.to(device=model.device, dtype=model.dtype)
    out = model(pixel_values=pixels, output_hidden_states="plus" in kinds)
    result: dict[str, torch.Tensor] = {}
    if "plain" in kinds:
        result["plain"] = out.image_embeds
    if "plus" in kinds:
        result["plus"] = out.hidden_states[-2]
    return result


@torch.no_grad()
def encode_blank(model, kinds: Sequence[str], image_size: int) -> dict[str, torch.Tensor]:
    """``{"plus": [1,257,1280]}``: the encoder's output for a blank image, the unconditional input IP-Adapter
    Plus was trained with (an all-zero ``pixel_values``, i.e. zero after CLIP normalisation, as IP-Adapter's
    reference code feeds it). Plain adapters were trained with zeros: nothing is stored for them."""
    if "plus" not in kinds:
        return {}
    pixels = torch.zeros(1, 3, image_size, image_size, device=model.device, dtype=model.dtype)
    out = model(pixel_values=pixels, output_hidden_states=True)
    return {"plus": out.hidden_states[-2].to("cpu", torch.float32).contiguous()}


class ClipTargetEncoder:
    """The default target encoder: a local `CLIPVisionModelWithProjection` folder (IP-Adapter's ViT-H/14).

    Any object with the same three members can stand in for it (`build_targets`' ``encoder``): the
    learning benchmark uses a fixed pixel-pooling projection (`devkit.fixtures.pixel_encoder`)."""

    def __init__(self, folder: str | Path, *, device: str = "cpu") -> None:
        self.folder = folder
        self.model, self.processor = load_clip_vision(folder, device=device)

    def describe(self) -> dict:
        """What the manifest records; targets built with another description are refused on resume."""
        return {
            "clip_model": str(self.folder),
            "clip_config": {
                k: getattr(self.model.config, k)
                for k in ("hidden_size", "projection_dim", "image_size", "patch_size")
            },
            "preprocessing": self.processor.to_dict(),
        }

    def encode(self, images: list, kinds: Sequence[str]) -> dict[str, torch.Tensor]:
        return encode_images(self.model, self.processor, images, kinds)

    def encode_blank(self, kinds: Sequence[str]) -> dict[str, torch.Tensor]:
        return encode_blank(self.model, kinds, int(self.model.config.image_size))


def build_targets(
    records: Sequence[EditRecord],
    clip_dir: str | Path | None,
    out_dir: str | Path,
    *,
    kinds: Sequence[str] = TARGET_KINDS,
    batch_size: int = 16,
    shard_size: int = 256,
    device: str = "cpu",
    store_dtype: torch.dtype = torch.float16,
    progress: bool = True,
    shard: Shard | None = None,
    encoder=None,
) -> TargetStore:
    """Encode the target image of every record not yet in ``out_dir``; returns the store.

    ``shard`` (default: the whole list): this process encodes records ``index, index + count, ...``
    into its own shard files (``shard-rank<k>of<n>-*``); the store reads them as they are, and
    `merge_rank_shards` renames them into the common sequence once every process is done.
    ``encoder``: any object with ``describe() -> dict``, ``encode(images, kinds) -> {kind: [B, ...]}``
    and ``encode_blank(kinds) -> {kind: [1, ...]}`` (see `ClipTargetEncoder`); None: CLIP from
    ``clip_dir``."""
    shard = shard or Shard()
    records = shard.view(records)

    bad = [k for k in kinds if k not in TARGET_KINDS]
    if bad or not kinds:
        raise ValueError(f"Unknown target kinds {bad}: expected some of {TARGET_KINDS}.")
    if encoder is None:
        if clip_dir is None:
            raise ValueError("build_targets needs clip_dir (a CLIP vision folder) or an encoder.")
        encoder = ClipTargetEncoder(clip_dir, device=device)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    manifest_path = out / MANIFEST_NAME
    manifest = {
        **encoder.describe(),
        "kinds": sorted(kinds),
        "store_dtype": str(store_dtype).replace("torch.", ""),
        "shapes": {},
    }
    if manifest_path.is_file():
        old = json.loads(manifest_path.read_text())
        if old.get("kinds") != manifest["kinds"] or old.get("clip_config") != manifest.get("clip_config"):
            raise ValueError(
                f"{out} holds targets built with another encoder or kinds ({old.get('kinds')}, "
                f"{old.get('clip_config')}); use a new --out folder."
            )
        manifest["shapes"] = old.get("shapes", {})  # a resumed run may have nothing left to encode
    _write_json(manifest_path, manifest)
    blank = encoder.encode_blank(kinds)
    if blank:
        _save_atomic(blank, out / UNCONDITIONAL_NAME)

    done = TargetStore(out)
    todo = [r for r in records if not all(done.has(r.id, k) for k in kinds)]
    missing_target = [r.id for r in todo if r.target is None]
    if missing_target:
        raise ValueError(
            f"{len(missing_target)} records have no target image (first: {missing_target[:5]}); "
            "CLIP targets need the edited image."
        )
    prefix = f"shard-rank{shard.index}of{shard.count}-" if shard.sharded else "shard-"
    shard_index = _next_index(out, prefix)
    bar = _bar(len(todo), progress, len(records) - len(todo))
    shapes: dict[str, list[int]] = {}
    for start in range(0, len(todo), shard_size):
        chunk = todo[start : start + shard_size]
        tensors: dict[str, torch.Tensor] = {}
        for b in range(0, len(chunk), batch_size):
            batch = chunk[b : b + batch_size]
            encoded = encoder.encode([r.load_target() for r in batch], kinds)
            for kind, values in encoded.items():
                shapes[kind] = list(values.shape[1:])
                for record, value in zip(batch, values):
                    tensors[target_key(kind, record.id)] = value.to("cpu", store_dtype).contiguous()
            bar.update(len(batch))
        _save_atomic(tensors, out / f"{prefix}{shard_index:05d}.safetensors", {"count": str(len(chunk))})
        shard_index += 1
    bar.close()
    if shapes:
        manifest["shapes"] = shapes
        _write_json(manifest_path, manifest)
    elif not manifest["shapes"]:
        log.warning("No targets were computed (no records?).")
    return TargetStore(out)


def _next_index(out: Path, prefix: str) -> int:
    """One past the highest index of the ``<prefix><index>.safetensors`` shards in ``out``."""
    indices = [
        int(p.name[len(prefix) : -len(".safetensors")])
        for p in out.glob(f"{prefix}*.safetensors")
        if p.name[len(prefix) : -len(".safetensors")].isdigit()
    ]
    return max(indices, default=-1) + 1


def _save_atomic(tensors: dict, path: Path, metadata: dict | None = None) -> None:
    """Write to a per-process temp file, then rename: readers (and other processes) never see half a file."""
    from safetensors.torch import save_file

    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    save_file(tensors, str(tmp), metadata=metadata)
    tmp.replace(path)


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1, default=str))
    tmp.replace(path)


def merge_rank_shards(out_dir: str | Path) -> dict[str, int]:
    """Rename every process's shards (``shard-rank<k>of<n>-*``) into the common ``shard-NNNNN``
    sequence, once every process is done. Each rename is atomic and a record's target stays readable
    throughout, so a killed merge is finished by running it again. Refuses when two shards hold the
    same target (processes of runs with different WORLD_SIZE into one folder)."""
    from safetensors import safe_open

    out = Path(out_dir)
    if not (out / MANIFEST_NAME).is_file():
        raise FileNotFoundError(f"{out} holds no CLIP targets ({MANIFEST_NAME} missing): nothing to merge.")
    seen: dict[str, str] = {}
    for path in sorted(out.glob(SHARD_GLOB)):
        with safe_open(str(path), framework="pt") as handle:
            for key in handle.keys():  # noqa: SIM118 (safe_open handles are not mappings)
                if key in seen:
                    raise ValueError(
                        f"{key} is in both {seen[key]} and {path.name}: remove one of the two shards and "
                        "run the merge again."
                    )
                seen[key] = path.name
    rank_shards = sorted(out.glob("shard-rank*of*-*.safetensors"))
    index = _next_index(out, "shard-")
    for path in rank_shards:
        path.replace(out / f"shard-{index:05d}.safetensors")
        index += 1
    return {"files": len(rank_shards), "targets": len(seen)}


def _bar(total: int, enabled: bool, initial: int):
    from tqdm import tqdm

    return tqdm(total=total + initial, initial=initial, desc="clip targets", unit="img", disable=not enabled)


def main(argv: Sequence[str] | None = None) -> int:
    from .data.loader import DATASET_FORMATS

    p = argparse.ArgumentParser(
        prog="python -m training.build_targets",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--format", choices=DATASET_FORMATS, default="humanedit")
    p.add_argument("--data", default=None, help="local dataset (required unless --merge)")
    p.add_argument("--column-map", nargs="*", default=None)
    p.add_argument(
        "--clip", default=None, help="CLIPVisionModelWithProjection folder (IP-Adapter's image encoder)"
    )
    p.add_argument("--out", required=True, help="targets folder (resumes when it exists)")
    p.add_argument(
        "--merge",
        action="store_true",
        help="rename the per-process shards of a sharded run (RANK/WORLD_SIZE) into one sequence, then stop",
    )
    p.add_argument("--kinds", nargs="+", default=list(TARGET_KINDS), choices=TARGET_KINDS)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--shard-size", type=int, default=256)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--store-dtype", default="float16", choices=("float16", "bfloat16", "float32"))
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--quiet", action="store_true")
    add_verbose_flag(p)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    return run_command(lambda: _run(args), verbose=args.verbose)


def _run(args: argparse.Namespace) -> int:
    from .data.loader import load_records, parse_column_map

    if args.merge:
        merged = merge_rank_shards(args.out)
        print(
            f"build_targets: merged {merged['files']} per-process shards; {merged['targets']} targets in {args.out}"
        )
        return 0
    if not args.data or not args.clip:
        raise ValueError("--data and --clip are required (the dataset and the CLIP encoder), unless --merge.")
    shard = shard_from_env()
    watch_launcher()  # under torchrun: stop when the launcher is killed
    records = load_records(args.format, args.data, column_map=parse_column_map(args.column_map))
    if args.limit is not None:
        records = records[: args.limit]
    store = build_targets(
        records,
        args.clip,
        args.out,
        kinds=args.kinds,
        batch_size=args.batch_size,
        shard_size=args.shard_size,
        device=args.device,
        store_dtype=getattr(torch, args.store_dtype),
        progress=not args.quiet,
        shard=shard,
    )
    if shard.sharded:
        print(
            f"build_targets: process {shard.index} of {shard.count} done; when every process is, run "
            f"`python -m training.build_targets --merge --out {args.out}`."
        )
    print(
        f"build_targets: {', '.join(f'{k}: {len(store.ids(k))}' for k in store.kinds)} targets in {args.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
