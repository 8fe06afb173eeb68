"""The shipped workflows, end to end, through a real headless ComfyUI's HTTP API with tiny models.

One server for the session (`comfyui_server`); our model folders are linked into it once. Images
are the bundled sample scaled to 64 px, and the KSampler runs 2 steps, to stay fast on 2 CPU cores.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from fixtures_comfyui import link_tiny_sd15_models
from PIL import Image

from devkit import build_workflows as wf
from devkit.demo import SAMPLE_SOURCE, preview_texts, sample_inputs
from devkit.demo import prepare_prompt as demo_prompt

pytestmark = [pytest.mark.comfyui, pytest.mark.slow]

SIZE = 64
STEPS = 2
PACK = "ComfyUI-MIND-Edit"
OUR_NODE_PREFIXES = ("MindEdit",)
# GrowMask expand + blur radius of the masked workflow, plus one pixel of bilinear resampling.
MASK_REACH_PX = 6 + 4 + 2
FROZEN_DIR = Path(__file__).resolve().parent / "assets" / "frozen_workflows"


@pytest.fixture(scope="module")
def e2e(comfyui_server, fixture_cache, tiny_sd15_sites16, tmp_path_factory):
    """Our tiny models linked into the session server, the 128 px sample uploaded."""
    models = link_tiny_sd15_models(comfyui_server, fixture_cache, tiny_sd15_sites16)
    work = tmp_path_factory.mktemp("e2e_images")
    source_path, mask_path = sample_inputs(work, SIZE)
    source, mask = Image.open(source_path), Image.open(mask_path)
    client = comfyui_server.client
    return {
        "server": comfyui_server,
        "client": client,
        "models": models,
        "source_name": client.upload_image(source_path),
        "mask_name": client.upload_image(mask_path),
        "source": np.asarray(source),
        "mask": np.asarray(mask) > 127,
        "object_info": client.object_info(),
    }


def _prompt(e2e, name, **overrides):
    kwargs = dict(
        source_name=e2e["source_name"],
        mask_name=e2e["mask_name"] if name == wf.MASKED_WORKFLOW else None,
        steps=STEPS,
        max_new_tokens=24,
        filename_prefix=f"e2e/{name}",
    )
    kwargs.update(overrides)
    return demo_prompt(name, e2e["object_info"], e2e["models"], **kwargs)


def _ids_of(prompt, class_type):
    return [nid for nid, node in prompt.items() if node["class_type"] == class_type]


def _output_pixels(result) -> np.ndarray:
    saved = [img for img in result.images if img.type == "output"]
    assert len(saved) == 1, (
        f"expected one saved image, got {[(i.node_id, i.filename) for i in result.images]}"
    )
    return np.asarray(Image.open(io.BytesIO(saved[0].data)).convert("RGB"))


# -- discovery --------------------------------------------------------------------------------------


def test_object_info_lists_every_node_of_the_pack_with_tooltips(e2e):
    info = e2e["object_info"]
    ours = {name: entry for name, entry in info.items() if entry.get("python_module", "").endswith(PACK)}
    expected = {
        "MindEditMLLMLoader",
        "MindEditRefineInstruction",
        "MindEditInsightEmbeds",
        "MindEditRefineAndEmbed",
        "MindEditEditRegion",
        "MindEditStatus",
        "MindEditPadForVAE",
        "MindEditPasteEdit",
        wf.IPADAPTER_LOADER,
        wf.IPADAPTER_APPLY,
    }
    assert expected <= set(ours), f"missing from /object_info: {sorted(expected - set(ours))}"
    for name, entry in ours.items():
        assert entry["category"].startswith("MIND-Edit"), name
        for section in ("required", "optional"):
            for input_name, spec in (entry["input"].get(section) or {}).items():
                options = spec[1] if len(spec) > 1 else {}
                assert options.get("tooltip"), f"{name}.{input_name} has no tooltip in /object_info"


def test_the_pack_is_loaded_as_v3_nodes(e2e):
    """V3 classes describe a combo as ("COMBO", {"options": [...]}), V1 classes as ([...], {...})."""
    info = e2e["object_info"]
    assert info[wf.MLLM_LOADER]["input"]["required"]["dtype"][0] == "COMBO"
    assert info[wf.IPADAPTER_APPLY]["input"]["required"]["batch_mapping"][0] == "COMBO"


# The three workflows shipped before the V3 move (later workflows were born V3-era).
FROZEN_WORKFLOWS = (wf.EDIT_WORKFLOW, wf.MASKED_WORKFLOW, wf.REFINE_ONLY_WORKFLOW)


@pytest.mark.parametrize("name", FROZEN_WORKFLOWS)
def test_a_workflow_and_prompt_saved_before_v3_load_and_run_unchanged(e2e, name):
    """tests/assets/frozen_workflows/: the shipped workflows and their API prompts as saved by the V1
    pack (before the V3 move). The frozen UI file converts, against today's /object_info, to exactly
    the prompt saved then (same widget names, order and defaults), and that prompt runs."""
    from devkit.workflow_api import ui_to_api

    def comparable(prompt):  # a core node's default title is its display name, which core renames
        return {
            nid: node if node["class_type"].startswith(OUR_NODE_PREFIXES) else {**node, "_meta": None}
            for nid, node in prompt.items()
        }

    def without_appended(prompt):  # inputs appended since (optional, declared default) are allowed
        from mindedit_core.node_specs import SPECS_BY_ID

        out = {}
        for nid, node in prompt.items():
            spec = SPECS_BY_ID.get(node["class_type"])
            frozen_inputs = frozen_api.get(nid, {}).get("inputs", {})
            inputs = dict(node["inputs"])
            for key in set(inputs) - set(frozen_inputs):
                if spec is not None and spec.input(key).optional and inputs[key] == spec.input(key).default:
                    del inputs[key]
            out[nid] = {**node, "inputs": inputs}
        return out

    frozen_ui = json.loads((FROZEN_DIR / f"{name}.json").read_text())
    frozen_api = json.loads((FROZEN_DIR / f"{name}.api.json").read_text())
    converted = without_appended(ui_to_api(frozen_ui, e2e["object_info"]))
    assert comparable(converted) == comparable(frozen_api)
    prompt = _prompt(e2e, name, seed=23, api_prompt=frozen_api)
    e2e["client"].run(prompt, timeout=300).raise_for_error()


def test_workflows_are_served_as_templates(e2e):
    client = e2e["client"]
    templates = client.get_json("/workflow_templates")
    assert sorted(templates.get(PACK, [])) == sorted(wf.WORKFLOWS), templates
    for name in wf.WORKFLOWS:
        served = client.get_json(f"/api/workflow_templates/{PACK}/{name}.json")
        assert served == json.loads((wf.WORKFLOWS_DIR / f"{name}.json").read_text())


@pytest.mark.parametrize("name", sorted(wf.SD_WORKFLOWS))  # editors: tests/test_editor_workflows_comfyui.py
def test_shipped_workflow_agrees_with_object_info(e2e, name):
    """What the frontend checks on load: node types exist, each widget has a value, link types match."""
    from devkit.workflow_api import widget_slots

    info = e2e["object_info"]
    workflow = json.loads((wf.WORKFLOWS_DIR / f"{name}.json").read_text())
    nodes = {node["id"]: node for node in workflow["nodes"]}
    for node in workflow["nodes"]:
        if node["type"] == "Note":
            continue
        assert node["type"] in info, f"{name}: node type {node['type']} is not installed"
        slots = widget_slots(info[node["type"]])
        expected_values = sum(1 + slot.extra_values for slot in slots)
        assert len(node["widgets_values"]) == expected_values, (
            f"{name}: node {node['id']} ({node['type']}) has {len(node['widgets_values'])} widget values, "
            f"/object_info implies {expected_values} ({[s.name for s in slots]})"
        )
    for link_id, src, src_slot, dst, dst_slot, link_type in workflow["links"]:
        out_types = info[nodes[src]["type"]]["output"]
        assert out_types[src_slot] == link_type, (
            f"{name}: link {link_id} type {link_type} != {out_types[src_slot]}"
        )
        target_input = nodes[dst]["inputs"][dst_slot]
        spec_all = {
            **info[nodes[dst]["type"]]["input"].get("required", {}),
            **info[nodes[dst]["type"]]["input"].get("optional", {}),
        }
        assert target_input["name"] in spec_all, (
            f"{name}: {nodes[dst]['type']} has no input {target_input['name']}"
        )
        wanted = spec_all[target_input["name"]][0]
        assert wanted in (link_type, "*"), (
            f"{name}: link {link_id} ({link_type}) into {nodes[dst]['type']}.{target_input['name']} ({wanted})"
        )


@pytest.mark.parametrize("name", sorted(wf.SD_WORKFLOWS))
def test_the_frontend_never_grows_a_node_of_a_shipped_workflow(e2e, name):
    """On load the frontend resizes each node to at least its computeSize(); every stored size is
    already that big, so the static no-overlap check (test_workflows_static.py) holds once loaded."""
    from devkit.node_layout import frontend_size

    info = e2e["object_info"]
    workflow = json.loads((wf.WORKFLOWS_DIR / f"{name}.json").read_text())
    for node in workflow["nodes"]:
        width, height = frontend_size(node, info.get(node["type"]))
        stored_w, stored_h = node["size"]
        assert width <= stored_w and height <= stored_h, (
            f"{name}: node {node['id']} ({node['type']}) is {stored_w}x{stored_h}, the frontend makes it "
            f"{width:.0f}x{height:.0f}"
        )


@pytest.mark.parametrize("name", sorted(wf.SD_WORKFLOWS))
def test_each_loaders_model_directory_is_the_folder_its_dropdown_lists(e2e, name):
    """The frontend's missing-model dialog downloads into `directory`: what the node lists lives there."""
    from devkit.workflow_api import combo_options, widget_slots

    info = e2e["object_info"]
    models_dir = e2e["server"].base_dir / "models"
    for node in json.loads((wf.WORKFLOWS_DIR / f"{name}.json").read_text())["nodes"]:
        for entry in node["properties"].get("models", []):
            (slot,) = [
                s
                for s in widget_slots(info[node["type"]])
                if s.name in ("ckpt_name", wf.IPADAPTER_FILE_INPUT)
            ]
            listed = combo_options(info[node["type"]]["input"]["required"][slot.name])
            present = {p.name for p in (models_dir / entry["directory"]).iterdir()}
            assert listed and set(listed) <= present, (node["type"], entry["directory"], listed, present)


# -- running ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def masked_run(e2e):
    """One run of the masked workflow (shared: each full run costs seconds on 2 CPU cores)."""
    prompt = _prompt(e2e, wf.MASKED_WORKFLOW, seed=11)
    return prompt, e2e["client"].run(prompt, timeout=300).raise_for_error()


@pytest.fixture(scope="module")
def edit_run(e2e):
    """One run of the mask-free workflow."""
    prompt = _prompt(e2e, wf.EDIT_WORKFLOW, seed=7)
    return prompt, e2e["client"].run(prompt, timeout=300).raise_for_error()


def test_masked_workflow_edits_inside_the_mask_and_keeps_every_other_pixel(e2e, masked_run):
    from scipy.ndimage import binary_dilation

    prompt, result = masked_run
    out = _output_pixels(result)
    source, mask = e2e["source"], e2e["mask"]
    assert out.shape == source.shape
    reach = binary_dilation(mask, structure=np.ones((3, 3), bool), iterations=MASK_REACH_PX)
    outside = ~reach
    assert outside.sum() > 0.3 * outside.size
    assert np.array_equal(out[outside], source[outside]), "pixels outside the mask changed"
    assert (np.abs(out[mask].astype(int) - source[mask].astype(int)).max(axis=-1) > 0).mean() > 0.5, (
        "the masked area was not edited"
    )
    texts = preview_texts(result, prompt)
    assert wf.POSITIVE_PREVIEW_TITLE in texts and wf.NEGATIVE_PREVIEW_TITLE in texts
    status = texts[wf.STATUS_PREVIEW_TITLE]
    assert status.startswith(("ok", "WARNING")), texts
    coverage = 100 * e2e["mask"].mean()
    assert "red channel" in status and f"covers {coverage:.1f}% of the image" in status, status
    assert f"size: {SIZE}x{SIZE}, as given" in status


def test_requeue_with_only_a_new_ksampler_seed_does_not_rerun_the_mllm(e2e, masked_run):
    _, first = masked_run
    prompt = _prompt(e2e, wf.MASKED_WORKFLOW, seed=12)
    second = e2e["client"].run(prompt, timeout=300).raise_for_error()
    mllm_nodes = _ids_of(prompt, wf.MLLM_LOADER) + _ids_of(prompt, "MindEditRefineAndEmbed")
    assert len(mllm_nodes) == 2
    assert set(mllm_nodes) <= set(second.cached_nodes), f"MLLM nodes re-ran; cached: {second.cached_nodes}"
    assert set(_ids_of(prompt, "KSampler")) <= set(second.executed_nodes)
    assert not np.array_equal(_output_pixels(first), _output_pixels(second)), "a new seed gave the same image"


def test_mask_free_workflow_edits_through_the_ip_adapter(e2e, edit_run):
    """The edit differs from the source, and v_insight matters: IP-Adapter weight 0 gives another image."""
    from devkit.workflow_api import set_widget

    prompt, result = edit_run
    out = _output_pixels(result)
    assert out.shape == e2e["source"].shape
    assert not np.array_equal(out, e2e["source"])
    assert preview_texts(result, prompt).get(wf.STATUS_PREVIEW_TITLE)
    unguided = _prompt(e2e, wf.EDIT_WORKFLOW, seed=7)
    set_widget(unguided, wf.IPADAPTER_APPLY, "weight", 0.0)
    without = _output_pixels(e2e["client"].run(unguided, timeout=300).raise_for_error())
    assert np.abs(out.astype(int) - without.astype(int)).max() > 0, "the IP-Adapter did not change the result"


def _upload(e2e, tmp_path, name, image: Image.Image) -> str:
    image.save(tmp_path / name)
    return e2e["client"].upload_image(tmp_path / name)


def test_mask_free_workflow_gives_back_an_odd_size(e2e, tmp_path):
    """VAE Encode crops to multiples of 8; the workflow pads and crops back to the source's size."""
    odd = Image.open(SAMPLE_SOURCE).convert("RGB").resize((61, 43), Image.BICUBIC)
    prompt = _prompt(e2e, wf.EDIT_WORKFLOW, seed=3, source_name=_upload(e2e, tmp_path, "odd.png", odd))
    result = e2e["client"].run(prompt, timeout=300).raise_for_error()
    assert _output_pixels(result).shape == (43, 61, 3)
    status = preview_texts(result, prompt)[wf.STATUS_PREVIEW_TITLE]
    assert "size: 61x43, as given" in status and "cropped back" in status, status


def _masked_status(e2e, tmp_path, mask: Image.Image, seed: int) -> tuple[str, np.ndarray]:
    name = _upload(e2e, tmp_path, f"mask_{seed}.png", mask)
    prompt = _prompt(e2e, wf.MASKED_WORKFLOW, seed=seed, mask_name=name)
    result = e2e["client"].run(prompt, timeout=300).raise_for_error()
    return preview_texts(result, prompt)[wf.STATUS_PREVIEW_TITLE], _output_pixels(result)


def test_an_all_black_mask_is_a_mask_free_edit_said_on_the_status(e2e, tmp_path):
    status, out = _masked_status(e2e, tmp_path, Image.new("L", (SIZE, SIZE), 0), seed=21)
    assert "mask-free" in status, status
    changed = (np.abs(out.astype(int) - e2e["source"].astype(int)).max(axis=-1) > 0).mean()
    assert changed > 0.5, "an empty mask must not return the source unchanged"


def test_a_mask_only_in_the_alpha_channel_and_of_another_size_is_used_and_reported(e2e, tmp_path):
    """RGB black, alpha transparent over the ball, at half the image's size."""
    from scipy.ndimage import binary_dilation

    half = Image.fromarray((e2e["mask"] * 255).astype(np.uint8)).resize((SIZE // 2, SIZE // 2), Image.NEAREST)
    rgba = Image.new("RGBA", half.size, (0, 0, 0, 255))
    rgba.putalpha(half.point(lambda v: 255 - v))
    status, out = _masked_status(e2e, tmp_path, rgba, seed=22)
    assert "alpha" in status and f"{SIZE // 2}x{SIZE // 2}" in status and "resized" in status, status
    reach = binary_dilation(e2e["mask"], structure=np.ones((3, 3), bool), iterations=MASK_REACH_PX + 2)
    assert np.array_equal(out[~reach], e2e["source"][~reach]), "pixels outside the alpha mask changed"
    assert (
        np.abs(out[e2e["mask"]].astype(int) - e2e["source"][e2e["mask"]].astype(int)).max(-1) > 0
    ).mean() > 0.5


def test_an_inverted_mask_shows_its_coverage(e2e, tmp_path):
    inverted = Image.fromarray(((~e2e["mask"]) * 255).astype(np.uint8))
    status, _ = _masked_status(e2e, tmp_path, inverted, seed=23)
    coverage = 100 * (~e2e["mask"]).mean()
    assert f"covers {coverage:.1f}% of the image" in status and "invert the mask" in status, status


def test_swapping_the_checkpoint_widget_to_another_sd15_file_works(e2e, tiny_sd15_sites16_alt):
    from devkit.workflow_api import set_widget

    # Run the base again right before: tests in between ran other inputs through the same nodes.
    base = e2e["client"].run(_prompt(e2e, wf.EDIT_WORKFLOW, seed=7), timeout=300).raise_for_error()
    prompt = _prompt(e2e, wf.EDIT_WORKFLOW, seed=7)
    set_widget(prompt, "CheckpointLoaderSimple", "ckpt_name", Path(tiny_sd15_sites16_alt).name)
    swapped = e2e["client"].run(prompt, timeout=300).raise_for_error()
    assert not np.array_equal(_output_pixels(base), _output_pixels(swapped)), (
        "the other checkpoint was not used"
    )
    assert set(_ids_of(prompt, "MindEditRefineAndEmbed")) <= set(swapped.cached_nodes)


def test_an_empty_instruction_is_refused_when_queued(e2e):
    from devkit.comfyui_runtime import PromptRejected

    prompt = _prompt(e2e, wf.EDIT_WORKFLOW, seed=1, instruction="   ")
    with pytest.raises(PromptRejected) as refused:
        e2e["client"].run(prompt, timeout=60)
    assert "instruction is empty" in str(refused.value)
    (refine_id,) = _ids_of(prompt, "MindEditRefineAndEmbed")
    assert refine_id in refused.value.node_errors


def test_an_empty_ip_adapter_window_is_refused_when_queued(e2e):
    """ComfyUI drops every output behind a node that fails VALIDATE_INPUTS (the image is not made) and
    answers POST /prompt with the node's error, which the frontend shows on the node."""
    from devkit.workflow_api import set_widget

    prompt = _prompt(e2e, wf.EDIT_WORKFLOW, seed=1)
    apply_id = set_widget(prompt, wf.IPADAPTER_APPLY, "start_at", 0.9)
    set_widget(prompt, wf.IPADAPTER_APPLY, "end_at", 0.1)
    client = e2e["client"]
    answer = json.loads(client.post_json("/prompt", {"prompt": prompt, "client_id": client.client_id}))
    errors = json.dumps(answer.get("node_errors", {}).get(apply_id, {}))
    assert "start_at (0.9) is after end_at (0.1)" in errors, answer
    result = client.wait(answer["prompt_id"], timeout=300)
    assert not [img for img in result.images if img.type == "output"], "the image must not be made"


def test_missing_model_weights_give_a_clear_error_in_history(e2e, tmp_path):
    from devkit.workflow_api import set_widget

    broken = tmp_path / "llava-without-weights"
    broken.mkdir()
    (broken / "config.json").write_text(json.dumps({"model_type": "llava_onevision"}))
    name = e2e["server"].add_model("LLM", broken)
    prompt = _prompt(e2e, wf.EDIT_WORKFLOW, seed=1)
    set_widget(prompt, wf.MLLM_LOADER, "model_folder", name)
    result = e2e["client"].run(prompt, timeout=300)
    assert not result.ok
    assert result.error is not None and result.error.node_type == "MindEditMLLMLoader"
    message = result.error.exception_message
    assert name in message and ("safetensors" in message or "weights" in message), message


def test_plus_head_with_a_plain_adapter_names_both_shapes_in_history(e2e, fixture_cache):
    from devkit.fixtures.llava_onevision import tiny_mindedit_checkpoint
    from devkit.workflow_api import set_widget

    plus = tiny_mindedit_checkpoint(fixture_cache, kind="plus")
    name = e2e["server"].add_model("mindedit", plus)
    prompt = _prompt(e2e, wf.EDIT_WORKFLOW, seed=1)
    set_widget(prompt, "MindEditMLLMLoader", "mindedit_checkpoint", name)
    result = e2e["client"].run(prompt, timeout=300)
    assert not result.ok and result.error is not None
    assert result.error.node_type == wf.IPADAPTER_APPLY, result.describe_error()
    message = result.error.exception_message
    assert "[1,257,1280]" in message and "1024" in message, message


# -- a Qwen-family head through both MIND-Edit workflows --------------------------------------------


@pytest.fixture(scope="module")
def qwen_models(e2e, fixture_cache, tmp_path_factory):
    """The tiny Qwen2.5-VL and a random plain head for it (as a trained export would record it)."""
    from dataclasses import replace

    import torch
    from transformers import AutoConfig

    from devkit.fixtures.qwen_vl import tiny_qwen2_5_vl
    from mindedit_core.checkpoint import base_model_info, save_mindedit_checkpoint
    from mindedit_core.vision_head import VisionHead, VisionHeadConfig, default_layer

    base_dir = tiny_qwen2_5_vl(fixture_cache)
    info = base_model_info(AutoConfig.from_pretrained(base_dir), name=base_dir.name)
    torch.manual_seed(0)
    head = VisionHead(
        VisionHeadConfig.for_kind("plain", hidden_size=info.hidden_size, layer=default_layer(info.num_layers))
    )
    head.target_norm.fill_(2.5)
    checkpoint = save_mindedit_checkpoint(
        tmp_path_factory.mktemp("qwen_head") / "mindedit-qwen-tiny-plain", base=info, head=head
    )
    e2e["server"].add_model("LLM", base_dir)
    e2e["server"].add_model("mindedit", checkpoint)
    return replace(e2e["models"], llm_dir=base_dir, mindedit_dir=checkpoint)


@pytest.mark.parametrize("name", [wf.MASKED_WORKFLOW, wf.EDIT_WORKFLOW])
def test_the_mindedit_workflows_run_with_a_qwen_family_head(e2e, qwen_models, name):
    from devkit.demo import prepare_prompt

    info = e2e["client"].object_info(wf.MLLM_LOADER)
    prompt = prepare_prompt(
        name,
        {**e2e["object_info"], **info},
        qwen_models,
        source_name=e2e["source_name"],
        mask_name=e2e["mask_name"] if name == wf.MASKED_WORKFLOW else None,
        steps=STEPS,
        seed=31,
        max_new_tokens=24,
        filename_prefix=f"e2e/qwen/{name}",
    )
    result = e2e["client"].run(prompt, timeout=300).raise_for_error()
    out = _output_pixels(result)
    assert out.shape == e2e["source"].shape and not np.array_equal(out, e2e["source"])
    status = preview_texts(result, prompt)[wf.STATUS_PREVIEW_TITLE]
    assert f"{qwen_models.llm_dir.name} + {qwen_models.mindedit_dir.name}" in status, status
