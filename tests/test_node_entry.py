"""How ComfyUI gets the nodes: a V3 extension (``comfy_api.latest``) where the API exists, classic V1
mappings where it does not, both generated from mindedit_core/node_specs.py with the same node IDs,
widget names, order and defaults. In-process, with ComfyUI's real modules (no server)."""

from __future__ import annotations

import sys

import pytest
import torch
from helpers_nodes import import_pack, load_extension, pack_module

from mindedit_core.node_specs import NODE_SPECS, SPECS_BY_ID

# In the ComfyUI tier, so CI checks the V3 entry and the V1 fallback on every ComfyUI it tests.
pytestmark = [pytest.mark.slow, pytest.mark.comfyui]  # imports ComfyUI in-process (no server)

V1_FALLBACK_MODULE = "ComfyUI_MIND_Edit_v1_fallback"


@pytest.fixture(scope="module")
def pack():
    return import_pack()


@pytest.fixture(scope="module")
def v3_nodes(pack):
    import asyncio

    return {cls.GET_SCHEMA().node_id: cls for cls in asyncio.run(load_extension(pack).get_node_list())}


def _v3_inputs(cls) -> dict:
    """A V3 class's V1-style inputs without ComfyUI's hidden ones (0.33.0's INPUT_TYPES takes no
    ``include_hidden``)."""
    return {section: entries for section, entries in cls.INPUT_TYPES().items() if section != "hidden"}


def _normalized(input_types: dict) -> dict:
    """V1 and V3 spell a combo differently (``[options]`` vs ``"COMBO", {"options": ...}``) and V3
    writes ``multiline: False``; the frontend reads both the same."""
    out = {}
    for section, entries in input_types.items():
        out[section] = {}
        for name, entry in entries.items():
            kind, options = entry[0], dict(entry[1]) if len(entry) > 1 else {}
            if kind == "COMBO":
                kind = options.pop("options")
                options.pop("multiselect", None)
            if options.get("multiline") is False:
                del options["multiline"]
            out[section][name] = (kind if isinstance(kind, str) else ("COMBO", list(kind)), options)
    return out


def test_the_pack_loads_as_a_v3_extension_with_every_declared_node(pack, v3_nodes):
    assert hasattr(pack, "comfy_entrypoint")
    # ComfyUI would load only V1 from a module that defines both.
    assert getattr(pack, "NODE_CLASS_MAPPINGS", None) is None
    from comfy_api.latest import io

    assert list(v3_nodes) == [s.node_id for s in NODE_SPECS]
    assert all(issubclass(cls, io.ComfyNode) for cls in v3_nodes.values())


def test_v3_nodes_have_the_v1_inputs_outputs_and_order(v3_nodes):
    v1 = pack_module("nodes").NODE_CLASS_MAPPINGS
    for node_id, cls in v3_nodes.items():
        v3_inputs = _v3_inputs(cls)
        v1_inputs = v1[node_id].INPUT_TYPES()
        assert _normalized(v3_inputs) == _normalized(v1_inputs), node_id
        for section in v1_inputs:  # order is what saved workflows rely on
            assert list(v3_inputs[section]) == list(v1_inputs[section]), node_id
        assert tuple(cls.RETURN_TYPES) == v1[node_id].RETURN_TYPES
        assert tuple(cls.RETURN_NAMES) == v1[node_id].RETURN_NAMES
        assert tuple(cls.OUTPUT_TOOLTIPS) == v1[node_id].OUTPUT_TOOLTIPS
        assert cls.CATEGORY == v1[node_id].CATEGORY and cls.DESCRIPTION == v1[node_id].DESCRIPTION
        schema = cls.GET_SCHEMA()
        assert schema.display_name == SPECS_BY_ID[node_id].display_name


def test_v3_nodes_run_the_implementation_and_its_queue_time_checks(v3_nodes):
    source = torch.rand((1, 37, 45, 3))
    (padded,) = v3_nodes["MindEditPadForVAE"].execute(image=source).result
    assert padded.shape[1:3] == (40, 48)
    apply = v3_nodes["MindEditApplyIPAdapter"]
    assert "start_at (0.6) is after end_at (0.2)" in apply.validate_inputs(start_at=0.6, end_at=0.2)
    assert apply.validate_inputs(start_at=0.0, end_at=1.0) is True
    refusal = v3_nodes["MindEditRefineInstruction"].validate_inputs(instruction="  ")
    assert "instruction is empty" in refusal


def test_without_the_v3_api_the_v1_fallback_loads_the_same_nodes(pack, v3_nodes, monkeypatch):
    """A ComfyUI without comfy_api.latest (hidden here) gets classic mappings with the same IDs."""
    monkeypatch.setitem(sys.modules, "comfy_api.latest", None)
    for name in [m for m in sys.modules if m == V1_FALLBACK_MODULE or m.startswith(V1_FALLBACK_MODULE + ".")]:
        monkeypatch.delitem(sys.modules, name)
    fallback = import_pack(V1_FALLBACK_MODULE)
    try:
        assert not hasattr(fallback, "comfy_entrypoint")
        assert list(fallback.NODE_CLASS_MAPPINGS) == list(v3_nodes)
        assert {s.node_id: s.display_name for s in NODE_SPECS} == fallback.NODE_DISPLAY_NAME_MAPPINGS
        for node_id, cls in fallback.NODE_CLASS_MAPPINGS.items():
            assert not hasattr(cls, "GET_SCHEMA"), f"{node_id} is not a V1 class"
            assert _normalized(cls.INPUT_TYPES()) == _normalized(_v3_inputs(v3_nodes[node_id]))
    finally:
        for name in [m for m in sys.modules if m.startswith(V1_FALLBACK_MODULE)]:
            del sys.modules[name]


def test_folder_registration_waits_for_the_load_hook(monkeypatch):
    """Importing the pack registers nothing; the extension's on_load (or V1's import) does."""
    import folder_paths

    module = "ComfyUI_MIND_Edit_import_only"
    saved = {
        k: folder_paths.folder_names_and_paths.pop(k)
        for k in ("LLM", "mindedit")
        if k in folder_paths.folder_names_and_paths
    }
    try:
        import importlib.util

        from helpers_nodes import REPO_ROOT

        spec = importlib.util.spec_from_file_location(
            module, REPO_ROOT / "__init__.py", submodule_search_locations=[str(REPO_ROOT)]
        )
        imported = importlib.util.module_from_spec(spec)
        sys.modules[module] = imported
        spec.loader.exec_module(imported)
        assert "LLM" not in folder_paths.folder_names_and_paths, "import registered a folder"
        load_extension(imported)
        assert (
            "LLM" in folder_paths.folder_names_and_paths and "mindedit" in folder_paths.folder_names_and_paths
        )
    finally:
        for name in [m for m in sys.modules if m.startswith(module)]:
            del sys.modules[name]
        folder_paths.folder_names_and_paths.update(saved)
