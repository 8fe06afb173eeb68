"""The editor workflows against ComfyUI 0.33.0's node declarations, in the default suite (no server):
core nodes from a stored snapshot of 0.33.0's ``/object_info``
(``tests/assets/object_info_comfyui_0.33.0_editors.json``, compared with a live 0.33 server by
tests/test_editor_workflows_comfyui.py), the pack's nodes from their declarations. Every node type,
input, link and widget count is checked (`devkit.workflow_check`) and the converter runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers_nodes import import_pack

from devkit import build_workflows as wf
from devkit.demo import load_workflow

SNAPSHOT = Path(__file__).resolve().parent / "assets" / "object_info_comfyui_0.33.0_editors.json"


def pack_object_info() -> dict:
    """The pack's nodes as /object_info describes them (from their declarations)."""
    pack = import_pack()
    info = {}
    for node_id, cls in pack.NODE_CLASS_MAPPINGS.items():
        inputs = cls.INPUT_TYPES()
        info[node_id] = {
            "input": inputs,
            "input_order": {section: list(specs) for section, specs in inputs.items()},
            "output": list(cls.RETURN_TYPES),
            "output_name": list(cls.RETURN_NAMES),
        }
    return info


@pytest.fixture(scope="module")
def object_info() -> dict:
    core = {k: v for k, v in json.loads(SNAPSHOT.read_text()).items() if not k.startswith("_")}
    return {**core, **pack_object_info()}


@pytest.mark.parametrize("name", sorted(wf.EDITOR_WORKFLOWS))
def test_editor_workflow_is_valid_against_comfyui_033_declarations(object_info, name):
    from devkit.node_layout import frontend_size
    from devkit.workflow_api import ui_to_api
    from devkit.workflow_check import workflow_problems

    workflow = load_workflow(name)
    assert workflow_problems(workflow, object_info) == []
    prompt = ui_to_api(workflow, object_info)
    classes = {node["class_type"] for node in prompt.values()}
    assert {"MindEditRefineInstruction", "MindEditRemoteVLM", "MindEditPasteEdit"} <= classes
    refine = next(n for n in prompt.values() if n["class_type"] == "MindEditRefineInstruction")
    assert refine["inputs"]["style"] == "edit_instruction"
    for node in workflow["nodes"]:
        width, height = frontend_size(node, object_info.get(node["type"]))
        assert width <= node["size"][0] and height <= node["size"][1], (node["id"], node["type"])


def test_the_checker_catches_what_the_frontend_would_refuse(object_info):
    from devkit.workflow_check import workflow_problems

    workflow = load_workflow(wf.KONTEXT_WORKFLOW)
    broken = json.loads(json.dumps(workflow))
    node = next(n for n in broken["nodes"] if n["type"] == "FluxGuidance")
    node["widgets_values"] = []
    node["inputs"][0]["name"] = "cond"
    link = broken["links"][0]
    link[5] = "LATENT"
    problems = " | ".join(workflow_problems(broken, object_info))
    assert "0 widget values, the node has 1" in problems
    assert "input 'cond' is not declared" in problems
    assert f"link {link[0]}:" in problems
