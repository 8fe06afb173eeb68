"""Fixtures of the training area: a tiny HumanEdit-schema dataset, a fake chat-completions server,
the tiny CLIP vision encoder."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def humanedit_dir(fixture_cache: Path) -> Path:
    """A 12-row HumanEdit-schema snapshot folder (2 parquet shards), built once and cached."""
    from devkit.fixtures.edit_dataset import build_humanedit_fixture

    return build_humanedit_fixture(fixture_cache / "datasets")


@pytest.fixture()
def humanedit_records(humanedit_dir: Path, tmp_path_factory):
    from training.data import load_humanedit

    return load_humanedit(humanedit_dir, cache_dir=tmp_path_factory.mktemp("hf-datasets"))


class FakeChatServer:
    """A stdlib OpenAI-compatible ``/v1/chat/completions`` server on 127.0.0.1.

    ``script(instruction, n)`` decides each answer from the request's instruction and how many times
    that instruction was asked before: return ``(status, text)``. Every request is logged.
    """

    def __init__(self, script) -> None:
        self.script = script
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep test output clean
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                text = body["messages"][-1]["content"][-1]["text"]
                with server.lock:
                    n = sum(1 for r in server.requests if r["text"] == text)
                    server.requests.append(
                        {"text": text, "body": body, "auth": self.headers.get("Authorization")}
                    )
                status, answer = server.script(text, n)
                if status != 200:
                    payload = json.dumps({"error": {"message": answer}}).encode()
                    self.send_response(status)
                    self.send_header("Retry-After", "0")
                else:
                    payload = json.dumps(
                        {"choices": [{"index": 0, "message": {"role": "assistant", "content": answer}}]}
                    ).encode()
                    self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture()
def fake_chat_server():
    """Factory: ``fake_chat_server(script)`` -> a running `FakeChatServer` (closed after the test)."""
    servers: list[FakeChatServer] = []

    def start(script) -> FakeChatServer:
        server = FakeChatServer(script)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


@pytest.fixture(scope="session")
def tiny_clip_vision_dir(fixture_cache: Path) -> Path:
    """A tiny CLIPVisionModelWithProjection folder shaped like IP-Adapter's ViT-H/14 (+ processor)."""
    from devkit.fixtures.clip_vision import build_tiny_clip_vision

    return build_tiny_clip_vision(fixture_cache)


@pytest.fixture(scope="session")
def training_inputs(
    humanedit_dir: Path, tiny_clip_vision_dir: Path, fixture_cache: Path, tmp_path_factory
) -> dict:
    """Everything `training.train` needs on the tiny fixtures: data, refined JSONL, CLIP targets (both
    kinds), the tiny LLaVA-OneVision folder. Built once per session (targets are cached)."""
    from devkit.fixtures.llava_onevision import tiny_llava_onevision
    from devkit.fixtures.refined_cache import write_refined_cache
    from training.build_targets import build_targets
    from training.data import load_humanedit
    from training.target_store import UNCONDITIONAL_NAME

    work = tmp_path_factory.mktemp("training-inputs")
    records = load_humanedit(humanedit_dir, cache_dir=work / "hf")
    refined = write_refined_cache(work / "refined.jsonl", records)
    targets = fixture_cache / "training" / f"targets-{humanedit_dir.name}-{tiny_clip_vision_dir.name}"
    if (
        not (targets / "targets.json").is_file()
        or len(list(targets.glob("shard-*"))) == 0
        or not (targets / UNCONDITIONAL_NAME).is_file()  # built before the blank-image negative existed
    ):
        build_targets(records, tiny_clip_vision_dir, targets, batch_size=12, shard_size=64, progress=False)
    return {
        "model": tiny_llava_onevision(fixture_cache),
        "data": humanedit_dir,
        "refined": refined,
        "targets": targets,
        "num_records": len(records),
    }


def write_jsonl_dataset(
    folder: Path, num_rows: int = 24, *, size: int = 32, with_prompts: bool = True
) -> Path:
    """A JSONL dataset folder (``metadata.jsonl`` + PNG files; white = edit masks) built from the
    HumanEdit fixture's rows; with ``with_prompts`` each line carries its refined prompts."""
    import io

    from PIL import Image, ImageOps

    from devkit.fixtures.edit_dataset import make_rows

    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for row in make_rows(num_rows, size=size, seed=4):
        rid = row["IMAGE_ID"]
        names = {}
        for key, column in (("source", "INPUT_IMG"), ("target", "OUTPUT_IMG"), ("mask", "MASK_IMG")):
            image = Image.open(io.BytesIO(row[column]))
            if key == "mask":
                image = ImageOps.invert(image.convert("L"))  # HumanEdit's black = edit -> white = edit
            names[key] = f"{key}/{rid}.png"
            (folder / key).mkdir(exist_ok=True)
            image.save(folder / names[key])
        line = {
            "id": rid,
            "instruction": row["EDITING_INSTRUCTION"],
            "edit_type": row["EDITING_TYPE"],
            **names,
        }
        if with_prompts:
            colour = row["EDITING_INSTRUCTION"].split()[2]
            line.update(positive=f"{colour} square, flat colour", negative="blurry")
        lines.append(json.dumps(line))
    (folder / "metadata.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def tiny_config(inputs: dict, out: Path, preset: str = "lora", overrides: list[str] | None = None, **kw):
    """A preset's TrainConfig on `training_inputs`, shrunk to the tiny model and the CPU (the preset's own
    choices otherwise kept)."""
    from training.config import build_config

    values = dict(
        model=str(inputs["model"]),
        data=str(inputs["data"]),
        refined=str(inputs["refined"]),
        targets=str(inputs["targets"]),
        output_dir=str(out),
        split="all",
        precision="fp32",
        batch_size=2,
        grad_accum=1,
        progress=False,
        tensorboard=False,
        log_every=1,
        lora_r=4,
        lora_alpha=8,
    )
    values.update(kw)
    return build_config(preset, overrides or [], **values)
