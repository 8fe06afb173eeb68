"""Training and data tooling for MIND-Edit (never imported by the ComfyUI pack).

- `training.data`: the `EditRecord` type and dataset readers (HumanEdit, ComplexMultistepImageEditing,
  JSONL/folder), the HumanEdit split manifest tool;
- `training.refine_data`: refined-prompt targets from an OpenAI-compatible endpoint or a local MLLM;
- `training.build_targets`: CLIP ViT-H/14 target embeddings for the vision head;
- `training.train`: joint training (CE + lambda * (1 - cos)) and the ablation presets.

Each is a module runnable with ``python -m``; see docs/TRAINING.md.
"""
