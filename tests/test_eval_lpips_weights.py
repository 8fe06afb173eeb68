"""LPIPS checks its backbone file against torchvision's own (the file name carries the first 8 hex
digits of its sha256): any other file is used with a warning, and the score conventions say so."""

from __future__ import annotations

import logging
import shutil

from training.evaluate.metrics import load_lpips, lpips_net
from training.evaluate.score import ScoreSettings, conventions


def test_known_prefixes_come_from_torchvisions_file_names():
    assert lpips_net.known_sha256_prefix("alex") == "7be5be79"
    assert lpips_net.known_sha256_prefix("vgg") == "397923af"


def test_random_backbone_is_used_with_a_warning_and_marked(lpips_random_backbone, caplog):
    with caplog.at_level(logging.WARNING, logger=lpips_net.__name__):
        model = load_lpips("alex", backbone_file=lpips_random_backbone)
    assert model.backbone_verified is False and len(model.backbone_sha256) == 64
    assert "is not torchvision's alexnet-owt-7be5be79.pth" in caplog.text
    text = conventions(ScoreSettings(metrics=("lpips",)), lpips_model=model)["lpips"]
    assert "NOT torchvision's file" in text and model.backbone_sha256[:16] in text


def test_the_known_file_passes_without_a_warning(lpips_random_backbone, tmp_path, monkeypatch, caplog):
    # A file whose sha256 starts with the prefix its name promises is accepted quietly (the real
    # alexnet file cannot be downloaded here: the expected prefix is that of our stand-in).
    copy = tmp_path / "alexnet-owt-7be5be79.pth"
    shutil.copy(lpips_random_backbone, copy)
    monkeypatch.setattr(lpips_net, "known_sha256_prefix", lambda b: lpips_net.file_sha256(copy)[:8])
    with caplog.at_level(logging.WARNING, logger=lpips_net.__name__):
        model = load_lpips("alex", backbone_file=copy)
    assert model.backbone_verified is True and "not torchvision" not in caplog.text
    assert (
        "torchvision's own file" in conventions(ScoreSettings(metrics=("lpips",)), lpips_model=model)["lpips"]
    )
