"""The node classes in-process, with ComfyUI's real modules (from the runtime's ComfyUI tree) but no
server: folder registration, the memory-manager wrapper, the shared one-pass cache, Cancel, errors."""

from __future__ import annotations

import pytest
import torch
from helpers_nodes import import_pack, pack_module

from mindedit_core.mllm import PassCalls, PassOptions, PassRequest, PassResult, require_vision_head
from mindedit_core.prompting import RefinedPrompt


@pytest.fixture(scope="module")
def pack():
    return import_pack()


@pytest.fixture
def folder_paths(pack):
    import folder_paths as fp

    return fp


@pytest.fixture
def isolated_folders(folder_paths, tmp_path, monkeypatch):
    """Point the pack's three model folders at empty temp folders for one test."""
    roots = {}
    for name in ("LLM", "mindedit", "ipadapter"):
        root = tmp_path / name
        root.mkdir()
        roots[name] = root
        exts = folder_paths.folder_names_and_paths[name][1]
        monkeypatch.setitem(folder_paths.folder_names_and_paths, name, ([str(root)], exts))
    return roots


# -- folders ---------------------------------------------------------------------------------------


def test_import_registers_the_three_model_folders_once(pack, folder_paths):
    model_folders = pack_module("nodes.model_folders")
    before = {n: list(folder_paths.get_folder_paths(n)) for n in ("LLM", "mindedit", "ipadapter")}
    model_folders.register_model_folders()
    model_folders.register_model_folders()
    for name, paths in before.items():
        assert folder_paths.get_folder_paths(name) == paths, f"{name} registration is not idempotent"
        assert any(p.endswith(name) for p in paths)
    assert ".safetensors" in folder_paths.folder_names_and_paths["ipadapter"][1]


def test_the_workflows_model_metadata_names_the_folders_the_loaders_read(pack, folder_paths):
    from devkit import build_workflows as wf

    ipadapter_nodes = pack_module("nodes.ipadapter_nodes")
    model_folders = pack_module("nodes.model_folders")
    assert (
        wf.IPADAPTER_MODEL["directory"] == ipadapter_nodes.IPADAPTER_FOLDER == model_folders.IPADAPTER_FOLDER
    )
    for entry in (wf.IPADAPTER_MODEL, wf.CHECKPOINT_MODEL):
        assert folder_paths.get_folder_paths(entry["directory"]), entry
        assert any(
            entry["name"].endswith(ext) for ext in folder_paths.folder_names_and_paths[entry["directory"]][1]
        )


def test_llm_dropdown_lists_hf_folders_nested_and_skips_others(isolated_folders):
    model_folders = pack_module("nodes.model_folders")
    llm = isolated_folders["LLM"]
    (llm / "flat-model").mkdir()
    (llm / "flat-model" / "config.json").write_text("{}")
    (llm / "llava-hf" / "nested-model").mkdir(parents=True)
    (llm / "llava-hf" / "nested-model" / "config.json").write_text("{}")
    (llm / "not-a-model").mkdir()
    (llm / "loose.safetensors").write_bytes(b"x")
    assert model_folders.llm_choices() == ["flat-model", "llava-hf/nested-model"]
    assert (
        model_folders.resolve_llm_folder("llava-hf/nested-model")
        == (llm / "llava-hf" / "nested-model").resolve()
    )


def test_empty_llm_folder_gives_placeholder_and_an_actionable_error(isolated_folders):
    model_folders = pack_module("nodes.model_folders")
    choices = model_folders.llm_choices()
    assert choices == [model_folders.NO_MODEL_FOLDER]
    with pytest.raises(FileNotFoundError) as err:
        model_folders.resolve_llm_folder(choices[0])
    message = str(err.value)
    assert (
        str(isolated_folders["LLM"]) in message and "config.json" in message and "download_models" in message
    )


def test_missing_checkpoint_names_folder_and_expected_file(isolated_folders):
    model_folders = pack_module("nodes.model_folders")
    assert model_folders.checkpoint_choices() == ["none"]
    assert model_folders.resolve_checkpoint_folder("none") is None
    with pytest.raises(FileNotFoundError) as err:
        model_folders.resolve_checkpoint_folder("gone-ckpt")
    assert "mindedit/gone-ckpt/mindedit.json" in str(err.value)
    assert str(isolated_folders["mindedit"]) in str(err.value)


# -- memory manager --------------------------------------------------------------------------------


class _HFStyleModule(torch.nn.Module):
    """Like a Hugging Face model: ``device`` is a read-only property."""

    def __init__(self):
        super().__init__()
        self.proj = torch.nn.Linear(4, 4)

    @property
    def device(self):
        return self.proj.weight.device


def test_mllm_is_loaded_by_comfy_and_dropped_by_unload_all(pack):
    import comfy.model_management as mm

    patcher_mod = pack_module("nodes.comfy_mllm_patcher")
    model = _HFStyleModule()
    handle = patcher_mod.wrap_mllm(object(), {"model": model}, description="test", quantization=None)
    assert not patcher_mod.is_loaded(handle)
    device = patcher_mod.load_for_use(handle)
    assert device == mm.get_torch_device()
    assert patcher_mod.is_loaded(handle)
    assert handle.patcher.model_size() == sum(p.numel() * p.element_size() for p in model.parameters())
    mm.unload_all_models()
    assert not patcher_mod.is_loaded(handle)
    assert model.proj.weight.device == handle.patcher.offload_device


def test_auto_dtype_follows_comfy_for_the_cpu(pack):
    patcher_mod = pack_module("nodes.comfy_mllm_patcher")
    assert patcher_mod.resolve_dtype("auto", torch.device("cpu")) == torch.float32
    assert patcher_mod.resolve_dtype("bfloat16", torch.device("cpu")) == torch.bfloat16


# -- one pass, shared ------------------------------------------------------------------------------


class CountingMLLM(PassCalls):
    """A fake `MindEditMLLMLike` (checked against the protocol in tests/test_mllm_protocol.py): records
    passes; optional hooks to simulate Cancel or a bad answer."""

    def __init__(self, *, has_head=True, warning=None, interrupt_at=None):
        self.calls = []
        self.has_head = has_head
        self.negative_embeds = None  # no stored plus negative: zeros
        self.head = object() if has_head else None
        self.warning = warning
        self.interrupt_at = interrupt_at
        self.model = torch.nn.Linear(2, 2)
        self.default_options = PassOptions()

    def torch_modules(self):
        return {"model": self.model}

    def run(self, request: PassRequest) -> PassResult:
        if request.wants_embeds:
            require_vision_head(self)
        options, instruction = request.options or self.default_options, request.instruction
        self.calls.append(
            {
                "instruction": instruction,
                "mask": request.mask,
                "seed": options.seed,
                "max_side": options.max_image_side,
                "outputs": request.outputs,
            }
        )
        for step in range(1, 4):
            if self.interrupt_at == step:
                import comfy.model_management as mm

                mm.interrupt_current_processing(True)
            if request.on_token is not None:
                request.on_token(step, options.max_new_tokens)
            if request.should_stop is not None and request.should_stop():
                raise RuntimeError("stopped")  # the core raises its own GenerationInterrupted
        refined = RefinedPrompt(
            f"pos:{instruction}", f"neg:{instruction}", f"raw:{instruction}", True, self.warning
        )
        v = torch.full((1, 1024), float(len(self.calls))) if request.wants_embeds else None
        return PassResult(refined, v, f"text:{instruction}")


def _handle(mllm):
    patcher_mod = pack_module("nodes.comfy_mllm_patcher")
    return patcher_mod.wrap_mllm(mllm, {"model": mllm.model}, description="fake", quantization=None)


def _image(seed=0):
    return torch.rand((1, 32, 32, 3), generator=torch.Generator().manual_seed(seed))


def test_refine_and_embed_nodes_share_one_mllm_pass(pack):
    refine = pack_module("nodes.refine")
    mllm = CountingMLLM()
    handle = _handle(mllm)
    image, mask = _image(), torch.zeros((1, 32, 32))
    mask[:, 8:16, 8:16] = 1.0
    pos, neg, raw, status = refine.MindEditRefineInstruction().refine(
        handle, image, "add a hat", 3, 64, 256, mask
    )
    emb_pos, emb_neg = refine.MindEditInsightEmbeds().embed(
        handle, image.clone(), "add a hat", 3, 64, 256, mask
    )
    assert len(mllm.calls) == 1, "the embed node re-ran the MLLM"
    assert (pos, neg, raw) == ("pos:add a hat", "neg:add a hat", "text:add a hat")
    assert status.startswith("ok")
    assert emb_pos.shape == (1, 1024) and torch.count_nonzero(emb_neg) == 0
    assert mllm.calls[0]["seed"] == 3 and mllm.calls[0]["max_side"] == 256
    assert mllm.calls[0]["mask"] is not None
    # Anything that changes the result is a new pass: instruction, seed, image, mask, settings.
    refine.MindEditInsightEmbeds().embed(handle, image, "add a scarf", 3, 64, 256, mask)
    refine.MindEditInsightEmbeds().embed(handle, image, "add a hat", 4, 64, 256, mask)
    refine.MindEditInsightEmbeds().embed(handle, _image(1), "add a hat", 3, 64, 256, mask)
    refine.MindEditInsightEmbeds().embed(handle, image, "add a hat", 3, 64, 256, None)
    refine.MindEditInsightEmbeds().embed(handle, image, "add a hat", 3, 64, 320, mask)
    assert len(mllm.calls) == 6
    combined = refine.MindEditRefineAndEmbed().run(handle, image, "add a hat", 3, 64, 256, mask)
    assert len(mllm.calls) == 6 and combined[0] == pos and torch.equal(combined[2], emb_pos)


class PlusMLLM(CountingMLLM):
    """A plus head ([1,257,1280]) with or without a stored blank-image negative."""

    def __init__(self, negative_embeds=None):
        super().__init__()
        self.negative_embeds = negative_embeds

    def run(self, request):
        result = super().run(request)
        if request.wants_embeds:
            result.v_insight = torch.ones((1, 257, 1280))
        return result


def test_plus_embeds_output_the_checkpoints_stored_negative_or_say_zeros(pack):
    refine = pack_module("nodes.refine")
    stored = torch.randn((1, 257, 1280))
    pos, neg = refine.MindEditInsightEmbeds().embed(
        _handle(PlusMLLM(stored)), _image(), "add a hat", 0, 64, 256
    )
    assert pos.shape == (1, 257, 1280) and torch.equal(neg, stored)
    out = refine.MindEditRefineAndEmbed().run(_handle(PlusMLLM(None)), _image(), "add a hat", 0, 64, 256)
    assert torch.count_nonzero(out[3]) == 0  # an old plus checkpoint: zeros...
    assert "stores no blank-image negative" in out[5]  # ...said on the status line


def test_two_loaded_models_do_not_share_results(pack):
    refine = pack_module("nodes.refine")
    first, second = CountingMLLM(), CountingMLLM()
    image = _image()
    refine.MindEditRefineInstruction().refine(_handle(first), image, "x", 0, 64, 384)
    refine.MindEditRefineInstruction().refine(_handle(second), image, "x", 0, 64, 384)
    assert len(first.calls) == len(second.calls) == 1


def test_batch_reads_first_image_and_says_so(pack):
    refine = pack_module("nodes.refine")
    mllm = CountingMLLM()
    batch = torch.cat([_image(0), _image(1)])
    *_, status = refine.MindEditRefineInstruction().refine(_handle(mllm), batch, "batch", 0, 64, 384)
    assert "batch of 2" in status


def test_batch_note_is_per_call_not_cached(pack):
    """The cache key holds image 0 only: a single image after a batch (and back) gets its own status."""
    refine = pack_module("nodes.refine")
    mllm = CountingMLLM()
    handle = _handle(mllm)
    batch = torch.cat([_image(0), _image(1)])
    *_, batch_status = refine.MindEditRefineInstruction().refine(handle, batch, "note", 0, 64, 384)
    *_, single_status = refine.MindEditRefineInstruction().refine(handle, _image(0), "note", 0, 64, 384)
    *_, again = refine.MindEditRefineInstruction().refine(handle, batch, "note", 0, 64, 384)
    assert len(mllm.calls) == 1
    assert "batch of 2" in batch_status and "batch of" not in single_status and again == batch_status


def test_a_faint_mask_is_a_mask_free_pass(pack):
    """A mask too faint to be outlined for the MLLM is no mask (same cache entry as none)."""
    refine = pack_module("nodes.refine")
    mllm = CountingMLLM()
    handle = _handle(mllm)
    refine.MindEditRefineInstruction().refine(
        handle, _image(), "faint", 0, 64, 384, torch.full((1, 32, 32), 0.2)
    )
    refine.MindEditRefineInstruction().refine(handle, _image(), "faint", 0, 64, 384)
    assert len(mllm.calls) == 1 and mllm.calls[0]["mask"] is None


def test_parser_fallback_warning_reaches_the_status_output(pack):
    refine = pack_module("nodes.refine")
    mllm = CountingMLLM(warning="could not parse the answer; using the instruction as the prompt")
    *_, status = refine.MindEditRefineInstruction().refine(_handle(mllm), _image(), "fallback", 0, 64, 384)
    assert status.startswith("WARNING: could not parse")


def test_embeds_without_a_vision_head_raise_a_clear_error(pack):
    refine = pack_module("nodes.refine")
    mllm = CountingMLLM(has_head=False)
    handle = _handle(mllm)
    pos, *_ = refine.MindEditRefineInstruction().refine(handle, _image(), "no head", 0, 64, 384)
    assert pos == "pos:no head"
    with pytest.raises(ValueError, match="no vision head.*models/mindedit"):
        refine.MindEditInsightEmbeds().embed(handle, _image(), "no head", 0, 64, 384)
    # Refused before the MLLM runs: no generation is paid for an error.
    for node in (refine.MindEditInsightEmbeds().embed, refine.MindEditRefineAndEmbed().run):
        with pytest.raises(ValueError, match="no vision head"):
            node(handle, _image(5), "other", 0, 64, 384)
    assert len(mllm.calls) == 1


def test_cancel_raises_comfys_interrupt_and_caches_nothing(pack):
    import comfy.model_management as mm

    refine = pack_module("nodes.refine")
    mllm = CountingMLLM(interrupt_at=2)
    handle = _handle(mllm)
    try:
        with pytest.raises(mm.InterruptProcessingException):
            refine.MindEditRefineInstruction().refine(handle, _image(), "cancel me", 0, 64, 384)
        assert not mm.processing_interrupted(), "the interrupt flag must be consumed"
        mllm.interrupt_at = None
        refine.MindEditRefineInstruction().refine(handle, _image(), "cancel me", 0, 64, 384)
        assert len(mllm.calls) == 2, "an interrupted pass must not be served from the cache"
    finally:
        mm.interrupt_current_processing(False)


def test_a_long_instruction_is_cut_for_the_mllm_and_the_status_says_so(pack):
    from mindedit_core.prompting import MAX_INSTRUCTION_CHARS

    refine = pack_module("nodes.refine")
    mllm = CountingMLLM()
    long = "make it nice " * 1540
    *_, status = refine.MindEditRefineInstruction().refine(_handle(mllm), _image(), long, 0, 64, 384)
    assert len(mllm.calls[0]["instruction"]) <= MAX_INSTRUCTION_CHARS
    assert status.startswith("WARNING: the instruction has 20,019 characters") and "model: fake" in status
    *_, short_status = refine.MindEditRefineInstruction().refine(_handle(mllm), _image(), "short", 0, 64, 384)
    assert short_status.startswith("ok")


def test_an_empty_instruction_is_refused_at_queue_time(pack):
    refine = pack_module("nodes.refine")
    for cls in (
        refine.MindEditRefineInstruction,
        refine.MindEditInsightEmbeds,
        refine.MindEditRefineAndEmbed,
    ):
        assert "instruction is empty" in cls.VALIDATE_INPUTS(instruction="  \n")
        assert cls.VALIDATE_INPUTS(instruction="add a hat") is True
        assert cls.VALIDATE_INPUTS() is True, "a linked instruction is checked when it arrives"


def test_the_ip_adapter_schedule_window_is_checked_at_queue_time(pack):
    apply = pack_module("nodes.ipadapter_nodes").MindEditApplyIPAdapter
    assert apply.VALIDATE_INPUTS(start_at=0.2, end_at=0.8) is True
    assert apply.VALIDATE_INPUTS() is True, "linked values are checked when they arrive"
    assert "start_at (0.9) is after end_at (0.1)" in apply.VALIDATE_INPUTS(start_at=0.9, end_at=0.1)
    # ComfyUI skips its own min/max for the inputs VALIDATE_INPUTS names: the declaration's apply.
    assert "end_at = 1.5 is above its maximum 1.0" in apply.VALIDATE_INPUTS(start_at=0.0, end_at=1.5)
    assert "start_at = -0.1 is below its minimum 0.0" in apply.VALIDATE_INPUTS(start_at=-0.1)


def test_edit_region_node_picks_the_alpha_mask_and_reports_it(pack):
    mask_nodes = pack_module("nodes.mask_nodes")
    image = torch.rand((1, 32, 48, 3))
    black_rgb = torch.zeros((1, 32, 48, 3))
    alpha = torch.zeros((1, 32, 48))
    alpha[:, :16, :] = 1.0
    mllm_mask, edit_mask, status = mask_nodes.MindEditEditRegion().choose(
        image, torch.zeros((1, 64, 64)), black_rgb, alpha
    )
    assert torch.equal(mllm_mask, alpha) and torch.equal(edit_mask, alpha)
    assert "alpha" in status and "50.0%" in status
    empty_mllm, whole, free_status = mask_nodes.MindEditEditRegion().choose(image)
    assert torch.count_nonzero(empty_mllm) == 0 and torch.all(whole == 1) and "mask-free" in free_status


def test_status_node_joins_every_connected_line(pack):
    mask_nodes = pack_module("nodes.mask_nodes")
    (text,) = mask_nodes.MindEditStatus().join("ok: parsed", None, "size: 64x64, as given")
    assert text == "ok: parsed\nsize: 64x64, as given"


def test_pad_and_paste_nodes_round_trip_the_size(pack):
    canvas_nodes = pack_module("nodes.canvas_nodes")
    source = torch.rand((1, 389, 517, 3))
    (padded,) = canvas_nodes.MindEditPadForVAE().pad(source)
    assert padded.shape[1:3] == (392, 520)
    image, status = canvas_nodes.MindEditPasteEdit().paste(source, padded)
    assert torch.equal(image, source) and "517x389" in status


# -- schema ----------------------------------------------------------------------------------------


def test_every_input_of_every_mllm_node_has_a_tooltip(pack):
    for node_id, cls in pack.NODE_CLASS_MAPPINGS.items():
        spec = cls.INPUT_TYPES()
        for section in ("required", "optional"):
            for name, entry in spec.get(section, {}).items():
                options = entry[1] if len(entry) > 1 else {}
                assert options.get("tooltip"), f"{node_id}.{name} has no tooltip"
        assert cls.CATEGORY.startswith("MIND-Edit")
        assert node_id in pack.NODE_DISPLAY_NAME_MAPPINGS


def test_every_node_is_declared_as_data(pack):
    """One declaration per node: ComfyUI's V1 attributes and the display name all come from SPEC."""
    for node_id, cls in pack.NODE_CLASS_MAPPINGS.items():
        spec = cls.SPEC
        assert spec.node_id == node_id and pack.NODE_DISPLAY_NAME_MAPPINGS[node_id] == spec.display_name
        assert cls.INPUT_TYPES() == spec.input_types()
        assert tuple(o.type for o in spec.outputs) == cls.RETURN_TYPES
        assert all(o.tooltip for o in spec.outputs) and all(i.tooltip for i in spec.inputs)
        assert callable(getattr(cls, spec.function)) and spec.category == cls.CATEGORY


def test_widget_order_is_frozen(pack):
    """Saved workflows store widget values by position: this order must never change."""
    refine = pack_module("nodes.refine")
    loader = pack_module("nodes.mllm_loader")
    assert list(loader.MindEditMLLMLoader.INPUT_TYPES()["required"]) == [
        "model_folder",
        "mindedit_checkpoint",
        "dtype",
        "quantization",
        "attention",
    ]
    for cls in (
        refine.MindEditRefineInstruction,
        refine.MindEditInsightEmbeds,
        refine.MindEditRefineAndEmbed,
    ):
        spec = cls.INPUT_TYPES()
        assert list(spec["required"]) == [
            "mllm",
            "image",
            "instruction",
            "seed",
            "max_new_tokens",
            "max_image_side",
        ]
        # Added inputs go after the existing ones (the refine node's output style, issue 22).
        extra = ["style"] if cls is refine.MindEditRefineInstruction else []
        assert list(spec["optional"]) == ["mask", *extra]
        seed = spec["required"]["seed"][1]
        assert seed["default"] == 0 and seed["control_after_generate"] == "fixed"
        assert spec["required"]["max_image_side"][1]["default"] == 384
    frozen = {
        "MindEditEditRegion": (["image"], ["painted_mask", "mask_image", "mask_alpha"]),
        "MindEditStatus": ([], ["mllm_status", "mask_status", "image_status"]),
        "MindEditPadForVAE": (["image"], []),
        "MindEditPasteEdit": (["source", "edited"], ["edit_mask", "source_mask"]),  # appended, issue 20
    }
    for node_id, (required, optional) in frozen.items():
        spec = pack.NODE_CLASS_MAPPINGS[node_id].INPUT_TYPES()
        assert list(spec["required"]) == required, node_id
        assert list(spec.get("optional", {})) == optional, node_id


# -- the real tiny MLLM through the loader node ------------------------------------------------------


def test_loader_and_combined_node_with_the_tiny_llava_onevision(pack, isolated_folders, fixture_cache):
    import comfy.model_management as mm

    from devkit.fixtures.llava_onevision import tiny_llava_onevision, tiny_mindedit_checkpoint

    model_dir = tiny_llava_onevision(fixture_cache)
    checkpoint_dir = tiny_mindedit_checkpoint(fixture_cache, kind="plain")
    (isolated_folders["LLM"] / "tiny-llava").symlink_to(model_dir, target_is_directory=True)
    (isolated_folders["mindedit"] / "tiny-ckpt").symlink_to(checkpoint_dir, target_is_directory=True)
    loader = pack_module("nodes.mllm_loader")
    refine = pack_module("nodes.refine")
    patcher_mod = pack_module("nodes.comfy_mllm_patcher")
    spec = loader.MindEditMLLMLoader.INPUT_TYPES()["required"]
    assert spec["model_folder"][0] == ["tiny-llava"] and spec["mindedit_checkpoint"][0] == [
        "none",
        "tiny-ckpt",
    ]

    (handle,) = loader.MindEditMLLMLoader().load("tiny-llava", "tiny-ckpt", "auto", "none", "sdpa")
    assert not patcher_mod.is_loaded(handle), "loading the node must not claim device memory yet"
    image = torch.rand((1, 64, 64, 3), generator=torch.Generator().manual_seed(0))
    pos, neg, emb_pos, emb_neg, raw, status = refine.MindEditRefineAndEmbed().run(
        handle, image, "make it brighter", 0, 24, 384
    )
    assert isinstance(pos, str) and pos and isinstance(neg, str)
    assert emb_pos.shape == (1, 1024) and emb_neg.shape == (1, 1024)
    assert torch.isfinite(emb_pos).all() and emb_pos.abs().sum() > 0
    assert "tiny-llava + tiny-ckpt" in status
    assert patcher_mod.is_loaded(handle)
    mm.unload_all_models()
    assert not patcher_mod.is_loaded(handle)


def test_loader_without_checkpoint_refines_but_cannot_embed(pack, isolated_folders, fixture_cache):
    from devkit.fixtures.llava_onevision import tiny_llava_onevision

    (isolated_folders["LLM"] / "tiny-llava").symlink_to(
        tiny_llava_onevision(fixture_cache), target_is_directory=True
    )
    loader = pack_module("nodes.mllm_loader")
    refine = pack_module("nodes.refine")
    (handle,) = loader.MindEditMLLMLoader().load("tiny-llava", "none", "float32", "none", "sdpa")
    image = torch.rand((1, 48, 48, 3), generator=torch.Generator().manual_seed(1))
    pos, *_ = refine.MindEditRefineInstruction().refine(handle, image, "add snow", 0, 16, 384)
    assert isinstance(pos, str) and pos
    with pytest.raises(ValueError, match="no vision head"):
        refine.MindEditInsightEmbeds().embed(handle, image, "add snow", 0, 16, 384)


def test_quantization_on_a_cpu_comfy_is_refused_clearly(pack, isolated_folders, fixture_cache):
    from devkit.fixtures.llava_onevision import tiny_llava_onevision

    (isolated_folders["LLM"] / "tiny-llava").symlink_to(
        tiny_llava_onevision(fixture_cache), target_is_directory=True
    )
    loader = pack_module("nodes.mllm_loader")
    with pytest.raises(RuntimeError, match="4bit quantization needs a CUDA GPU.*'none'"):
        loader.MindEditMLLMLoader().load("tiny-llava", "none", "auto", "4bit", "sdpa")


def test_extra_model_paths_roots_are_searched_in_order(isolated_folders, folder_paths, tmp_path):
    """A second root (what extra_model_paths.yaml adds) is listed and resolved; the first root wins."""
    model_folders = pack_module("nodes.model_folders")
    extra = tmp_path / "extra_llm"
    for root, names in (
        (isolated_folders["LLM"], ["shared", "only-default"]),
        (extra, ["shared", "only-extra"]),
    ):
        for name in names:
            (root / name).mkdir(parents=True)
            (root / name / "config.json").write_text("{}")
    folder_paths.add_model_folder_path("LLM", str(extra))
    assert model_folders.llm_choices() == ["only-default", "only-extra", "shared"]
    assert model_folders.resolve_llm_folder("only-extra") == (extra / "only-extra").resolve()
    assert model_folders.resolve_llm_folder("shared") == (isolated_folders["LLM"] / "shared").resolve()
