"""The editor workflows (refine -> Qwen-Image-Edit, refine -> FLUX.1 Kontext) in a real ComfyUI 0.33.

Runs when ``$COMFYUI_PATH`` is a ComfyUI 0.33 or newer tree, or one is extracted at ``.cache/ComfyUI-0.33.0``
(the editors' nodes and widgets are those of 0.33), e.g.
``COMFYUI_PATH=/path/to/ComfyUI-0.33.0 pytest -m comfyui tests/test_editor_workflows_comfyui.py``.

- every node type, input, link and widget count is valid against the live ``/object_info``, the
  pack's converter turns each into an API prompt, and ComfyUI's own ``/prompt`` validation finds
  nothing wrong but the editors' model files, which are not here;
- the part up to the editor's conditioning executes on the tiny fixtures: source and painted mask,
  the refine node in the edit-instruction style with the remote VLM (the stdlib stand-in server) and
  with the local loader (the tiny Qwen2.5-VL), and the editor's own image scaling.

What cannot run here: the editors themselves (Qwen-Image-Edit's 20B diffusion model, its Qwen2.5-VL
7B text encoder, FLUX.1 Kontext's 12B model with CLIP-L + T5-XXL, their VAEs): no such weights are
available and they would not fit this machine.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from devkit import build_workflows as wf
from devkit.demo import (
    load_workflow,
    painted_source,
    preview_texts,
    sample_inputs,
)
from devkit.openai_standin import INSTRUCTION_ANSWER, StandInServer

pytestmark = [pytest.mark.comfyui, pytest.mark.slow]

MODEL_FILE_INPUTS = {"unet_name", "clip_name", "clip_name1", "clip_name2", "vae_name"}
SCALERS = {wf.QWEN_EDIT_WORKFLOW: "ImageScaleToTotalPixels", wf.KONTEXT_WORKFLOW: "FluxKontextImageScale"}
SIZE = (640, 480)


def _version(tree: Path) -> tuple[int, ...]:
    version_file = tree / "comfyui_version.py"
    text = version_file.read_text() if version_file.is_file() else ""
    version = text.split('__version__ = "', 1)[-1].split('"', 1)[0] if "__version__" in text else "0"
    return tuple(int(p) for p in version.split(".")[:2] if p.isdigit())


def _comfyui_033() -> Path:
    """``$COMFYUI_PATH`` when it is ComfyUI 0.33 or newer, else ``.cache/ComfyUI-0.33.0`` (where
    ``tar -xzf ComfyUI-0.33.0.tar.gz -C .cache/`` puts it), else skip saying how to run."""
    candidates = [
        os.environ.get("COMFYUI_PATH"),
        Path(__file__).resolve().parents[1] / ".cache" / "ComfyUI-0.33.0",
    ]
    for candidate in candidates:
        if candidate and (Path(candidate) / "main.py").is_file() and _version(Path(candidate)) >= (0, 33):
            return Path(candidate)
    pytest.skip(
        "the editor workflows target ComfyUI 0.33: set COMFYUI_PATH to a 0.33 tree or extract "
        "ComfyUI-0.33.0.tar.gz into .cache/ (its requirements installed in the venv)"
    )


@pytest.fixture(scope="module")
def editors(fixture_cache, tmp_path_factory):
    from devkit.comfyui_runtime import ComfyUIServer
    from devkit.fixtures.qwen_vl import tiny_qwen2_5_vl

    tree = _comfyui_033()
    vlm = tiny_qwen2_5_vl(fixture_cache)
    standin = StandInServer()
    server = ComfyUIServer(
        tmp_path_factory.mktemp("editors_base"), comfyui_path=tree, models={"LLM": [vlm]}, threads=1
    )
    server.start()
    try:
        work = tmp_path_factory.mktemp("editors_images")
        source, mask = sample_inputs(work, SIZE)
        client = server.client
        yield {
            "server": server,
            "client": client,
            "standin": standin,
            "info": client.object_info(),
            "vlm": vlm.name,
            "painted": client.upload_image(painted_source(work, source, mask)),
        }
    finally:
        server.stop()
        standin.close()


def _api(env, name):
    from devkit.workflow_api import set_widget, ui_to_api

    prompt = ui_to_api(load_workflow(name), env["info"])
    set_widget(prompt, wf.SOURCE_TITLE, "image", env["painted"])
    return prompt


def _shape(entry: dict) -> tuple:
    """What a workflow depends on in an /object_info entry: input names, sections, kinds, order, outputs
    (not a combo's choices, which list the files present)."""
    inputs = {}
    for section in ("required", "optional"):
        for input_name, spec in ((entry.get("input") or {}).get(section) or {}).items():
            inputs[input_name] = (section, "COMBO" if isinstance(spec[0], list) else spec[0])
    return inputs, entry.get("input_order"), list(entry.get("output") or [])


def test_the_stored_snapshot_is_what_comfyui_033_declares(editors):
    """tests/test_editor_workflows_static.py checks the workflows against this snapshot in the default suite."""
    from test_editor_workflows_static import SNAPSHOT

    snapshot = {k: v for k, v in json.loads(SNAPSHOT.read_text()).items() if not k.startswith("_")}
    live = editors["info"]
    used = {n["type"] for name in wf.EDITOR_WORKFLOWS for n in load_workflow(name)["nodes"]}
    assert {t for t in used if t in live and not t.startswith("MindEdit")} == set(snapshot)
    for node_type, entry in snapshot.items():
        assert _shape(entry) == _shape(live[node_type]), node_type


@pytest.mark.parametrize("name", sorted(wf.EDITOR_WORKFLOWS))
def test_every_node_input_link_and_widget_is_valid_against_object_info(editors, name):
    from devkit.node_layout import frontend_size
    from devkit.workflow_check import workflow_problems

    info = editors["info"]
    workflow = load_workflow(name)
    assert workflow_problems(workflow, info) == []
    for node in workflow["nodes"]:
        width, height = frontend_size(node, info.get(node["type"]))
        assert width <= node["size"][0] and height <= node["size"][1], (node["id"], node["type"])
    for node in workflow["nodes"]:  # the models named are the files the loaders' dropdowns list
        for entry in node["properties"].get("models", []):
            slot = next(n for n in info[node["type"]]["input"]["required"] if n in MODEL_FILE_INPUTS)
            assert entry["directory"] in ("diffusion_models", "text_encoders", "vae"), slot


@pytest.mark.parametrize("name", sorted(wf.EDITOR_WORKFLOWS))
def test_comfyuis_own_validation_finds_only_the_missing_editor_files(editors, name):
    """ComfyUI validates every output's graph at queue time (types, links, values); it queues the
    outputs that pass and reports the others' node errors. Only the editor's model files, which are
    not here, may be wrong."""
    import urllib.error

    from devkit.workflow_api import set_widget

    prompt = _api(editors, name)
    set_widget(prompt, "MindEditRemoteVLM", "base_url", editors["standin"].base_url)
    client = editors["client"]
    try:
        answer = json.loads(client.post_json("/prompt", {"prompt": prompt, "client_id": client.client_id}))
    except urllib.error.HTTPError as err:  # no output valid at all
        answer = json.loads(err.read())
    node_errors = answer.get("node_errors") or {}
    problems, missing = [], set()
    for node_id, node in node_errors.items():
        for error in node["errors"]:
            input_name = (error.get("extra_info") or {}).get("input_name")
            if error.get("type") == "value_not_in_list" and input_name in MODEL_FILE_INPUTS:
                missing.add(node["class_type"])
            else:
                problems.append((node_id, node.get("class_type"), error))
    assert problems == [], json.dumps(problems, indent=1)
    expected = {"UNETLoader", "VAELoader", "DualCLIPLoader" if name == wf.KONTEXT_WORKFLOW else "CLIPLoader"}
    assert missing == expected, node_errors
    if answer.get("prompt_id"):  # the previews that need no editor file were queued: they run
        result = client.wait(answer["prompt_id"], timeout=300).raise_for_error()
        assert wf.POSITIVE_PREVIEW_TITLE in preview_texts(result, prompt)


def _up_to_the_conditioning(env, name, *, local: bool):
    """The prompt cut before the editor's models: source, mask, MIND-Edit (+ its previews) and the
    editor's image scaling, previewed."""
    from devkit.workflow_api import find_node_ids, set_widget

    prompt = _api(env, name)
    (refine,) = find_node_ids(prompt, wf.REFINE_TITLE)
    (remote,) = find_node_ids(prompt, "MindEditRemoteVLM")
    set_widget(prompt, remote, "base_url", env["standin"].base_url)
    if local:
        (loader,) = find_node_ids(prompt, wf.MLLM_LOADER)
        set_widget(prompt, loader, "model_folder", env["vlm"])
        prompt[refine]["inputs"]["mllm"] = [loader, 0]
        set_widget(prompt, refine, "max_new_tokens", 16)
    (scaler,) = find_node_ids(prompt, SCALERS[name])
    keep = {
        *find_node_ids(prompt, wf.POSITIVE_PREVIEW_TITLE),
        *find_node_ids(prompt, wf.NEGATIVE_PREVIEW_TITLE),
    }
    prompt["status_preview"] = {"class_type": "PreviewAny", "inputs": {"source": [refine, 3]}}
    prompt["scaled_preview"] = {"class_type": "PreviewImage", "inputs": {"images": [scaler, 0]}}
    keep |= {"status_preview", "scaled_preview"}
    needed, stack = set(), list(keep)
    while stack:
        node_id = stack.pop()
        if node_id in needed:
            continue
        needed.add(node_id)
        stack += [v[0] for v in prompt[node_id]["inputs"].values() if isinstance(v, list) and len(v) == 2]
    part = {node_id: prompt[node_id] for node_id in needed}
    assert not {n["class_type"] for n in part.values()} & {"UNETLoader", "CLIPLoader", "DualCLIPLoader"}
    return part


@pytest.mark.parametrize("name", sorted(wf.EDITOR_WORKFLOWS))
def test_the_part_up_to_the_conditioning_runs_with_the_remote_vlm(editors, name):
    prompt = _up_to_the_conditioning(editors, name, local=False)
    result = editors["client"].run(prompt, timeout=300).raise_for_error()
    texts = preview_texts(result, prompt)
    expected = INSTRUCTION_ANSWER.split('"')[1]
    assert texts[wf.POSITIVE_PREVIEW_TITLE] == expected
    assert texts[wf.NEGATIVE_PREVIEW_TITLE].startswith("grey overcast sky")
    status = texts["status_preview"]
    assert "style: edit instruction" in status and "(remote)" in status, status
    request = editors["standin"].requests[-1]
    assert "edit_instruction" in request.body["messages"][0]["content"]
    assert "will not see the outline" in request.body["messages"][1]["content"][1]["text"]
    (scaled,) = result.images_of("scaled_preview")
    width, height = scaled.pil().size
    assert width > SIZE[0] and abs(width / height - SIZE[0] / SIZE[1]) < 0.1, (width, height)


@pytest.mark.parametrize("name", sorted(wf.EDITOR_WORKFLOWS))
def test_the_part_up_to_the_conditioning_runs_with_a_local_vlm(editors, name):
    prompt = _up_to_the_conditioning(editors, name, local=True)
    result = editors["client"].run(prompt, timeout=600).raise_for_error()
    texts = preview_texts(result, prompt)
    status = texts["status_preview"]
    # The tiny random VLM writes gibberish: the fallback to the instruction is visible.
    assert "style: edit instruction" in status and "fell back" in status, status
    assert texts[wf.POSITIVE_PREVIEW_TITLE] == wf.EDITOR_INSTRUCTION
