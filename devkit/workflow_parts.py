"""What the shipped workflows share: default models and their download metadata, node titles, notes.

`devkit.build_workflows` assembles the graphs from these; the demo and the tests address nodes by
the titles here (``devkit.workflow_api.set_widget``).
"""

from __future__ import annotations

from pathlib import Path

from devkit.download_models import catalogue

MASKED_WORKFLOW = "mindedit_masked_edit"
EDIT_WORKFLOW = "mindedit_edit"
REFINE_ONLY_WORKFLOW = "mindedit_refine_only_edit"

# Defaults a user sees; the demo and tests replace them through devkit.workflow_api.set_widget.
DEFAULT_CHECKPOINT = "v1-5-pruned-emaonly-fp16.safetensors"
DEFAULT_LLM_FOLDER = catalogue(Path("models"))["llava-0.5b"].target.name  # the MIND-Edit checkpoints' base
# The refine-only workflow runs zero-shot: an instruction-tuned VLM is the better default there.
REFINE_ONLY_LLM_KEY = "qwen2.5-vl-3b"
REFINE_ONLY_LLM_FOLDER = catalogue(Path("models"))[REFINE_ONLY_LLM_KEY].target.name
DEFAULT_MINDEDIT_CHECKPOINT = "mindedit-llava-0.5b-plain"
NO_MINDEDIT_CHECKPOINT = "none"
DEFAULT_IPADAPTER = "ip-adapter_sd15.safetensors"
SAMPLE_SOURCE = "sample_source.png"
SAMPLE_MASK = "sample_mask.png"
# Default instructions, written for the bundled sample (a red ball on a table, the mask over the ball).
MASKED_INSTRUCTION = "turn the ball into a glass globe"
EDIT_INSTRUCTION = "make the sky look like a warm sunset"
REFINE_ONLY_INSTRUCTION = MASKED_INSTRUCTION

# Model files the frontend can name and download (its "missing models" dialog reads a loader
# node's properties.models: name = the widget value, directory = the models/ folder the node reads).
HF = "https://huggingface.co"
CHECKPOINT_MODEL = {
    "name": DEFAULT_CHECKPOINT,
    "url": f"{HF}/Comfy-Org/stable-diffusion-v1-5-archive/resolve/main/{DEFAULT_CHECKPOINT}",
    "directory": "checkpoints",
}


def _hub_file(key: str, directory: str) -> dict[str, str]:
    """properties.models for a single-file item of the download helper's catalogue."""
    item = catalogue(Path("models"))[key]
    (repo_path,) = item.files
    return {
        "name": Path(repo_path).name,
        "url": f"{HF}/{item.repo_id}/resolve/main/{repo_path}",
        "directory": directory,
    }


IPADAPTER_MODEL = _hub_file("ipadapter-plain", "ipadapter")

# The IP-Adapter node family (nodes/ipadapter_nodes.py): type names and widget layout.
IPADAPTER_LOADER = "MindEditIPAdapterLoader"
IPADAPTER_FILE_INPUT = "ipadapter_file"
IPADAPTER_TYPE = "MINDEDIT_IPADAPTER"
IPADAPTER_APPLY = "MindEditApplyIPAdapter"
IPADAPTER_APPLY_WIDGETS = [0.8, 0.0, 1.0, "all"]  # weight, start_at, end_at, batch_mapping
MLLM_LOADER = "MindEditMLLMLoader"
MLLM_LOADER_OPTIONS = ["auto", "none", "sdpa"]  # dtype, quantization, attention

# Node titles the demo and tests address.
SOURCE_TITLE = "Load Image (source; paint a mask here)"
MASK_TITLE = "Load Image (mask file)"
REFINE_TITLE = "MIND-Edit"
POSITIVE_PREVIEW_TITLE = "Refined positive prompt"
NEGATIVE_PREVIEW_TITLE = "Refined negative prompt"
STATUS_PREVIEW_TITLE = "MIND-Edit status"

# Group titles, left to right.
GROUP_MODELS, GROUP_INPUT, GROUP_MINDEDIT, GROUP_EDIT, GROUP_OUTPUT = (
    "Models",
    "Source and mask",
    "MIND-Edit",
    "Edit (SD1.5)",
    "Output",
)

NOTE_COLOR, NOTE_BG = "#432", "#653"

DOWNLOAD_HELPER = "python -m devkit.download_models"

MODELS_NOTE = f"""\
MIND-Edit: which file goes where (ComfyUI/models/...)

checkpoints/   any Stable Diffusion 1.5 checkpoint, e.g. {DEFAULT_CHECKPOINT}
LLM/           a VLM folder in Hugging Face layout, e.g. LLM/{DEFAULT_LLM_FOLDER}/ (config.json + weights)
mindedit/      a MIND-Edit checkpoint folder trained for that VLM (mindedit.json, vision_head.safetensors, lora/)
ipadapter/     {DEFAULT_IPADAPTER} (plain head) or ip-adapter-plus_sd15.safetensors (plus head)

The checkpoint and IP-Adapter loaders name their download (ComfyUI offers it when the file is missing).
Folders (the VLM; MIND-Edit checkpoints, once published) come with the download helper, run from the pack:
  {DOWNLOAD_HELPER} --what llava-0.5b ipadapter-plain --models-dir <ComfyUI>/models
(docs/MODELS.md lists every model). Press R after adding files to refresh the dropdowns."""

MASK_HOWTO = """\
The mask: paint it on the source (right click > Open in MaskEditor), or load a mask file: its alpha \
(transparent = edit) or else its red channel (white = edit) is read. 'MIND-Edit Edit Region' picks \
the one that holds a mask, resizes it to the image, and the status says which and how much of the \
image it covers. No mask (or an empty one) = a mask-free edit of the whole image, said on the status."""

MASKED_NOTE = f"""\
Masked edit: white in the mask = the area to change. Every pixel outside it stays exactly the source's.

{MASK_HOWTO}

Grow Mask + blur soften the edge. The MIND-Edit node's seed is 'fixed': changing only the KSampler
seed re-uses the refined prompts (the MLLM does not run again)."""

EDIT_NOTE = """\
Mask-free edit (img2img): denoise on the KSampler sets how far the result may move from the source
(0.5-0.75 keeps the layout). The MIND-Edit node refines your vague instruction into prompts and
predicts v_insight, which steers the IP-Adapter. The output has the source's size."""

REFINE_ONLY_NOTE = f"""\
Refined prompts only: needs just public weights (any supported VLM in models/LLM, listed in the
README under Supported VLMs; any SD1.5 checkpoint); no MIND-Edit checkpoint, no IP-Adapter. The default VLM:
  {DOWNLOAD_HELPER} --what {REFINE_ONLY_LLM_KEY} --models-dir <ComfyUI>/models The VLM rewrites your vague instruction into
precise prompts zero-shot; if its answer cannot be parsed the status says so and your instruction
is used as the prompt.

{MASK_HOWTO}"""
