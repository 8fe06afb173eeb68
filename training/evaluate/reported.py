"""The numbers the MIND-Edit paper reports (Tables 1 and 2), shown beside ours and labelled as reported.

They were measured by the authors with their own (unpublished) split and metric settings, so they
are a reference point, not something our numbers must reproduce digit for digit.
"""

from __future__ import annotations

BENCHMARKS: dict[str, str] = {
    "humanedit": "HumanEdit",
    "complex_multistep": "ComplexMultistepImageEditing",
}

# Table 1: method -> benchmark -> metric -> value.
REPORTED_TABLE1: dict[str, dict[str, dict[str, float]]] = {
    "SmartEdit": {
        "humanedit": {"clip_i": 0.8841, "lpips": 0.2915, "psnr": 17.1728, "ssim": 0.6828},
        "complex_multistep": {"clip_i": 0.5096, "lpips": 0.7630, "psnr": 7.7464, "ssim": 0.1333},
    },
    "BrushNet": {
        "humanedit": {"clip_i": 0.8986, "lpips": 0.1830, "psnr": 19.2172, "ssim": 0.7877},
        "complex_multistep": {"clip_i": 0.6924, "lpips": 0.7464, "psnr": 8.1696, "ssim": 0.1281},
    },
    "MagicQuill": {
        "humanedit": {"clip_i": 0.9381, "lpips": 0.1162, "psnr": 22.2380, "ssim": 0.8981},
        "complex_multistep": {"clip_i": 0.6996, "lpips": 0.7037, "psnr": 8.8158, "ssim": 0.1817},
    },
    "MIND-Edit": {
        "humanedit": {"clip_i": 0.9310, "lpips": 0.1245, "psnr": 22.2714, "ssim": 0.8517},
        "complex_multistep": {"clip_i": 0.6340, "lpips": 0.6963, "psnr": 8.9245, "ssim": 0.2069},
    },
}

# Table 2 (HumanEdit): experiment -> (T_opt, v_insight, training of T_opt, training of v_insight, metrics).
REPORTED_TABLE2: list[tuple[str, str, str, str, str, dict[str, float]]] = [
    ("#1", "✓", "—", "J", "—", {"clip_i": 0.9307, "lpips": 0.1264, "psnr": 22.4354, "ssim": 0.8433}),
    ("#2", "—", "✓", "—", "J", {"clip_i": 0.9287, "lpips": 0.1281, "psnr": 22.0378, "ssim": 0.8491}),
    ("#3", "✓", "✓", "I", "I", {"clip_i": 0.9009, "lpips": 0.1549, "psnr": 19.9760, "ssim": 0.8283}),
    ("#4", "✓", "✓", "J", "I", {"clip_i": 0.9145, "lpips": 0.1306, "psnr": 22.2412, "ssim": 0.8507}),
    ("#5", "✓", "✓", "I", "J", {"clip_i": 0.9275, "lpips": 0.1260, "psnr": 22.3914, "ssim": 0.8524}),
    (
        "#6 (Ours)",
        "✓",
        "✓",
        "J",
        "J",
        {"clip_i": 0.9310, "lpips": 0.1245, "psnr": 22.2714, "ssim": 0.8517},
    ),
]


def benchmark_of(dataset_format: str) -> str:
    """The benchmark key of a dataset format (our own data is its own benchmark)."""
    return dataset_format if dataset_format in BENCHMARKS else "custom"


SYNTHETIC = "synthetic"  # runs on a marked synthetic fixture (training.data.synthetic): never a benchmark


def benchmark_title(key: str) -> str:
    if key == SYNTHETIC:
        return "Synthetic fixture (not a benchmark)"
    return BENCHMARKS.get(key, "Custom data")
