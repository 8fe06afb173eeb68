"""The MIND-Edit checkpoint folder: the manifest (`manifest`) and the LoRA adapter (`lora`).

Layout::

    <checkpoint>/
      mindedit.json              manifest (see `mindedit_core.checkpoint.manifest`)
      vision_head.safetensors    the head F_v (optional: absent for text_only variants)
      lora/                      peft LoRA adapter in peft's own save format (optional)
      negative_embeds.safetensors  a plus head's blank-image negative (see `negative`; optional)
"""

from .lora import (
    LoraNotLoadedError,
    _read_adapter_file,
    apply_lora,
    lora_target_regex,
    verify_lora_loaded,
)
from .manifest import (
    CHECKPOINT_FORMAT,
    CHECKPOINT_FORMAT_VERSION,
    HEAD_NAME,
    LORA_DIR,
    MANIFEST_NAME,
    VARIANTS,
    BaseModelInfo,
    BaseModelMismatchError,
    CheckpointError,
    MindEditCheckpoint,
    base_model_info,
    check_base_model,
    family_label,
    load_head,
    normalize_variant,
    read_checkpoint,
    save_mindedit_checkpoint,
)
from .negative import NEGATIVE_NAME, load_negative_embeds, missing_negative_note, save_negative_embeds
