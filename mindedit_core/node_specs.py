"""Every node of the pack, declared once, as data (no ComfyUI import).

Read by: ``nodes/`` (the V3 ``io.ComfyNode`` classes, or V1 classes on a ComfyUI without
``comfy_api.latest``), ``devkit.workflow_parts`` / ``devkit.workflow_sections`` (the shipped
workflows' node types, widget values and sockets), the widget-order freeze test
(tests/test_node_specs.py) and ComfyUI-Manager's ``node_list.json`` (``python -m devkit.node_list``).
No node ID, widget name or default is typed anywhere else.

Adding a node:
1. declare its `NodeSpec` here and add it to `NODE_SPECS` (its ``node_id`` is stored in saved
   workflows: choose it once);
2. write its implementation class in ``nodes/`` (a method named ``spec.function`` taking the inputs
   as keyword arguments; optionally ``VALIDATE_INPUTS`` for queue-time checks), decorate it with
   ``@implements(SPEC)`` (``nodes/node_spec.py``) and add it to ``NODE_CLASSES`` in
   ``nodes/__init__.py``;
3. a combo whose options depend on the install uses ``Choices("<key>")`` and registers the key's
   provider in ``nodes/choices.py``;
4. regenerate ``node_list.json`` (``python -m devkit.node_list``); the tests check all of this.

Never rename or reorder an existing input (saved workflows store widget values by position);
append new inputs at the end of the required ones only while no workflow uses the node, else as
optional ones.
"""

from __future__ import annotations

from .images import DEFAULT_MAX_SIDE as DEFAULT_MAX_IMAGE_SIDE
from .ipadapter.attention import BATCH_MAPPINGS
from .mllm.dtypes import DTYPE_NAMES
from .mllm.families import FAMILIES, family_names
from .mllm.families.texts import image_tokens_hint
from .mllm.options import DEFAULT_MAX_NEW_TOKENS
from .mllm.quantization import QUANTIZATIONS
from .node_schema import Choices, Input, NodeSpec, Output
from .prompt_styles import SD_TAGS, STYLE_NAMES
from .prompting import MAX_INSTRUCTION_CHARS
from .remote.policy import ALLOWED_HOSTS_ENV, API_KEY_ENV, DEFAULT_BASE_URL
from .remote.vlm import DEFAULT_MAX_RETRIES, DEFAULT_TIMEOUT_S

CATEGORY = "MIND-Edit"
IPADAPTER_CATEGORY = "MIND-Edit/IP-Adapter"

# Custom socket types (EMBEDS is ComfyUI_IPAdapter_plus's, so the two packs connect).
MLLM_TYPE = "MINDEDIT_MLLM"
IPADAPTER_TYPE = "MINDEDIT_IPADAPTER"
EMBEDS_TYPE = "EMBEDS"

# Combos filled from the install when ComfyUI asks (providers: nodes/choices.py).
LLM_FOLDERS = Choices("llm_folders")
MINDEDIT_CHECKPOINTS = Choices("mindedit_checkpoints")
IPADAPTER_FILES = Choices("ipadapter_files")

ATTENTIONS = ("sdpa", "eager", "flash_attention_2")
# One example folder name per supported family (from the family table).
EXAMPLE_FOLDERS = ", ".join(f.example_repo.split("/")[-1] for f in FAMILIES.values())
DEFAULT_INSTRUCTION = "make it look like autumn"
SEED_MAX = 0xFFFFFFFFFFFFFFFF

# -- the MLLM loader ----------------------------------------------------------------------------------

MLLM_LOADER = NodeSpec(
    node_id="MindEditMLLMLoader",
    display_name="MIND-Edit MLLM Loader",
    category=CATEGORY,
    description=(
        f"Loads a vision-language model folder ({family_names()}) from models/LLM and, optionally,"
        " a MIND-Edit checkpoint (LoRA + vision head) from models/mindedit. ComfyUI's "
        "memory manager moves it to the GPU when used and offloads it when the diffusion model needs "
        "room ('Unload models' frees it)."
    ),
    function="load",
    inputs=(
        Input(
            "model_folder",
            LLM_FOLDERS,
            f"A vision-language model folder in Hugging Face layout under models/LLM: {family_names()} "
            f"(e.g. {EXAMPLE_FOLDERS}). It must match the base model the MIND-Edit checkpoint was "
            "trained on (same family and size). After the folders found, the list names every known VLM not on "
            "disk yet: picking one downloads it into models/LLM/<name> on the first run (progress on the "
            "bar; resumes if stopped; HF_ENDPOINT picks a mirror, HF_HUB_OFFLINE=1 forbids downloads).",
        ),
        Input(
            "mindedit_checkpoint",
            MINDEDIT_CHECKPOINTS,
            "A MIND-Edit checkpoint folder under models/mindedit (mindedit.json, vision_head.safetensors, "
            "optional lora/). 'none' loads the base model only: it can refine prompts but has no vision "
            "head, so it cannot produce v_insight embeds.",
        ),
        Input(
            "dtype",
            DTYPE_NAMES,
            "Weight precision. 'auto' picks what ComfyUI picks for the device: bfloat16 if supported, "
            "else float16, float32 on the CPU.",
            options={"default": "auto"},
        ),
        Input(
            "quantization",
            QUANTIZATIONS,
            "bitsandbytes 8-bit or 4-bit (nf4) weights to save VRAM (7B: ~15 GiB bf16, ~6 GiB 4-bit). "
            "Needs a CUDA GPU and the bitsandbytes package; quantized weights stay on the GPU.",
            options={"default": "none"},
        ),
        Input(
            "attention",
            ATTENTIONS,
            "Attention implementation: sdpa (PyTorch, works everywhere), eager (slowest, most "
            "compatible), flash_attention_2 (needs the flash-attn package).",
            options={"default": "sdpa"},
        ),
    ),
    outputs=(
        Output("mllm", MLLM_TYPE, "The loaded MLLM; connect it to the MIND-Edit refine / embed nodes."),
    ),
)

# -- the three MLLM-running nodes (one input layout: a graph using two of them runs the MLLM once) ---

MLLM_INPUTS = (
    Input(
        "mllm",
        MLLM_TYPE,
        "The MLLM from 'MIND-Edit MLLM Loader', or (prompts only) a VLM your server serves, from 'MIND-Edit "
        "Remote VLM (OpenAI-compatible)'.",
    ),
    Input("image", "IMAGE", "The source image to edit (only the first image of a batch is read)."),
    Input(
        "instruction",
        "STRING",
        "What to change, in your own words (it may be vague, e.g. 'make it cosier'). The MLLM turns it "
        f"into precise positive and negative prompts for Stable Diffusion. At most {MAX_INSTRUCTION_CHARS:,} "
        "characters are read (a longer one is cut, and the status says so).",
        options={"multiline": True, "default": DEFAULT_INSTRUCTION},
    ),
    Input(
        "seed",
        "INT",
        "Seed for the MLLM's sampling. Keep it 'fixed' so re-queueing with a new KSampler seed reuses the "
        "cached prompts instead of running the MLLM again.",
        options={"default": 0, "min": 0, "max": SEED_MAX, "control_after_generate": "fixed"},
    ),
    Input(
        "max_new_tokens",
        "INT",
        "Upper bound on the MLLM's answer length; the answer normally stops earlier.",
        options={"default": DEFAULT_MAX_NEW_TOKENS, "min": 16, "max": 2048, "step": 8},
    ),
    Input(
        "max_image_side",
        "INT",
        "The image is downscaled to this longest side before the MLLM reads it (visual tokens at 384 / "
        f"1024 px: {image_tokens_hint()}). Only affects the MLLM, not the edit.",
        options={"default": DEFAULT_MAX_IMAGE_SIDE, "min": 64, "max": 4096, "step": 8},
    ),
    Input(
        "mask",
        "MASK",
        "Optional edit region (white = edit). The MLLM sees it outlined on the image and describes only "
        "that area. Leave empty for a mask-free edit.",
        optional=True,
    ),
)

# Added after the shared inputs of the refine node (saved workflows append its value; older ones get
# the default).
STYLE_INPUT = Input(
    "style",
    STYLE_NAMES,
    "What the refined positive text is. 'sd_tags': comma-separated phrases for CLIP Text Encode "
    "(SD1.5 / SDXL, the MIND-Edit method). 'edit_instruction': one imperative sentence saying what "
    "changes, how it looks afterwards and what stays, for instruction editors (Qwen-Image-Edit, FLUX.1 "
    "Kontext, FLUX.2). The negative prompt is the same in both. The status line names the style that ran.",
    optional=True,
    options={"default": SD_TAGS.name},
)

POSITIVE = Output("positive", "STRING", "Refined positive prompt for Stable Diffusion.")
REFINED_POSITIVE = Output(
    "positive",
    "STRING",
    "The refined positive text: SD tag phrases for CLIP Text Encode, or (style 'edit_instruction') one "
    "edit instruction for an instruction editor's text encoder.",
)
NEGATIVE = Output("negative", "STRING", "Refined negative prompt.")
RAW_ANSWER = Output("raw_answer", "STRING", "The MLLM's answer before parsing (for inspection).")
STATUS = Output(
    "status", "STRING", "'ok' or the parser's fallback warning, any instruction cut, and the model used."
)
POS_EMBEDS = Output(
    "pos_embeds",
    EMBEDS_TYPE,
    "v_insight, shaped like the CLIP-vision output the IP-Adapter expects ([1,1024] plain, [1,257,1280] plus).",
)
NEG_EMBEDS = Output(
    "neg_embeds",
    EMBEDS_TYPE,
    "The matching unconditional embedding: a plus checkpoint's stored blank-image embedding (what IP-Adapter "
    "Plus was trained with), zeros for plain heads. Connect it to the IP-Adapter node's neg_embed; "
    "ComfyUI_IPAdapter_plus's 'IPAdapter Embeds' needs it (or a CLIP vision model).",
)


def _mllm_node(
    node_id: str, display_name: str, description: str, function: str, outputs, extra_inputs=()
) -> NodeSpec:
    return NodeSpec(
        node_id=node_id,
        display_name=display_name,
        category=CATEGORY,
        description=description,
        function=function,
        inputs=MLLM_INPUTS + tuple(extra_inputs),
        outputs=tuple(outputs),
    )


REFINE_INSTRUCTION = _mllm_node(
    "MindEditRefineInstruction",
    "MIND-Edit Refine Instruction (-> prompts)",
    "Runs the MIND-Edit MLLM on the image and your instruction and outputs refined positive and "
    "negative prompts (connect them to CLIP Text Encode's 'text' input), the raw answer and a status "
    "line that shows parser fallbacks. Works with any supported VLM and no MIND-Edit checkpoint, or "
    "with a VLM your own server serves ('MIND-Edit Remote VLM (OpenAI-compatible)'). Style "
    "'edit_instruction' writes one instruction for Qwen-Image-Edit / FLUX.1 Kontext instead of SD tags.",
    "refine",
    (REFINED_POSITIVE, NEGATIVE, RAW_ANSWER, STATUS),
    extra_inputs=(STYLE_INPUT,),
)
INSIGHT_EMBEDS = _mllm_node(
    "MindEditInsightEmbeds",
    "MIND-Edit Insight Embeds (-> IP-Adapter EMBEDS)",
    "Predicts v_insight with the MIND-Edit vision head and outputs it as EMBEDS for the MIND-Edit "
    "IP-Adapter node (or ComfyUI_IPAdapter_plus 'IPAdapter Embeds'). With the same inputs as the "
    "refine node, the MLLM runs once for both.",
    "embed",
    (POS_EMBEDS, NEG_EMBEDS),
)
REFINE_AND_EMBED = _mllm_node(
    "MindEditRefineAndEmbed",
    "MIND-Edit (refine + embed)",
    "MIND-Edit in one node: refined positive / negative prompts and v_insight EMBEDS from a single "
    "MLLM pass. Connect the prompts to CLIP Text Encode and the embeds to the IP-Adapter node.",
    "run",
    (POSITIVE, NEGATIVE, POS_EMBEDS, NEG_EMBEDS, RAW_ANSWER, STATUS),
)

# -- a VLM served over an OpenAI-compatible API (prompts only) ----------------------------------------

DEFAULT_REMOTE_MODEL = "qwen2.5vl:7b"

REMOTE_VLM = NodeSpec(
    node_id="MindEditRemoteVLM",
    display_name="MIND-Edit Remote VLM (OpenAI-compatible)",
    category=CATEGORY,
    description=(
        "A vision-language model your own server already serves (Ollama, LM Studio, vLLM, llama.cpp's "
        "server) over its OpenAI-compatible chat API, for 'MIND-Edit Refine Instruction' in place of the "
        "MLLM Loader: no second copy of the model in ComfyUI's memory. Servers on this computer work as "
        f"they are; another host only if {ALLOWED_HOSTS_ENV} lists it. An API key, if the server needs "
        f"one, is read from {API_KEY_ENV} (never stored in the workflow). Prompts only: the MIND-Edit "
        "embeds need the local loader with a checkpoint."
    ),
    function="load",
    inputs=(
        Input(
            "base_url",
            "STRING",
            f"The server's OpenAI-compatible base URL (ending in /v1). Ollama: {DEFAULT_BASE_URL}; LM "
            "Studio: http://127.0.0.1:1234/v1; vLLM: http://127.0.0.1:8000/v1; llama.cpp server: "
            "http://127.0.0.1:8080/v1. A host other than this computer is refused unless the environment "
            f"variable {ALLOWED_HOSTS_ENV} allows it.",
            options={"default": DEFAULT_BASE_URL, "multiline": False},
        ),
        Input(
            "model",
            "STRING",
            "The model's name as the server lists it; it must be a vision model. Ollama: `ollama list` "
            "(e.g. qwen2.5vl:7b, gemma3:12b, llava:7b); LM Studio / vLLM: the id in GET /v1/models.",
            options={"default": DEFAULT_REMOTE_MODEL, "multiline": False},
        ),
        Input(
            "timeout_s",
            "INT",
            "Seconds to wait for one answer (the first request may load the model on the server).",
            options={"default": DEFAULT_TIMEOUT_S, "min": 1, "max": 3600, "step": 1},
        ),
        Input(
            "max_retries",
            "INT",
            "Retries after a busy server (429/5xx), a dropped connection or an empty or malformed reply; "
            "connection refused, a missing model and a timeout fail at once.",
            options={"default": DEFAULT_MAX_RETRIES, "min": 0, "max": 10, "step": 1},
        ),
    ),
    outputs=(
        Output(
            "mllm",
            MLLM_TYPE,
            "The remote VLM; connect it to 'MIND-Edit Refine Instruction' (the embeds nodes need a local "
            "MLLM with a MIND-Edit checkpoint).",
        ),
    ),
)

# -- the edit region and the status text ------------------------------------------------------------

STATUS_INPUTS = ("mllm_status", "mask_status", "image_status")

EDIT_REGION = NodeSpec(
    node_id="MindEditEditRegion",
    display_name="MIND-Edit Edit Region (mask)",
    category=CATEGORY,
    description=(
        "Finds the edit mask: painted on the source in the MaskEditor, else a mask image's alpha "
        "(transparent = edit), else its red channel (white = edit). Resizes it to the image and "
        "reports where it came from and how much of the image it covers. No mask (or an empty "
        "one) means a mask-free edit of the whole image, said on the status."
    ),
    function="choose",
    inputs=(
        Input("image", "IMAGE", "The source image (its size is the mask's size)."),
        Input(
            "painted_mask",
            "MASK",
            "The source Load Image's MASK output: what you painted in the MaskEditor (right click "
            "> Open in MaskEditor). Empty when nothing is painted.",
            optional=True,
        ),
        Input(
            "mask_image",
            "IMAGE",
            "The IMAGE output of a mask file's Load Image: its red channel is read (white = edit).",
            optional=True,
        ),
        Input(
            "mask_alpha",
            "MASK",
            "The MASK output of the same mask file's Load Image: its alpha channel (transparent = "
            "edit, ComfyUI's convention).",
            optional=True,
        ),
    ),
    outputs=(
        Output(
            "mllm_mask",
            "MASK",
            "The chosen mask at the image's size (all zeros when none: the MLLM then does a "
            "mask-free refinement). Connect to the MIND-Edit node's mask.",
        ),
        Output(
            "edit_mask",
            "MASK",
            "Where the sampler may change pixels: the chosen mask, or the whole image when there is "
            "none. Connect to Grow Mask / Set Latent Noise Mask / the paste.",
        ),
        Output("status", "STRING", "Where the mask came from and its coverage, or 'mask-free'."),
    ),
)

STATUS_JOIN = NodeSpec(
    node_id="MindEditStatus",
    display_name="MIND-Edit Status",
    category=CATEGORY,
    description=(
        "Joins the status lines of the MIND-Edit nodes (MLLM, mask, image size) into one text, one "
        "line each, for a single 'Preview as Text'."
    ),
    function="join",
    inputs=tuple(
        Input(name, "STRING", tip, optional=True, options={"forceInput": True})
        for name, tip in zip(
            STATUS_INPUTS,
            (
                "The status output of the MIND-Edit refine node.",
                "The status output of 'MIND-Edit Edit Region'.",
                "The status output of 'MIND-Edit Paste Edit'.",
            ),
        )
    ),
    outputs=(Output("status", "STRING", "Every connected status line, one per line."),),
)

# -- keeping the artist's image size -------------------------------------------------------------------

PAD_FOR_VAE = NodeSpec(
    node_id="MindEditPadForVAE",
    display_name="MIND-Edit Pad for VAE",
    category=CATEGORY,
    description=(
        "Extends the image at the right and bottom (edge pixels repeated) to multiples of 8 px, so "
        "VAE Encode crops nothing. 'MIND-Edit Paste Edit' crops the result back."
    ),
    function="pad",
    inputs=(Input("image", "IMAGE", "The source image, any size."),),
    outputs=(Output("image", "IMAGE", "The image padded to multiples of 8 px (connect to VAE Encode)."),),
)

PASTE_EDIT = NodeSpec(
    node_id="MindEditPasteEdit",
    display_name="MIND-Edit Paste Edit",
    category=CATEGORY,
    description=(
        "Crops the decoded edit back to the source's size and pastes it through the edit mask: "
        "outside the mask every pixel is the source's, exactly. Without a mask the whole edit is "
        "kept. The status line reports the size."
    ),
    function="paste",
    inputs=(
        Input("source", "IMAGE", "The original source image (its size is the output's size)."),
        Input("edited", "IMAGE", "The decoded edit (VAE Decode)."),
        Input(
            "edit_mask",
            "MASK",
            "Where the edit replaces the source (1) or not (0); soft edges blend. Unconnected: the "
            "whole edit is kept (mask-free).",
            optional=True,
        ),
        Input(
            "source_mask",
            "MASK",
            "The source Load Image's MASK output (1 - alpha), for graphs without 'MIND-Edit Edit "
            "Region': when the source had transparent (or MaskEditor-painted) pixels, which Load Image "
            "flattens and the edit then changes like the rest, the status says so.",
            optional=True,
        ),
    ),
    outputs=(
        Output("image", "IMAGE", "The edited image at the source's size."),
        Output("status", "STRING", "The output size and any crop or resize that was needed."),
    ),
)

# -- IP-Adapter --------------------------------------------------------------------------------------

IPADAPTER_LOADER = NodeSpec(
    node_id="MindEditIPAdapterLoader",
    display_name="MIND-Edit IP-Adapter Loader",
    category=IPADAPTER_CATEGORY,
    description=(
        "Loads an IP-Adapter for the ViT-H image encoder (SD1.5 or SDXL; plain or plus) in any released layout."
    ),
    function="load",
    inputs=(
        Input(
            "ipadapter_file",
            IPADAPTER_FILES,
            "An IP-Adapter for the ViT-H encoder in ComfyUI/models/ipadapter, of the checkpoint's family. "
            "SD1.5: ip-adapter_sd15 (plain, takes [B,1024] embeds) or ip-adapter-plus_sd15 (plus, takes "
            "[B,257,1280]). SDXL: ip-adapter_sdxl_vit-h (plain) or ip-adapter-plus(-face)_sdxl_vit-h (plus); "
            "not ip-adapter_sdxl (made for ViT-bigG). Must match the kind of the MIND-Edit vision head.",
        ),
    ),
    outputs=(
        Output(
            "ipadapter",
            IPADAPTER_TYPE,
            "The loaded adapter (image projection + per-layer key/value projections).",
        ),
    ),
)

APPLY_IPADAPTER = NodeSpec(
    node_id="MindEditApplyIPAdapter",
    display_name="MIND-Edit Apply IP-Adapter (EMBEDS)",
    category=IPADAPTER_CATEGORY,
    description=(
        "Applies an IP-Adapter with EMBEDS (e.g. MIND-Edit's v_insight) on every cross-attention layer of "
        "the model (16 in SD1.5, 70 in SDXL), composing with other attention patches."
    ),
    function="apply",
    inputs=(
        Input(
            "model",
            "MODEL",
            "The model to steer: any SD1.5 or SDXL checkpoint, of the same family as the IP-Adapter.",
        ),
        Input("ipadapter", IPADAPTER_TYPE, "From MIND-Edit IP-Adapter Loader."),
        Input(
            "pos_embed",
            EMBEDS_TYPE,
            "v_insight from MIND-Edit (or any CLIP-vision-shaped EMBEDS, e.g. from IPAdapter_plus): "
            "[B,1024] for plain adapters, [B,257,1280] for plus.",
        ),
        Input(
            "weight",
            "FLOAT",
            "Strength of the image guidance; 0 leaves the model unchanged, negative pushes away from it.",
            options={"default": 1.0, "min": -1.0, "max": 3.0, "step": 0.05},
        ),
        Input(
            "start_at",
            "FLOAT",
            "Fraction of the sampling schedule where the guidance starts (0 = first step).",
            options={"default": 0.0, "min": 0.0, "max": 1.0, "step": 0.01},
        ),
        Input(
            "end_at",
            "FLOAT",
            "Fraction of the schedule where it stops (1 = last step). Must be >= start_at.",
            options={"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.01},
        ),
        Input(
            "batch_mapping",
            BATCH_MAPPINGS,
            "all: every latent sees every embedding in the batch. per_latent: embedding i guides "
            "latent i (the last embedding repeats if there are fewer).",
            options={"default": "all"},
        ),
        Input(
            "neg_embed",
            EMBEDS_TYPE,
            "Embedding for the unconditional (negative) pass, same shape as pos_embed. Unconnected: "
            "zeros, what plain adapters were trained with. Plus adapters were trained with the image "
            "encoder's output for a blank image: connect MIND-Edit's neg_embeds output (a checkpoint's "
            "stored blank-image embedding, where it has one) or IPAdapter_plus' negative.",
            optional=True,
        ),
        Input(
            "attn_mask",
            "MASK",
            "Where the guidance applies (1) or not (0). Any size: resized to each attention resolution.",
            optional=True,
        ),
    ),
    outputs=(Output("MODEL", "MODEL", "A patched copy of the model; the input model is unchanged."),),
)

# Every node of the pack, in the order the "Add Node" menu and node_list.json list them.
NODE_SPECS: tuple[NodeSpec, ...] = (
    MLLM_LOADER,
    REFINE_INSTRUCTION,
    INSIGHT_EMBEDS,
    REFINE_AND_EMBED,
    REMOTE_VLM,
    EDIT_REGION,
    STATUS_JOIN,
    PAD_FOR_VAE,
    PASTE_EDIT,
    IPADAPTER_LOADER,
    APPLY_IPADAPTER,
)
SPECS_BY_ID: dict[str, NodeSpec] = {s.node_id: s for s in NODE_SPECS}
if len(SPECS_BY_ID) != len(NODE_SPECS):
    raise ValueError("two node specs share a node_id")


def spec_of(node_id: str) -> NodeSpec:
    try:
        return SPECS_BY_ID[node_id]
    except KeyError:
        raise KeyError(f"no MIND-Edit node {node_id!r}; declared: {sorted(SPECS_BY_ID)}") from None
