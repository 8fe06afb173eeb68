"""How ComfyUI's tooling sees the pack: ComfyUI-Manager's node scanner, the Comfy Registry's
``pyproject.toml`` and ``.comfyignore``, and the one node declaration everything is built from."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from manager_scan import scan_pack

from devkit import node_list
from mindedit_core.node_specs import NODE_SPECS, SPECS_BY_ID

tomllib = pytest.importorskip("tomllib")  # Python >= 3.11

REPO_ROOT = Path(__file__).resolve().parents[1]
FROZEN_LAYOUT = REPO_ROOT / "tests" / "assets" / "frozen_workflows" / "node_inputs.json"


def _clone_files() -> list[str]:
    """What a clone of the pack holds: tracked files plus new ones not ignored."""
    out = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.split()


# -- ComfyUI-Manager -------------------------------------------------------------------------------


def test_manager_scanner_finds_every_node_of_the_pack_and_nothing_from_the_tests():
    found = scan_pack(REPO_ROOT, _clone_files())
    assert found == set(SPECS_BY_ID), (
        f"missing: {sorted(set(SPECS_BY_ID) - found)}; not ours: {sorted(found - set(SPECS_BY_ID))}"
    )


def test_manager_scanner_rules_see_literal_mappings_and_ignore_computed_ones(tmp_path):
    """The rules themselves: a test pack with a literal mapping would leak into the pack's list."""
    name = "NODE_CLASS" + "_MAPPINGS"  # spelled in pieces: the scan of the pack reads this file too
    (tmp_path / "literal.py").write_text(name + ' = {"Leak": object}\n')
    (tmp_path / "computed.py").write_text(name + " = dict(Hidden=object)\n")
    assert scan_pack(tmp_path) == {"Leak"}


def test_node_list_json_is_generated_from_the_declarations():
    assert node_list.main(["--check"]) == 0, "run: python -m devkit.node_list"
    assert list(json.loads((REPO_ROOT / "node_list.json").read_text())) == [s.node_id for s in NODE_SPECS]


# -- the one declaration -----------------------------------------------------------------------------


def test_the_declarations_import_nothing_from_comfyui():
    code = (
        "import sys, mindedit_core.node_specs; "
        "bad = [m for m in ('folder_paths', 'comfy', 'comfy_api', 'nodes', 'server') if m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, check=True)


def _layout(spec) -> list[list]:
    """What saved workflows depend on: each input's name, kind, optionality and widget default."""
    return [
        [i.name, i.type if isinstance(i.type, str) else "COMBO", i.optional, i.is_widget, i.default]
        for i in spec.inputs
    ]


def test_widget_order_is_frozen():
    """Saved workflows store widget values by position: every recorded input keeps its name, kind,
    place and default; new inputs may only be appended (then re-record: python tests/test_distribution.py)."""
    frozen = json.loads(FROZEN_LAYOUT.read_text())
    for node_id, recorded in frozen.items():
        assert node_id in SPECS_BY_ID, f"{node_id} was released and must keep existing"
        current = _layout(SPECS_BY_ID[node_id])
        assert current[: len(recorded)] == recorded, f"{node_id}: inputs renamed, reordered or re-defaulted"
        appended = current[len(recorded) :]
        assert all(optional for _, _, optional, _, _ in appended), f"{node_id}: append optional inputs only"


# -- Comfy Registry ----------------------------------------------------------------------------------


def test_pyproject_has_what_the_comfy_registry_reads():
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    comfy = project["tool"]["comfy"]
    assert comfy["PublisherId"] and comfy["DisplayName"]
    assert comfy["requires-comfyui"].startswith(">=")
    icon = comfy["Icon"].split("/main/", 1)[-1]  # a raw URL into the repository, or a path in it
    assert (REPO_ROOT / icon).is_file(), f"the icon {comfy['Icon']} names no file of the pack"
    assert "Repository" in project["project"]["urls"]
    assert project["project"]["version"] and project["project"]["name"]


def test_comfyignore_keeps_development_folders_out_of_the_package():
    ignored = {
        line.strip().strip("/")
        for line in (REPO_ROOT / ".comfyignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {"tests", "bench", "devkit", ".cache"} <= ignored


def test_the_published_package_needs_nothing_comfyignore_leaves_out():
    """What ComfyUI runs (the entry, nodes/, mindedit_core/) imports nothing from the folders the
    registry package leaves out."""
    import ast

    left_out = {"tests", "bench", "devkit"}
    sources = [
        REPO_ROOT / "__init__.py",
        *(REPO_ROOT / "nodes").rglob("*.py"),
        *(REPO_ROOT / "mindedit_core").rglob("*.py"),
    ]
    for path in sources:
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] not in left_out, f"{path.relative_to(REPO_ROOT)} imports {name}"


@pytest.mark.skipif(
    shutil.which("comfy") is None and not (Path(sys.executable).parent / "comfy").exists(),
    reason="comfy-cli is not installed (pip install comfy-cli)",
)
def test_comfy_node_validate_passes(tmp_path):
    comfy = shutil.which("comfy") or str(Path(sys.executable).parent / "comfy")
    proc = subprocess.run(
        [comfy, "--skip-prompt", "--no-enable-telemetry", "node", "validate"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert "Security warnings" not in output, output


if __name__ == "__main__":  # re-record the frozen input layout after appending inputs or nodes
    frozen = json.loads(FROZEN_LAYOUT.read_text()) if FROZEN_LAYOUT.is_file() else {}
    record = {spec.node_id: _layout(spec) for spec in NODE_SPECS}
    for node_id, recorded in frozen.items():
        assert record[node_id][: len(recorded)] == recorded, f"{node_id}: not an append"
    rows = [
        f"  {json.dumps(node_id)}: [\n" + ",\n".join(f"    {json.dumps(row)}" for row in layout) + "\n  ]"
        for node_id, layout in record.items()
    ]
    FROZEN_LAYOUT.write_text("{\n" + ",\n".join(rows) + "\n}\n")
    print(f"wrote {FROZEN_LAYOUT}")
