"""First-use download of a known model from a stand-in hub on 127.0.0.1 (``HF_ENDPOINT``), never the
real one: the folder appears whole, with progress; a killed download resumes; offline is refused
with an actionable message. The loader's dropdown lists the known models after the folders found."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from devkit.fixtures.stand_in_hub import StandInHub
from mindedit_core.model_catalogue import KnownModel
from mindedit_core.model_fetch import ModelFetchError, fetch_model, partial_folder

REPO = "stand-in/Tiny-VLM"
MODEL = KnownModel("Tiny-VLM", REPO, "12 MB", "a stand-in VLM folder")
REPO_ROOT = Path(__file__).resolve().parents[1]


def _files(weights_size: int) -> dict[str, bytes]:
    weights = hashlib.shake_256(b"weights").digest(weights_size)
    return {
        "config.json": b'{"model_type": "llava_onevision"}',
        "model.safetensors": weights,
        "chat_template.jinja": b"{{ messages }}",
        "README.md": b"not a pattern the VLM catalogue fetches",
    }


@pytest.fixture
def online(monkeypatch):
    """conftest switches every hub off; these tests switch it on, for the stand-in only."""
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_TOKEN", raising=False)


def test_a_known_model_is_fetched_whole_with_progress(online, monkeypatch, tmp_path):
    files = _files(3_000_000)
    with StandInHub({REPO: files}) as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        seen: list[tuple[int, int]] = []
        target = tmp_path / "LLM" / MODEL.folder
        assert fetch_model(MODEL, target, lambda done, total: seen.append((done, total))) == target
    assert sorted(p.name for p in target.iterdir()) == [
        "chat_template.jinja",
        "config.json",
        "model.safetensors",
    ]
    assert (target / "model.safetensors").read_bytes() == files["model.safetensors"]
    assert not partial_folder(target).exists()
    total = sum(len(files[n]) for n in ("config.json", "model.safetensors", "chat_template.jinja"))
    assert seen[-1] == (total, total) and all(t == total for _, t in seen)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen), "progress never goes back"
    assert len(seen) > 3
    assert all(path.startswith(("/api/models/", f"/{REPO}/resolve/")) for _, path, _ in hub.requests)


FETCH_SCRIPT = """
import sys
from pathlib import Path
from mindedit_core.model_catalogue import KnownModel
from mindedit_core.model_fetch import fetch_model
model = KnownModel("Tiny-VLM", sys.argv[1], "12 MB", "stand-in")
print(fetch_model(model, Path(sys.argv[2])), flush=True)
"""


def test_a_killed_download_resumes_where_it_stopped(tmp_path):
    files = _files(12 * 1024 * 1024)
    target = tmp_path / "LLM" / MODEL.folder
    part = partial_folder(target) / "model.safetensors.part"
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env["PYTHONPATH"] = str(REPO_ROOT)
    with StandInHub({REPO: files}, bytes_per_second=2 * 1024 * 1024) as hub:
        env["HF_ENDPOINT"] = hub.url
        first = subprocess.Popen([sys.executable, "-c", FETCH_SCRIPT, REPO, str(target)], env=env)
        deadline = time.monotonic() + 120
        while not (part.is_file() and part.stat().st_size >= 3 * 1024 * 1024):
            assert first.poll() is None and time.monotonic() < deadline, "the download never got going"
            time.sleep(0.05)
        first.kill()
        first.wait()
        cut_at = part.stat().st_size
        assert 0 < cut_at < len(files["model.safetensors"]) and not target.exists()
        hub.bytes_per_second = None
        again = subprocess.run(
            [sys.executable, "-c", FETCH_SCRIPT, REPO, str(target)], env=env, capture_output=True, text=True
        )
        assert again.returncode == 0, again.stderr
    assert (target / "model.safetensors").read_bytes() == files["model.safetensors"]
    ranges = [rng for _, path, rng in hub.requests if path.endswith("model.safetensors") and rng]
    assert ranges == [f"bytes={cut_at}-"], "the second run must ask only for the missing bytes"


def test_offline_mode_refuses_with_what_to_do(monkeypatch, tmp_path):
    with StandInHub({REPO: _files(1000)}) as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
        target = tmp_path / "LLM" / MODEL.folder
        with pytest.raises(ModelFetchError) as err:
            fetch_model(MODEL, target)
    message = str(err.value)
    assert "HF_HUB_OFFLINE=1" in message and str(target) in message and REPO in message
    assert hub.requests == [], "offline means no request at all"
    assert not target.exists()


def test_an_unreachable_hub_names_the_endpoint_and_the_way_out(online, monkeypatch, tmp_path):
    with StandInHub({}) as hub:
        url = hub.url
    monkeypatch.setenv("HF_ENDPOINT", url)  # the port is closed now
    with pytest.raises(ModelFetchError) as err:
        fetch_model(MODEL, tmp_path / "LLM" / MODEL.folder)
    assert url in str(err.value) and "HF_ENDPOINT" in str(err.value)
