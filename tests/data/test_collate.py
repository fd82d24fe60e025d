"""Collation against a brute-force reference: top-k, per-token activations, samples, moments,
density and histograms, and exact merging of partial results."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from mechscope.data import stats
from mechscope.data.collate import CollateConfig, CollationState, collate, collate_range
from mechscope.data.store import Dataset, Workspace
from tests.conftest import tiny_model
from tests.data._helpers import brute_force, small_windows, sorted_state_arrays, top_k_reference

CFG = CollateConfig(window=16, top_k=4, random_samples=3, batch=8, shard=16)


@pytest.fixture(scope="module", params=["llama", "gemma3"])
def collated(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple:
    tmp = tmp_path_factory.mktemp(request.param)
    model = tiny_model(request.param)
    windows = small_windows(model, tmp)
    root = collate(model, windows, Workspace(tmp / "ws"), CFG, corpus_name="c")
    return model, windows, Dataset(root), brute_force(model, windows)


@pytest.mark.parametrize("kind", ["mlp_neuron", "attn_head"])
def test_top_k_and_per_token_activations_equal_brute_force(collated: tuple, kind: str) -> None:
    model, _, ds, ref = collated
    acts = ref[kind]
    win, peak, pos = top_k_reference(acts, CFG.top_k)
    for layer in range(model.cfg.n_layers):
        for unit in range(acts.shape[3]):
            got = ds.top_examples(kind, layer, unit, n=CFG.top_k)
            assert [g["window_id"] for g in got] == win[layer, unit].tolist()
            np.testing.assert_allclose(
                [g["activation"] for g in got], peak[layer, unit], rtol=1e-5, atol=1e-6
            )
            assert [g["position"] for g in got] == pos[layer, unit].tolist()
            for g in got:
                per_token = acts[g["window_id"], :, layer, unit]
                np.testing.assert_allclose(
                    g["acts"], per_token.astype(np.float16).astype(np.float32), rtol=2e-3, atol=1e-4
                )
                assert g["tokens"][g["position"]] == model.tokenizer.token_str(g["token_id"])
                if kind == "attn_head":
                    assert g["key_position"] == ref["key"][g["window_id"], g["position"], layer, unit]
                else:
                    assert g["key_position"] is None


@pytest.mark.parametrize("kind", ["mlp_neuron", "attn_head"])
def test_moments_density_and_histogram_equal_numpy(collated: tuple, kind: str) -> None:
    model, _, ds, ref = collated
    x = ref[kind][:, 1:].astype(np.float64)  # stream tokens only
    n_tok = x.shape[0] * x.shape[1]
    x = x.reshape(n_tok, *x.shape[2:])  # (token, layer, unit)
    mean = x.mean(0)
    d = x - mean
    var = (d**2).mean(0)
    skew = (d**3).mean(0) / var**1.5
    kurt = (d**4).mean(0) / var**2 - 3
    to_start = ref["to_start"][:, :, :, 1:]  # (window, layer, head, pos): attention on the start token
    density = (x > 0).mean(0) if kind == "mlp_neuron" else (to_start < 0.5).mean((0, 3))
    edges = stats.bin_edges()
    for layer in range(model.cfg.n_layers):
        for unit in range(x.shape[2]):
            s = ds.stats(kind, layer, unit)
            assert s["count"] == n_tok
            np.testing.assert_allclose(
                [s["mean"], s["var"], s["skew"], s["kurtosis"]],
                [mean[layer, unit], var[layer, unit], skew[layer, unit], kurt[layer, unit]],
                rtol=2e-4, atol=1e-6,
            )  # fmt: skip
            assert s["density"] == pytest.approx(density[layer, unit])
            assert sum(s["hist"]) == n_tok
            col = x[:, layer, unit].astype(np.float32)
            for c, lo, hi in zip(s["hist"], s["hist_lo"], s["hist_hi"], strict=True):
                inside = (col >= lo) & (col < hi) if lo >= 0 else (col > lo) & (col <= hi)
                if (lo, hi) == edges[stats.ZERO_BIN]:
                    inside = (col > lo) & (col <= hi)
                # The reference's one batch and collation's batches of 8 may take different
                # matmul kernels (models/few_rows.py): a value within float rounding of an edge
                # may fall on either side of it.
                near = (np.abs(col - lo) <= 1e-5) | (np.abs(col - hi) <= 1e-5)
                assert int((inside & ~near).sum()) <= c <= int((inside | near).sum()), (layer, unit, lo, hi)


def test_samples_are_real_windows_with_their_peaks(collated: tuple) -> None:
    model, _, ds, ref = collated
    acts = ref["mlp_neuron"]
    peaks = acts[:, 1:].max(1)  # (window, layer, unit)
    for unit in range(0, model.cfg.d_mlp, 7):
        rand = ds.samples("mlp_neuron", 1, unit, "random")
        assert len(rand) == CFG.random_samples and len({r["window_id"] for r in rand}) == CFG.random_samples
        for r in rand:
            assert r["activation"] == pytest.approx(peaks[r["window_id"], 1, unit], rel=1e-6)
            np.testing.assert_allclose(r["acts"], acts[r["window_id"], :, 1, unit], rtol=2e-3, atol=1e-4)
        quant = ds.samples("mlp_neuron", 1, unit, "quantile")
        assert quant and [q["activation"] for q in quant] == sorted(q["activation"] for q in quant)
        column = np.sort(peaks[:, 1, unit])
        for q in quant:
            assert q["activation"] == pytest.approx(peaks[q["window_id"], 1, unit], rel=1e-6)
            share = np.mean(column <= q["activation"])  # where this window's peak sits among all peaks
            assert q["quantile_lo"] - 1e-9 <= share <= q["quantile_hi"] + 1e-9


def test_merging_two_halves_gives_the_whole(tmp_path: Path) -> None:
    model = tiny_model("llama")
    windows = small_windows(model, tmp_path)
    half = windows.n // 2
    whole = collate_range(model, windows, CFG)
    left = collate_range(model, windows, CFG, 0, half)
    right = collate_range(model, windows, CFG, half, windows.n)
    left.merge_(right)
    assert left.done == whole.done == windows.n
    w, m = sorted_state_arrays(whole), sorted_state_arrays(left)
    assert w.keys() == m.keys()
    moments = ("mean", "m2", "m3", "m4")
    for name in w:  # top-k, samples, bins, histograms and counts exactly; moments to float64 rounding
        if name.rsplit(".", 1)[-1] in moments:  # the split is not on a shard bound: not bit for bit
            torch.testing.assert_close(w[name], m[name], rtol=1e-9, atol=1e-12)
        else:
            assert torch.equal(w[name], m[name]), name


def test_fewer_windows_than_k_and_state_round_trip(tmp_path: Path) -> None:
    model = tiny_model("llama")
    windows = small_windows(model, tmp_path, n_docs=2)
    cfg = CollateConfig(window=16, top_k=50, random_samples=40, batch=4)
    state = collate_range(model, windows, cfg)
    again = CollationState(model, cfg)
    again.load(state.arrays())
    for kind in state.kinds:
        for name, t in state.kinds[kind].a.items():
            assert torch.equal(t, again.kinds[kind].a[name]), name
    root = collate(model, windows, Workspace(tmp_path / "ws"), cfg)
    with Dataset(root) as ds:
        assert len(ds.top_examples("mlp_neuron", 0, 0, 100)) == windows.n < 50
        assert len(ds.samples("attn_head", 1, 3)) == windows.n
