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


@pytest.mark.parametrize("name", sorted(wf.WORKFLOWS))
def test_models_are_ordinary_widgets_and_notes_say_where_files_go(name):
    workflow = _load(name)
    by_type = {}
    for node in workflow["nodes"]:
        by_type.setdefault(node["type"], []).append(node)
    assert by_type["CheckpointLoaderSimple"][0]["widgets_values"] == [wf.DEFAULT_CHECKPOINT]
    assert by_type["MindEditMLLMLoader"][0]["widgets_values"][:2] == [
        wf.DEFAULT_LLM_FOLDER,
        wf.DEFAULT_MINDEDIT_CHECKPOINT,
    ]
    notes = " ".join(n["widgets_values"][0] for n in by_type["Note"])
    for folder in ("checkpoints/", "LLM/", "mindedit/", "ipadapter/"):
        assert folder in notes
    # The MLLM seed is fixed so a re-queue with a new KSampler seed reuses the refined prompts.
    assert by_type["MindEditRefineAndEmbed"][0]["widgets_values"][1:3] == [0, "fixed"]
    # Refined prompts reach CLIP Text Encode through its `text` widget converted to an input.
    for enc in by_type["CLIPTextEncode"]:
        (text,) = [s for s in enc["inputs"] if s["name"] == "text"]
        assert text["widget"] == {"name": "text"} and text["link"] is not None


def test_masked_workflow_composites_onto_the_source_with_the_mask():
    workflow = _load(wf.MASKED_WORKFLOW)
    nodes = {n["id"]: n for n in workflow["nodes"]}
    links = {link[0]: link for link in workflow["links"]}
    (composite,) = [n for n in workflow["nodes"] if n["type"] == "ImageCompositeMasked"]
    sources = {s["name"]: nodes[links[s["link"]][1]] for s in composite["inputs"]}
    assert sources["destination"].get("title") == wf.SOURCE_TITLE
    assert sources["source"]["type"] == "VAEDecode"
    assert sources["mask"]["type"] == "ImageToMask"
    (save,) = [n for n in workflow["nodes"] if n["type"] == "SaveImage"]
    assert nodes[links[save["inputs"][0]["link"]][1]] is composite


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
