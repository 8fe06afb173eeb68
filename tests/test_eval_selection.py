"""Which records an evaluation runs on: split manifest order, explicit ids, limit, masks off."""

from __future__ import annotations

import pytest

from training.evaluate import DatasetSelection, load_selection


@pytest.fixture(scope="module")
def manifest(eval_humanedit_dir, tmp_path_factory):
    from training.data import load_humanedit, make_split

    ids = [str(i) for i in load_humanedit(eval_humanedit_dir).column("IMAGE_ID")]
    split = make_split(ids, seed=3, test_size=3, train_size=None)
    return split, split.save(tmp_path_factory.mktemp("split") / "split.json")


def test_split_manifest_order_ids_and_limit(eval_humanedit_dir, manifest) -> None:
    split, path = manifest
    base = {"format": "humanedit", "path": str(eval_humanedit_dir), "split_manifest": str(path)}
    assert [r.id for r in load_selection(DatasetSelection(**base))] == split.test
    assert [r.id for r in load_selection(DatasetSelection(**base, limit=2))] == split.test[:2]
    assert [r.id for r in load_selection(DatasetSelection(**base, split="train"))] == split.train
    chosen = load_selection(DatasetSelection(**base, ids=[split.test[2], split.test[0]]))
    assert [r.id for r in chosen] == [split.test[0], split.test[2]]  # manifest order kept


def test_no_masks_makes_every_item_mask_free(eval_humanedit_dir) -> None:
    with_masks = load_selection(DatasetSelection(format="humanedit", path=str(eval_humanedit_dir), limit=2))
    without = load_selection(
        DatasetSelection(format="humanedit", path=str(eval_humanedit_dir), limit=2, use_masks=False)
    )
    assert all(r.mask is not None for r in with_masks)
    assert all(r.mask is None for r in without)
    assert [r.id for r in without] == [r.id for r in with_masks]


def test_selection_round_trips_through_run_json(eval_humanedit_dir) -> None:
    selection = DatasetSelection(
        format="humanedit", path=str(eval_humanedit_dir), limit=2, mask_polarity="auto"
    )
    again = DatasetSelection.from_json(selection.to_json())
    assert again.to_json() == selection.to_json()
    assert [r.id for r in load_selection(again)] == [r.id for r in load_selection(selection)]
