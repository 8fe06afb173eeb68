"""The metrics against independent implementations: scikit-image (PSNR, SSIM), the `lpips` package
(LPIPS, same random backbone), a direct CLIP computation (CLIP-I); and their fixed points."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from training.evaluate.metrics import (
    ClipImageScorer,
    LPIPSWeightsError,
    load_lpips,
    load_metric_image,
    psnr,
    ssim,
)


def _pair(seed: int, h: int = 37, w: int = 45, noise: float = 0.15) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    a = torch.rand(3, h, w, generator=generator)
    b = (a + noise * torch.randn(3, h, w, generator=generator)).clamp(0, 1)
    return a, b


def _hwc(t: torch.Tensor) -> np.ndarray:
    return t.permute(1, 2, 0).double().numpy()


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), h=st.integers(11, 40), w=st.integers(11, 40), noise=st.floats(0.01, 0.5))
def test_psnr_and_ssim_match_scikit_image(seed: int, h: int, w: int, noise: float) -> None:
    a, b = _pair(seed, h, w, noise)
    expected_psnr = peak_signal_noise_ratio(_hwc(a), _hwc(b), data_range=1.0)
    expected_ssim = structural_similarity(
        _hwc(a),
        _hwc(b),
        data_range=1.0,
        channel_axis=2,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
    )
    assert psnr(a, b)[0] == pytest.approx(expected_psnr, rel=1e-9, abs=1e-9)
    assert ssim(a, b)[0] == pytest.approx(expected_ssim, rel=1e-7, abs=1e-9)


def test_batched_values_equal_single_values() -> None:
    a1, b1 = _pair(1)
    a2, b2 = _pair(2)
    batch = psnr(torch.stack([a1, a2]), torch.stack([b1, b2]))
    assert batch == [psnr(a1, b1)[0], psnr(a2, b2)[0]]
    assert ssim(torch.stack([a1, a2]), torch.stack([b1, b2]))[1] == pytest.approx(ssim(a2, b2)[0], abs=1e-12)


def test_identical_images_fixed_points(lpips_random_backbone) -> None:
    a, _ = _pair(3, 64, 64)
    assert math.isinf(psnr(a, a)[0]) and psnr(a, a)[0] > 0
    assert ssim(a, a)[0] == pytest.approx(1.0, abs=1e-12)
    model = load_lpips("alex", backbone_file=lpips_random_backbone)
    assert model.distance(a, a)[0] == pytest.approx(0.0, abs=1e-7)


def test_masked_psnr_and_ssim_use_only_the_selected_pixels() -> None:
    a, b = _pair(4, 40, 40)
    mask = torch.zeros(40, 40, dtype=torch.bool)
    mask[5:30, 8:33] = True
    diff = (a.double() - b.double())[:, mask]
    expected = 10 * math.log10(1.0 / float((diff**2).mean()))
    assert psnr(a, b, mask)[0] == pytest.approx(expected, rel=1e-12)
    # Changing pixels outside the mask does not move the masked values.
    c = b.clone()
    c[:, ~mask] = 0.0
    assert psnr(a, c, mask)[0] == pytest.approx(psnr(a, b, mask)[0], rel=1e-12)
    # Masked SSIM = the mean of the SSIM map over the selected valid positions.
    from training.evaluate.metrics.ssim import ssim_map

    full_map = ssim_map(a, b)[0]
    selected = mask[5:-5, 5:-5]
    assert ssim(a, b, mask)[0] == pytest.approx(float(full_map[:, selected].mean()), rel=1e-12)
    with pytest.raises(ValueError, match="selects no pixel"):
        psnr(a, b, torch.zeros(40, 40, dtype=torch.bool))
    # A mask of another size is named as such by both metrics (never a broadcasting error).
    for metric in (psnr, ssim):
        with pytest.raises(ValueError, match="differs from the image size"):
            metric(a, b, torch.ones(32, 32, dtype=torch.bool))


def test_shape_mismatch_is_an_error_not_a_resize() -> None:
    with pytest.raises(ValueError, match="different shapes"):
        psnr(torch.rand(3, 20, 20), torch.rand(3, 21, 20))


def test_lpips_matches_the_lpips_package_with_the_same_random_backbone(lpips_random_backbone) -> None:
    lpips_pkg = pytest.importorskip("lpips")
    reference = lpips_pkg.LPIPS(net="alex", pretrained=True, pnet_rand=True, verbose=False).eval()
    ours = load_lpips("alex", backbone_file=lpips_random_backbone)
    # Put our random backbone into the package's slices (same torchvision indices).
    state = torch.load(lpips_random_backbone, weights_only=True)
    slices = {0: 1, 3: 2, 6: 3, 8: 4, 10: 5}
    mapped = {}
    for index, slice_number in slices.items():
        for part in ("weight", "bias"):
            mapped[f"net.slice{slice_number}.{index}.{part}"] = state[f"features.{index}.{part}"]
    missing, _ = reference.load_state_dict(mapped, strict=False)
    assert not [k for k in missing if k.startswith("net.")]
    a, b = _pair(6, 64, 64, noise=0.3)
    with torch.no_grad():
        expected = reference(a.unsqueeze(0) * 2 - 1, b.unsqueeze(0) * 2 - 1).flatten()
    got = ours.distance(a, b)
    assert got[0] > 1e-4  # a real distance, not a degenerate zero
    assert got[0] == pytest.approx(float(expected[0]), rel=1e-5, abs=1e-7)


def test_lpips_without_backbone_weights_fails_clearly(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("MINDEDIT_LPIPS_BACKBONE", raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    with pytest.raises(LPIPSWeightsError) as info:
        load_lpips("alex")
    message = str(info.value)
    assert "alexnet-owt-7be5be79.pth" in message and "--lpips-backbone" in message
    assert "Nothing is downloaded" in message


def test_lpips_rejects_a_wrong_backbone_file(tmp_path) -> None:
    bad = tmp_path / "vgg-looking.pth"
    torch.save({"features.0.weight": torch.zeros(64, 3, 3, 3)}, bad)
    with pytest.raises(ValueError, match="lack"):
        load_lpips("alex", backbone_file=bad)


def test_clip_i_matches_a_direct_computation(eval_clip_vision_dir) -> None:
    from transformers import CLIPVisionModelWithProjection

    scorer = ClipImageScorer.from_folder(eval_clip_vision_dir)
    rng = np.random.default_rng(0)
    first = Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8))
    second = Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8))
    got = scorer.similarity([first, first], [second, first])
    # Direct: resize shortest side to 32, centre crop 32, CLIP mean/std, vision tower + projection.
    model = CLIPVisionModelWithProjection.from_pretrained(str(eval_clip_vision_dir)).eval()
    mean = torch.tensor([0.48145466, 0.4578275, 0.40821073]).view(3, 1, 1)
    std = torch.tensor([0.26862954, 0.26130258, 0.27577711]).view(3, 1, 1)

    def embed(image: Image.Image) -> torch.Tensor:
        resized = image.resize(
            (42, 32), Image.Resampling.BICUBIC
        )  # 64x48 -> shortest side 32 (int(), as transformers)
        cropped = resized.crop((5, 0, 37, 32))
        pixels = torch.from_numpy(np.asarray(cropped, dtype=np.float32) / 255).permute(2, 0, 1)
        with torch.no_grad():
            pooled = model.vision_model(pixel_values=((pixels - mean) / std).unsqueeze(0)).pooler_output
            return model.visual_projection(pooled)[0]

    a, b = embed(first), embed(second)
    expected = float(torch.dot(a, b) / (a.norm() * b.norm()))
    assert got[0] == pytest.approx(expected, abs=1e-5)
    assert abs(expected) < 0.999  # the two images really differ
    assert got[1] == pytest.approx(1.0, abs=1e-6)


def test_clip_i_missing_model_folder_says_what_to_do(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="hf download"):
        ClipImageScorer.from_folder(tmp_path / "nothing")


def test_metric_image_conversion_records_size(tmp_path) -> None:
    path = tmp_path / "x.png"
    Image.new("RGBA", (30, 20), (255, 0, 0, 10)).save(path)
    tensor = load_metric_image(path, 16)
    assert tensor.shape == (3, 16, 16)
    assert float(tensor[0].min()) == pytest.approx(1.0) and float(tensor[1].max()) == 0.0


@pytest.mark.slow
def test_psnr_ssim_clip_i_work_without_torchvision(eval_clip_vision_dir) -> None:
    code = f"""
import sys
sys.modules['torchvision'] = None  # any import of torchvision now raises ImportError
import torch
from PIL import Image
from training.evaluate.metrics import psnr, ssim, ClipImageScorer
a = torch.rand(3, 32, 32); b = torch.rand(3, 32, 32)
assert 0 < psnr(a, b)[0] < 100 and -1 < ssim(a, b)[0] < 1
scorer = ClipImageScorer.from_folder({str(eval_clip_vision_dir)!r})
v = scorer.similarity([Image.new('RGB', (40, 40), 'red')], [Image.new('RGB', (40, 40), 'red')])[0]
assert abs(v - 1) < 1e-5, v
assert 'torchvision' not in [m for m in sys.modules if sys.modules[m] is not None]
print('ok')
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().endswith("ok")


def test_clip_preprocessing_matches_transformers_processor(tiny_clip_vision_dir) -> None:
    """Our torchvision-free preprocessing == `CLIPImageProcessor` up to uint8 rounding (non-square input)."""
    from PIL import ImageFilter
    from transformers import CLIPImageProcessor

    from training.evaluate.metrics import ClipPreprocess

    rng = np.random.default_rng(1)
    image = Image.fromarray(rng.integers(0, 256, (300, 400, 3), dtype=np.uint8)).filter(
        ImageFilter.GaussianBlur(2)
    )
    ours = ClipPreprocess.from_folder(tiny_clip_vision_dir, 224)(image)
    reference = CLIPImageProcessor.from_pretrained(str(tiny_clip_vision_dir))(
        images=image, return_tensors="pt"
    )
    difference = (ours - reference.pixel_values[0]).abs()
    assert ours.shape == (3, 224, 224)
    assert float(difference.mean()) < 1e-3 and float(difference.max()) < 0.05
