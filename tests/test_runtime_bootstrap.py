"""scripts/bootstrap.sh with `$COMFYUI_PATH`: the other tree's requirements go into .venv, constrained
to the tested torch pair, once. Run against a fake `.venv/bin/python` that records pip calls (no
network, about a second)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
BOOTSTRAP = REPO_ROOT / "scripts" / "bootstrap.sh"

FAKE_PYTHON = textwrap.dedent(
    """\
    #!/usr/bin/env bash
    # Records every call; `pip install` fails for a package named in $FAKE_PIP_FAIL (space-separated),
    # given as an argument or as a line of a `-r` file.
    printf '%s\\n' "$*" >> "$FAKE_LOG"
    if [ "$1 $2 $3" = "-m pip install" ]; then
      prev=""
      for arg in "$@"; do
        for bad in ${FAKE_PIP_FAIL:-}; do
          if [ "$arg" = "$bad" ] || { [ "$prev" = "-r" ] && grep -qx "$bad" "$arg"; }; then
            echo "fake pip: no such package $bad" >&2; exit 1
          fi
        done
        prev="$arg"
      done
    fi
    exit 0
    """
)


def bootstrap_torch_pair() -> list[str]:
    match = re.search(r'^torch_pair="([^"]+)"', BOOTSTRAP.read_text(), re.MULTILINE)
    assert match, "bootstrap.sh no longer defines torch_pair"
    return match.group(1).split()


@pytest.fixture
def sandbox(tmp_path: Path) -> dict:
    repo = tmp_path / "repo"
    (repo / "scripts").mkdir(parents=True)
    shutil.copy(BOOTSTRAP, repo / "scripts" / "bootstrap.sh")
    (repo / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    (repo / "requirements.txt").write_text("numpy\n")
    python = repo / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(FAKE_PYTHON)
    python.chmod(0o755)
    tree = tmp_path / "ComfyUI"
    tree.mkdir()
    (tree / "main.py").write_text("")
    (tree / "requirements.txt").write_text(
        "torch\ntorchvision\nSQLAlchemy>=2.0.0  # database\n\n#extras:\nspandrel\n"
    )
    return {"repo": repo, "tree": tree, "log": tmp_path / "pip.log"}


def run_bootstrap(sandbox: dict, comfyui_path: Path | None, fail: str = "") -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "COMFYUI_PATH"}
    env.update({"FAKE_LOG": str(sandbox["log"]), "FAKE_PIP_FAIL": fail})
    if comfyui_path is not None:
        env["COMFYUI_PATH"] = str(comfyui_path)
    sandbox["log"].unlink(missing_ok=True)
    proc = subprocess.run(
        ["bash", str(sandbox["repo"] / "scripts" / "bootstrap.sh")], env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    return proc


def pip_calls(sandbox: dict) -> list[str]:
    if not sandbox["log"].exists():
        return []
    return [line for line in sandbox["log"].read_text().splitlines() if line.startswith("-m pip install")]


def test_the_trees_requirements_are_installed_constrained_to_the_torch_pair_once(sandbox: dict):
    reqs = sandbox["tree"] / "requirements.txt"
    run_bootstrap(sandbox, sandbox["tree"])
    constraints = sandbox["repo"] / ".venv" / ".mindedit-torch-constraints.txt"
    tree_calls = [c for c in pip_calls(sandbox) if f"-r {reqs}" in c]
    assert tree_calls == [f"-m pip install -q -r {reqs} -c {constraints}"]
    assert constraints.read_text().split() == bootstrap_torch_pair()
    # Stamped: the next bootstrap installs nothing.
    run_bootstrap(sandbox, sandbox["tree"])
    assert pip_calls(sandbox) == []
    # A changed requirements file is installed again.
    reqs.write_text(reqs.read_text() + "blake3\n")
    run_bootstrap(sandbox, sandbox["tree"])
    assert [c for c in pip_calls(sandbox) if f"-r {reqs}" in c] == tree_calls


def test_without_comfyui_path_no_tree_requirements_are_installed(sandbox: dict):
    run_bootstrap(sandbox, None)
    calls = pip_calls(sandbox)
    assert calls and not any("-r " in c or "constraints" in c for c in calls)


def test_lines_pip_cannot_get_are_skipped_and_named(sandbox: dict):
    proc = run_bootstrap(sandbox, sandbox["tree"], fail="spandrel")
    calls = pip_calls(sandbox)
    one_by_one = [c.split(" -c ")[0].removeprefix("-m pip install -q ") for c in calls if "-r " not in c]
    assert one_by_one[-4:] == ["torch", "torchvision", "SQLAlchemy>=2.0.0", "spandrel"]
    assert "not installed from" in proc.stderr and "spandrel" in proc.stderr
    assert "SQLAlchemy" not in proc.stderr.split("not installed from")[1]
    # The warning is repeated on a stamped run, without retrying pip.
    again = run_bootstrap(sandbox, sandbox["tree"], fail="spandrel")
    assert pip_calls(sandbox) == [] and "spandrel" in again.stderr


def test_a_comfyui_path_without_requirements_is_explained(sandbox: dict, tmp_path: Path):
    bare = tmp_path / "bare"
    bare.mkdir()
    proc = run_bootstrap(sandbox, bare)
    assert "has no requirements.txt" in proc.stderr
    assert not any("-r " in c for c in pip_calls(sandbox))
