"""The repository's packaging boundaries: what `pip install` puts in site-packages, and what the
benchmarks may import."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - 3.10
    tomllib = pytest.importorskip("tomli")


def test_only_mindedit_core_is_installed_as_a_top_level_package():
    from setuptools import find_packages

    config = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    find = config["packages"]["find"]
    packages = find_packages(where=str(REPO_ROOT), include=find["include"], exclude=find.get("exclude", ()))
    assert {name.split(".")[0] for name in packages} == {"mindedit_core"}
    assert "mindedit_core.mllm" in packages  # subpackages still come along


def _test_module_names() -> set[str]:
    return {p.stem for p in (REPO_ROOT / "tests").glob("*.py")} | {"tests"}


@pytest.mark.parametrize("bench", sorted((REPO_ROOT / "bench").glob("*.py")), ids=lambda p: p.name)
def test_benchmarks_do_not_import_the_tests(bench: Path):
    tests_modules = _test_module_names()
    tree = ast.parse(bench.read_text(), str(bench))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            assert node.module.split(".")[0] not in tests_modules, f"{bench.name} imports {node.module}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                assert alias.name.split(".")[0] not in tests_modules, f"{bench.name} imports {alias.name}"
        elif isinstance(node, ast.Constant) and node.value == "tests":
            pytest.fail(f"{bench.name} puts tests/ on its path (line {node.lineno})")
