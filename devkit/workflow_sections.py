"""The sections the shipped workflows are built from, laid out in titled groups of columns.

Each helper adds one part of a graph (models, source and mask, the MIND-Edit node, the IP-Adapter,
sampling, output) to a `Layout` and returns the node ids the next part links to.
"""

from __future__ import annotations

from dataclasses import dataclass

from devkit.node_layout import preview_node_height
from devkit.ui_graph import Column, UIGraph
from devkit.workflow_parts import (
    BACK_TO_SOURCE_TITLE,
    GROUP_EDIT,
    GROUP_INPUT,
    GROUP_MINDEDIT,
    GROUP_MODELS,
    GROUP_OUTPUT,
    IPADAPTER_APPLY_VALUES,
    MASK_TITLE,
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
    UNPAD_TITLE,
    WORKING_SIZE_TITLE,
    Family,
    pack_node,
)
from mindedit_core import node_specs as specs
from mindedit_core.node_schema import NodeSpec

COLUMN_WIDTH = 400
COLUMN_STEP = COLUMN_WIDTH + 60
NOTES_HEIGHT = 300
TOP = NOTES_HEIGHT + 110  # first node title bar below the notes and the group titles


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

    def add_pack(
        self,
        group: str,
        spec: NodeSpec,
        index: int = 0,
        values: dict | None = None,
        **kwargs,
    ) -> int:
        """One of the pack's nodes, its type, widgets and sockets read from its declaration."""
        return self.add(group, index=index, **pack_node(spec, values), **kwargs)

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
    loader = lay.add_pack(
        GROUP_MODELS,
        specs.MLLM_LOADER,
        values={"model_folder": llm_folder, "mindedit_checkpoint": mindedit_checkpoint},
    )
    ip_loader = None
    if with_ipadapter:
        ip_loader = lay.add_pack(
            GROUP_MODELS,
            specs.IPADAPTER_LOADER,
            values={"ipadapter_file": lay.family.ipadapter},
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
    region = lay.add_pack(GROUP_INPUT, specs.EDIT_REGION)
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
    node = lay.add_pack(
        GROUP_MINDEDIT,
        specs.REFINE_AND_EMBED if embeds else specs.REFINE_INSTRUCTION,
        values={"instruction": instruction, **({"style": style} if style else {})},
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
    apply = lay.add_pack(
        GROUP_MINDEDIT,
        specs.APPLY_IPADAPTER,
        values=IPADAPTER_APPLY_VALUES,
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
    """Pad, encode (+ noise mask), sample, decode; returns the node whose IMAGE the paste takes.

    A family with a working size (SDXL) first scales the source to it and, after decoding, crops the
    VAE padding and scales the edit back to the source's size (the paste then keeps it in place)."""
    g = lay.graph
    working = source
    if lay.family.working_side:
        working = lay.add(
            lay.edit_group,
            "ImageScaleToMaxDimension",
            widgets=["lanczos", lay.family.working_side],
            inputs=[("image", "IMAGE")],
            outputs=[("IMAGE", "IMAGE")],
            title=WORKING_SIZE_TITLE,
        )
        g.connect(source, 0, working, "image")
    pad = lay.add_pack(lay.edit_group, specs.PAD_FOR_VAE)
    encode = lay.add(
        lay.edit_group,
        "VAEEncode",
        inputs=[("pixels", "IMAGE"), ("vae", "VAE")],
        outputs=[("LATENT", "LATENT")],
    )
    g.connect(working, 0, pad, "image")
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
    sampler = add_ksampler(
        lay,
        lay.edit_group,
        [0, "randomize", 25, 7.0, "euler_ancestral", "normal", denoise],
        model,
        cond,
        latent,
    )
    decode = lay.add(
        lay.edit_group,
        "VAEDecode",
        1,
        inputs=[("samples", "LATENT"), ("vae", "VAE")],
        outputs=[("IMAGE", "IMAGE")],
    )
    g.connect(sampler, 0, decode, "samples")
    g.connect(checkpoint, 2, decode, "vae")
    if working == source:
        return decode
    unpadded = resize_to(lay, "ImageCrop", decode, working, "Working size", UNPAD_TITLE)
    return resize_to(lay, "ImageScale", unpadded, source, "Source size", BACK_TO_SOURCE_TITLE)


def add_ksampler(
    lay: Layout, group: str, widgets: list, model: int, cond: tuple[int, int], latent: int
) -> int:
    """A KSampler in ``group`` with these widget values, fed by ``model``, the (positive, negative)
    conditioning nodes ``cond`` and ``latent``; returns its node."""
    g = lay.graph
    sampler = lay.add(
        group,
        "KSampler",
        1,
        widgets=widgets,
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
    return sampler


def resize_to(
    lay: Layout, kind: str, image: int, like: int, size_title: str, title: str, group: str | None = None
) -> int:
    """``image`` cropped (``ImageCrop``, from the top left) or scaled (``ImageScale``) to the size of
    ``like``, read by a ``GetImageSize`` node, both in ``group`` (default: the edit group); returns
    the new IMAGE node."""
    g = lay.graph
    group = group or lay.edit_group
    size = lay.add(
        group,
        "GetImageSize",
        1,
        inputs=[("image", "IMAGE")],
        outputs=[("width", "INT"), ("height", "INT"), ("batch_size", "INT")],
        title=size_title,
    )
    g.connect(like, 0, size, "image")
    values = [512, 512, 0, 0] if kind == "ImageCrop" else ["lanczos", 512, 512, "disabled"]
    node = lay.add(
        group,
        kind,
        1,
        widgets=values,
        inputs=[("image", "IMAGE")],
        widget_inputs=[("width", "INT"), ("height", "INT")],
        outputs=[("IMAGE", "IMAGE")],
        title=title,
    )
    g.connect(image, 0, node, "image")
    g.connect(size, 0, node, "width")
    g.connect(size, 1, node, "height")
    return node


def add_output(
    lay: Layout,
    source: int,
    decode: int,
    soft: int | None,
    refine: int,
    region: int | None,
    prefix: str,
    status_text: str,
) -> None:
    """Paste at the source's size, save, and preview the prompts and the one status text (its box
    tall enough to show ``status_text``, the status the workflow shows when a run falls back). Without
    an edit region the paste gets the source's MASK (1 - alpha), so a source with transparency is
    reported."""
    g = lay.graph
    paste = lay.add_pack(GROUP_OUTPUT, specs.PASTE_EDIT)
    g.connect(source, 0, paste, "source")
    g.connect(decode, 0, paste, "edited")
    if soft:
        g.connect(soft, 0, paste, "edit_mask")
    if region is None:
        g.connect(source, 1, paste, "source_mask")
    save = lay.add(GROUP_OUTPUT, "SaveImage", widgets=[prefix], inputs=[("images", "IMAGE")], preview=True)
    g.connect(paste, 0, save, "images")
    status = lay.add_pack(GROUP_OUTPUT, specs.STATUS_JOIN, 1)
    g.connect(refine, 5 if len(g.nodes[refine].outputs) == 6 else 3, status, "mllm_status")
    if region:
        g.connect(region, 2, status, "mask_status")
    g.connect(paste, 1, status, "image_status")
    status_height = preview_node_height(status_text, COLUMN_WIDTH)
    for title, src, slot, height in (
        (STATUS_PREVIEW_TITLE, status, 0, status_height),
        (POSITIVE_PREVIEW_TITLE, refine, 0, 140),
        (NEGATIVE_PREVIEW_TITLE, refine, 1, 140),
    ):
        preview = lay.add(
            GROUP_OUTPUT,
            "PreviewAny",
            1,
            inputs=[("source", "*")],
            text_box=True,
            title=title,
            min_height=height,
        )
        g.connect(src, slot, preview, "source")


GROUP_COLUMNS = {GROUP_MODELS: 1, GROUP_INPUT: 2, GROUP_MINDEDIT: 1, GROUP_EDIT: 2, GROUP_OUTPUT: 2}
