"""The end of a training run: the MIND-Edit checkpoint the loader reads (``<out>/checkpoint``: LoRA +
head, variant recorded in ``mindedit.json``) and, after full fine-tuning, the whole model folder
(``<out>/model``), gathered on the main process even under ZeRO-3 / FSDP."""

from __future__ import annotations

import logging
from pathlib import Path

from .config import TrainConfig
from .input_dependence import collapse_warning
from .joint_model import JointModel, unwrap_peft

log = logging.getLogger(__name__)


def export_trained(
    accelerator,
    joint,
    processor,
    cfg: TrainConfig,
    out: Path,
    layer: int,
    *,
    global_step: int,
    final_metrics: dict | None,
    negative_embeds=None,
    data: dict | None = None,
    trained_ids: list[str] | None = None,
    head_check: dict | None = None,
    head_check_where: str = "",
) -> tuple[Path | None, Path | None]:
    """Write the checkpoint (and the full model folder); returns ``(checkpoint_dir, model_dir)``
    (both ``None`` on processes other than the main one). ``negative_embeds``: a plus head's blank-image
    embedding from the targets (`TargetStore.unconditional`), stored in the checkpoint. ``data``
    (`training.train_data.data_provenance`) and ``trained_ids`` (the records trained on) are recorded
    so evaluation can report them and refuse to test on training records. ``head_check``: the last
    input-dependence check of the head (`training.input_dependence`), recorded in the manifest with its
    collapse warning (``extra.collapse_warning``, None when the outputs depend on the input)."""
    from mindedit_core.checkpoint import base_model_info, save_mindedit_checkpoint

    full_state = accelerator.get_state_dict(joint)  # gathers shards under ZeRO-3 / FSDP
    if not accelerator.is_main_process:
        return None, None
    unwrapped: JointModel = accelerator.unwrap_model(joint)
    core = unwrap_peft(unwrapped.mllm)
    head = unwrapped.head
    if head is not None:
        head.load_state_dict({k[len("head.") :]: v for k, v in full_state.items() if k.startswith("head.")})
        head = head.float().cpu()
    info = base_model_info(core.config, name=Path(cfg.model).name)
    extra = {
        "train": {k: v for k, v in cfg.to_dict().items() if k not in ("column_map",)},
        "global_step": global_step,
        "final_metrics": final_metrics,
        "data": data,
        "trained_ids": trained_ids,
    }
    if head is not None:
        extra["head_check"] = {"on": head_check_where, **head_check} if head_check else None
        extra["collapse_warning"] = collapse_warning(head_check, where=head_check_where or "items")
    model_dir = None
    if cfg.finetune == "full":
        model_dir = out / "model"
        mllm_state = {k[len("mllm.") :]: v for k, v in full_state.items() if k.startswith("mllm.")}
        core.save_pretrained(str(model_dir), state_dict=mllm_state)
        processor.save_pretrained(str(model_dir))
        log.info("Full fine-tuned model written to %s (use it as the base model folder).", model_dir)
    if head is None and cfg.finetune == "full":
        return None, model_dir
    lora = unwrapped.mllm if cfg.finetune == "lora" else None
    checkpoint_dir = save_mindedit_checkpoint(
        out / "checkpoint",
        base=info,
        head=head,
        lora_model=lora,
        variant=cfg.variant,  # one spelling: text_only / head_only, as in mindedit_core
        layer=layer,
        extra=extra,
        overwrite=True,
        negative_embeds=negative_embeds if head is not None and head.config.kind == "plus" else None,
    )
    log.info("MIND-Edit checkpoint written to %s.", checkpoint_dir)
    return checkpoint_dir, model_dir
