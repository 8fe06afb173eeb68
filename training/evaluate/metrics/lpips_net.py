"""LPIPS (Zhang et al. 2018, v0.1) written in plain torch, with weights from local files only.

Why our own network: the `lpips` package builds its backbone with torchvision and, unless told
otherwise, downloads ImageNet weights on first use. That cannot work offline and hides where the
weights came from. Here the backbone (AlexNet by default, VGG16 optional) is an `nn.Sequential`
laid out exactly like torchvision's ``features`` so that a torchvision state dict file loads into it
unchanged, and the five linear heads are read from the `lpips` package's shipped ``weights/v0.1``
files (or a file the user names). A missing file is a clear error, never a download.

The formula: inputs in [-1, 1] are shifted/scaled by LPIPS's fixed constants, features are taken
after the ReLUs of five stages, unit-normalised along channels, their squared difference is weighted
by the 1x1 linear head of that stage, averaged over space, and the five values summed.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn

from .images import as_batch, check_pair

log = logging.getLogger(__name__)

BACKBONE_ENV = "MINDEDIT_LPIPS_BACKBONE"
HEADS_ENV = "MINDEDIT_LPIPS_HEADS"
LPIPS_VERSION = "0.1"
EPS = 1e-10


@dataclass(frozen=True)
class BackboneSpec:
    """A torchvision ``features`` layout: the layer list and the indices whose outputs LPIPS taps."""

    name: str
    layers: tuple[tuple, ...]  # ("conv", cin, cout, kernel, stride, pad) | ("relu",) | ("pool", k, s)
    taps: tuple[int, ...]
    channels: tuple[int, ...]
    torchvision_file: str  # the file name torchvision caches it under (torch hub checkpoints)


def _vgg16_layers() -> tuple[tuple, ...]:
    layers: list[tuple] = []
    cin = 3
    for item in (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512):
        if item == "M":
            layers.append(("pool", 2, 2))
        else:
            layers += [("conv", cin, item, 3, 1, 1), ("relu",)]
            cin = item
    return tuple(layers)


BACKBONES: dict[str, BackboneSpec] = {
    "alex": BackboneSpec(
        name="alex",
        layers=(
            ("conv", 3, 64, 11, 4, 2),
            ("relu",),
            ("pool", 3, 2),
            ("conv", 64, 192, 5, 1, 2),
            ("relu",),
            ("pool", 3, 2),
            ("conv", 192, 384, 3, 1, 1),
            ("relu",),
            ("conv", 384, 256, 3, 1, 1),
            ("relu",),
            ("conv", 256, 256, 3, 1, 1),
            ("relu",),
        ),
        taps=(1, 4, 7, 9, 11),
        channels=(64, 192, 384, 256, 256),
        torchvision_file="alexnet-owt-7be5be79.pth",
    ),
    "vgg": BackboneSpec(
        name="vgg",
        layers=_vgg16_layers(),
        taps=(3, 8, 15, 22, 29),
        channels=(64, 128, 256, 512, 512),
        torchvision_file="vgg16-397923af.pth",
    ),
}


class LPIPSWeightsError(FileNotFoundError):
    """LPIPS weights are not available locally; the message says where we looked and what to do."""


def _build_features(spec: BackboneSpec) -> nn.Sequential:
    modules: list[nn.Module] = []
    for layer in spec.layers:
        if layer[0] == "conv":
            _, cin, cout, kernel, stride, pad = layer
            modules.append(nn.Conv2d(cin, cout, kernel, stride=stride, padding=pad))
        elif layer[0] == "relu":
            modules.append(nn.ReLU(inplace=False))
        else:
            modules.append(nn.MaxPool2d(kernel_size=layer[1], stride=layer[2]))
    return nn.Sequential(*modules)


class LPIPS(nn.Module):
    """The LPIPS distance. Build it with `load_lpips`, or directly and load state dicts yourself."""

    def __init__(self, backbone: str = "alex") -> None:
        super().__init__()
        if backbone not in BACKBONES:
            raise ValueError(f"Unknown LPIPS backbone {backbone!r}: expected one of {sorted(BACKBONES)}.")
        self.spec = BACKBONES[backbone]
        self.features = _build_features(self.spec)
        self.heads = nn.ModuleList(nn.Conv2d(c, 1, 1, bias=False) for c in self.spec.channels)
        self.register_buffer("shift", torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1))
        self.requires_grad_(False)
        self.eval()

    def stage_features(self, images: torch.Tensor) -> list[torch.Tensor]:
        """Backbone outputs at the five tapped ReLUs, for inputs in [-1, 1]."""
        hidden = (images - self.shift) / self.scale
        taps, outputs = set(self.spec.taps), []
        for index, layer in enumerate(self.features):
            hidden = layer(hidden)
            if index in taps:
                outputs.append(hidden)
            if index >= self.spec.taps[-1]:
                break
        return outputs

    @torch.no_grad()
    def forward(self, result: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """`[B]` distances for images in [-1, 1] (`[B,3,H,W]`)."""
        total = torch.zeros(result.shape[0], dtype=result.dtype, device=result.device)
        for head, feat_a, feat_b in zip(self.heads, self.stage_features(result), self.stage_features(target)):
            unit_a = feat_a / (feat_a.pow(2).sum(dim=1, keepdim=True).sqrt() + EPS)
            unit_b = feat_b / (feat_b.pow(2).sum(dim=1, keepdim=True).sqrt() + EPS)
            total = total + head((unit_a - unit_b) ** 2).mean(dim=(1, 2, 3))
        return total

    def distance(self, result01: torch.Tensor, target01: torch.Tensor, batch_size: int = 8) -> list[float]:
        """Per-image LPIPS for `[B,3,H,W]` (or `[3,H,W]`) tensors in [0, 1] (mapped to [-1, 1])."""
        check_pair(result01, target01)
        result_b, target_b = as_batch(result01), as_batch(target01)
        device = self.shift.device
        values: list[float] = []
        for start in range(0, result_b.shape[0], batch_size):
            chunk_a = result_b[start : start + batch_size].to(device, torch.float32) * 2 - 1
            chunk_b = target_b[start : start + batch_size].to(device, torch.float32) * 2 - 1
            values += [float(v) for v in self(chunk_a, chunk_b)]
        return values

    def load_backbone_state(self, state: dict[str, torch.Tensor], source: str = "state dict") -> None:
        """Load torchvision-layout weights (``features.N.weight`` or ``N.weight``); extra keys ignored."""
        wanted = self.features.state_dict()
        picked: dict[str, torch.Tensor] = {}
        for key in wanted:
            for candidate in (f"features.{key}", key):
                if candidate in state:
                    picked[key] = state[candidate]
                    break
        missing = sorted(set(wanted) - set(picked))
        if missing:
            raise ValueError(
                f"LPIPS {self.spec.name} backbone weights from {source} lack {len(missing)} tensors "
                f"(e.g. 'features.{missing[0]}'): expected a torchvision {self.spec.name} state dict "
                f"such as {self.spec.torchvision_file}."
            )
        for key, tensor in picked.items():
            if tuple(tensor.shape) != tuple(wanted[key].shape):
                raise ValueError(
                    f"LPIPS backbone tensor 'features.{key}' in {source} has shape {list(tensor.shape)}, "
                    f"expected {list(wanted[key].shape)}: is it a {self.spec.name} checkpoint?"
                )
        self.features.load_state_dict(picked)

    def load_heads_state(self, state: dict[str, torch.Tensor], source: str = "state dict") -> None:
        """Load the linear heads from an lpips-package file (``lin{i}.model.1.weight``)."""
        for index, head in enumerate(self.heads):
            key = next(
                (k for k in (f"lin{index}.model.1.weight", f"lin{index}.model.0.weight") if k in state), None
            )
            if key is None:
                raise ValueError(
                    f"LPIPS head file {source} has no 'lin{index}.model.1.weight': expected the lpips "
                    f"package's weights/v{LPIPS_VERSION}/{self.spec.name}.pth."
                )
            head.weight.copy_(state[key].reshape(head.weight.shape))


def _torch_load(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    loaded = torch.load(str(path), map_location="cpu", weights_only=True)
    return loaded.get("state_dict", loaded) if isinstance(loaded, dict) else loaded


def packaged_heads_path(backbone: str) -> Path | None:
    """The `lpips` package's shipped linear-head file, found without importing the package."""
    spec = importlib.util.find_spec("lpips")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = (
        Path(next(iter(spec.submodule_search_locations)))
        / "weights"
        / f"v{LPIPS_VERSION}"
        / f"{backbone}.pth"
    )
    return path if path.is_file() else None


def torch_hub_cache_file(backbone: str) -> Path:
    """Where torchvision would have cached the backbone (`$TORCH_HOME/hub/checkpoints`)."""
    torch_home = os.environ.get("TORCH_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "torch"
    )
    return Path(torch_home) / "hub" / "checkpoints" / BACKBONES[backbone].torchvision_file


def resolve_backbone_file(backbone: str, explicit: str | Path | None) -> Path:
    """The backbone weight file: the explicit path, then $MINDEDIT_LPIPS_BACKBONE, then the torch cache."""
    candidates: list[tuple[str, Path]] = []
    if explicit:
        candidates.append(("given path", Path(explicit)))
    elif os.environ.get(BACKBONE_ENV):
        candidates.append((f"${BACKBONE_ENV}", Path(os.environ[BACKBONE_ENV])))
    else:
        candidates.append(("torch hub cache", torch_hub_cache_file(backbone)))
    for _, path in candidates:
        if path.is_file():
            return path
    tried = "; ".join(f"{label}: {path}" for label, path in candidates)
    raise LPIPSWeightsError(
        f"LPIPS needs the ImageNet {backbone} backbone weights and none were found ({tried}). "
        f"Nothing is downloaded automatically. Copy torchvision's {BACKBONES[backbone].torchvision_file} "
        f"(a torchvision `{'alexnet' if backbone == 'alex' else 'vgg16'}` state dict) to this machine and pass "
        f"--lpips-backbone PATH (or set ${BACKBONE_ENV}), or put it in {torch_hub_cache_file(backbone).parent}."
    )


def resolve_heads_file(backbone: str, explicit: str | Path | None) -> Path:
    """The linear-head file: the explicit path, then $MINDEDIT_LPIPS_HEADS, then the lpips package's copy."""
    path = Path(explicit) if explicit else None
    if path is None and os.environ.get(HEADS_ENV):
        path = Path(os.environ[HEADS_ENV])
    if path is None:
        path = packaged_heads_path(backbone)
    if path is None or not path.is_file():
        raise LPIPSWeightsError(
            f"LPIPS linear heads for {backbone} not found ({path or 'lpips package not installed'}). "
            f"Install the `lpips` package (it ships weights/v{LPIPS_VERSION}/{backbone}.pth) or pass "
            f"--lpips-heads PATH (or set ${HEADS_ENV})."
        )
    return path


def load_lpips(
    backbone: str = "alex",
    *,
    backbone_file: str | Path | None = None,
    heads_file: str | Path | None = None,
    device: str | torch.device = "cpu",
) -> LPIPS:
    """An LPIPS network with weights from local files only (see `resolve_backbone_file`)."""
    model = LPIPS(backbone)
    backbone_path = resolve_backbone_file(backbone, backbone_file)
    heads_path = resolve_heads_file(backbone, heads_file)
    model.load_backbone_state(_torch_load(backbone_path), source=str(backbone_path))
    model.load_heads_state(_torch_load(heads_path), source=str(heads_path))
    model.backbone_file = str(backbone_path)  # recorded in the report
    model.heads_file = str(heads_path)
    model.backbone_sha256, model.backbone_verified = check_backbone_file(backbone, backbone_path)
    return model.to(device)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def known_sha256_prefix(backbone: str) -> str:
    """torchvision names its weight files ``<name>-<first 8 hex digits of the file's sha256>.pth``
    (what ``torch.hub`` checks with ``check_hash=True``): ``alexnet-owt-7be5be79.pth`` -> 7be5be79."""
    return Path(BACKBONES[backbone].torchvision_file).stem.rsplit("-", 1)[1]


def check_backbone_file(backbone: str, path: Path) -> tuple[str, bool]:
    """``(sha256, verified)``: whether ``path`` is torchvision's own file. Any other file (random
    weights, a re-saved or converted copy) gives LPIPS values not comparable with published ones: it
    is used, with a warning, and the report's conventions say so."""
    sha = file_sha256(path)
    verified = sha.startswith(known_sha256_prefix(backbone))
    if not verified:
        log.warning(
            "LPIPS backbone %s is not torchvision's %s (its sha256 %s... does not start with %s): LPIPS "
            "values from it are not comparable with published ones. Use the original file "
            "(torchvision.models.%s(weights='DEFAULT') downloads it into the torch hub cache).",
            path,
            BACKBONES[backbone].torchvision_file,
            sha[:12],
            known_sha256_prefix(backbone),
            "alexnet" if backbone == "alex" else "vgg16",
        )
    return sha, verified
