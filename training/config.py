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
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from mindedit_core.mllm.families import family_names

CONFIGS_DIR = Path(__file__).resolve().parent / "configs"
VARIANTS = ("joint", "text_only", "head_only")


def option(default: Any = None, help: str = "", *, group: str, factory: Any = None) -> Any:
    """A `TrainConfig` field whose help text and group travel as field metadata (as peft's configs do):
    ``python -m training.train --help`` and `options_help` list them."""
    metadata = {"help": help, "group": group}
    if factory is not None:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass
class TrainConfig:
    """Every training option; each field's ``metadata["help"]`` says what it means (see `options_help`)."""

    # --- data ---
    model: str = option("", f"local VLM folder in transformers format ({family_names()})", group="data")
    data: str = option("", "the dataset: a folder or file, read as `data_format`", group="data")
    data_format: str = option(
        "humanedit", "dataset format: humanedit | complex_multistep | jsonl", group="data"
    )
    column_map: dict = option(
        help='which dataset column holds each role, e.g. {"source": "input_image", "target": "edited"}',
        group="data",
        factory=dict,
    )
    mask_polarity: str | None = option(
        None,
        "how masks encode the edit region (white_is_edit | black_is_edit | auto); null: the format's default",
        group="data",
    )
    split: str | None = option(
        None,
        "split manifest whose `subset` part is trained on; null: the dataset's known manifest "
        "(HumanEdit's is written on first use); all: every record",
        group="data",
    )
    subset: str = option("train", "which part of the split manifest to train on", group="data")
    refined: str | None = option(
        None,
        "refine_data JSONL cache with the refined-prompt targets (joint / text_only; jsonl data may carry "
        "its own)",
        group="data",
    )
    targets: str | None = option(
        None, "build_targets folder with the CLIP image-embedding targets (joint / head_only)", group="data"
    )
    use_mask: bool = option(True, "outline the mask in the image when a record has one", group="data")
    max_side: int | None = option(
        384,
        "longest image side (px) the MLLM reads, as the nodes' max_image_side (384: ~1,500 instead of "
        "~7,400 visual tokens on LLaVA-OneVision); null keeps the size",
        group="data",
    )
    limit: int | None = option(None, "train on the first N records only (debugging)", group="data")
    # --- objective ---
    variant: str = option(
        "joint",
        "what is trained: joint (answer CE + lambda * (1 - cos), the method) | text_only (CE only, no "
        "head) | head_only (1 - cos only; LoRA on layers 1..m)",
        group="objective",
    )
    lambda_embed: float = option(
        2.0, "weight of the embedding loss (1 - cos) against the answer's CE", group="objective"
    )
    head_kind: str = option(
        "plain",
        "vision head output: plain -> [1024] image_embeds, plus -> [257,1280] states",
        group="objective",
    )
    layer: int | None = option(
        None,
        "decoder layer m the head reads (1-based); null: the family's default, 3/4 of the depth",
        group="objective",
    )
    head_width: int | None = option(
        None, "inner width of the vision head; null: min(hidden size, 1024)", group="objective"
    )
    head_pool: str = option(
        "user_turn",
        "where the vision head pools: user_turn (image + instruction; the fixed system prompt left out) | "
        "prompt (every prompt position: the design before issue 23, which collapses on Qwen2.5-VL)",
        group="objective",
    )
    # --- adaptation ---
    finetune: str = option(
        "lora", "lora (adapter on the language model) | full (all language-model weights)", group="adaptation"
    )
    lora_r: int = option(16, "LoRA rank (adapter size)", group="adaptation")
    lora_alpha: int = option(32, "LoRA alpha (scale = alpha / r)", group="adaptation")
    lora_dropout: float = option(0.05, "dropout on the LoRA input", group="adaptation")
    train_vision_tower: bool = option(
        False, "also train the vision tower (full fine-tuning only)", group="adaptation"
    )
    precision: str = option("auto", "auto (bf16 on CUDA, else fp32) | bf16 | fp32", group="adaptation")
    gradient_checkpointing: bool = option(
        True, "recompute activations in backward to save memory", group="adaptation"
    )
    attn_implementation: str = option(
        "sdpa", "transformers attention: sdpa | eager | flash_attention_2", group="adaptation"
    )
    # --- optimisation ---
    epochs: int = option(3, "passes over the training records", group="optimisation")
    batch_size: int = option(2, "records per step and device", group="optimisation")
    grad_accum: int = option(4, "steps accumulated per optimizer step", group="optimisation")
    lr: float = option(1e-4, "learning rate (LoRA / language model)", group="optimisation")
    head_lr: float | None = option(
        None, "learning rate of the vision head; null: same as lr", group="optimisation"
    )
    weight_decay: float = option(0.0, "AdamW weight decay", group="optimisation")
    warmup_ratio: float = option(0.03, "share of the optimizer steps spent warming up", group="optimisation")
    head_warmup_steps: int = option(
        0,
        "optimizer steps at the start in which only the vision head learns; the LoRA / language model "
        "waits, then runs its own warm-up and schedule over the remaining steps (head first, then "
        "joint: see docs/TRAINING.md#learning-benchmark-does-v_insight-depend-on-the-edit); 0: off",
        group="optimisation",
    )
    scheduler: str = option(
        "cosine", "learning-rate schedule: cosine | linear | constant", group="optimisation"
    )
    max_grad_norm: float = option(1.0, "gradient clipping norm", group="optimisation")
    max_steps: int | None = option(
        None, "stop after this many optimizer steps (overrides epochs)", group="optimisation"
    )
    seed: int = option(0, "seed for shuffling, initialisation and dropout", group="optimisation")
    num_workers: int = option(
        0, "DataLoader worker processes (image decoding and tokenising)", group="optimisation"
    )
    # --- output ---
    output_dir: str = option("runs/mindedit", "where checkpoints, states and logs go", group="output")
    save_every: int = option(200, "optimizer steps between resumable training states", group="output")
    keep_states: int = option(2, "how many resumable states to keep", group="output")
    log_every: int = option(10, "optimizer steps between metric log lines", group="output")
    eval_every: int = option(
        0,
        "optimizer steps between held-out checks of the head (cos, spread of the outputs, cos to the mean "
        "target; a collapsed head is a loud warning); 0: only at the end",
        group="output",
    )
    eval_records: int = option(
        32, "held-out records (the split's test part) each head check reads; 0: no check", group="output"
    )
    resume: str = option(
        "auto", "auto (the latest state in output_dir) | never | <state folder>", group="output"
    )
    tensorboard: bool = option(
        True, "write TensorBoard logs when the tensorboard package is installed", group="output"
    )
    progress: bool = option(True, "show a progress bar", group="output")

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
            problems.append(f"model (a local folder of a supported VLM: {family_names()}) is required")
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
        if self.head_warmup_steps < 0:
            problems.append(f"head_warmup_steps must be >= 0, got {self.head_warmup_steps}")
        elif self.head_warmup_steps and not self.uses_head:
            problems.append(
                f"head_warmup_steps={self.head_warmup_steps} needs a vision head, and variant "
                f"{self.variant!r} trains none: set head_warmup_steps=0"
            )
        if self.batch_size < 1 or self.grad_accum < 1:
            problems.append("batch_size and grad_accum must be >= 1")
        if problems:
            raise ValueError("Invalid training config: " + "; ".join(problems) + ".")
        return self

    def check_paths(self) -> TrainConfig:
        """The named input files exist (a missing one is named with the command that writes it)."""
        problems = []
        if self.refined and not Path(self.refined).expanduser().is_file():
            problems.append(
                f"refined={self.refined} does not exist: write it with `python -m training.refine_data "
                f"--data {self.data or '<data>'} --out {self.refined} ...`, or fix the path"
            )
        if self.split and self.split not in ("all", "none") and not Path(self.split).expanduser().is_file():
            problems.append(
                f"split={self.split} does not exist: write it with `python -m training.data.split --format "
                f"{self.data_format} --data {self.data or '<data>'} --out {self.split}`, leave split unset "
                "for the dataset's own manifest, or pass split=all"
            )
        if problems:
            raise FileNotFoundError("Invalid training config: " + "; ".join(problems) + ".")
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


def _default_text(f) -> str:
    if f.default_factory is not MISSING:  # type: ignore[misc]
        return json.dumps(f.default_factory())
    return json.dumps(f.default)


def options_help() -> str:
    """Every `TrainConfig` option (the ``--set KEY=VALUE`` keys and config-file entries) with its
    meaning and default, grouped; values are JSON (``null``, ``true``, numbers) or plain strings."""
    lines = ["options (--set KEY=VALUE or a config file's KEY: VALUE; values are JSON or plain text):"]
    group = None
    for f in fields(TrainConfig):
        if f.metadata.get("group") != group:
            group = f.metadata.get("group")
            lines.append(f"\n  {group}:")
        lines.append(f"    {f.name} (default {_default_text(f)})")
        lines.append(f"        {f.metadata.get('help', '')}")
    return "\n".join(lines)
