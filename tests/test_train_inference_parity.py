"""Train/inference parity, for every family: the token ids and image tensors that training's collate
builds for an example equal what inference builds for the same image and instruction (both go
through `MLLMFamily.encode_prompt`). Inference gets ComfyUI's float IMAGE/MASK, training the PNG
files of the same pixels, as the nodes and the dataset loader do."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from mindedit_core.mllm import FAMILIES, load_mllm
from training.collate import IGNORE_INDEX, EditTrainDataset, collate
from training.data.record import EditRecord

INSTRUCTION = "put a red scarf on the dog"


def _png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def pixels():
    rng = np.random.default_rng(7)
    image = rng.integers(0, 256, size=(300, 420, 3), dtype=np.uint8)  # non-square, above 384 px
    mask = np.zeros((300, 420), dtype=np.uint8)
    mask[60:220, 100:330] = 255
    return image, mask


@pytest.fixture(scope="module")
def family_runner(family_dir):
    model_type, folder = family_dir
    return model_type, load_mllm(folder, device="cpu", dtype="float32")


@pytest.mark.parametrize("with_mask", [True, False], ids=["masked", "mask_free"])
@pytest.mark.parametrize("max_side", [384, 256])
def test_collate_builds_what_inference_builds(family_runner, pixels, with_mask, max_side):
    model_type, mllm = family_runner
    family = FAMILIES[model_type]
    image, mask = pixels
    record = EditRecord(
        id="r0",
        instruction=INSTRUCTION,
        source=_png(image),
        mask=_png(mask) if with_mask else None,
        refined_positive="dog wearing a red knitted scarf",
        refined_negative="bare neck, blurry",
    )
    dataset = EditTrainDataset(
        [record],
        mllm.processor,
        with_answer=True,
        targets=None,
        target_kind="plain",
        use_mask=True,
        max_side=max_side,
        family=family,  # as training passes it (two families may share a processor class)
    )
    batch = collate([dataset[0]], pad_token_id=0)

    comfy_image = torch.from_numpy(image.astype(np.float32) / 255.0)[None]
    comfy_mask = torch.from_numpy(mask.astype(np.float32) / 255.0)[None] if with_mask else None
    inputs = mllm.prepare_inputs(comfy_image, INSTRUCTION, mask=comfy_mask, max_image_side=max_side)

    prompt_ids = inputs["input_ids"][0]
    n = prompt_ids.shape[0]
    assert int(batch["prompt_mask"][0].sum()) == n
    assert torch.equal(batch["input_ids"][0, :n], prompt_ids)
    assert torch.equal(batch["attention_mask"][0, :n], inputs["attention_mask"][0])
    assert (batch["labels"][0, :n] == IGNORE_INDEX).all() and (batch["labels"][0, n:] != IGNORE_INDEX).all()
    end_id = mllm.processor.tokenizer.convert_tokens_to_ids(family.end_of_answer)
    assert int(batch["input_ids"][0, -1]) == end_id  # the answer ends with the family's end token
    for key in family.image_input_keys:
        assert torch.equal(batch[key], inputs[key].to(batch[key].dtype)), key
    for key in family.token_aligned_keys:
        if key in inputs:
            assert torch.equal(batch[key][0, :n], inputs[key][0]), key
    config = mllm.model.config
    image_token_id = getattr(config, "image_token_id", None) or config.image_token_index
    image_tokens = int((prompt_ids == image_token_id).sum())
    assert image_tokens > 0
    masked_prompt = "outlined" in mllm.processor.tokenizer.decode(prompt_ids)
    assert masked_prompt == with_mask
