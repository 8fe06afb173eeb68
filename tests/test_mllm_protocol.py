"""The one pass contract (`PassRequest` -> `PassResult` through `MindEditMLLMLike.run`), held by the real
runner and every fake of the tests and the evaluation alike; per-call `PassOptions`; the pass cache's
pure logic."""

from __future__ import annotations

import inspect
from dataclasses import replace

import numpy as np
import pytest
import torch

from mindedit_core.mllm import (
    GenerationInterrupted,
    MindEditMLLM,
    MindEditMLLMLike,
    MissingVisionHeadError,
    PassOptions,
    PassRequest,
    PassResult,
)
from mindedit_core.mllm.pass_cache import PassCache, PassOutcome, first_of_batch, pass_key, tensor_digest


def _fakes():
    """Every fake MLLM of the tests and the evaluation, built as its tests build it."""
    from fixtures_eval import StubMLLM
    from test_eval_generate import FlakyMLLM
    from test_eval_table2 import GibberishMLLM
    from test_fuzz_nodes import ParrotMLLM
    from test_nodes_inprocess import CountingMLLM, PlusMLLM
    from test_runtime_mllm_unload import FakeMLLM

    return {
        "StubMLLM": StubMLLM,
        "FlakyMLLM": FlakyMLLM,
        "GibberishMLLM": GibberishMLLM,
        "CountingMLLM": CountingMLLM,
        "CountingMLLM-no-head": lambda: CountingMLLM(has_head=False),
        "PlusMLLM": PlusMLLM,
        "FakeMLLM": FakeMLLM,
        "ParrotMLLM": lambda: ParrotMLLM("good"),
    }


FAKES = sorted(_fakes())


@pytest.mark.parametrize("name", FAKES)
def test_every_fake_satisfies_the_one_protocol(name):
    fake = _fakes()[name]()
    assert isinstance(fake, MindEditMLLMLike)
    assert isinstance(fake.default_options, PassOptions) and isinstance(fake.torch_modules(), dict)
    params = list(inspect.signature(fake.run).parameters)
    assert params == ["request"], f"{name}.run must take one PassRequest"


@pytest.mark.parametrize("name", FAKES)
def test_every_fake_answers_a_request_with_the_one_result_type(name):
    fake = _fakes()[name]()
    image = np.random.default_rng(0).random((1, 16, 16, 3), dtype=np.float32)  # a ComfyUI IMAGE
    progress = []
    request = PassRequest(
        image, "add a hat", options=PassOptions(max_new_tokens=8), on_token=lambda *a: progress.append(a)
    )
    if name == "FlakyMLLM":
        with pytest.raises(RuntimeError, match="exploded"):
            fake.run(request)  # its first pass fails on purpose
    result = fake.run(request)
    assert isinstance(result, PassResult) and result.refined.positive and result.v_insight is None
    if fake.has_head:
        both = fake.run(replace(request, outputs="both"))
        assert isinstance(both, PassResult) and both.v_insight is not None
    else:
        with pytest.raises(MissingVisionHeadError):
            fake.run(replace(request, outputs="both"))


def test_the_real_runner_satisfies_the_protocol(tiny_mllm_base, tiny_mllm_plain, comfy_image):
    assert isinstance(tiny_mllm_base, MindEditMLLMLike) and isinstance(tiny_mllm_plain, MindEditMLLMLike)
    assert list(inspect.signature(MindEditMLLM.run).parameters) == ["self", "request"]
    steps = []
    request = PassRequest(
        comfy_image, "x", options=PassOptions(max_new_tokens=3), on_token=lambda s, n: steps.append((s, n))
    )
    prompts = tiny_mllm_plain.run(request)
    assert isinstance(prompts, PassResult) and prompts.v_insight is None and steps[0] == (1, 3)
    both = tiny_mllm_plain.run(replace(request, outputs="both"))
    embeds = tiny_mllm_plain.run(replace(request, outputs="embeds"))
    assert embeds.refined is None and torch.allclose(both.v_insight, embeds.v_insight, atol=1e-5)
    assert both.text == prompts.text
    with pytest.raises(MissingVisionHeadError):
        tiny_mllm_base.run(replace(request, outputs="embeds"))
    with pytest.raises(GenerationInterrupted):
        tiny_mllm_plain.run(replace(request, should_stop=lambda: True))
    with pytest.raises(ValueError, match="outputs must be one of"):
        PassRequest(comfy_image, "x", outputs="text")


def test_the_shorthands_build_the_same_request():
    from fixtures_eval import StubMLLM

    stub = StubMLLM()
    built = stub.pass_request(None, "x", "both", seed=3, mask="m")
    assert built == PassRequest(None, "x", mask="m", outputs="both", options=PassOptions(seed=3))
    assert stub.pass_request(None, "x", "prompts").options is None  # the MLLM's defaults apply
    with pytest.raises(TypeError, match="Unknown MLLM pass option"):
        stub.pass_request(None, "x", "prompts", max_side=64)


def test_options_are_per_call_and_never_stored(tiny_mllm_base, comfy_image):
    mllm = tiny_mllm_base
    default = mllm.default_options
    small = mllm.refine_full(comfy_image, "x", options=PassOptions(max_new_tokens=1, max_image_side=64))
    large = mllm.refine_full(comfy_image, "x", max_new_tokens=1, max_image_side=384)
    assert small.prompt_tokens < large.prompt_tokens  # the image budget reached the processor
    assert mllm.default_options is default and default.max_image_side == 384
    with pytest.raises(TypeError, match=r"Unknown MLLM pass option\(s\) \['max_side'\]"):
        mllm.refine_full(comfy_image, "x", max_side=64)
    with pytest.raises(ValueError, match="max_new_tokens must be at least 1"):
        PassOptions(max_new_tokens=0)


def test_pass_key_and_cache():
    image = torch.rand(1, 8, 8, 3)
    assert tensor_digest(image) == tensor_digest(image.clone()) != tensor_digest(image + 1e-3)
    a = pass_key("m", image, None, "x", PassOptions(seed=1))
    assert a == pass_key("m", image.clone(), None, "x", PassOptions(seed=1))
    assert a != pass_key("m", image, None, "x", PassOptions(seed=2))
    assert a != pass_key("other", image, None, "x", PassOptions(seed=1))
    cache = PassCache(size=1)
    outcome = PassOutcome("p", "n", "raw", None, None, "model")
    cache.put(a, outcome)
    assert cache.lookup(a, "note").batch_note == "note" and cache.get(a).batch_note is None
    cache.put(("b",), outcome)
    assert cache.get(a) is None and cache.computations == 2


def test_first_of_batch_reads_one_image_and_drops_an_empty_mask():
    batch = torch.rand(3, 8, 8, 3)
    single, mask, note = first_of_batch(batch, torch.zeros(3, 8, 8))
    assert single.shape == (1, 8, 8, 3) and torch.equal(single[0], batch[0])
    assert mask is None and "batch of 3 images" in note
    _, mask, note = first_of_batch(batch[0], torch.ones(8, 8))
    assert mask.shape == (1, 8, 8) and note is None


def test_the_remote_backend_satisfies_the_one_protocol():
    from mindedit_core.remote.vlm import RemoteVLM

    remote = RemoteVLM("http://127.0.0.1:11434/v1", "qwen2.5vl:7b")
    assert isinstance(remote, MindEditMLLMLike) and remote.torch_modules() == {}
    assert list(inspect.signature(remote.run).parameters) == ["request"]
    assert isinstance(remote.default_options, PassOptions)
