"""Opt-in downloader for the real models, into ComfyUI's folders (never run at import or in tests).

    python -m devkit.download_models --what llava-0.5b ipadapter-plain --models-dir /path/to/ComfyUI/models
    python -m devkit.download_models --what qwen2.5-vl-3b --models-dir ...        # any supported VLM family
    python -m devkit.download_models --what all --models-dir ... --dry-run    # print the plan only

Uses ``huggingface_hub`` (``snapshot_download`` for model folders, ``hf_hub_download`` for single
files). Where each thing lands, and how big it is, is listed in docs/MODELS.md and by ``--dry-run``.
A MIND-Edit checkpoint (``models/mindedit/<name>/``) is not downloadable: train one with
``python -m training.train`` (see the README).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

from mindedit_core.mllm.families import releases


@dataclass(frozen=True)
class Download:
    """One thing to fetch: a whole repo folder (``files`` empty) or single files of a repo."""

    key: str
    repo_id: str
    target: Path  # a folder (repo snapshot, or the folder the files go into)
    approx_size: str
    description: str
    files: tuple[str, ...] = ()  # repo paths; each lands in `target` under its base name
    subfolder: str | None = None  # snapshot only this repo folder (its contents land in `target`)
    allow_patterns: tuple[str, ...] = field(default=())

    def destinations(self) -> list[Path]:
        if self.files:
            return [self.target / Path(f).name for f in self.files]
        return [self.target]


# A Hugging Face VLM folder: configs, weights, tokenizer (json/txt/model) and the chat template.
VLM_PATTERNS = ("*.json", "*.safetensors", "*.jinja", "*.txt", "*.model")

# The VLMs MIND-Edit can sit on: every release of every family (`mindedit_core.mllm.families`, which
# also feeds docs/MODELS.md's table): key -> (repo, size, description).
VLMS = {
    release.key: (release.repo, release.download_size, family.release_description(release))
    for family, release in releases()
}


def catalogue(models_dir: Path) -> dict[str, Download]:
    """Every downloadable item for a ComfyUI ``models/`` folder."""
    llm = models_dir / "LLM"
    ipadapter = models_dir / "ipadapter"
    vlms = {
        key: Download(
            key=key,
            repo_id=repo,
            target=llm / repo.split("/")[-1],
            approx_size=size,
            description=description,
            allow_patterns=VLM_PATTERNS,
        )
        for key, (repo, size, description) in VLMS.items()
    }
    return {
        **vlms,
        "ipadapter-plain": Download(
            key="ipadapter-plain",
            repo_id="h94/IP-Adapter",
            target=ipadapter,
            approx_size="45 MB",
            description="IP-Adapter SD1.5 (plain: image_embeds [B,1024]); pairs with a 'plain' MIND-Edit head",
            files=("models/ip-adapter_sd15.safetensors",),
        ),
        "ipadapter-plus": Download(
            key="ipadapter-plus",
            repo_id="h94/IP-Adapter",
            target=ipadapter,
            approx_size="98 MB",
            description="IP-Adapter Plus SD1.5 (penultimate states [B,257,1280]); pairs with a 'plus' head",
            files=("models/ip-adapter-plus_sd15.safetensors",),
        ),
        "ipadapter-sdxl-plain": Download(
            key="ipadapter-sdxl-plain",
            repo_id="h94/IP-Adapter",
            target=ipadapter,
            approx_size="698 MB",
            description="IP-Adapter SDXL for ViT-H (plain: image_embeds [B,1024]); SDXL checkpoints, 'plain' head",
            files=("sdxl_models/ip-adapter_sdxl_vit-h.safetensors",),
        ),
        "ipadapter-sdxl-plus": Download(
            key="ipadapter-sdxl-plus",
            repo_id="h94/IP-Adapter",
            target=ipadapter,
            approx_size="848 MB",
            description="IP-Adapter Plus SDXL for ViT-H (states [B,257,1280]); SDXL checkpoints, 'plus' head",
            files=("sdxl_models/ip-adapter-plus_sdxl_vit-h.safetensors",),
        ),
        "vit-h": Download(
            key="vit-h",
            repo_id="h94/IP-Adapter",
            target=models_dir / "clip_vision" / "IP-Adapter-image_encoder-ViT-H-14",
            approx_size="2.5 GB",
            description="OpenCLIP ViT-H/14 image encoder (transformers folder): training targets only",
            subfolder="models/image_encoder",
            allow_patterns=("models/image_encoder/config.json", "models/image_encoder/model.safetensors"),
        ),
    }


WHAT_CHOICES = (
    *VLMS,
    "ipadapter-plain",
    "ipadapter-plus",
    "ipadapter-sdxl-plain",
    "ipadapter-sdxl-plus",
    "vit-h",
)


def plan(what: list[str], models_dir: Path) -> list[Download]:
    """The downloads for ``what`` (``all`` = everything), in the order given, without duplicates."""
    items = catalogue(models_dir)
    keys: list[str] = []
    for key in what:
        for expanded in WHAT_CHOICES if key == "all" else (key,):
            if expanded not in items:
                raise ValueError(f"unknown item {expanded!r}; choose from {', '.join(WHAT_CHOICES)} or all")
            if expanded not in keys:
                keys.append(expanded)
    return [items[k] for k in keys]


def describe(item: Download) -> str:
    source = f"{item.repo_id}" + (f":{','.join(item.files)}" if item.files else "")
    if item.subfolder:
        source += f":{item.subfolder}/"
    targets = ", ".join(str(p) for p in item.destinations())
    return f"{item.key:<16} {item.approx_size:>7}  {source}\n{'':<16} -> {targets}\n{'':<16}    {item.description}"


def fetch(item: Download) -> list[Path]:
    """Download one item (resumable; files already complete are skipped by huggingface_hub)."""
    try:
        from huggingface_hub import hf_hub_download, snapshot_download
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise SystemExit("huggingface_hub is not installed: `pip install huggingface_hub`.") from exc
    item.target.mkdir(parents=True, exist_ok=True)
    if item.files:
        out = []
        for repo_path in item.files:
            cached = Path(hf_hub_download(item.repo_id, repo_path))
            dest = item.target / Path(repo_path).name
            if not dest.exists():
                shutil.copy2(cached, dest)
            out.append(dest)
        return out
    if item.subfolder:
        staging = item.target.parent / f".{item.target.name}.download"
        snapshot_download(item.repo_id, allow_patterns=list(item.allow_patterns), local_dir=staging)
        for path in (staging / item.subfolder).iterdir():
            shutil.move(str(path), item.target / path.name)
        shutil.rmtree(staging, ignore_errors=True)
        return [item.target]
    snapshot_download(item.repo_id, allow_patterns=list(item.allow_patterns) or None, local_dir=item.target)
    return [item.target]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m devkit.download_models",
        description="Download the real models MIND-Edit uses into a ComfyUI models/ folder (opt-in).",
    )
    parser.add_argument(
        "--what",
        nargs="+",
        required=True,
        choices=(*WHAT_CHOICES, "all"),
        help="what to fetch (several allowed)",
    )
    parser.add_argument("--models-dir", required=True, type=Path, help="ComfyUI's models/ folder")
    parser.add_argument(
        "--dry-run", action="store_true", help="print what would be downloaded where, and stop"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    models_dir = args.models_dir.expanduser().resolve()
    if not args.dry_run and not models_dir.is_dir():
        print(
            f"{models_dir} does not exist: pass ComfyUI's models/ folder (it holds checkpoints/, loras/, ...).",
            file=sys.stderr,
        )
        return 2
    items = plan(args.what, models_dir)
    print(f"Plan ({len(items)} item(s)) into {models_dir}:")
    for item in items:
        print(describe(item))
    if args.dry_run:
        return 0
    for item in items:
        print(f"\ndownloading {item.key} ...", flush=True)
        for path in fetch(item):
            print(f"  ok: {path}")
    print("\nDone. Restart ComfyUI or press R in the browser to refresh the dropdowns.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
