"""What the shipped workflows share: default models and their download metadata, node titles, notes.

`devkit.build_workflows` assembles the graphs from these; the demo and the tests address nodes by
the titles here (``devkit.workflow_api.set_widget``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from devkit.download_models import catalogue
from mindedit_core import node_specs as specs
from mindedit_core.node_schema import NodeSpec

MASKED_WORKFLOW = "mindedit_masked_edit"
EDIT_WORKFLOW = "mindedit_edit"
REFINE_ONLY_WORKFLOW = "mindedit_refine_only_edit"
QWEN_EDIT_WORKFLOW = "mindedit_refine_qwen_image_edit"
KONTEXT_WORKFLOW = "mindedit_refine_flux_kontext"
# Graphs for Stable Diffusion 1.5 and SDXL (CheckpointLoaderSimple, CLIP Text Encode) and for the native
# instruction editors of ComfyUI 0.33 (devkit/workflow_editors.py).
SDXL_MASKED_WORKFLOW = "mindedit_sdxl_masked_edit"
SDXL_EDIT_WORKFLOW = "mindedit_sdxl_edit"
SDXL_REFINE_ONLY_WORKFLOW = "mindedit_sdxl_refine_only_edit"
SD_WORKFLOWS = (
    MASKED_WORKFLOW,
    EDIT_WORKFLOW,
    REFINE_ONLY_WORKFLOW,
    SDXL_MASKED_WORKFLOW,
    SDXL_EDIT_WORKFLOW,
    SDXL_REFINE_ONLY_WORKFLOW,
)
EDITOR_WORKFLOWS = (QWEN_EDIT_WORKFLOW, KONTEXT_WORKFLOW)

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
EDITOR_INSTRUCTION = MASKED_INSTRUCTION

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

# SDXL: the base checkpoint and the ViT-H adapters (the same v_insight as SD1.5's; not ip-adapter_sdxl,
# which is made for the ViT-bigG encoder).
SDXL_CHECKPOINT = "sd_xl_base_1.0.safetensors"
SDXL_CHECKPOINT_MODEL = {
    "name": SDXL_CHECKPOINT,
    "url": f"{HF}/stabilityai/stable-diffusion-xl-base-1.0/resolve/main/{SDXL_CHECKPOINT}",
    "directory": "checkpoints",
}
SDXL_IPADAPTER_MODEL = _hub_file("ipadapter-sdxl-plain", "ipadapter")
SDXL_IPADAPTER = SDXL_IPADAPTER_MODEL["name"]

# The pack's nodes, from their one declaration (mindedit_core/node_specs.py): IDs, widgets, defaults.
MLLM_LOADER = specs.MLLM_LOADER.node_id
IPADAPTER_LOADER = specs.IPADAPTER_LOADER.node_id
IPADAPTER_FILE_INPUT = specs.IPADAPTER_LOADER.inputs[0].name
IPADAPTER_APPLY = specs.APPLY_IPADAPTER.node_id
# Values the shipped workflows set where they differ from a widget's declared default.
IPADAPTER_APPLY_VALUES = {"weight": 0.8}


def pack_node(spec: NodeSpec, values: dict | None = None) -> dict:
    """`devkit.workflow_sections.Layout.add` arguments for one of the pack's nodes, from its declaration.

    ``widgets``: every widget in declared order, ``values`` over the declared defaults, with the UI-only
    ``control_after_generate`` value after a seed (``tall``: the multiline ones); ``inputs``: every
    socket, optional ones too, linked or not (the frontend gives each a slot row, as it saves them);
    ``outputs``: every output.
    """
    values = dict(values or {})
    unknown = set(values) - {i.name for i in spec.widgets}
    if unknown:
        raise KeyError(f"{spec.node_id} has no widget {sorted(unknown)}: {[i.name for i in spec.widgets]}")
    widgets: list = []
    tall: list[int] = []  # multiline text boxes: the frontend gives them a taller DOM widget
    for item in spec.widgets:
        if item.options.get("multiline"):
            tall.append(len(widgets))
        widgets.append(values.get(item.name, item.default))
        if "control_after_generate" in item.options:
            widgets.append(item.options["control_after_generate"])
    inputs = [(i.name, _socket_type(i)) for i in spec.inputs if not i.is_widget]
    return {
        "type": spec.node_id,
        "widgets": widgets,
        "tall": tuple(tall),
        "inputs": inputs,
        "outputs": [(o.name, o.type) for o in spec.outputs],
    }


def _socket_type(item) -> str:
    return item.type if isinstance(item.type, str) else "COMBO"


# Node titles the demo and tests address.
SOURCE_TITLE = "Load Image (source; paint a mask here)"
MASK_TITLE = "Load Image (mask file)"
REFINE_TITLE = "MIND-Edit"
POSITIVE_PREVIEW_TITLE = "Refined positive prompt"
NEGATIVE_PREVIEW_TITLE = "Refined negative prompt"
STATUS_PREVIEW_TITLE = "MIND-Edit status"
# The SDXL graphs sample at SDXL's own size: the source scaled to this many px on its longest side
# (a widget the demo and tests lower for tiny models), the edit scaled back to the source's size.
SDXL_WORKING_SIDE = 1024
WORKING_SIZE_TITLE = "SDXL working size (longest side)"
WORKING_SIZE_INPUT = "largest_size"
UNPAD_TITLE = "Crop the VAE padding"
BACK_TO_SOURCE_TITLE = "Back to the source's size"

# Group titles, left to right.
GROUP_MODELS, GROUP_INPUT, GROUP_MINDEDIT, GROUP_EDIT, GROUP_OUTPUT = (
    "Models",
    "Source and mask",
    "MIND-Edit",
    "Edit (SD1.5)",
    "Output",
)
SDXL_GROUP_EDIT = "Edit (SDXL)"

NOTE_COLOR, NOTE_BG = "#432", "#653"

DOWNLOAD_HELPER = "python -m devkit.download_models"

MODELS_NOTE = f"""\
MIND-Edit: which file goes where (ComfyUI/models/...)

checkpoints/   any Stable Diffusion 1.5 checkpoint, e.g. {DEFAULT_CHECKPOINT}
LLM/           a VLM folder in Hugging Face layout, e.g. LLM/{DEFAULT_LLM_FOLDER}/ (config.json + weights)
mindedit/      a MIND-Edit checkpoint folder trained for that VLM (mindedit.json, vision_head.safetensors, lora/)
ipadapter/     {DEFAULT_IPADAPTER} (plain head) or ip-adapter-plus_sd15.safetensors (plus head)

The checkpoint and IP-Adapter loaders name their download (ComfyUI offers it when the file is missing).
The MLLM loader lists the VLM folders found, then the known VLMs not downloaded yet: pick one and the
first run downloads it into LLM/<name> (progress bar; a stopped download resumes when run again).
From a clone of the pack, the download helper fetches everything ahead of time:
  {DOWNLOAD_HELPER} --what llava-0.5b ipadapter-plain --models-dir <ComfyUI>/models
(docs/MODELS.md lists every model). Press R after adding files to refresh the dropdowns."""

MASK_HOWTO = """\
The mask: paint it on the source (right click > Open in MaskEditor), or load a mask file: its alpha \
(transparent = edit) or else its red channel (white = edit) is read. 'MIND-Edit Edit Region' picks \
the one that holds a mask, resizes it to the image, and the status says which and how much of the \
image it covers. No mask (or an empty one) = a mask-free edit of the whole image, said on the status."""

# The refine-only workflow has no mask-file loader: the painted mask is its only mask.
PAINTED_MASK_HOWTO = """\
The mask: paint it on the source (right click > Open in MaskEditor). 'MIND-Edit Edit Region' resizes \
it to the image, and the status says how much of the image it covers. Nothing painted = a mask-free \
edit of the whole image, said on the status."""

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
README under Supported VLMs; any SD1.5 or SDXL checkpoint); no MIND-Edit checkpoint, no IP-Adapter. The default VLM
downloads itself on the first run (or ahead of time, from a clone of the pack):
  {DOWNLOAD_HELPER} --what {REFINE_ONLY_LLM_KEY} --models-dir <ComfyUI>/models
The VLM rewrites your vague instruction into precise prompts zero-shot; if its answer cannot be
parsed the status says so and your instruction is used as the prompt.

{PAINTED_MASK_HOWTO}"""


# The status preview is sized for what the workflow's status node shows when a run falls back (the
# longest common case): the MLLM line with the parser's fallback warning and the model names, the
# mask line, the size line. Built with the pack's own formatters, so the box follows their wording.
STATUS_EXAMPLE_ANSWER = "Sure! Here is a much more detailed description of the edited image you asked for"
STATUS_EXAMPLE_SIZE = (1216, 832)  # height, width: an SDXL-sized source, four digits where it matters


def status_example(llm_folder: str, mindedit_checkpoint: str, instruction: str, with_region: bool) -> str:
    """The status text of a fallback run (``with_region``: the workflow has an edit-region node, and
    a mask is painted)."""
    import torch

    from mindedit_core.canvas import paste_edit
    from mindedit_core.masks import PAINTED, choose_edit_mask
    from mindedit_core.mllm.pass_cache import PassOutcome
    from mindedit_core.prompting import parse_refinement

    height, width = STATUS_EXAMPLE_SIZE
    refined = parse_refinement(STATUS_EXAMPLE_ANSWER, instruction)
    mllm = PassOutcome(
        positive=refined.positive,
        negative=refined.negative,
        raw=refined.raw,
        v_insight=None,
        warning=refined.warning,
        description=f"{llm_folder} + {mindedit_checkpoint}",
    ).status
    mask = torch.zeros((1, height, width))
    mask[:, : height // 3, : width // 3] = 1.0
    region = choose_edit_mask(height, width, [(PAINTED, mask)]).status
    image = torch.zeros((1, height, width, 3))
    size = paste_edit(image, image, None).status
    return "\n".join([mllm, region, size] if with_region else [mllm, size])


SDXL_MODELS_NOTE = f"""\
MIND-Edit with SDXL: which file goes where (ComfyUI/models/...)

checkpoints/   any SDXL checkpoint (base or a fine-tune with its layout), e.g. {SDXL_CHECKPOINT}
LLM/           a VLM folder in Hugging Face layout, e.g. LLM/{DEFAULT_LLM_FOLDER}/ (config.json + weights)
mindedit/      a MIND-Edit checkpoint folder trained for that VLM (the same head as for SD1.5)
ipadapter/     {SDXL_IPADAPTER} (plain head) or ip-adapter-plus_sdxl_vit-h.safetensors (plus head)

Use the _vit-h adapters: ip-adapter_sdxl.safetensors expects the ViT-bigG encoder, which no MIND-Edit
head predicts (the loader says so). SDXL samples at 1024 px on the source's longest side (the
'{WORKING_SIZE_TITLE}' node; lower it for speed); the edit is scaled back to the source's size and
pasted, so outside the mask every pixel stays the source's. Download helper, run from the pack:
  {DOWNLOAD_HELPER} --what llava-0.5b ipadapter-sdxl-plain --models-dir <ComfyUI>/models
(docs/MODELS.md lists every model). Press R after adding files to refresh the dropdowns."""


@dataclass(frozen=True)
class Family:
    """What differs between the SD1.5 and SDXL versions of a workflow."""

    key: str
    checkpoint_model: dict
    ipadapter_model: dict | None
    edit_group: str
    models_note: str
    # Longest side the graph samples at (the source scaled there and back); None: the source's own size.
    working_side: int | None = None

    @property
    def checkpoint(self) -> str:
        return self.checkpoint_model["name"]

    @property
    def ipadapter(self) -> str | None:
        return self.ipadapter_model["name"] if self.ipadapter_model else None


SD15 = Family("sd15", CHECKPOINT_MODEL, IPADAPTER_MODEL, GROUP_EDIT, MODELS_NOTE)
SDXL = Family(
    "sdxl", SDXL_CHECKPOINT_MODEL, SDXL_IPADAPTER_MODEL, SDXL_GROUP_EDIT, SDXL_MODELS_NOTE, SDXL_WORKING_SIDE
)
WORKFLOW_FAMILIES: dict[str, Family] = {
    MASKED_WORKFLOW: SD15,
    EDIT_WORKFLOW: SD15,
    REFINE_ONLY_WORKFLOW: SD15,
    SDXL_MASKED_WORKFLOW: SDXL,
    SDXL_EDIT_WORKFLOW: SDXL,
    SDXL_REFINE_ONLY_WORKFLOW: SDXL,
}
# The SD1.5 workflow each SDXL one mirrors (same graph plus the working-size scaling, the family's
# models and group title).
SDXL_COUNTERPARTS: dict[str, str] = {
    SDXL_MASKED_WORKFLOW: MASKED_WORKFLOW,
    SDXL_EDIT_WORKFLOW: EDIT_WORKFLOW,
    SDXL_REFINE_ONLY_WORKFLOW: REFINE_ONLY_WORKFLOW,
}
EDITORS_MODELS_NOTE = f"""\
MIND-Edit in front of an instruction editor (ComfyUI 0.33): which file goes where (ComfyUI/models/...)

The editor's files are named on its loaders (ComfyUI offers the downloads when they are missing):
diffusion_models/, text_encoders/, vae/.

The VLM that refines your instruction:
- served (default): 'MIND-Edit Remote VLM' talks to Ollama / LM Studio / vLLM / llama.cpp's server on
  this computer, e.g. `ollama pull qwen2.5vl:7b`, base_url http://127.0.0.1:11434/v1. Another host only
  if MINDEDIT_VLM_ALLOWED_HOSTS lists it; a key only from MINDEDIT_VLM_API_KEY (never in the workflow).
- local: a VLM folder in LLM/ (e.g. {REFINE_ONLY_LLM_FOLDER}, `{DOWNLOAD_HELPER} --what {REFINE_ONLY_LLM_KEY}`);
  drag the local loader's mllm output onto the MIND-Edit node's mllm input."""

EDITOR_NOTE = """\
The MIND-Edit node writes ONE edit instruction (style 'edit_instruction': what changes, how it looks
afterwards, what stays), grounded in the image and in the painted mask's outline, and a negative.
The editor edits the whole image; the result is scaled back to the source's size and pasted through
the edit mask: paint a mask on the source and everything outside it stays exactly the source's.
No mask = the whole edit is kept. The status says which style ran, the mask and the size.

{editor}"""

QWEN_EDIT_NOTE = EDITOR_NOTE.format(
    editor="Qwen-Image-Edit 2509 (TextEncodeQwenImageEditPlus; 2511 works with the same nodes from "
    "ComfyUI 0.5): 20 steps, cfg 2.5; both the instruction and the negative are encoded with the image."
)
KONTEXT_NOTE = EDITOR_NOTE.format(
    editor="FLUX.1 Kontext dev (ReferenceLatent): its T5/CLIP text encoder never sees the image, which "
    "is where an image-aware instruction helps most. Guidance 2.5, cfg 1: Kontext dev ignores a negative "
    "prompt, so the refined negative is only shown."
)
