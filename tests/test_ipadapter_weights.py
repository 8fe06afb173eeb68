"""Loading IP-Adapter files: every layout, kind/family detection, and the errors users hit."""

from __future__ import annotations

import pytest
import torch

from mindedit_core.embeds import EmbedShapeError
from mindedit_core.ipadapter import SD15_SITES, IPAdapterFileError, build_ipadapter, load_ipadapter
from mindedit_core.ipadapter.weights import split_sections
from mindedit_core.safe_files import DamagedWeightsFileError, UnsafePickleError

pytestmark = pytest.mark.usefixtures("one_torch_thread")

REAL_WIDTHS = [320, 320, 640, 640, 1280, 1280, 1280, 1280, 1280, 640, 640, 640, 320, 320, 320, 1280]


@pytest.mark.parametrize("kind", ["plain", "plus"])
def test_all_layouts_give_identical_modules(ipadapter_files, kind):
    reference = load_ipadapter(ipadapter_files[(kind, "safetensors")]).state_dict()
    for layout in ("bin", "legacy"):
        other = load_ipadapter(ipadapter_files[(kind, layout)]).state_dict()
        assert other.keys() == reference.keys(), layout
        for key, value in reference.items():
            assert torch.equal(other[key], value), (layout, key)


def test_safetensors_extension_is_matched_case_insensitively(ipadapter_files, tmp_path):
    """A file saved as .SAFETENSORS (or ComfyUI's .sft) is read as safetensors, not sent to torch.load."""
    import shutil

    reference = load_ipadapter(ipadapter_files[("plain", "safetensors")]).state_dict()
    for name in ("IP-ADAPTER_SD15.SAFETENSORS", "ip-adapter_sd15.sft"):
        copy = shutil.copy(ipadapter_files[("plain", "safetensors")], tmp_path / name)
        loaded = load_ipadapter(copy).state_dict()
        assert all(torch.equal(loaded[k], v) for k, v in reference.items()), name


@pytest.mark.parametrize("kind", ["plain", "plus"])
def test_module_holds_the_file_values(ipadapter_files, kind):
    """The loaded module equals the file's tensors key for key (nothing re-initialised)."""
    from safetensors.torch import load_file

    path = ipadapter_files[(kind, "safetensors")]
    flat = load_file(str(path))
    state = load_ipadapter(path).state_dict()
    assert set(state) == set(flat)
    for key, value in flat.items():
        assert torch.equal(state[key], value.float()), key


def test_detects_kind_family_and_real_widths(loaded_ipadapters):
    plain, plus = loaded_ipadapters["plain"], loaded_ipadapters["plus"]
    assert (plain.kind, plain.family, plain.info.tokens) == ("plain", "sd15", 4)
    assert (plus.kind, plus.family, plus.info.tokens) == ("plus", "sd15", 16)
    assert plain.embed_spec.sample_shape == (1024,)
    assert plus.embed_spec.sample_shape == (257, 1280)
    for adapter in (plain, plus):
        assert [proj.width for _, proj in adapter.sites] == REAL_WIDTHS
        assert [site.adapter_number for site, _ in adapter.sites] == list(range(1, 32, 2))
    assert len(plus.image_proj.layers) == 4
    assert plus.image_proj.layers[0][0].heads == 12


def test_projection_shapes_and_finite(loaded_ipadapters):
    torch.manual_seed(0)
    tokens = loaded_ipadapters["plain"].project(torch.randn(3, 1024))
    assert tokens.shape == (3, 4, 768) and torch.isfinite(tokens).all()
    tokens = loaded_ipadapters["plus"].project(torch.randn(2, 257, 1280))
    assert tokens.shape == (2, 16, 768) and torch.isfinite(tokens).all()
    assert not torch.allclose(tokens[0], tokens[1])


def test_bigg_sdxl_adapter_is_refused_naming_file_encoder_and_the_vit_h_file(ipadapter_bigg_file):
    """ip-adapter_sdxl reads ViT-bigG's 1280-wide image_embeds: no MIND-Edit head makes those."""
    with pytest.raises(IPAdapterFileError) as err:
        load_ipadapter(ipadapter_bigg_file)
    message = str(err.value)
    assert ipadapter_bigg_file.name in message
    assert "ViT-bigG/14" in message and "1280-wide image_embeds" in message
    assert "ip-adapter_sdxl_vit-h.safetensors instead" in message


def test_not_an_adapter_names_the_file_and_the_fix(not_an_ipadapter_file):
    with pytest.raises(IPAdapterFileError) as err:
        load_ipadapter(not_an_ipadapter_file)
    message = str(err.value)
    assert not_an_ipadapter_file.name in message
    assert "image_proj." in message and "models/ipadapter" in message


def test_missing_file_is_clear(tmp_path):
    with pytest.raises(IPAdapterFileError, match="not found"):
        load_ipadapter(tmp_path / "nope.safetensors")


def test_damaged_safetensors_file_names_the_file_and_the_fix(tmp_path):
    path = tmp_path / "ip-adapter_sd15.safetensors"
    path.write_bytes(b"<html>404 Not Found</html>")  # what a failed download often leaves
    with pytest.raises(DamagedWeightsFileError) as err:
        load_ipadapter(path)
    message = str(err.value)
    assert f"The IP-Adapter file {path} is damaged or incomplete" in message
    assert "Download it again" in message and "models/ipadapter" in message


def test_pickled_code_is_refused_with_the_safetensors_fix(tmp_path):
    """weights_only loading: a pickle that would run code is refused; the fix offered is a
    .safetensors copy, never turning the guard off."""
    path = tmp_path / "ip-adapter_sd15.bin"

    class RunsCode:
        def __reduce__(self):
            return (print, ("unpickled-and-ran",))

    torch.save({"image_proj": {"x": RunsCode()}}, path)
    with pytest.raises(UnsafePickleError) as err:
        load_ipadapter(path)
    message = str(err.value)
    assert f"The IP-Adapter file {path} holds non-tensor objects" in message
    assert "possibly code" in message and "not loaded" in message and ".safetensors copy" in message
    assert "weights_only" not in message and "safe_globals" not in message


def test_faceid_variant_is_refused_by_name():
    sections = {
        "image_proj": {"proj.0.weight": torch.zeros(2, 2), "proj.2.weight": torch.zeros(2, 2)},
        "ip_adapter": {"1.to_k_ip.weight": torch.zeros(2, 2), "1.to_v_ip.weight": torch.zeros(2, 2)},
    }
    with pytest.raises(IPAdapterFileError, match="FaceID"):
        build_ipadapter(sections, source="faceid.bin")


def test_truncated_site_is_reported():
    sections = {
        "image_proj": {
            "proj.weight": torch.zeros(8, 4),
            "proj.bias": torch.zeros(8),
            "norm.weight": torch.ones(2),
        },
        "ip_adapter": {"1.to_k_ip.weight": torch.zeros(4, 2)},
    }
    with pytest.raises(IPAdapterFileError, match=r"sites \[1\]"):
        build_ipadapter(sections, source="cut.bin")


def test_split_sections_prefers_nested_and_strips_prefixes():
    flat = {"image_proj.norm.weight": torch.ones(2), "ip_adapter.1.to_k_ip.weight": torch.ones(1, 2)}
    assert set(split_sections(flat)["image_proj"]) == {"norm.weight"}
    assert set(split_sections(flat)["ip_adapter"]) == {"1.to_k_ip.weight"}


@pytest.mark.parametrize(
    ("kind", "shape", "needle"),
    [
        ("plus", (1, 1024), "plain (pooled image_embeds)"),
        ("plain", (1, 257, 1280), "plus (penultimate hidden states)"),
        ("plain", (1, 768), "expects plain [B,1024]"),
    ],
)
def test_wrong_embeds_shape_names_both_shapes_and_file(loaded_ipadapters, kind, shape, needle):
    adapter = loaded_ipadapters[kind]
    with pytest.raises(EmbedShapeError) as err:
        adapter.project(torch.zeros(shape))
    message = str(err.value)
    assert needle in message
    assert "[" + ",".join(map(str, shape)) + "]" in message
    assert "ip-adapter" in message  # the file name


def test_sites_cover_comfy_keys_once():
    keys = [site.comfy_key for site in SD15_SITES]
    assert len(set(keys)) == 16
    assert ("middle", 0, 0) in keys
    assert sorted(block for kind, block, _ in keys if kind == "input") == [1, 2, 4, 5, 7, 8]
    assert sorted(block for kind, block, _ in keys if kind == "output") == list(range(3, 12))
