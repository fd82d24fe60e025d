"""Activation and attribution patching on tiny models."""

from __future__ import annotations

import pytest
import torch

from mechscope.engine.directions import LogitDiff, ResidualDirection
from mechscope.engine.patching import patch
from mechscope.errors import InputError
from tests.conftest import tiny_model

CLEAN, CORRUPT = "abcdefgh", "abcXefgh"  # one token differs: position 4 (after BOS)
DIRECTION = LogitDiff(targets=["i"], distractors=["j"])


@pytest.mark.parametrize("family", ["llama", "gpt2", "neox", "gemma3"])
def test_residual_patching_extremes_are_exactly_one_and_zero(family: str) -> None:
    model = tiny_model(family)
    res = patch(model, CLEAN, CORRUPT, DIRECTION, site="resid_pre")
    values = torch.tensor(res.values)
    assert values.shape == (model.cfg.n_layers, 9) and res.columns[4] == "d"  # the clean token
    # Layer 0, the differing position: the whole clean run; any other position: nothing changes.
    assert values[0, 4].item() == pytest.approx(1.0, abs=1e-4)
    others = torch.cat([values[0, :4], values[0, 5:]])
    assert others.abs().max().item() == pytest.approx(0.0, abs=1e-4)
    # Positions before the change are identical in both runs at every layer.
    assert values[:, :4].abs().max().item() == pytest.approx(0.0, abs=1e-4)


@pytest.mark.parametrize("site", ["attn_out", "mlp_out", "heads", "heads_by_pos"])
def test_sites_have_their_shapes(site: str) -> None:
    model = tiny_model("llama")
    res = patch(model, CLEAN, CORRUPT, DIRECTION, site=site)  # type: ignore[arg-type]
    cfg = model.cfg
    shape = {
        "attn_out": (cfg.n_layers, 9),
        "mlp_out": (cfg.n_layers, 9),
        "heads": (cfg.n_layers, cfg.n_heads),
        "heads_by_pos": (cfg.n_layers * cfg.n_heads, 9),
    }[site]
    assert torch.tensor(res.values).shape == shape and (len(res.rows), len(res.columns)) == shape
    est = patch(model, CLEAN, CORRUPT, DIRECTION, site=site, method="attribution")  # type: ignore[arg-type]
    assert torch.tensor(est.values).shape == shape


def test_heads_patched_everywhere_equal_the_sum_of_their_positions_on_a_linear_readout() -> None:
    # Read the residual right after the last layer's attention: patching a head there is linear,
    # so attribution patching is exact and per-position cells add up to the all-position cell.
    model = tiny_model("llama")
    vec = torch.randn(model.cfg.d_model, generator=torch.Generator().manual_seed(0)).tolist()
    d = ResidualDirection(vector=vec, layer=1, point="resid_mid")
    act = torch.tensor(patch(model, CLEAN, CORRUPT, d, site="heads").values)[1]
    est = torch.tensor(patch(model, CLEAN, CORRUPT, d, site="heads", method="attribution").values)[1]
    torch.testing.assert_close(est, act, atol=1e-4, rtol=1e-4)
    by_pos = torch.tensor(patch(model, CLEAN, CORRUPT, d, site="heads_by_pos").values)
    torch.testing.assert_close(by_pos[model.cfg.n_heads :].sum(-1), act, atol=1e-4, rtol=1e-4)


def test_patching_errors() -> None:
    model = tiny_model("llama")
    with pytest.raises(InputError, match="same number of tokens"):
        patch(model, CLEAN, CLEAN + "x", DIRECTION)
    with pytest.raises(InputError, match="same value"):
        patch(model, CLEAN, CLEAN, DIRECTION)
    with pytest.raises(InputError, match="unknown patching site"):
        patch(model, CLEAN, CORRUPT, DIRECTION, site="resid_post")  # type: ignore[arg-type]


@pytest.mark.parametrize("family", ["llama", "gpt2", "neox", "gemma3"])
@pytest.mark.parametrize("site", ["resid_pre", "attn_out", "heads_by_pos"])
def test_a_sweep_resumed_at_each_layer_equals_full_forwards(
    family: str, site: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each layer's cells start at that block from the corrupted run's input to it; the grid is
    the one full forwards give (the blocks before a patch compute nothing patched)."""
    import mechscope.engine.patching as patching

    model = tiny_model(family)
    fast = torch.tensor(patch(model, CLEAN, CORRUPT, DIRECTION, site=site).values)  # type: ignore[arg-type]
    monkeypatch.setattr(patching, "resumable_from", lambda _obj, _layer: False)
    full = torch.tensor(patch(model, CLEAN, CORRUPT, DIRECTION, site=site).values)  # type: ignore[arg-type]
    # float32 rounding (Gemma's embedding scale): cells that are exactly 0 read ~2e-5 either way
    assert torch.allclose(fast, full, atol=1e-4)


def test_an_objective_read_early_runs_from_the_start() -> None:
    """A residual direction read at layer 0 is before every later layer's resume point: those
    sweeps run whole forwards, and patching after the read changes nothing."""
    model = tiny_model("llama")
    direction = ResidualDirection(vector=[1.0] * model.cfg.d_model, layer=0, point="resid_post")
    values = torch.tensor(patch(model, CLEAN, CORRUPT, direction, site="resid_pre").values)
    assert values[0, 4].item() == pytest.approx(1.0, abs=1e-4)
    assert values[1:].abs().max().item() == pytest.approx(0.0, abs=1e-5)


def test_the_decoder_resumes_mid_model_with_the_same_logits() -> None:
    model = tiny_model("llama")
    ids = torch.tensor([[1, 5, 6, 7, 8]])
    _, cache = model.run_with_cache(ids, names="blocks.1.resid_pre")
    with torch.no_grad():
        whole = model(ids)
        resumed = model(ids, resume=(1, cache["blocks.1.resid_pre"]))
    assert torch.allclose(whole, resumed, atol=1e-6)
    with pytest.raises(InputError, match="resume needs a layer"):
        model(ids, resume=(model.cfg.n_layers, cache["blocks.1.resid_pre"]))
    with pytest.raises(InputError, match="resume needs a layer"):
        model(ids, resume=(1, cache["blocks.1.resid_pre"][:, :2]))
