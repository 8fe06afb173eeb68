"""The shipped UI workflows, without ComfyUI: up to date with their generator, internally consistent
(every link recorded on both ends, as the frontend requires), thumbnails present, models as widgets."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from devkit import build_workflows as wf
from devkit.ui_graph import UIGraph


def _load(name):
    return json.loads((wf.WORKFLOWS_DIR / f"{name}.json").read_text())


def test_shipped_files_match_the_generator():
    assert wf.main(["--check"]) == 0, (
        "workflows/*.json differ from devkit/build_workflows.py: regenerate them"
    )


@pytest.mark.parametrize("name", sorted(wf.WORKFLOWS))
def test_links_are_recorded_on_both_ends(name):
    workflow = _load(name)
    nodes = {n["id"]: n for n in workflow["nodes"]}
    assert workflow["last_link_id"] == max(link[0] for link in workflow["links"])
    assert workflow["last_node_id"] == max(nodes)
    for link_id, src, src_slot, dst, dst_slot, link_type in workflow["links"]:
        out = nodes[src]["outputs"][src_slot]
        assert link_id in out["links"] and out["type"] == link_type
        sock = nodes[dst]["inputs"][dst_slot]
        assert sock["link"] == link_id and sock["type"] in (link_type, "*")
    linked = {link[0] for link in workflow["links"]}
    for node in workflow["nodes"]:
        for sock in node["inputs"]:
            assert sock["link"] is None or sock["link"] in linked


def _by_type(workflow):
    by_type = {}
    for node in workflow["nodes"]:
        by_type.setdefault(node["type"], []).append(node)
    return by_type


def _source_of(workflow, node, input_name):
    nodes = {n["id"]: n for n in workflow["nodes"]}
    links = {link[0]: link for link in workflow["links"]}
    (sock,) = [s for s in node["inputs"] if s["name"] == input_name]
    link = links[sock["link"]]
    return nodes[link[1]], link[2]


@pytest.mark.parametrize("name", sorted(wf.SD_WORKFLOWS))
def test_models_are_ordinary_widgets_and_notes_say_where_files_go(name):
    workflow = _load(name)
    by_type = _by_type(workflow)
    family = wf.WORKFLOW_FAMILIES[name]
    assert by_type["CheckpointLoaderSimple"][0]["widgets_values"] == [family.checkpoint]
    refine_only = name in (wf.REFINE_ONLY_WORKFLOW, wf.SDXL_REFINE_ONLY_WORKFLOW)
    vlm = wf.REFINE_ONLY_LLM_FOLDER if refine_only else wf.DEFAULT_LLM_FOLDER
    checkpoint = wf.NO_MINDEDIT_CHECKPOINT if refine_only else wf.DEFAULT_MINDEDIT_CHECKPOINT
    assert by_type["MindEditMLLMLoader"][0]["widgets_values"][:2] == [vlm, checkpoint]
    notes = " ".join(n["widgets_values"][0] for n in by_type["Note"])
    for folder in ("checkpoints/", "LLM/", "mindedit/", "ipadapter/", "python -m devkit.download_models"):
        assert folder in notes
    (refine,) = [n for n in workflow["nodes"] if n.get("title") == wf.REFINE_TITLE]
    # The MLLM seed is fixed so a re-queue with a new KSampler seed reuses the refined prompts.
    assert refine["widgets_values"][1:3] == [0, "fixed"]
    # Refined prompts reach CLIP Text Encode through its `text` widget converted to an input.
    for enc in by_type["CLIPTextEncode"]:
        (text,) = [s for s in enc["inputs"] if s["name"] == "text"]
        assert text["widget"] == {"name": "text"} and text["link"] is not None
        assert _source_of(workflow, enc, "text")[0] is refine


def test_the_default_vlms_are_the_download_helpers_folders():
    from devkit.download_models import catalogue

    folders = {item.target.name for item in catalogue(wf.REPO_ROOT / "models").values()}
    assert {wf.DEFAULT_LLM_FOLDER, wf.REFINE_ONLY_LLM_FOLDER} <= folders
    assert wf.REFINE_ONLY_LLM_FOLDER == "Qwen2.5-VL-3B-Instruct"
    assert f"--what {wf.REFINE_ONLY_LLM_KEY}" in wf.REFINE_ONLY_NOTE


def test_the_refine_only_workflow_needs_no_mindedit_checkpoint_nor_ip_adapter():
    workflow = _load(wf.REFINE_ONLY_WORKFLOW)
    by_type = _by_type(workflow)
    assert wf.IPADAPTER_LOADER not in by_type and wf.IPADAPTER_APPLY not in by_type
    assert "MindEditRefineAndEmbed" not in by_type and "MindEditInsightEmbeds" not in by_type
    (sampler,) = by_type["KSampler"]
    assert _source_of(workflow, sampler, "model")[0]["type"] == "CheckpointLoaderSimple"


@pytest.mark.parametrize("name", [wf.MASKED_WORKFLOW, wf.REFINE_ONLY_WORKFLOW])
def test_masked_workflows_paste_onto_the_source_through_the_edit_region(name):
    workflow = _load(name)
    by_type = _by_type(workflow)
    (paste,) = by_type["MindEditPasteEdit"]
    assert _source_of(workflow, paste, "source")[0].get("title") == wf.SOURCE_TITLE
    assert _source_of(workflow, paste, "edited")[0]["type"] == "VAEDecode"
    (region,) = by_type["MindEditEditRegion"]
    assert _source_of(workflow, region, "painted_mask") == (_source_of(workflow, region, "image")[0], 1)
    # The soft mask the paste uses descends from the edit region's edit_mask (slot 1).
    node, _ = _source_of(workflow, paste, "edit_mask")
    chain = []
    while node["type"] != "MindEditEditRegion":
        chain.append(node["type"])
        node, slot = _source_of(workflow, node, node["inputs"][0]["name"])
    assert slot == 1 and chain == ["ImageToMask", "ImageBlur", "MaskToImage", "GrowMask"]
    (save,) = by_type["SaveImage"]
    assert _source_of(workflow, save, "images")[0] is paste


def test_the_masked_workflow_reads_the_mask_file_from_alpha_and_red():
    workflow = _load(wf.MASKED_WORKFLOW)
    (region,) = _by_type(workflow)["MindEditEditRegion"]
    mask_file, slot = _source_of(workflow, region, "mask_image")
    assert mask_file.get("title") == wf.MASK_TITLE and slot == 0
    assert _source_of(workflow, region, "mask_alpha") == (mask_file, 1)


@pytest.mark.parametrize("name", sorted(wf.WORKFLOWS))
def test_every_status_line_reaches_the_status_preview(name):
    workflow = _load(name)
    (status,) = _by_type(workflow)["MindEditStatus"]
    sources = {s["name"]: _source_of(workflow, status, s["name"]) for s in status["inputs"] if s["link"]}
    assert sources["mllm_status"][0].get("title") == wf.REFINE_TITLE
    assert sources["image_status"][0]["type"] == "MindEditPasteEdit"
    assert ("mask_status" in sources) == (name not in (wf.EDIT_WORKFLOW, wf.SDXL_EDIT_WORKFLOW))
    (preview,) = [n for n in workflow["nodes"] if n.get("title") == wf.STATUS_PREVIEW_TITLE]
    assert _source_of(workflow, preview, "source")[0] is status


@pytest.mark.parametrize("name", sorted(wf.WORKFLOWS))
def test_file_loaders_name_their_download_and_the_folder_the_node_reads(name):
    """properties.models as ComfyUI's templates carry them. That `directory` is the folder each node
    reads is checked against the pack (test_nodes_inprocess.py) and a live server (test_workflows_e2e.py)."""
    from devkit.download_models import catalogue

    folders = {
        "CheckpointLoaderSimple": "checkpoints",
        wf.IPADAPTER_LOADER: "ipadapter",
        "UNETLoader": "diffusion_models",
        "CLIPLoader": "text_encoders",
        "DualCLIPLoader": "text_encoders",
        "VAELoader": "vae",
    }
    for node in _load(name)["nodes"]:
        if node["type"] not in folders:
            assert "models" not in node["properties"], node["type"]
            continue
        entries = node["properties"]["models"]
        files = 2 if node["type"] == "DualCLIPLoader" else 1
        assert len(entries) == files
        for entry, value in zip(entries, node["widgets_values"][:files]):
            assert entry["name"] == value, "the frontend matches the name to the widget value"
            assert entry["directory"] == folders[node["type"]]
            assert entry["url"].startswith("https://huggingface.co/") and entry["url"].endswith(
                "/" + entry["name"]
            )
    hub = catalogue(wf.REPO_ROOT / "models")["ipadapter-plain"]
    assert wf.IPADAPTER_MODEL["url"].endswith(f"{hub.repo_id}/resolve/main/{hub.files[0]}")
    hub = catalogue(wf.REPO_ROOT / "models")["ipadapter-sdxl-plain"]
    assert wf.SDXL_IPADAPTER_MODEL["url"].endswith(f"{hub.repo_id}/resolve/main/{hub.files[0]}")


_WORKING_SIZE_TYPES = ("ImageScaleToMaxDimension", "GetImageSize", "ImageCrop", "ImageScale")


def _node_key(node):
    """Type and title; the two notes (no title) by their column."""
    return (node["type"], node.get("title"), node["pos"][0] if node["type"] == "Note" else None)


def _logical_links(workflow, spliced=()):
    """Links as (source key, slot, target key, input name); nodes whose type is in ``spliced`` are
    taken out and each of their IMAGE paths is joined from its first input to its output's users."""
    nodes = {n["id"]: n for n in workflow["nodes"]}
    keys = [_node_key(n) for n in workflow["nodes"]]
    assert len(keys) == len(set(keys)), "every node is told apart by its key"
    feeds = {}  # node id -> (source id, slot) of its IMAGE input ("image")
    for _, src, slot, dst, dst_slot, _ in workflow["links"]:
        if nodes[dst]["inputs"][dst_slot]["name"] == "image":
            feeds[dst] = (src, slot)
    out = set()
    for _, src, slot, dst, dst_slot, _ in workflow["links"]:
        if nodes[dst]["type"] in spliced:
            continue
        while nodes[src]["type"] in spliced:
            src, slot = feeds[src]
        out.add((_node_key(nodes[src]), slot, _node_key(nodes[dst]), nodes[dst]["inputs"][dst_slot]["name"]))
    return out


@pytest.mark.parametrize("name", sorted(wf.SDXL_COUNTERPARTS))
def test_sdxl_workflows_are_the_sd15_graphs_with_sdxl_models(name):
    """The SD1.5 graph (nodes, links, widgets, layout) with the SDXL models, the _vit-h adapter (never
    the ViT-bigG one), the edit group's title, the models note and the output prefix, plus the
    working-size nodes: the source scaled to 1024 px on its longest side before the VAE, the decoded
    edit cropped of its VAE padding and scaled back to the source's size before the paste."""
    sdxl, sd15 = _load(name), _load(wf.SDXL_COUNTERPARTS[name])
    assert sdxl["id"] != sd15["id"]
    assert _logical_links(sdxl, _WORKING_SIZE_TYPES) == _logical_links(sd15)
    sd15_nodes = {_node_key(n): n for n in sd15["nodes"]}
    added = [n for n in sdxl["nodes"] if _node_key(n) not in sd15_nodes]
    assert sorted(n["type"] for n in added) == sorted(
        ["ImageScaleToMaxDimension", "GetImageSize", "GetImageSize", "ImageCrop", "ImageScale"]
    )
    (scale,) = [n for n in added if n["type"] == "ImageScaleToMaxDimension"]
    changed, moved = {}, []
    for a in sdxl["nodes"]:
        b = sd15_nodes.get(_node_key(a))
        if b is None:
            continue
        if a.get("widgets_values") != b.get("widgets_values"):
            changed[a["type"]] = a["widgets_values"]
        if (a["pos"], a["size"]) != (b["pos"], b["size"]):
            moved.append(a)
    expected = {"CheckpointLoaderSimple", "Note", "SaveImage"}
    if wf.IPADAPTER_LOADER in changed:
        expected.add(wf.IPADAPTER_LOADER)
        assert changed[wf.IPADAPTER_LOADER] == ["ip-adapter_sdxl_vit-h.safetensors"]
    assert set(changed) == expected
    assert changed["CheckpointLoaderSimple"] == ["sd_xl_base_1.0.safetensors"]
    assert changed["SaveImage"][0].startswith("mindedit/sdxl_")
    # only the nodes under the working-size node in its column moved (down, by the same amount)
    assert {n["type"] for n in moved} <= {"MindEditPadForVAE", "VAEEncode", "SetLatentNoiseMask"}
    shifts = {n["pos"][1] - sd15_nodes[_node_key(n)]["pos"][1] for n in moved}
    assert all(n["pos"][0] == scale["pos"][0] and n["pos"][1] > scale["pos"][1] for n in moved)
    assert len(shifts) == 1 and shifts.pop() > 0
    assert [g["title"] for g in sdxl["groups"]] == [
        "Edit (SDXL)" if g["title"] == "Edit (SD1.5)" else g["title"] for g in sd15["groups"]
    ]


@pytest.mark.parametrize("name", sorted(wf.SDXL_COUNTERPARTS))
def test_sdxl_workflows_sample_at_1024_px_and_paste_at_the_source_size(name):
    workflow = _load(name)
    by_type = _by_type(workflow)
    (source,) = [n for n in by_type["LoadImage"] if n.get("title") == wf.SOURCE_TITLE]
    (scale,) = by_type["ImageScaleToMaxDimension"]
    assert scale["title"] == wf.WORKING_SIZE_TITLE
    assert scale["widgets_values"] == ["lanczos", wf.SDXL_WORKING_SIDE] and wf.SDXL_WORKING_SIDE == 1024
    assert _source_of(workflow, scale, "image")[0] is source
    (pad,) = by_type["MindEditPadForVAE"]
    assert _source_of(workflow, pad, "image")[0] is scale
    (paste,) = by_type["MindEditPasteEdit"]
    assert _source_of(workflow, paste, "source")[0] is source
    back, _ = _source_of(workflow, paste, "edited")
    assert back["type"] == "ImageScale" and back["title"] == wf.BACK_TO_SOURCE_TITLE
    crop, _ = _source_of(workflow, back, "image")
    assert crop["type"] == "ImageCrop" and crop["widgets_values"][2:] == [0, 0], "cropped from the top left"
    assert _source_of(workflow, crop, "image")[0]["type"] == "VAEDecode"
    for node, like in ((crop, scale), (back, source)):
        size, _ = _source_of(workflow, node, "width")
        assert size["type"] == "GetImageSize" and _source_of(workflow, size, "image")[0] is like
        assert _source_of(workflow, node, "width")[1] == 0 and _source_of(workflow, node, "height") == (
            size,
            1,
        )


@pytest.mark.parametrize("name", sorted(wf.WORKFLOWS))
def test_no_two_nodes_overlap_and_groups_hold_their_nodes(name):
    from devkit.node_layout import GROUP_TITLE_HEIGHT, node_rect, overlaps

    workflow = _load(name)
    rects = {n["id"]: node_rect(n) for n in workflow["nodes"]}
    clashes = [(a, b) for a in rects for b in rects if a < b and overlaps(rects[a], rects[b])]
    assert not clashes, f"{name}: overlapping nodes {clashes}"
    titles = [g["title"] for g in workflow["groups"]]
    assert titles[0] == wf.GROUP_MODELS and wf.GROUP_MINDEDIT in titles and titles[-1] == wf.GROUP_OUTPUT
    boxes = []
    for group in workflow["groups"]:
        x, y, w, h = group["bounding"]
        boxes.append((x, y, x + w, y + h))
        assert not any(overlaps(boxes[-1], other) for other in boxes[:-1]), f"{name}: groups overlap"
    for node in workflow["nodes"]:
        left, top, right, bottom = rects[node["id"]]
        inside = [
            title
            for title, (gx0, gy0, gx1, gy1) in zip(titles, boxes)
            if gx0 <= left and gy0 + GROUP_TITLE_HEIGHT <= top and right <= gx1 and bottom <= gy1
        ]
        assert len(inside) == (0 if node["type"] == "Note" else 1), f"{name}: node {node['id']} in {inside}"


@pytest.mark.parametrize("name", sorted(wf.WORKFLOWS))
def test_each_workflow_has_a_thumbnail(name):
    thumb = wf.WORKFLOWS_DIR / f"{name}.jpg"
    assert thumb.is_file(), f"missing {thumb}: run `python -m devkit.demo --thumbnails`"
    with Image.open(thumb) as image:
        assert image.format == "JPEG" and image.width > image.height >= 64


@pytest.mark.parametrize("name", sorted(wf.SDXL_COUNTERPARTS))
def test_sdxl_thumbnails_are_their_own(name):
    """Each SDXL workflow's thumbnail comes from its own demo run (`python -m devkit.demo --sdxl
    --thumbnails`), marked SDXL: never a copy of its SD1.5 counterpart's."""
    own = (wf.WORKFLOWS_DIR / f"{name}.jpg").read_bytes()
    assert own != (wf.WORKFLOWS_DIR / f"{wf.SDXL_COUNTERPARTS[name]}.jpg").read_bytes()


def test_ui_graph_rejects_mismatched_links():
    g = UIGraph("x")
    a = g.add("A", (0, 0), outputs=[("IMAGE", "IMAGE")])
    b = g.add("B", (0, 0), inputs=[("mask", "MASK")])
    with pytest.raises(TypeError, match="types differ"):
        g.connect(a, 0, b, "mask")
    with pytest.raises(KeyError, match="no input socket 'nope'"):
        g.connect(a, 0, b, "nope")


# -- what the real frontend shows (1.49.6 / 1.58.1 findings, devkit/node_layout.py's model of it) -------


def _pack_node_info(node_type):
    """The /object_info entry of one of our nodes, from its declaration (combos left empty)."""
    from mindedit_core.node_specs import SPECS_BY_ID

    spec = SPECS_BY_ID.get(node_type)
    return None if spec is None else {"input": spec.input_types(lambda _choices: [])}


@pytest.mark.parametrize("name", sorted(wf.WORKFLOWS))
def test_the_frontend_never_grows_one_of_our_nodes_out_of_its_group(name):
    """Every declared socket takes a slot row once loaded, linked or not (the Apply node of the
    mask-free workflow used to end 10 px below its group)."""
    from devkit.node_layout import frontend_size

    for node in _load(name)["nodes"]:
        info = _pack_node_info(node["type"])
        if info is None and node["type"] != "PreviewAny":
            continue
        width, height = frontend_size(node, info)
        assert width <= node["size"][0] and height <= node["size"][1], (
            f"{name}: {node['type']} is stored {node['size']}, the frontend makes it {width:.0f}x{height:.0f}"
        )


@pytest.mark.parametrize("name", sorted(wf.WORKFLOWS))
def test_the_status_box_shows_the_whole_status_of_a_fallback_run(name):
    from devkit.node_layout import (
        DOM_WIDGET_SIDE_MARGIN,
        TEXTAREA_LINE_HEIGHT,
        TEXTAREA_PADDING,
        preview_box_height,
        text_box_lines,
    )

    workflow = _load(name)
    by_type = _by_type(workflow)
    (loader,) = by_type[wf.MLLM_LOADER]
    (refine,) = [n for n in workflow["nodes"] if n.get("title") == wf.REFINE_TITLE]
    status = wf.status_example(
        *loader["widgets_values"][:2], refine["widgets_values"][0], "MindEditEditRegion" in by_type
    )
    assert "WARNING" in status and "model:" in status and "size:" in status
    (box,) = [n for n in workflow["nodes"] if n.get("title") == wf.STATUS_PREVIEW_TITLE]
    width, height = box["size"]
    shown = int((preview_box_height(height) - 2 * TEXTAREA_PADDING) // TEXTAREA_LINE_HEIGHT)
    needed = text_box_lines(status, width - 2 * DOM_WIDGET_SIDE_MARGIN)
    assert needed <= shown, (
        f"{name}: the status box shows {shown} lines, the status takes {needed}:\n{status}"
    )


@pytest.mark.parametrize("name", sorted(wf.WORKFLOWS))
def test_the_opening_view_shows_the_first_group_whole_clear_of_the_sidebar(name):
    from devkit.node_layout import MIN_OPENING_SCALE, OPENING_SCALE, node_rect, visible_graph_rect

    workflow = _load(name)
    ds = workflow["extra"]["ds"]
    assert MIN_OPENING_SCALE <= ds["scale"] <= OPENING_SCALE  # readable: widget text is drawn
    left, top, right, bottom = visible_graph_rect(ds)
    x, y, w, h = workflow["groups"][0]["bounding"]
    assert left <= x and top <= y and x + w <= right and y + h <= bottom, (
        f"{name}: the first group {workflow['groups'][0]['title']!r} is not whole in the opening view"
    )
    for node in workflow["nodes"]:  # nothing starts under the sidebar or the menu bar
        node_left, node_top, _, _ = node_rect(node)
        assert node_left >= left and node_top >= top, f"{name}: node {node['id']} starts off-screen"


@pytest.mark.parametrize("name", sorted(wf.WORKFLOWS))
def test_notes_describe_the_workflow_they_sit_in(name):
    workflow = _load(name)
    titles = {n.get("title") for n in workflow["nodes"]}
    for note in _by_type(workflow)["Note"]:
        text = note["widgets_values"][0]
        if "mask file" in text:
            assert wf.MASK_TITLE in titles, f"{name}: a Note mentions a mask-file loader the workflow lacks"
        for line in text.splitlines():
            if line.strip().startswith(wf.DOWNLOAD_HELPER):  # a command line holds only the command
                assert line.rstrip().endswith("<ComfyUI>/models"), f"{name}: text after a command: {line!r}"


# -- the native instruction editors (ComfyUI 0.33) ---------------------------------------------------


@pytest.mark.parametrize("name", sorted(wf.EDITOR_WORKFLOWS))
def test_editor_workflows_refine_an_edit_instruction_from_a_served_or_local_vlm(name):
    workflow = _load(name)
    by_type = _by_type(workflow)
    (refine,) = [n for n in workflow["nodes"] if n.get("title") == wf.REFINE_TITLE]
    assert refine["type"] == "MindEditRefineInstruction"
    assert refine["widgets_values"][-1] == "edit_instruction"
    assert refine["widgets_values"][1:3] == [0, "fixed"]
    assert _source_of(workflow, refine, "mllm")[0]["type"] == "MindEditRemoteVLM"
    (remote,) = by_type["MindEditRemoteVLM"]
    assert remote["widgets_values"][0] == "http://127.0.0.1:11434/v1"
    (local,) = by_type[wf.MLLM_LOADER]
    assert all(not out["links"] for out in local["outputs"]), "the local loader waits to be connected"
    assert local["widgets_values"][:2] == [wf.REFINE_ONLY_LLM_FOLDER, wf.NO_MINDEDIT_CHECKPOINT]
    assert _source_of(workflow, refine, "mask")[0]["type"] == "MindEditEditRegion"
    notes = " ".join(n["widgets_values"][0] for n in by_type["Note"])
    for needle in ("MINDEDIT_VLM_ALLOWED_HOSTS", "MINDEDIT_VLM_API_KEY", "ollama pull", "LLM/"):
        assert needle in notes


@pytest.mark.parametrize("name", sorted(wf.EDITOR_WORKFLOWS))
def test_editor_output_is_scaled_back_and_pasted_through_the_edit_mask(name):
    workflow = _load(name)
    by_type = _by_type(workflow)
    (paste,) = by_type["MindEditPasteEdit"]
    source = _source_of(workflow, paste, "source")[0]
    assert source.get("title") == wf.SOURCE_TITLE
    scale, _ = _source_of(workflow, paste, "edited")
    assert scale["type"] == "ImageScale" and _source_of(workflow, scale, "image")[0]["type"] == "VAEDecode"
    size = _source_of(workflow, scale, "width")[0]
    assert size["type"] == "GetImageSize" and _source_of(workflow, size, "image")[0] is source
    assert _source_of(workflow, scale, "width")[1] == 0 and _source_of(workflow, scale, "height") == (size, 1)
    node, _ = _source_of(workflow, paste, "edit_mask")
    while node["type"] != "MindEditEditRegion":
        node, slot = _source_of(workflow, node, node["inputs"][0]["name"])
    assert slot == 1
    (save,) = by_type["SaveImage"]
    assert _source_of(workflow, save, "images")[0] is paste


def test_qwen_image_edit_encodes_the_refined_instruction_and_negative_with_the_image():
    workflow = _load(wf.QWEN_EDIT_WORKFLOW)
    by_type = _by_type(workflow)
    (refine,) = [n for n in workflow["nodes"] if n.get("title") == wf.REFINE_TITLE]
    (sampler,) = by_type["KSampler"]
    for which, slot in (("positive", 0), ("negative", 1)):
        encoder = _source_of(workflow, sampler, which)[0]
        assert encoder["type"] == "TextEncodeQwenImageEditPlus"
        assert _source_of(workflow, encoder, "prompt") == (refine, slot)
        assert _source_of(workflow, encoder, "image1")[0]["type"] == "ImageScaleToTotalPixels"
        assert _source_of(workflow, encoder, "vae")[0]["type"] == "VAELoader"
    assert _source_of(workflow, sampler, "model")[0]["type"] == "CFGNorm"
    assert by_type["CLIPLoader"][0]["widgets_values"][1] == "qwen_image"


def test_flux_kontext_references_the_source_latent():
    workflow = _load(wf.KONTEXT_WORKFLOW)
    by_type = _by_type(workflow)
    (refine,) = [n for n in workflow["nodes"] if n.get("title") == wf.REFINE_TITLE]
    (sampler,) = by_type["KSampler"]
    guidance = _source_of(workflow, sampler, "positive")[0]
    reference = _source_of(workflow, guidance, "conditioning")[0]
    assert (guidance["type"], reference["type"]) == ("FluxGuidance", "ReferenceLatent")
    encode = _source_of(workflow, reference, "latent")[0]
    assert encode["type"] == "VAEEncode" and _source_of(workflow, encode, "pixels")[0]["type"] == (
        "FluxKontextImageScale"
    )
    text = _source_of(workflow, reference, "conditioning")[0]
    assert _source_of(workflow, text, "text") == (refine, 0)
    assert _source_of(workflow, sampler, "negative")[0]["type"] == "ConditioningZeroOut"
    assert sampler["widgets_values"][3] == 1.0
    assert by_type["DualCLIPLoader"][0]["widgets_values"][2] == "flux"
