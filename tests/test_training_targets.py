"""build_targets: both target kinds, IP-Adapter preprocessing, sharded cache that resumes."""

from __future__ import annotations

import pytest
import torch

from training.build_targets import build_targets, encode_images, load_clip_vision
from training.build_targets import main as build_main
from training.target_store import TargetStore


def test_tiny_clip_fixture_has_vith14_output_shapes(tiny_clip_vision_dir, humanedit_records):
    model, processor = load_clip_vision(tiny_clip_vision_dir)
    out = encode_images(model, processor, [humanedit_records[0].load_target()], ("plain", "plus"))
    assert tuple(out["plain"].shape) == (1, 1024)
    assert tuple(out["plus"].shape) == (1, 257, 1280)
    pixels = processor(images=[humanedit_records[0].load_target()], return_tensors="pt")["pixel_values"]
    assert tuple(pixels.shape) == (1, 3, 224, 224)  # 64 px input -> shortest side 224 + center crop


@pytest.mark.slow
def test_build_targets_matches_direct_encoding_and_resumes(tiny_clip_vision_dir, humanedit_records, tmp_path):
    records = list(humanedit_records[:6])
    out = tmp_path / "targets"

    class Boom(Exception):
        pass

    # A run that dies on the 5th record keeps the complete shards (2 per shard) and nothing else.
    broken = list(records)
    original = broken[4]

    class Exploding(type(original)):
        def load_target(self):
            raise Boom()

    broken[4] = Exploding(**{f: getattr(original, f) for f in original.__dataclass_fields__})
    with pytest.raises(Boom):
        build_targets(
            broken,
            tiny_clip_vision_dir,
            out,
            batch_size=2,
            shard_size=2,
            progress=False,
            store_dtype=torch.float32,
        )
    partial = TargetStore(out)
    assert partial.ids("plain") == {r.id for r in records[:4]} == partial.ids("plus")
    first_shard = sorted(out.glob("shard-*.safetensors"))[0]
    mtime = first_shard.stat().st_mtime_ns

    store = build_targets(
        records,
        tiny_clip_vision_dir,
        out,
        batch_size=4,
        shard_size=4,
        progress=False,
        store_dtype=torch.float32,
    )
    assert first_shard.stat().st_mtime_ns == mtime  # done work is not redone
    assert store.ids("plain") == {r.id for r in records}
    assert store.sample_shape("plus") == (257, 1280)
    model, processor = load_clip_vision(tiny_clip_vision_dir)
    direct = encode_images(model, processor, [r.load_target() for r in records], ("plain", "plus"))
    got = store.stack([r.id for r in records], "plain")
    torch.testing.assert_close(got, direct["plain"], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(store.get(records[5].id, "plus"), direct["plus"][5], rtol=1e-4, atol=1e-5)
    # Different images give different targets (the fixture encoder is not degenerate).
    cos = torch.nn.functional.cosine_similarity(got[0], got[1], dim=0)
    assert cos < 0.9999


def test_build_targets_cli_and_missing_kind_error(tiny_clip_vision_dir, humanedit_dir, tmp_path):
    out = tmp_path / "t"
    assert (
        build_main(
            [
                "--data",
                str(humanedit_dir),
                "--clip",
                str(tiny_clip_vision_dir),
                "--out",
                str(out),
                "--kinds",
                "plain",
                "--limit",
                "3",
                "--quiet",
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    store = TargetStore(out)
    assert (
        len(store.ids("plain")) == 3
        and store.get(next(iter(store.ids("plain"))), "plain").dtype == torch.float32
    )
    with pytest.raises(KeyError, match="--kinds plus"):
        store.get(next(iter(store.ids("plain"))), "plus")
    with pytest.raises(FileNotFoundError, match="build_targets"):
        TargetStore(tmp_path / "nothing")


def test_rerun_on_complete_targets_keeps_the_shapes(tiny_clip_vision_dir, humanedit_records, tmp_path):
    # A second run with nothing left to encode must not erase the shapes training reads.
    records = list(humanedit_records[:2])
    for _ in range(2):
        store = build_targets(records, tiny_clip_vision_dir, tmp_path / "t", kinds=("plain",), progress=False)
    assert store.ids("plain") == {r.id for r in records}
    assert store.sample_shape("plain") == (1024,)
