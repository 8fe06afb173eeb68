"""Fixtures for tests that run a real headless ComfyUI (mark them `@pytest.mark.comfyui`).

- `tiny_sd15_small`, `tiny_sd15_sites16`, `tiny_sd15_sites16_alt`: paths of the generated tiny
  SD1.5 checkpoints (built once into the fixture cache). Their file names are the `ckpt_name`
  values ComfyUI lists.
- `comfyui_server`: ONE ComfyUI for the whole test session (started on first use, stopped at the
  end; the teardown fails loudly if the process survived). It loads our pack plus every test-only
  pack folder in `tests/assets/comfyui_packs/` (custom nodes load at start-up only, so a test pack
  goes there, not into a fixture), and has the three checkpoints in `models/checkpoints/`.

Adding your area's model files: call `comfyui_server.add_model(folder, path)` from your own
session fixture (or test) and use the returned name in the graph. ComfyUI 0.3.75 rescans a model
folder whenever its mtime changes (checked on every /object_info and prompt validation), so files
added to the running server are visible immediately; `test_runtime_server.py` checks this.

Use a private `ComfyUIServer(...)` only for what the shared one cannot do (other start flags).

The server runs torch with `$MINDEDIT_COMFYUI_THREADS` threads (default 1: on the shared 2-core
development machines one thread is 3-4x faster than two fighting other jobs; set 0 for torch's
default, e.g. on a dedicated CI runner).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

TEST_PACKS_DIR = Path(__file__).resolve().parent / "assets" / "comfyui_packs"


@pytest.fixture(scope="session")
def tiny_sd15_small(fixture_cache: Path) -> Path:
    from devkit.fixtures.sd15 import tiny_sd15_checkpoint

    return tiny_sd15_checkpoint(fixture_cache, "small", seed=0)


@pytest.fixture(scope="session")
def tiny_sd15_sites16(fixture_cache: Path) -> Path:
    from devkit.fixtures.sd15 import tiny_sd15_checkpoint

    return tiny_sd15_checkpoint(fixture_cache, "sites16", seed=0)


@pytest.fixture(scope="session")
def tiny_sd15_sites16_alt(fixture_cache: Path) -> Path:
    """A second sites16 checkpoint (other seed, other file name) for checkpoint-swap tests."""
    from devkit.fixtures.sd15 import tiny_sd15_checkpoint

    return tiny_sd15_checkpoint(fixture_cache, "sites16", seed=1)


def comfyui_test_packs() -> list[Path]:
    """Every test-only ComfyUI pack (a folder with `__init__.py`) under tests/assets/comfyui_packs/."""
    if not TEST_PACKS_DIR.is_dir():
        return []
    return sorted(p for p in TEST_PACKS_DIR.iterdir() if (p / "__init__.py").is_file())


@pytest.fixture(scope="session")
def comfyui_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session server's `--base-directory` (models/, input/, output/, custom_nodes/, log)."""
    return tmp_path_factory.mktemp("comfyui_base")


@pytest.fixture(scope="session")
def comfyui_server(
    comfyui_base: Path, tiny_sd15_small: Path, tiny_sd15_sites16: Path, tiny_sd15_sites16_alt: Path
) -> Iterator:
    from devkit.comfyui_runtime import ComfyUIServer

    threads = int(os.environ.get("MINDEDIT_COMFYUI_THREADS", "1")) or None
    server = ComfyUIServer(
        comfyui_base,
        extra_packs=comfyui_test_packs(),
        models={"checkpoints": [tiny_sd15_small, tiny_sd15_sites16, tiny_sd15_sites16_alt]},
        threads=threads,
    )
    server.start()
    pid = server.process.pid
    try:
        yield server
    finally:
        server.stop()
        _assert_process_gone(pid)


def _assert_process_gone(pid: int) -> None:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return
    # A zombie we reaped cannot exist (Popen.wait reaped it); anything alive here is a leak.
    raise AssertionError(f"ComfyUI server process {pid} is still alive after stop()")


@pytest.fixture(scope="session")
def tiny_sdxl_sites70(fixture_cache: Path) -> Path:
    """The tiny SDXL checkpoint (SDXL's 70 attn2 sites, 320 wide; real text encoders: ~2.2 GiB, built once)."""
    from devkit.fixtures.sdxl import tiny_sdxl_checkpoint

    return tiny_sdxl_checkpoint(fixture_cache, "sites70", seed=0)


def link_tiny_sd15_models(server, fixture_cache: Path, checkpoint: Path):
    """The tiny SD1.5 MIND-Edit set (LLaVA-OneVision, a plain head, a 16-site plain IP-Adapter and
    ``checkpoint``) as the demo names them, linked into ``server``'s model folders: the DemoModels."""
    from devkit.demo import DemoModels
    from devkit.fixtures.ipadapter_files import ipadapter_file
    from devkit.fixtures.llava_onevision import tiny_llava_onevision, tiny_mindedit_checkpoint
    from devkit.fixtures.sd15 import attn2_sites

    widths = [site.width for site in attn2_sites("sites16")]
    models = DemoModels(
        checkpoint=checkpoint,
        llm_dir=tiny_llava_onevision(fixture_cache),
        mindedit_dir=tiny_mindedit_checkpoint(fixture_cache, kind="plain"),
        ipadapter=ipadapter_file(fixture_cache, "plain", site_widths=widths),
        tiny=True,
    )
    for folder, paths in models.comfy_models().items():
        for path in paths:
            server.add_model(folder, path)
    return models
