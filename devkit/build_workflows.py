"""Generate the shipped workflows (``workflows/*.json``, UI format) from readable Python.

    .venv/bin/python -m devkit.build_workflows          # rewrite workflows/*.json
    .venv/bin/python -m devkit.build_workflows --check  # exit 1 if the files are out of date

Both graphs use core ComfyUI nodes plus ours; model files are ordinary dropdown widgets (any SD1.5
checkpoint can be picked), and Note nodes say which file goes in which folder. Widget values are
positional and follow each node's input order in ``/object_info`` (checked by the tests against a
live server), so regenerate rather than hand-edit.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from devkit.ui_graph import UIGraph

REPO_ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS_DIR = REPO_ROOT / "workflows"

MASKED_WORKFLOW = "mindedit_masked_edit"
EDIT_WORKFLOW = "mindedit_edit"

# Defaults a user sees; the demo and tests replace them through devkit.workflow_api.set_widget.
DEFAULT_CHECKPOINT = "v1-5-pruned-emaonly.safetensors"
DEFAULT_LLM_FOLDER = "llava-onevision-qwen2-0.5b-ov-hf"
DEFAULT_MINDEDIT_CHECKPOINT = "mindedit-llava-0.5b-plain"
DEFAULT_IPADAPTER = "ip-adapter_sd15.safetensors"
SAMPLE_SOURCE = "sample_source.png"
SAMPLE_MASK = "sample_mask.png"
# Default instructions, written for the bundled sample (a red ball on a table, the mask over the ball).
MASKED_INSTRUCTION = "turn the ball into a glass globe"
EDIT_INSTRUCTION = "make the sky look like a warm sunset"

# The IP-Adapter node family (nodes/ipadapter_nodes.py): type names and widget layout.
IPADAPTER_LOADER = "MindEditIPAdapterLoader"
IPADAPTER_LOADER_WIDGETS = [DEFAULT_IPADAPTER]
IPADAPTER_FILE_INPUT = "ipadapter_file"
IPADAPTER_TYPE = "MINDEDIT_IPADAPTER"
IPADAPTER_APPLY = "MindEditApplyIPAdapter"
IPADAPTER_APPLY_WIDGETS = [0.8, 0.0, 1.0, "all"]  # weight, start_at, end_at, batch_mapping

# Node titles the demo and tests address (devkit.workflow_api.set_widget finds nodes by title).
SOURCE_TITLE = "Load Image (source)"
MASK_TITLE = "Load Image (mask: white = edit)"
POSITIVE_PREVIEW_TITLE = "Refined positive prompt"
NEGATIVE_PREVIEW_TITLE = "Refined negative prompt"
STATUS_PREVIEW_TITLE = "MIND-Edit status"

NOTE_COLOR, NOTE_BG = "#432", "#653"

MODELS_NOTE = """\
MIND-Edit: which file goes where (ComfyUI/models/...)

checkpoints/   any Stable Diffusion 1.5 checkpoint, e.g. v1-5-pruned-emaonly.safetensors
LLM/           a LLaVA-OneVision folder, e.g. LLM/llava-onevision-qwen2-0.5b-ov-hf/ (config.json + weights)
mindedit/      a MIND-Edit checkpoint folder trained for that LLM (mindedit.json, vision_head.safetensors, lora/)
ipadapter/     ip-adapter_sd15.safetensors (plain head) or ip-adapter-plus_sd15.safetensors (plus head)

The checkpoint's head kind must match the adapter (plain <-> ip-adapter_sd15, plus <-> ip-adapter-plus_sd15).
Download helper: python -m devkit.download_models --what llava-0.5b ipadapter-plain --models-dir <ComfyUI>/models
(see docs/MODELS.md). Press R after adding files to refresh the dropdowns."""

MASKED_NOTE = """\
Masked edit: white in the mask = the area to change.
Use the bundled sample_mask.png or any black/white mask image (read from its red channel), or paint
a mask on the source Load Image node (right click > Open in MaskEditor) and connect its MASK output
where 'Mask from the red channel' is connected.
GrowMask + blur soften the edge; the final composite keeps every pixel outside the mask exactly as
in the source. Seeds: the MIND-Edit node's seed is 'fixed' so changing only the KSampler seed
re-uses the refined prompts (the MLLM does not run again)."""

EDIT_NOTE = """\
Mask-free edit (img2img): denoise on the KSampler sets how far the result may move from the source
(0.5-0.75 keeps the layout). The MIND-Edit node refines your vague instruction into prompts and
predicts v_insight, which steers the IP-Adapter."""


def _note(g: UIGraph, text: str, pos: tuple[float, float], size: tuple[float, float]) -> int:
    return g.add("Note", pos, widgets=[text], size=size, color=NOTE_COLOR, bgcolor=NOTE_BG)


def _mindedit_section(g: UIGraph, image_node: int, x: float, y: float, with_mask: bool) -> tuple[int, int]:
    """MLLM loader + the combined refine/embed node; returns (loader id, mindedit id)."""
    loader = g.add(
        "MindEditMLLMLoader",
        (x, y),
        widgets=[DEFAULT_LLM_FOLDER, DEFAULT_MINDEDIT_CHECKPOINT, "auto", "none", "sdpa"],
        outputs=[("mllm", "MINDEDIT_MLLM")],
        size=(360, 180),
    )
    inputs = [("mllm", "MINDEDIT_MLLM"), ("image", "IMAGE")]
    if with_mask:
        inputs.append(("mask", "MASK"))
    mindedit = g.add(
        "MindEditRefineAndEmbed",
        (x, y + 230),
        widgets=[MASKED_INSTRUCTION if with_mask else EDIT_INSTRUCTION, 0, "fixed", 200, 384],
        inputs=inputs,
        outputs=[
            ("positive", "STRING"),
            ("negative", "STRING"),
            ("pos_embeds", "EMBEDS"),
            ("neg_embeds", "EMBEDS"),
            ("raw_answer", "STRING"),
            ("status", "STRING"),
        ],
        size=(360, 300),
    )
    g.connect(loader, 0, mindedit, "mllm")
    g.connect(image_node, 0, mindedit, "image")
    return loader, mindedit


def _conditioning_section(
    g: UIGraph, checkpoint: int, mindedit: int, x: float, y: float, attn_mask: int | None
) -> tuple[int, int, int]:
    """IP-Adapter on the model + both CLIP Text Encodes fed by the refined prompts."""
    ip_loader = g.add(
        IPADAPTER_LOADER,
        (x, y),
        widgets=list(IPADAPTER_LOADER_WIDGETS),
        outputs=[("ipadapter", IPADAPTER_TYPE)],
        size=(340, 90),
    )
    apply_inputs = [
        ("model", "MODEL"),
        ("ipadapter", IPADAPTER_TYPE),
        ("pos_embed", "EMBEDS"),
        ("neg_embed", "EMBEDS"),
    ]
    if attn_mask is not None:
        apply_inputs.append(("attn_mask", "MASK"))
    ip_apply = g.add(
        IPADAPTER_APPLY,
        (x, y + 130),
        widgets=list(IPADAPTER_APPLY_WIDGETS),
        inputs=apply_inputs,
        outputs=[("MODEL", "MODEL")],
        size=(340, 190),
    )
    g.connect(checkpoint, 0, ip_apply, "model")
    g.connect(ip_loader, 0, ip_apply, "ipadapter")
    g.connect(mindedit, 2, ip_apply, "pos_embed")
    g.connect(mindedit, 3, ip_apply, "neg_embed")
    if attn_mask is not None:
        g.connect(attn_mask, 0, ip_apply, "attn_mask")
    positive = g.add(
        "CLIPTextEncode",
        (x, y + 360),
        widgets=[""],
        inputs=[("clip", "CLIP")],
        widget_inputs=[("text", "STRING")],
        outputs=[("CONDITIONING", "CONDITIONING")],
        title="CLIP Text Encode (refined positive)",
        size=(340, 60),
    )
    negative = g.add(
        "CLIPTextEncode",
        (x, y + 460),
        widgets=[""],
        inputs=[("clip", "CLIP")],
        widget_inputs=[("text", "STRING")],
        outputs=[("CONDITIONING", "CONDITIONING")],
        title="CLIP Text Encode (refined negative)",
        size=(340, 60),
    )
    for enc in (positive, negative):
        g.connect(checkpoint, 1, enc, "clip")
    g.connect(mindedit, 0, positive, "text")
    g.connect(mindedit, 1, negative, "text")
    return ip_apply, positive, negative


def _previews(g: UIGraph, mindedit: int, x: float, y: float) -> None:
    """Show the refined prompt and the status line (parser fallback warnings) on the canvas."""
    previews = (
        (0, POSITIVE_PREVIEW_TITLE, 0),
        (1, NEGATIVE_PREVIEW_TITLE, 150),
        (5, STATUS_PREVIEW_TITLE, 300),
    )
    for slot, title, dy in previews:
        node = g.add(
            "PreviewAny", (x, y + dy), inputs=[("source", "*")], title=title, size=(360, 120), widgets=[]
        )
        g.connect(mindedit, slot, node, "source")


def _sampler(g: UIGraph, x: float, y: float, denoise: float) -> int:
    return g.add(
        "KSampler",
        (x, y),
        widgets=[0, "randomize", 25, 7.0, "euler_ancestral", "normal", denoise],
        inputs=[
            ("model", "MODEL"),
            ("positive", "CONDITIONING"),
            ("negative", "CONDITIONING"),
            ("latent_image", "LATENT"),
        ],
        outputs=[("LATENT", "LATENT")],
        size=(320, 270),
    )


def _start(workflow_id: str, note: str, note_size: tuple[float, float]) -> tuple[UIGraph, int, int]:
    """A new graph with the models note, the workflow's own note, the checkpoint and the source image."""
    g = UIGraph(workflow_id)
    _note(g, MODELS_NOTE, (-420, -330), (760, 250))
    _note(g, note, (380, -330), note_size)
    checkpoint = g.add(
        "CheckpointLoaderSimple",
        (0, 0),
        widgets=[DEFAULT_CHECKPOINT],
        outputs=[("MODEL", "MODEL"), ("CLIP", "CLIP"), ("VAE", "VAE")],
        size=(320, 100),
    )
    source = g.add(
        "LoadImage",
        (0, 150),
        widgets=[SAMPLE_SOURCE, "image"],
        outputs=[("IMAGE", "IMAGE"), ("MASK", "MASK")],
        size=(320, 330),
        title=SOURCE_TITLE,
    )
    return g, checkpoint, source


def _vae_encode(g: UIGraph, source: int, checkpoint: int) -> int:
    encode = g.add(
        "VAEEncode",
        (800, 600),
        inputs=[("pixels", "IMAGE"), ("vae", "VAE")],
        outputs=[("LATENT", "LATENT")],
        size=(220, 50),
    )
    g.connect(source, 0, encode, "pixels")
    g.connect(checkpoint, 2, encode, "vae")
    return encode


def _sample_and_decode(
    g: UIGraph, checkpoint: int, model: int, positive: int, negative: int, latent: int, denoise: float
) -> int:
    """KSampler on the patched model and the refined conditioning, then VAEDecode; returns the decode."""
    sampler = _sampler(g, 1200, 0, denoise=denoise)
    g.connect(model, 0, sampler, "model")
    g.connect(positive, 0, sampler, "positive")
    g.connect(negative, 0, sampler, "negative")
    g.connect(latent, 0, sampler, "latent_image")
    decode = g.add(
        "VAEDecode",
        (1200, 320),
        inputs=[("samples", "LATENT"), ("vae", "VAE")],
        outputs=[("IMAGE", "IMAGE")],
        size=(220, 50),
    )
    g.connect(sampler, 0, decode, "samples")
    g.connect(checkpoint, 2, decode, "vae")
    return decode


def masked_edit_workflow() -> dict:
    g, checkpoint, source = _start("6f1b8f0e-6d1a-4a8e-9a51-6d9c2f0b7a11", MASKED_NOTE, (700, 180))
    mask_image = g.add(
        "LoadImage",
        (0, 530),
        widgets=[SAMPLE_MASK, "image"],
        outputs=[("IMAGE", "IMAGE"), ("MASK", "MASK")],
        size=(320, 330),
        title=MASK_TITLE,
    )
    mask = g.add(
        "ImageToMask",
        (0, 900),
        widgets=["red"],
        inputs=[("image", "IMAGE")],
        outputs=[("MASK", "MASK")],
        size=(320, 60),
        title="Mask from the red channel",
    )
    g.connect(mask_image, 0, mask, "image")
    grow = g.add(
        "GrowMask",
        (380, 530),
        widgets=[6, True],
        inputs=[("mask", "MASK")],
        outputs=[("MASK", "MASK")],
        size=(300, 90),
    )
    to_image = g.add(
        "MaskToImage", (380, 660), inputs=[("mask", "MASK")], outputs=[("IMAGE", "IMAGE")], size=(300, 30)
    )
    blur = g.add(
        "ImageBlur",
        (380, 730),
        widgets=[4, 2.0],
        inputs=[("image", "IMAGE")],
        outputs=[("IMAGE", "IMAGE")],
        size=(300, 90),
        title="Feather mask edge (blur)",
    )
    soft = g.add(
        "ImageToMask",
        (380, 860),
        widgets=["red"],
        inputs=[("image", "IMAGE")],
        outputs=[("MASK", "MASK")],
        size=(300, 60),
    )
    g.connect(mask, 0, grow, "mask")
    g.connect(grow, 0, to_image, "mask")
    g.connect(to_image, 0, blur, "image")
    g.connect(blur, 0, soft, "image")

    _loader, mindedit = _mindedit_section(g, source, 380, 0, with_mask=True)
    g.connect(mask, 0, mindedit, "mask")
    ip_apply, positive, negative = _conditioning_section(g, checkpoint, mindedit, 800, 0, attn_mask=soft)

    encode = _vae_encode(g, source, checkpoint)
    noise_mask = g.add(
        "SetLatentNoiseMask",
        (800, 700),
        inputs=[("samples", "LATENT"), ("mask", "MASK")],
        outputs=[("LATENT", "LATENT")],
        size=(240, 50),
    )
    g.connect(encode, 0, noise_mask, "samples")
    g.connect(soft, 0, noise_mask, "mask")

    decode = _sample_and_decode(g, checkpoint, ip_apply, positive, negative, noise_mask, denoise=0.9)
    composite = g.add(
        "ImageCompositeMasked",
        (1200, 420),
        widgets=[0, 0, False],
        inputs=[("destination", "IMAGE"), ("source", "IMAGE"), ("mask", "MASK")],
        outputs=[("IMAGE", "IMAGE")],
        size=(320, 150),
        title="Paste the edit into the source (outside the mask stays exact)",
    )
    g.connect(source, 0, composite, "destination")
    g.connect(decode, 0, composite, "source")
    g.connect(soft, 0, composite, "mask")
    save = g.add(
        "SaveImage",
        (1580, 0),
        widgets=["mindedit/masked_edit"],
        inputs=[("images", "IMAGE")],
        size=(420, 460),
    )
    g.connect(composite, 0, save, "images")
    _previews(g, mindedit, 1580, 520)
    return g.to_dict()


def edit_workflow() -> dict:
    g, checkpoint, source = _start("0c5d3f4e-2a7b-4c1d-8e9f-3b2a1c0d9e8f", EDIT_NOTE, (700, 120))
    _loader, mindedit = _mindedit_section(g, source, 380, 0, with_mask=False)
    ip_apply, positive, negative = _conditioning_section(g, checkpoint, mindedit, 800, 0, attn_mask=None)
    encode = _vae_encode(g, source, checkpoint)
    decode = _sample_and_decode(g, checkpoint, ip_apply, positive, negative, encode, denoise=0.65)
    save = g.add(
        "SaveImage", (1580, 0), widgets=["mindedit/edit"], inputs=[("images", "IMAGE")], size=(420, 460)
    )
    g.connect(decode, 0, save, "images")
    _previews(g, mindedit, 1580, 520)
    return g.to_dict()


WORKFLOWS = {MASKED_WORKFLOW: masked_edit_workflow, EDIT_WORKFLOW: edit_workflow}


def render(workflow: dict) -> str:
    return json.dumps(workflow, indent=2) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--check", action="store_true", help="exit 1 if workflows/*.json differ from the generator"
    )
    parser.add_argument("--out", type=Path, default=WORKFLOWS_DIR, help="target folder (default: workflows/)")
    args = parser.parse_args(argv)
    stale = []
    for name, build in WORKFLOWS.items():
        path = args.out / f"{name}.json"
        text = render(build())
        if args.check:
            if not path.is_file() or path.read_text() != text:
                stale.append(path)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {path}")
    if stale:
        print(
            "out of date (run python -m devkit.build_workflows): " + ", ".join(map(str, stale)),
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
