"""The head's pooling design (issue 23): the user-turn mask, user-turn heads ignore the fixed system
prompt, heads record their design, and heads written before the option existed load as they were."""

from __future__ import annotations

import json

import pytest
import torch

from mindedit_core.vision_head import (
    _CONFIG_KEY,
    VisionHead,
    VisionHeadConfig,
    read_head_config,
    user_turn_mask,
)

TURN = 7  # the <|im_start|> id in these hand-made sequences


def _ids() -> torch.Tensor:
    # <s>system ... <s>user (image, instruction) <s>assistant | padding
    return torch.tensor([[TURN, 1, 2, 3, 4, TURN, 5, 6, 8, TURN, 9, 0, 0]])


def test_user_turn_mask_keeps_the_user_turn_and_the_assistant_header():
    mask = torch.tensor([[1] * 11 + [0, 0]])
    got = user_turn_mask(_ids(), mask, TURN)
    assert got.tolist() == [[False] * 5 + [True] * 6 + [False, False]]


def test_user_turn_mask_keeps_everything_without_two_turns():
    ids = torch.tensor([[1, 2, TURN, 3]])
    assert user_turn_mask(ids, None, TURN).all()


def _user_turn_head() -> VisionHead:
    torch.manual_seed(0)
    return VisionHead(VisionHeadConfig(hidden_size=16, layer=2, pool="user_turn", turn_start_id=TURN)).eval()


def test_user_turn_head_ignores_the_system_prompt_but_reads_the_turn():
    head = _user_turn_head()
    ids, mask = _ids(), torch.tensor([[1] * 11 + [0, 0]])
    hidden = torch.randn(1, 13, 16)
    system_changed, turn_changed = hidden.clone(), hidden.clone()
    system_changed[0, 1:5] = torch.randn(4, 16)
    turn_changed[0, 6] = torch.randn(16)
    out = head(hidden, mask, input_ids=ids)
    torch.testing.assert_close(head(system_changed, mask, input_ids=ids), out)
    assert not torch.allclose(head(turn_changed, mask, input_ids=ids), out, atol=1e-4)


def test_user_turn_head_needs_input_ids_and_a_turn_token():
    with pytest.raises(ValueError, match="input_ids"):
        _user_turn_head()(torch.randn(1, 13, 16), torch.ones(1, 13))
    with pytest.raises(ValueError, match="turn_start_id"):
        VisionHeadConfig(hidden_size=16, layer=2, pool="user_turn")


def test_head_file_records_its_design(tmp_path):
    path = _user_turn_head().save(tmp_path / "head.safetensors")
    config = read_head_config(path)
    assert (config.pool, config.turn_start_id) == ("user_turn", TURN)
    hidden, ids = torch.randn(1, 13, 16), _ids()
    torch.testing.assert_close(
        VisionHead.load(path).eval()(hidden, None, input_ids=ids),
        _user_turn_head()(hidden, None, input_ids=ids),
    )


def test_a_head_written_before_the_pool_option_loads_as_a_prompt_head(tmp_path):
    """Old files have no ``pool``/``turn_start_id`` in their config: they read as ``prompt`` heads and
    give the same output as before (no input_ids needed)."""
    from safetensors.torch import save_file

    torch.manual_seed(0)
    head = VisionHead(VisionHeadConfig(hidden_size=16, layer=2)).eval()
    meta = head.metadata()
    old_config = {
        k: v for k, v in json.loads(meta[_CONFIG_KEY]).items() if k not in ("pool", "turn_start_id")
    }
    meta[_CONFIG_KEY] = json.dumps(old_config)
    meta.pop("pool")
    path = tmp_path / "old.safetensors"
    save_file({k: v.contiguous() for k, v in head.state_dict().items()}, str(path), metadata=meta)
    loaded = VisionHead.load(path).eval()
    assert loaded.config.pool == "prompt"
    hidden = torch.randn(2, 9, 16)
    torch.testing.assert_close(loaded(hidden), head(hidden), atol=0, rtol=0)
