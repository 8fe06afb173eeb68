"""Training configuration: one dataclass, YAML/JSON preset files, command-line overrides.

Resolution order (later wins): the dataclass defaults, the ``--config`` file (which may name a
``base:`` file it extends), ``--set key=value`` overrides, then explicit flags (``--model``,
``--data``, ...). The resolved config is written to ``<output_dir>/train_config.json``.

Variants (what is trained, the method's ablations):

- ``joint`` (#6, the method): ``CE(answer) + lambda * (1 - cos)``, LoRA + vision head together;
- ``text_only``: CE only, no head (the independently trained instruction model of #3/#5);
- ``head_only``: ``1 - cos`` only (the independently trained v_insight model of #3/#4); LoRA only on
  layers 1..m, since later layers cannot affect the head.

#1 and #2 are the joint model with one output switched off at inference; #4 and #5 pair a joint
checkpoint with an independent one (see docs/TRAINING.md).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

CONFIGS_DIR = Path(__file__).resolve().parent / "configs"
VARIANTS = ("joint", "text_only", "head_only")


@dataclass
class TrainConfig:
    # --- data ---
    model: str = ""  # local LLaVA-OneVision folder (transformers format)
    data: str = ""  # dataset path
    data_format: str = "humanedit"  # humanedit | complex_multistep | jsonl
    column_map: dict = field(default_factory=dict)
    mask_polarity: str | None = None  # None: the format's default
    # Split manifest whose `subset` part is trained on; None: the dataset's known manifest
    # (training.data.split.default_manifest_path; HumanEdit's is written on first use); "all": every record.
    split: str | None = None
    subset: str = "train"
    refined: str | None = None  # refine_data JSONL cache (joint / text_only; jsonl data may carry its own)
    targets: str | None = None  # build_targets folder (needed by joint / head_only)
    use_mask: bool = True  # outline the mask in the image when a record has one
    max_side: int | None = 384  # input resize (longer side, px): ~1,500 instead of ~7,400 visual tokens
    limit: int | None = None  # only the first N training records (debugging)
    # --- objective ---
    variant: str = "joint"
    lambda_embed: float = 2.0
    head_kind: str = "plain"  # plain -> [1024] image_embeds, plus -> [257,1280]
    layer: int | None = None  # None: 3/4 of the depth (21 of 28 for the 7B model)
    head_width: int | None = None
    # Where the head pools: "user_turn" (image + instruction; the fixed system prompt left out) or
    # "prompt" (every prompt position, the design before the learning benchmark; it collapses there).
    head_pool: str = "user_turn"
    # --- adaptation ---
    finetune: str = "lora"  # lora | full
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    train_vision_tower: bool = False  # full fine-tuning only
    precision: str = "auto"  # auto (bf16 on CUDA, else fp32) | bf16 | fp32
    gradient_checkpointing: bool = True
    attn_implementation: str = "sdpa"
    # --- optimisation ---
    epochs: int = 3
    batch_size: int = 2  # per device
    grad_accum: int = 4
    lr: float = 1e-4
    head_lr: float | None = None  # None: same as lr
    weight_decay: float = 0.0
    warmup_ratio: float = 0.03
    scheduler: str = "cosine"  # cosine | linear | constant
    max_grad_norm: float = 1.0
    max_steps: int | None = None  # optimizer steps; overrides epochs
    seed: int = 0
    num_workers: int = 0
    # --- output ---
    output_dir: str = "runs/mindedit"
    save_every: int = 200  # optimizer steps between resumable states
    keep_states: int = 2
    log_every: int = 10
    # Held-out check of the head (cos, and input dependence: spread of the outputs, cos to the mean
    # target) on up to eval_records records of the split's test part, every eval_every steps (0: only at
    # the start and the end). A collapsed head (one output for every input) is a loud warning.
    eval_every: int = 0
    eval_records: int = 32
    resume: str = "auto"  # auto (latest state in output_dir) | never | <state folder>
    tensorboard: bool = True  # when the tensorboard package is installed
    progress: bool = True

    def validate(self) -> TrainConfig:
        problems = []
        if self.variant not in VARIANTS:
            problems.append(f"variant must be one of {VARIANTS}, got {self.variant!r}")
        if self.finetune not in ("lora", "full"):
            problems.append(f"finetune must be 'lora' or 'full', got {self.finetune!r}")
        if self.precision not in ("auto", "bf16", "fp32"):
            problems.append(f"precision must be auto, bf16 or fp32, got {self.precision!r}")
        if self.head_kind not in ("plain", "plus"):
            problems.append(f"head_kind must be 'plain' or 'plus', got {self.head_kind!r}")
        if self.head_pool not in ("user_turn", "prompt"):
            problems.append(f"head_pool must be 'user_turn' or 'prompt', got {self.head_pool!r}")
        if self.scheduler not in ("cosine", "linear", "constant"):
            problems.append(f"scheduler must be cosine, linear or constant, got {self.scheduler!r}")
        if not self.model:
            problems.append("model (a local LLaVA-OneVision folder) is required")
        if not self.data:
            problems.append("data (the dataset path) is required")
        if self.uses_text and not self.refined and self.data_format != "jsonl":
            problems.append(
                f"variant {self.variant!r} trains the text answer: pass refined= (the JSONL from "
                "`python -m training.refine_data`)"
            )
        if self.uses_head and not self.targets:
            problems.append(
                f"variant {self.variant!r} trains the vision head: pass targets= (the folder from "
                "`python -m training.build_targets`)"
            )
        if self.batch_size < 1 or self.grad_accum < 1:
            problems.append("batch_size and grad_accum must be >= 1")
        if problems:
            raise ValueError("Invalid training config: " + "; ".join(problems) + ".")
        return self

    @property
    def uses_text(self) -> bool:
        return self.variant in ("joint", "text_only")

    @property
    def uses_head(self) -> bool:
        return self.variant in ("joint", "head_only")

    def to_dict(self) -> dict:
        return asdict(self)


def _coerce(raw: str) -> Any:
    """Parse an override value as JSON when it looks like JSON, else keep the string."""
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def read_config_file(path: str | Path, _seen: tuple = ()) -> dict:
    """A YAML or JSON config as a dict; ``base:`` (relative to the file, or a preset name) is merged first."""
    path = Path(path)
    if not path.is_file() and (CONFIGS_DIR / f"{path}.yaml").is_file():
        path = CONFIGS_DIR / f"{path}.yaml"  # a preset name such as "paper"
    if not path.is_file():
        presets = ", ".join(sorted(p.stem for p in CONFIGS_DIR.glob("*.yaml")))
        raise FileNotFoundError(f"Config {path} not found (shipped presets: {presets}).")
    if path.resolve() in _seen:
        raise ValueError(f"Config {path} extends itself (base: cycle).")
    text = path.read_text(encoding="utf-8")
    if path.suffix in (".yaml", ".yml"):
        import yaml

        data = yaml.safe_load(text) or {}
    else:
        data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError(f"{path} must hold a mapping of option: value.")
    base = data.pop("base", None)
    if base:
        base_path = Path(base)
        if not base_path.is_absolute() and (path.parent / base_path).is_file():
            base_path = path.parent / base_path
        data = {**read_config_file(base_path, _seen + (path.resolve(),)), **data}
    return data


def build_config(
    config_file: str | Path | None = None, overrides: list[str] | None = None, **explicit: Any
) -> TrainConfig:
    """Defaults <- config file <- ``key=value`` overrides <- explicit keyword values (None ignored)."""
    values: dict[str, Any] = {}
    if config_file:
        values.update(read_config_file(config_file))
    for item in overrides or ():
        key, sep, raw = item.partition("=")
        if not sep:
            raise ValueError(f"Bad override {item!r}: expected key=value.")
        values[key.strip()] = _coerce(raw.strip())
    values.update({k: v for k, v in explicit.items() if v is not None})
    known = {f.name for f in fields(TrainConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"Unknown training options {unknown}. Known options: {sorted(known)}.")
    return TrainConfig(**values)
