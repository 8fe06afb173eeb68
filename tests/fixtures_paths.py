"""Where generated fixtures are cached (ignored by git, reused across runs)."""

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
