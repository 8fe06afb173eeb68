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


@pytest.mark.parametrize("name", sorted(wf.SDXL_COUNTERPARTS))
def test_sdxl_workflows_are_the_sd15_graphs_with_sdxl_models(name):
    """Same nodes, links, widgets and layout as the SD1.5 workflow, except the checkpoint, the
    IP-Adapter (the _vit-h file, never the ViT-bigG one), the edit group's title, the models note
    and the output prefix."""
    sdxl, sd15 = _load(name), _load(wf.SDXL_COUNTERPARTS[name])
    assert sdxl["links"] == sd15["links"] and sdxl["id"] != sd15["id"]
    changed = {}
    for a, b in zip(sdxl["nodes"], sd15["nodes"], strict=True):
        assert (a["id"], a["type"], a["pos"], a["size"]) == (b["id"], b["type"], b["pos"], b["size"])
        if a.get("widgets_values") != b.get("widgets_values"):
            changed[a["type"]] = a["widgets_values"]
    expected = {"CheckpointLoaderSimple", "Note", "SaveImage"}
    if wf.IPADAPTER_LOADER in changed:
        expected.add(wf.IPADAPTER_LOADER)
        assert changed[wf.IPADAPTER_LOADER] == ["ip-adapter_sdxl_vit-h.safetensors"]
    assert set(changed) == expected
    assert changed["CheckpointLoaderSimple"] == ["sd_xl_base_1.0.safetensors"]
    assert changed["SaveImage"][0].startswith("mindedit/sdxl_")
    assert [g["title"] for g in sdxl["groups"]] == [
        "Edit (SDXL)" if g["title"] == "Edit (SD1.5)" else g["title"] for g in sd15["groups"]
    ]


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


def test_ui_graph_rejects_mismatched_links():
    g = UIGraph("x")
    a = g.add("A", (0, 0), outputs=[("IMAGE", "IMAGE")])
    b = g.add("B", (0, 0), inputs=[("mask", "MASK")])
    with pytest.raises(TypeError, match="types differ"):
        g.connect(a, 0, b, "mask")
    with pytest.raises(KeyError, match="no input socket 'nope'"):
        g.connect(a, 0, b, "nope")


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
