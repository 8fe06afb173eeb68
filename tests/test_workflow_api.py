"""UI workflow -> API prompt conversion, against a synthetic /object_info (no ComfyUI needed)."""

from __future__ import annotations

import copy

import pytest

from devkit.workflow_api import (
    UnknownNodeType,
    WorkflowConversionError,
    set_widget,
    ui_to_api,
    widget_slots,
)

INT_SEED = ["INT", {"default": 0, "min": 0, "max": 2**64 - 1, "control_after_generate": True}]

OBJECT_INFO = {
    "CheckpointLoaderSimple": {
        "input": {"required": {"ckpt_name": [["model.safetensors", "other.safetensors"], {}]}},
        "input_order": {"required": ["ckpt_name"]},
        "output": ["MODEL", "CLIP", "VAE"],
        "display_name": "Load Checkpoint",
    },
    "CLIPTextEncode": {
        "input": {"required": {"text": ["STRING", {"multiline": True}], "clip": ["CLIP"]}},
        "input_order": {"required": ["text", "clip"]},
        "output": ["CONDITIONING"],
    },
    "EmptyLatentImage": {
        "input": {
            "required": {
                "width": ["INT", {"default": 512}],
                "height": ["INT", {"default": 512}],
                "batch_size": ["INT", {"default": 1}],
            }
        },
        "input_order": {"required": ["width", "height", "batch_size"]},
        "output": ["LATENT"],
    },
    "KSampler": {
        "input": {
            "required": {
                "model": ["MODEL"],
                "seed": INT_SEED,
                "steps": ["INT", {"default": 20}],
                "cfg": ["FLOAT", {"default": 8.0}],
                "sampler_name": [["euler", "dpmpp_2m"], {}],
                "scheduler": [["normal", "karras"], {}],
                "positive": ["CONDITIONING"],
                "negative": ["CONDITIONING"],
                "latent_image": ["LATENT"],
                "denoise": ["FLOAT", {"default": 1.0}],
            }
        },
        "input_order": {
            "required": [
                "model",
                "seed",
                "steps",
                "cfg",
                "sampler_name",
                "scheduler",
                "positive",
                "negative",
                "latent_image",
                "denoise",
            ]
        },
        "output": ["LATENT"],
    },
    "LoraLoaderModelOnly": {
        "input": {
            "required": {
                "model": ["MODEL"],
                "lora_name": [["lora.safetensors"], {}],
                "strength_model": ["FLOAT", {"default": 1.0}],
            }
        },
        "output": ["MODEL"],
    },
    "VAEDecode": {"input": {"required": {"samples": ["LATENT"], "vae": ["VAE"]}}, "output": ["IMAGE"]},
    "SaveImage": {
        "input": {"required": {"images": ["IMAGE"], "filename_prefix": ["STRING", {"default": "ComfyUI"}]}},
        "output": [],
    },
    "LoadImage": {
        "input": {"required": {"image": [["photo.png", "mask.png"], {"image_upload": True}]}},
        "output": ["IMAGE", "MASK"],
    },
    "LoadImageMask": {
        "input": {
            "required": {
                "image": [["photo.png", "mask.png"], {"image_upload": True}],
                "channel": [["alpha", "red", "green", "blue"], {}],
            }
        },
        "output": ["MASK"],
    },
    "ImageInvert": {"input": {"required": {"image": ["IMAGE"]}}, "output": ["IMAGE"]},
    # Covers optional widgets, a new-style COMBO spec, forceInput, a legacy seed name without the
    # explicit flag, and defaults for missing trailing values.
    "MaskTool": {
        "input": {
            "required": {
                "mask": ["MASK"],
                "mode": ["COMBO", {"options": ["grow", "shrink"]}],
                "count": ["INT", {"default": 3, "forceInput": True}],
            },
            "optional": {
                "noise_seed": ["INT", {"default": 7}],
                "strength": ["FLOAT", {"default": 0.5}],
                "label": ["STRING", {"default": "edit"}],
            },
        },
        "input_order": {
            "required": ["mask", "mode", "count"],
            "optional": ["noise_seed", "strength", "label"],
        },
        "output": ["MASK"],
    },
}


def _link(link_id, origin, origin_slot, target, target_slot, link_type):
    return [link_id, origin, origin_slot, target, target_slot, link_type]


def ui_workflow() -> dict:
    """A hand-written UI workflow exercising every conversion rule."""
    nodes = [
        {
            "id": 1,
            "type": "CheckpointLoaderSimple",
            "mode": 0,
            "inputs": [],
            "outputs": [{"name": "MODEL", "type": "MODEL"}, {"name": "CLIP", "type": "CLIP"}],
            "widgets_values": ["other.safetensors"],
        },
        # Positive prompt: its `text` widget is converted to an input fed by a PrimitiveNode; the
        # stale widget value keeps its slot but the link wins. Its clip comes through a Reroute.
        {
            "id": 2,
            "type": "CLIPTextEncode",
            "title": "Positive",
            "mode": 0,
            "inputs": [
                {"name": "clip", "type": "CLIP", "link": 3},
                {"name": "text", "type": "STRING", "widget": {"name": "text"}, "link": 4},
            ],
            "widgets_values": ["stale text"],
        },
        {
            "id": 3,
            "type": "CLIPTextEncode",
            "title": "Negative",
            "mode": 0,
            "inputs": [{"name": "clip", "type": "CLIP", "link": 5}],
            "widgets_values": ["blurry"],
        },
        {"id": 4, "type": "EmptyLatentImage", "mode": 0, "inputs": [], "widgets_values": [64]},
        {
            "id": 5,
            "type": "KSampler",
            "title": "Sampler",
            "mode": 0,
            "inputs": [
                {"name": "model", "type": "MODEL", "link": 6},
                {"name": "positive", "type": "CONDITIONING", "link": 7},
                {"name": "negative", "type": "CONDITIONING", "link": 8},
                {"name": "latent_image", "type": "LATENT", "link": 9},
            ],
            "widgets_values": [42, "randomize", 2, 7.5, "dpmpp_2m", "karras", 0.75],
        },
        {
            "id": 6,
            "type": "VAEDecode",
            "mode": 0,
            "inputs": [{"name": "samples", "type": "LATENT", "link": 10}],
        },
        {
            "id": 7,
            "type": "SaveImage",
            "mode": 0,
            "inputs": [{"name": "images", "type": "IMAGE", "link": 11}],
            "widgets_values": ["out"],
        },
        {"id": 8, "type": "LoadImage", "mode": 0, "inputs": [], "widgets_values": ["mask.png", "image"]},
        # Muted: dropped, and the SaveImage it feeds loses that input.
        {
            "id": 9,
            "type": "ImageInvert",
            "mode": 2,
            "inputs": [{"name": "image", "type": "IMAGE", "link": 12}],
        },
        {
            "id": 10,
            "type": "PrimitiveNode",
            "mode": 0,
            "outputs": [],
            "widgets_values": ["a red ball", "fixed"],
        },
        {"id": 11, "type": "Reroute", "mode": 0, "inputs": [{"name": "", "type": "*", "link": 2}]},
        # Bypassed: the sampler's model comes straight from the checkpoint loader.
        {
            "id": 12,
            "type": "LoraLoaderModelOnly",
            "mode": 4,
            "inputs": [{"name": "model", "type": "MODEL", "link": 1}],
            "widgets_values": ["lora.safetensors", 1.0],
        },
        {"id": 13, "type": "Note", "mode": 0, "widgets_values": ["remember to set the seed"]},
        {"id": 14, "type": "MarkdownNote", "mode": 0, "widgets_values": ["# docs"]},
        {
            "id": 15,
            "type": "SaveImage",
            "title": "Muted branch",
            "mode": 0,
            "inputs": [{"name": "images", "type": "IMAGE", "link": 13}],
            "widgets_values": ["muted"],
        },
        # mask from LoadImage's MASK output; `noise_seed` is seed-like by name (extra value
        # "fixed"); `label` is missing -> default.
        {
            "id": 16,
            "type": "MaskTool",
            "mode": 0,
            "inputs": [
                {"name": "mask", "type": "MASK", "link": 14},
                {"name": "count", "type": "INT", "link": 15},
            ],
            "widgets_values": ["shrink", 99, "fixed", 0.25],
        },
        {"id": 17, "type": "PrimitiveNode", "mode": 0, "widgets_values": [5, "increment"]},
        # The upload button's value comes after all required widgets (here after `channel`).
        {
            "id": 18,
            "type": "LoadImageMask",
            "mode": 0,
            "inputs": [],
            "widgets_values": ["mask.png", "red", "image"],
        },
    ]
    links = [
        _link(1, 1, 0, 12, 0, "MODEL"),
        _link(2, 1, 1, 11, 0, "CLIP"),
        _link(3, 11, 0, 2, 0, "CLIP"),
        _link(4, 10, 0, 2, 1, "STRING"),
        _link(5, 1, 1, 3, 0, "CLIP"),
        _link(6, 12, 0, 5, 0, "MODEL"),
        _link(7, 2, 0, 5, 1, "CONDITIONING"),
        _link(8, 3, 0, 5, 2, "CONDITIONING"),
        _link(9, 4, 0, 5, 3, "LATENT"),
        _link(10, 5, 0, 6, 0, "LATENT"),
        _link(11, 6, 0, 7, 0, "IMAGE"),
        _link(12, 8, 0, 9, 0, "IMAGE"),
        _link(13, 9, 0, 15, 0, "IMAGE"),
        _link(14, 8, 1, 16, 0, "MASK"),
        _link(15, 17, 0, 16, 1, "INT"),
    ]
    return {"nodes": nodes, "links": links, "version": 0.4}


EXPECTED = {
    "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "other.safetensors"}},
    "2": {"class_type": "CLIPTextEncode", "inputs": {"text": "a red ball", "clip": ["1", 1]}},
    "3": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": ["1", 1]}},
    "4": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 512, "batch_size": 1}},
    "5": {
        "class_type": "KSampler",
        "inputs": {
            "seed": 42,
            "steps": 2,
            "cfg": 7.5,
            "sampler_name": "dpmpp_2m",
            "scheduler": "karras",
            "denoise": 0.75,
            "model": ["1", 0],
            "positive": ["2", 0],
            "negative": ["3", 0],
            "latent_image": ["4", 0],
        },
    },
    "6": {"class_type": "VAEDecode", "inputs": {"samples": ["5", 0]}},
    "7": {"class_type": "SaveImage", "inputs": {"filename_prefix": "out", "images": ["6", 0]}},
    "8": {"class_type": "LoadImage", "inputs": {"image": "mask.png"}},
    "15": {"class_type": "SaveImage", "inputs": {"filename_prefix": "muted"}},
    "18": {"class_type": "LoadImageMask", "inputs": {"image": "mask.png", "channel": "red"}},
    "16": {
        "class_type": "MaskTool",
        "inputs": {
            "mode": "shrink",
            "noise_seed": 99,
            "strength": 0.25,
            "label": "edit",
            "mask": ["8", 1],
            "count": 5,
        },
    },
}


def _strip_meta(prompt: dict) -> dict:
    return {nid: {k: v for k, v in node.items() if k != "_meta"} for nid, node in prompt.items()}


def test_every_rule_on_a_hand_written_workflow():
    prompt = ui_to_api(ui_workflow(), OBJECT_INFO)
    assert _strip_meta(prompt) == EXPECTED
    assert prompt["2"]["_meta"]["title"] == "Positive"
    assert prompt["1"]["_meta"]["title"] == "Load Checkpoint"  # display name when untitled


def test_object_links_layout_gives_the_same_prompt():
    workflow = ui_workflow()
    fields = ("id", "origin_id", "origin_slot", "target_id", "target_slot", "type")
    workflow["links"] = [dict(zip(fields, link)) for link in workflow["links"]]
    assert ui_to_api(workflow, OBJECT_INFO) == ui_to_api(ui_workflow(), OBJECT_INFO)


def test_widget_slots_mark_ui_only_values():
    ks = {s.name: s for s in widget_slots(OBJECT_INFO["KSampler"])}
    assert list(ks) == ["seed", "steps", "cfg", "sampler_name", "scheduler", "denoise"]
    assert ks["seed"].extra_values == 1 and ks["steps"].extra_values == 0
    load = widget_slots(OBJECT_INFO["LoadImageMask"])
    assert [(s.name, s.ui_only) for s in load] == [("image", False), ("channel", False), ("upload", True)]
    tool = widget_slots(OBJECT_INFO["MaskTool"])
    assert [s.name for s in tool] == ["mode", "noise_seed", "strength", "label"]  # count is forceInput
    assert tool[0].default == "grow"


def test_bypass_without_a_matching_input_drops_the_link():
    workflow = ui_workflow()
    lora = next(n for n in workflow["nodes"] if n["id"] == 12)
    lora["inputs"][0]["type"] = "CLIP"  # no MODEL input to pass through any more
    prompt = ui_to_api(workflow, OBJECT_INFO)
    assert "model" not in prompt["5"]["inputs"]


def test_unknown_node_type_names_the_missing_pack():
    workflow = ui_workflow()
    workflow["nodes"].append(
        {"id": 30, "type": "IPAdapterAdvanced", "mode": 0, "properties": {"cnr_id": "comfyui_ipadapter_plus"}}
    )
    with pytest.raises(UnknownNodeType, match="IPAdapterAdvanced.*comfyui_ipadapter_plus"):
        ui_to_api(workflow, OBJECT_INFO)
    # Muted or bypassed, a missing node is simply dropped (the pass-through needs no object_info).
    workflow["nodes"][-1]["mode"] = 2
    assert "30" not in ui_to_api(workflow, OBJECT_INFO)
    lora = next(n for n in workflow["nodes"] if n["id"] == 12)
    lora["type"] = "SomeMissingLoraLoader"
    assert ui_to_api(workflow, OBJECT_INFO)["5"]["inputs"]["model"] == ["1", 0]


def test_subgraphs_and_group_nodes_fail_clearly():
    workflow = ui_workflow()
    workflow["definitions"] = {"subgraphs": [{"id": "1234-abcd", "name": "Inner"}]}
    workflow["nodes"].append({"id": 31, "type": "1234-abcd", "mode": 0})
    with pytest.raises(WorkflowConversionError, match="subgraph"):
        ui_to_api(workflow, OBJECT_INFO)
    workflow = ui_workflow()
    workflow["nodes"].append({"id": 32, "type": "workflow>Mine", "mode": 0})
    with pytest.raises(WorkflowConversionError, match="group node"):
        ui_to_api(workflow, OBJECT_INFO)


def test_api_prompt_input_is_rejected_with_a_hint():
    with pytest.raises(WorkflowConversionError, match="already an API prompt"):
        ui_to_api(EXPECTED, OBJECT_INFO)


def test_set_widget_by_title_id_and_type():
    prompt = ui_to_api(ui_workflow(), OBJECT_INFO)
    assert set_widget(prompt, "Sampler", "seed", 7) == "5"
    assert prompt["5"]["inputs"]["seed"] == 7
    assert set_widget(prompt, 1, "ckpt_name", "model.safetensors") == "1"
    assert prompt["1"]["inputs"]["ckpt_name"] == "model.safetensors"
    assert set_widget(prompt, "EmptyLatentImage", "width", 128) == "4"
    untouched = copy.deepcopy(prompt)
    with pytest.raises(KeyError, match="several nodes"):
        set_widget(prompt, "CLIPTextEncode", "text", "x")
    with pytest.raises(KeyError, match="is a link"):
        set_widget(prompt, "Sampler", "model", "x")
    with pytest.raises(KeyError, match="no input 'sed'"):
        set_widget(prompt, "Sampler", "sed", 1)
    with pytest.raises(KeyError, match="no node"):
        set_widget(prompt, "Nope", "seed", 1)
    assert prompt == untouched
