"""Training and data tooling for MIND-Edit (never imported by the ComfyUI pack).

- `training.data`: the `EditRecord` type and dataset readers (HumanEdit, ComplexMultistepImageEditing,
  JSONL/folder), the split manifest tool for every format (`python -m training.data.split`);
- `training.refine_data`: refined-prompt targets from an OpenAI-compatible endpoint or a local MLLM;
- `training.build_targets`: CLIP ViT-H/14 target embeddings for the vision head;
- `training.train`: joint training (CE + lambda * (1 - cos)) and the ablation presets; around its
  loop: `schedule` (data order, lr), `metrics_log`, `state` (resumable states), `export` (the
  checkpoint), `output_lock` (one run per output folder);
- `training.evaluate`: batch editing, metrics, reports, and Table 2 in one command (`table2`).

Each is a module runnable with ``python -m``; see docs/TRAINING.md.
"""
