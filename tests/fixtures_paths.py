"""Fixtures every area shares: the repo root, the generated-model cache, one torch thread."""

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def fixture_cache() -> Path:
    """Root of the generated tiny-model cache (`.cache/fixtures`, or $MINDEDIT_FIXTURE_CACHE)."""
    from devkit.fixtures import cache_root

    path = cache_root()
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def one_torch_thread():
    """Run the test with one intra-op torch thread, then restore the previous count.

    On 2 shared, busy cores two threads spin-wait for each other and small matmuls get 10-50x
    slower (a tiny UNet forward: 0.13 s with one thread, 1.4-10 s with two under load).
    """
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
