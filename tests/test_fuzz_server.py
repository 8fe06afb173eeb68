"""A bounded, seeded sample of the fuzz cases (tests/fuzz_cases.py) through the real headless ComfyUI:
the mask-free edit workflow over HTTP, as a user would queue it (issue 20).

Each case uploads a source file (any mode: 16-bit greyscale, palette, alpha, 1 px wide...), sets the
instruction and widget values (NaN and infinity included, sent as JSON) and queues the prompt. The
outcome must be a result (the source's size, prompts never empty or carrying injected text, a flat
result or a transparent source said on the status), a refusal at queue time with a message, or a
failure in one of our nodes with one of the pack's clear errors; never a crash of the server.

`MINDEDIT_FUZZ_SERVER_CASES` cases (default 12; about a minute on 2 cores), seed `MINDEDIT_FUZZ_SEED`.
"""

from __future__ import annotations

import io
import os
import random

import numpy as np
import pytest
from fixtures_comfyui import link_tiny_sd15_models
from fuzz_cases import MARKER, Case, sample_case
from helpers_nodes import comfy_load_image
from PIL import Image

from devkit import build_workflows as wf
from devkit.demo import prepare_prompt as demo_prompt
from devkit.demo import preview_texts

pytestmark = [pytest.mark.comfyui, pytest.mark.slow]

CASES = int(os.environ.get("MINDEDIT_FUZZ_SERVER_CASES", "12"))
SEED = int(os.environ.get("MINDEDIT_FUZZ_SEED", "20"))
CLEAR_ERRORS = ("SourceImageError", "EmptyInstructionError", "NonFiniteValueError")


def _loads_images_with_pillow() -> bool:
    """Whether the tree's Load Image reads files with Pillow, as `comfy_load_image` does (0.3.75).
    Newer trees (0.33) decode through PyAV first: other pixels for some modes (16-bit PNG is not
    flattened to white) and files PyAV cannot read fail inside core's node, before the pack runs."""
    from devkit.comfyui_runtime.tree import comfyui_root

    loader = (comfyui_root() / "nodes.py").read_text(encoding="utf-8")
    return "VideoFromFile(image_path)" not in loader


@pytest.fixture(scope="module")
def server_env(comfyui_server, fixture_cache, tiny_sd15_sites16):
    models = link_tiny_sd15_models(comfyui_server, fixture_cache, tiny_sd15_sites16)
    client = comfyui_server.client
    return {"server": comfyui_server, "client": client, "models": models, "info": client.object_info()}


def _file_bytes(image: Image.Image) -> tuple[bytes, str]:
    """The image as a file a user might have: PNG where the mode allows, else TIFF (32-bit float),
    JPEG (CMYK), or a PNG of its RGBA conversion (palette + alpha)."""
    for fmt, ext, picture in (
        ("PNG", "png", image),
        ("TIFF", "tiff", image),
        ("JPEG", "jpg", image),
        ("PNG", "png", image.convert("RGBA")),
    ):
        buffer = io.BytesIO()
        try:
            picture.save(buffer, format=fmt)
        except (OSError, KeyError, ValueError):
            continue
        return buffer.getvalue(), ext
    raise AssertionError(f"no file format holds mode {image.mode}")


def _prompt(env, case: Case, name: str, index: int) -> dict:
    prompt = demo_prompt(
        wf.EDIT_WORKFLOW,
        env["info"],
        env["models"],
        source_name=name,
        instruction=case.instruction,
        steps=2,
        mllm_seed=case.mllm_seed,
        max_new_tokens=case.max_new_tokens,
        filename_prefix=f"fuzz/{index}",
    )
    from devkit.workflow_api import set_widget

    for widget in ("weight", "start_at", "end_at"):
        set_widget(prompt, wf.IPADAPTER_APPLY, widget, getattr(case, widget))
    set_widget(prompt, wf.REFINE_TITLE, "max_image_side", case.max_image_side)
    return prompt


def _check_result(
    result, prompt, case: Case, loaded: np.ndarray, alpha_mask: np.ndarray, pixels_known: bool
) -> None:
    texts = preview_texts(result, prompt)
    status = texts[wf.STATUS_PREVIEW_TITLE]
    positive, negative = texts[wf.POSITIVE_PREVIEW_TITLE], texts[wf.NEGATIVE_PREVIEW_TITLE]
    assert positive.strip(), "the positive prompt is never empty"
    if case.injected:
        assert MARKER not in positive and MARKER not in negative, (positive, negative)
    saved = [img for img in result.images if img.type == "output"]
    assert len(saved) == 1
    out = np.asarray(Image.open(io.BytesIO(saved[0].data)).convert("RGB"))
    assert out.shape == loaded.shape, (out.shape, loaded.shape)
    if int(out.max()) - int(out.min()) <= 1:
        assert "WARNING" in status, status
    if not pixels_known:  # the tree decoded the file its own way: the size and prompts are what we know
        return
    if int(loaded.max()) - int(loaded.min()) <= 1:
        assert "source image is blank" in status, status
    if float(alpha_mask.max()) > 1 / 255:
        assert "transparency" in status, status


def _queue(client, prompt: dict) -> tuple[str | None, list[str]]:
    """POST /prompt: ``(prompt_id or None, validation messages)``. ComfyUI refuses the whole prompt
    (HTTP 400) when no output is left, and otherwise runs the outputs whose nodes passed, reporting
    the others in ``node_errors``: both count as a refusal at queue time."""
    import json
    import urllib.error

    payload = {"prompt": prompt, "client_id": client.client_id}
    try:
        answer = json.loads(client.post_json("/prompt", payload))
    except urllib.error.HTTPError as err:
        assert err.code == 400, err
        answer = json.loads(err.read())
    messages = [
        f"{e.get('message')}: {e.get('details')}"
        for info in (answer.get("node_errors") or {}).values()
        for e in info.get("errors", [])
    ]
    if not messages and "prompt_id" not in answer:
        messages = [str(answer.get("error"))]
    return answer.get("prompt_id"), messages


def _clear_error(result) -> bool:
    """The run failed in one of the pack's own refusals (not a crash deeper down)."""
    error = result.error
    return (
        result.status == "error"
        and error is not None
        and error.exception_type.rsplit(".", 1)[-1] in CLEAR_ERRORS
    )


def test_a_seeded_sample_of_fuzz_cases_through_the_real_server(server_env):
    rng = random.Random(SEED)
    client = server_env["client"]
    pixels_known = _loads_images_with_pillow()
    outcomes: dict[str, int] = {}
    for index in range(CASES):
        case = sample_case(rng)
        source = case.source()
        data, ext = _file_bytes(source)
        name = client.upload_image(data, name=f"fuzz_{SEED}_{index}.{ext}")
        loaded, alpha_mask = (t[0].numpy() for t in comfy_load_image(Image.open(io.BytesIO(data))))
        loaded = (loaded * 255 + 0.5).astype(np.uint8)
        prompt = _prompt(server_env, case, name, index)
        prompt_id, refusals = _queue(client, prompt)
        result = client.wait(prompt_id, timeout=300) if prompt_id else None
        if refusals:
            for message in refusals:  # each names the input and what is wrong
                ours = "MIND-Edit" in message and len(message) > 60
                assert ours or "Value" in message or "convert" in message, message
            # what ran of the rest (e.g. the prompt previews) ended well or in one of our clear errors
            if result is not None and not result.ok:
                assert _clear_error(result), result.describe_error()
            outcomes["refused"] = outcomes.get("refused", 0) + 1
        elif result.ok:
            _check_result(result, prompt, case, loaded, alpha_mask, pixels_known)
            outcomes["result"] = outcomes.get("result", 0) + 1
        elif result.error is not None and result.error.node_type == "LoadImage" and not pixels_known:
            # core's own Load Image (PyAV) could not read the file: ComfyUI's error, before the pack ran
            outcomes["core_load_error"] = outcomes.get("core_load_error", 0) + 1
        else:
            assert _clear_error(result), result.describe_error()
            outcomes["error"] = outcomes.get("error", 0) + 1
    assert client.object_info(wf.IPADAPTER_APPLY), "the server must still answer after the sample"
    assert sum(outcomes.values()) == CASES, outcomes
    print(f"server fuzz sample (seed {SEED}): {outcomes}")
