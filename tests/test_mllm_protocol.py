"""The contract core needs of an MLLM (`MindEditMLLMLike`), held by the real runner and the tests' fakes
alike; per-call `PassOptions`; the pass cache's pure logic."""

from __future__ import annotations

import inspect

import pytest
import torch

from mindedit_core.mllm import MindEditMLLM, MindEditMLLMLike, PassOptions
from mindedit_core.mllm.pass_cache import PassCache, PassOutcome, first_of_batch, pass_key, tensor_digest
from mindedit_core.remote.vlm import RemoteVLM

CALL_KEYWORDS = ("mask", "options", "should_stop", "on_token")


def _fakes():
    from test_nodes_inprocess import CountingMLLM  # the nodes' fake MLLM

    return [CountingMLLM]


@pytest.mark.parametrize("cls", [MindEditMLLM, RemoteVLM, *_fakes()], ids=lambda c: c.__name__)
def test_real_runner_and_fakes_share_the_call_signatures(cls):
    for name in ("refine_and_embed", "refine_full"):
        params = inspect.signature(getattr(cls, name)).parameters
        for keyword in CALL_KEYWORDS:
            assert keyword in params, f"{cls.__name__}.{name} lacks {keyword}="
            assert params[keyword].kind is inspect.Parameter.KEYWORD_ONLY
    assert callable(cls.torch_modules)


def test_fake_instances_satisfy_the_protocol():
    from test_nodes_inprocess import CountingMLLM

    assert isinstance(CountingMLLM(), MindEditMLLMLike)
    assert isinstance(CountingMLLM(has_head=False), MindEditMLLMLike)


def test_the_remote_backend_satisfies_the_protocol():
    assert isinstance(RemoteVLM("http://127.0.0.1:11434/v1", "qwen2.5vl:7b"), MindEditMLLMLike)


def test_the_real_runner_satisfies_the_protocol(tiny_mllm_base):
    assert isinstance(tiny_mllm_base, MindEditMLLMLike)


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
