"""The sections the shipped workflows are built from, laid out in titled groups of columns.

Each helper adds one part of a graph (models, source and mask, the MIND-Edit node, the IP-Adapter,
sampling, output) to a `Layout` and returns the node ids the next part links to.
"""

from __future__ import annotations

from dataclasses import dataclass

from devkit.ui_graph import Column, UIGraph
from devkit.workflow_parts import (
    GROUP_EDIT,
    GROUP_INPUT,
    GROUP_MINDEDIT,
    GROUP_MODELS,
    GROUP_OUTPUT,
    IPADAPTER_APPLY,
    IPADAPTER_APPLY_WIDGETS,
    IPADAPTER_LOADER,
    IPADAPTER_TYPE,
    MASK_TITLE,
    MLLM_LOADER,
    MLLM_LOADER_OPTIONS,
    NEGATIVE_PREVIEW_TITLE,
    NOTE_BG,
    NOTE_COLOR,
    POSITIVE_PREVIEW_TITLE,
    REFINE_TITLE,
    SAMPLE_MASK,
    SAMPLE_SOURCE,
    SD15,
    SOURCE_TITLE,
    STATUS_PREVIEW_TITLE,
    Family,
)

COLUMN_WIDTH = 400
COLUMN_STEP = COLUMN_WIDTH + 60
NOTES_HEIGHT = 300
TOP = NOTES_HEIGHT + 110  # first node title bar below the notes and the group titles
REFINED_OUTPUTS = [("positive", "STRING"), ("negative", "STRING")]
STATUS_LINES = ("mllm_status", "mask_status", "image_status")


@dataclass
class Layout:
    """Columns per group, left to right; `members` collects the node ids of each group."""

    graph: UIGraph
    columns: dict[str, list[Column]]
    members: dict[str, list[int]]
    family: Family = SD15

    @property
    def edit_group(self) -> str:
        return self.family.edit_group

    def col(self, group: str, index: int = 0) -> Column:
        return self.columns[group][index]

    def add(self, group: str, type: str, index: int = 0, **kwargs) -> int:
        node = self.col(group, index).add(type, **kwargs)
        self.members[group].append(node)
        return node

    def finish(self) -> dict:
        colors = ("#3f789e", "#8a6d3b", "#5b4a8a", "#4a7a4a", "#7a4a5b")
        for (title, ids), color in zip(self.members.items(), colors):
            if ids:
                self.graph.fit_group(title, ids, color)
        return self.graph.to_dict()


def new_layout(
    workflow_id: str,
    note: str,
    columns_per_group: dict[str, int],
    family: Family = SD15,
    models_note: str | None = None,
) -> Layout:
    """Notes on top, then one column set per group; the family names the edit group and the models
    (``models_note`` replaces the family's note: the instruction-editor workflows)."""
    columns_per_group = {
        (family.edit_group if k == GROUP_EDIT else k): n for k, n in columns_per_group.items()
    }
    g = UIGraph(workflow_id)
    notes = Column(g, 0, 0, 2 * COLUMN_STEP - 60)
    notes.add(
        "Note",
        widgets=[models_note or family.models_note],
        tall=(0,),
        min_height=NOTES_HEIGHT,
        color=NOTE_COLOR,
        bgcolor=NOTE_BG,
    )
    Column(g, 2 * COLUMN_STEP, 0, 2 * COLUMN_STEP - 60).add(
        "Note", widgets=[note], tall=(0,), min_height=NOTES_HEIGHT, color=NOTE_COLOR, bgcolor=NOTE_BG
    )
    columns, x = {}, 0
    for group, count in columns_per_group.items():
        columns[group] = [Column(g, x + i * COLUMN_STEP, TOP, COLUMN_WIDTH) for i in range(count)]
        x += count * COLUMN_STEP + 20
    return Layout(g, columns, {group: [] for group in columns_per_group}, family)


def add_models(
    lay: Layout, llm_folder: str, mindedit_checkpoint: str, with_ipadapter: bool
) -> tuple[int, int, int | None]:
    checkpoint = lay.add(
        GROUP_MODELS,
        "CheckpointLoaderSimple",
        widgets=[lay.family.checkpoint],
        outputs=[("MODEL", "MODEL"), ("CLIP", "CLIP"), ("VAE", "VAE")],
        models=[lay.family.checkpoint_model],
    )
    loader = lay.add(
        GROUP_MODELS,
        MLLM_LOADER,
        widgets=[llm_folder, mindedit_checkpoint, *MLLM_LOADER_OPTIONS],
        outputs=[("mllm", "MINDEDIT_MLLM")],
    )
    ip_loader = None
    if with_ipadapter:
        ip_loader = lay.add(
            GROUP_MODELS,
            IPADAPTER_LOADER,
            widgets=[lay.family.ipadapter],
            outputs=[("ipadapter", IPADAPTER_TYPE)],
            models=[lay.family.ipadapter_model],
        )
    return checkpoint, loader, ip_loader


def add_source_and_mask(lay: Layout, with_mask_file: bool) -> tuple[int, int, int]:
    """Source (+ mask file), the edit region and its feathered copy: (source, region, soft mask)."""
    g = lay.graph
    image_outputs = [("IMAGE", "IMAGE"), ("MASK", "MASK")]
    source = lay.add(
        GROUP_INPUT,
        "LoadImage",
        widgets=[SAMPLE_SOURCE, "image"],
        outputs=image_outputs,
        preview=True,
        title=SOURCE_TITLE,
    )
    region_inputs = [("image", "IMAGE"), ("painted_mask", "MASK")]
    mask_file = None
    if with_mask_file:
        mask_file = lay.add(
            GROUP_INPUT,
            "LoadImage",
            widgets=[SAMPLE_MASK, "image"],
            outputs=image_outputs,
            preview=True,
            title=MASK_TITLE,
        )
        region_inputs += [("mask_image", "IMAGE"), ("mask_alpha", "MASK")]
    region = lay.add(
        GROUP_INPUT,
        "MindEditEditRegion",
        inputs=region_inputs,
        outputs=[("mllm_mask", "MASK"), ("edit_mask", "MASK"), ("status", "STRING")],
    )
    g.connect(source, 0, region, "image")
    g.connect(source, 1, region, "painted_mask")
    if mask_file is not None:
        g.connect(mask_file, 0, region, "mask_image")
        g.connect(mask_file, 1, region, "mask_alpha")
    index = 1 if with_mask_file else 0
    grow = lay.add(
        GROUP_INPUT,
        "GrowMask",
        index,
        widgets=[6, True],
        inputs=[("mask", "MASK")],
        outputs=[("MASK", "MASK")],
    )
    to_image = lay.add(
        GROUP_INPUT, "MaskToImage", index, inputs=[("mask", "MASK")], outputs=[("IMAGE", "IMAGE")]
    )
    blur = lay.add(
        GROUP_INPUT,
        "ImageBlur",
        index,
        widgets=[4, 2.0],
        inputs=[("image", "IMAGE")],
        outputs=[("IMAGE", "IMAGE")],
        title="Feather mask edge (blur)",
    )
    soft = lay.add(
        GROUP_INPUT,
        "ImageToMask",
        index,
        widgets=["red"],
        inputs=[("image", "IMAGE")],
        outputs=[("MASK", "MASK")],
        title="Soft edit mask",
    )
    g.connect(region, 1, grow, "mask")
    g.connect(grow, 0, to_image, "mask")
    g.connect(to_image, 0, blur, "image")
    g.connect(blur, 0, soft, "image")
    return source, region, soft


def add_refine(
    lay: Layout,
    loader: int,
    source: int,
    region: int | None,
    instruction: str,
    embeds: bool,
    style: str | None = None,
) -> int:
    """The MIND-Edit node; ``style`` (refine node only) is its output style widget, appended after
    the others as the node declares it (None: left at its default, as older workflows have it)."""
    g = lay.graph
    inputs = [("mllm", "MINDEDIT_MLLM"), ("image", "IMAGE")] + ([("mask", "MASK")] if region else [])
    outputs = REFINED_OUTPUTS + ([("pos_embeds", "EMBEDS"), ("neg_embeds", "EMBEDS")] if embeds else [])
    node = lay.add(
        GROUP_MINDEDIT,
        "MindEditRefineAndEmbed" if embeds else "MindEditRefineInstruction",
        widgets=[instruction, 0, "fixed", 200, 384] + ([style] if style else []),
        tall=(0,),
        inputs=inputs,
        outputs=outputs + [("raw_answer", "STRING"), ("status", "STRING")],
        title=REFINE_TITLE,
    )
    g.connect(loader, 0, node, "mllm")
    g.connect(source, 0, node, "image")
    if region:
        g.connect(region, 0, node, "mask")
    return node


def add_text_encoders(lay: Layout, checkpoint: int, refine: int) -> tuple[int, int]:
    encoders = []
    for slot, which in ((0, "positive"), (1, "negative")):
        enc = lay.add(
            lay.edit_group,
            "CLIPTextEncode",
            widgets=[""],
            tall=(0,),
            inputs=[("clip", "CLIP")],
            widget_inputs=[("text", "STRING")],
            outputs=[("CONDITIONING", "CONDITIONING")],
            title=f"CLIP Text Encode (refined {which})",
        )
        lay.graph.connect(checkpoint, 1, enc, "clip")
        lay.graph.connect(refine, slot, enc, "text")
        encoders.append(enc)
    return encoders[0], encoders[1]


def add_ipadapter(lay: Layout, checkpoint: int, ip_loader: int, refine: int, soft: int | None) -> int:
    g = lay.graph
    inputs = [
        ("model", "MODEL"),
        ("ipadapter", IPADAPTER_TYPE),
        ("pos_embed", "EMBEDS"),
        ("neg_embed", "EMBEDS"),
    ]
    apply = lay.add(
        GROUP_MINDEDIT,
        IPADAPTER_APPLY,
        widgets=list(IPADAPTER_APPLY_WIDGETS),
        inputs=inputs + ([("attn_mask", "MASK")] if soft else []),
        outputs=[("MODEL", "MODEL")],
    )
    g.connect(checkpoint, 0, apply, "model")
    g.connect(ip_loader, 0, apply, "ipadapter")
    g.connect(refine, 2, apply, "pos_embed")
    g.connect(refine, 3, apply, "neg_embed")
    if soft:
        g.connect(soft, 0, apply, "attn_mask")
    return apply


def add_sampling(
    lay: Layout,
    checkpoint: int,
    model: int,
    source: int,
    cond: tuple[int, int],
    soft: int | None,
    denoise: float,
) -> int:
    """Pad, encode (+ noise mask), sample, decode; returns the VAE Decode node."""
    g = lay.graph
    pad = lay.add(
        lay.edit_group, "MindEditPadForVAE", inputs=[("image", "IMAGE")], outputs=[("image", "IMAGE")]
    )
    encode = lay.add(
        lay.edit_group,
        "VAEEncode",
        inputs=[("pixels", "IMAGE"), ("vae", "VAE")],
        outputs=[("LATENT", "LATENT")],
    )
    g.connect(source, 0, pad, "image")
    g.connect(pad, 0, encode, "pixels")
    g.connect(checkpoint, 2, encode, "vae")
    latent = encode
    if soft:
        latent = lay.add(
            lay.edit_group,
            "SetLatentNoiseMask",
            inputs=[("samples", "LATENT"), ("mask", "MASK")],
            outputs=[("LATENT", "LATENT")],
        )
        g.connect(encode, 0, latent, "samples")
        g.connect(soft, 0, latent, "mask")
    sampler = lay.add(
        lay.edit_group,
        "KSampler",
        1,
        widgets=[0, "randomize", 25, 7.0, "euler_ancestral", "normal", denoise],
        inputs=[
            ("model", "MODEL"),
            ("positive", "CONDITIONING"),
            ("negative", "CONDITIONING"),
            ("latent_image", "LATENT"),
        ],
        outputs=[("LATENT", "LATENT")],
    )
    g.connect(model, 0, sampler, "model")
    g.connect(cond[0], 0, sampler, "positive")
    g.connect(cond[1], 0, sampler, "negative")
    g.connect(latent, 0, sampler, "latent_image")
    decode = lay.add(
        lay.edit_group,
        "VAEDecode",
        1,
        inputs=[("samples", "LATENT"), ("vae", "VAE")],
        outputs=[("IMAGE", "IMAGE")],
    )
    g.connect(sampler, 0, decode, "samples")
    g.connect(checkpoint, 2, decode, "vae")
    return decode


def add_output(
    lay: Layout, source: int, decode: int, soft: int | None, refine: int, region: int | None, prefix: str
) -> None:
    """Paste at the source's size, save, and preview the prompts and the one status text. Without an
    edit region the paste gets the source's MASK (1 - alpha), so a source with transparency is reported."""
    g = lay.graph
    paste = lay.add(
        GROUP_OUTPUT,
        "MindEditPasteEdit",
        inputs=[("source", "IMAGE"), ("edited", "IMAGE")]
        + ([("edit_mask", "MASK")] if soft else [])
        + ([("source_mask", "MASK")] if region is None else []),
        outputs=[("image", "IMAGE"), ("status", "STRING")],
    )
    g.connect(source, 0, paste, "source")
    g.connect(decode, 0, paste, "edited")
    if soft:
        g.connect(soft, 0, paste, "edit_mask")
    if region is None:
        g.connect(source, 1, paste, "source_mask")
    save = lay.add(GROUP_OUTPUT, "SaveImage", widgets=[prefix], inputs=[("images", "IMAGE")], preview=True)
    g.connect(paste, 0, save, "images")
    status = lay.add(
        GROUP_OUTPUT,
        "MindEditStatus",
        1,
        inputs=[(name, "STRING") for name in STATUS_LINES],
        outputs=[("status", "STRING")],
    )
    g.connect(refine, 5 if len(g.nodes[refine].outputs) == 6 else 3, status, "mllm_status")
    if region:
        g.connect(region, 2, status, "mask_status")
    g.connect(paste, 1, status, "image_status")
    for title, src, slot in (
        (STATUS_PREVIEW_TITLE, status, 0),
        (POSITIVE_PREVIEW_TITLE, refine, 0),
        (NEGATIVE_PREVIEW_TITLE, refine, 1),
    ):
        preview = lay.add(
            GROUP_OUTPUT,
            "PreviewAny",
            1,
            inputs=[("source", "*")],
            text_box=True,
            title=title,
            min_height=140,
        )
        g.connect(src, slot, preview, "source")


GROUP_COLUMNS = {GROUP_MODELS: 1, GROUP_INPUT: 2, GROUP_MINDEDIT: 1, GROUP_EDIT: 2, GROUP_OUTPUT: 2}
