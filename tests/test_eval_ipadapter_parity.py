"""Pipeline-level parity: diffusers' own IP-Adapter path (``load_ip_adapter`` + ``ip_adapter_image_embeds``)
and our IP-Adapter math (`mindedit_core.ipadapter`, the code the ComfyUI nodes use) give the same UNet
output on the tiny SD1.5 diffusers UNet, and the same pipeline latents."""

from __future__ import annotations

import pytest
import torch

from mindedit_core.ipadapter import load_ipadapter, read_adapter_file
from mindedit_core.ipadapter.diffusers_processor import install_ipadapter_processors, restore_processors

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _unet(folder):
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel.from_pretrained(str(folder), subfolder="unet").eval()


def _inputs(seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    latents = torch.randn(2, 4, 8, 8, generator=generator)
    text = torch.randn(2, 77, 32, generator=generator)
    positive = torch.randn(1, 1024, generator=generator) * 2.5
    return latents, text, positive


@pytest.mark.parametrize("weight", [1.0, 0.6])
def test_unet_output_matches_diffusers_ipadapter(sd15_diffusers_dir, eval_ipadapter_file, weight) -> None:
    latents, text, positive = _inputs()
    timestep = torch.tensor(500)

    reference = _unet(sd15_diffusers_dir)
    sections = read_adapter_file(eval_ipadapter_file)
    reference._load_ip_adapter_weights(
        [{"image_proj": sections["image_proj"], "ip_adapter": sections["ip_adapter"]}]
    )
    for processor in reference.attn_processors.values():
        if hasattr(processor, "scale"):
            processor.scale = [weight]
    embeds = torch.cat([torch.zeros_like(positive), positive]).unsqueeze(1)  # [uncond ; cond], 1 image
    with torch.no_grad():
        expected = reference(
            latents, timestep, encoder_hidden_states=text, added_cond_kwargs={"image_embeds": [embeds]}
        ).sample
        plain = _unet(sd15_diffusers_dir)(latents, timestep, encoder_hidden_states=text).sample

    ours = _unet(sd15_diffusers_dir)
    adapter = load_ipadapter(eval_ipadapter_file)
    state = install_ipadapter_processors(ours, adapter)
    state.set_embeds(adapter, positive, torch.zeros_like(positive), cfg=True)
    state.weight = weight
    with torch.no_grad():
        got = ours(latents, timestep, encoder_hidden_states=text).sample
        assert (got - plain).abs().max() > 1e-3  # the adapter really changes the output
        torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
        restore_processors(ours, state.original_processors)
        restored = ours(latents, timestep, encoder_hidden_states=text).sample
    torch.testing.assert_close(restored, plain, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("kind", ["plain", "plus"])
def test_editor_backends_give_the_same_image(
    sd15_diffusers_dir, eval_ipadapter_file, eval_cache, kind
) -> None:
    """Our harness with ``ipadapter_backend="mindedit"`` vs ``"diffusers"``: same latents after 2 steps."""
    from PIL import Image

    from devkit.fixtures.sd15_diffusers import build_tiny_ipadapter
    from training.evaluate.pipelines import DiffusionSettings, EditPipelines

    if kind == "plain":
        adapter_file, _, embeds = eval_ipadapter_file, None, _inputs(1)[2]
    else:  # ViT-H/14 penultimate hidden states [1, 257, 1280] through a Perceiver resampler
        adapter_file = build_tiny_ipadapter(eval_cache, image_embed_dim=1280, kind="plus")
        embeds = torch.randn(1, 257, 1280, generator=torch.Generator().manual_seed(2))
    source = Image.new("RGB", (64, 64), (120, 80, 40))
    results = {}
    for backend in ("diffusers", "mindedit"):
        settings = DiffusionSettings(
            model=str(sd15_diffusers_dir),
            ipadapter=str(adapter_file),
            ipadapter_backend=backend,
            steps=2,
            resolution=64,
            strength=1.0,
        )
        editor = EditPipelines(settings)
        assert editor.adapter["kind"] == kind
        results[backend] = editor.edit_latents(source, "a red square", "blurry", image_embeds=embeds, seed=3)
        no_embed = editor.edit_latents(source, "a red square", "blurry", image_embeds=None, seed=3)
        assert (results[backend] - no_embed).abs().max() > 1e-4
    torch.testing.assert_close(results["mindedit"], results["diffusers"], atol=1e-5, rtol=1e-5)
