"""Evaluation: each metric against its definition on cases whose answer is known."""

from __future__ import annotations

import pytest
import torch

from mechscope.models.dictionaries import DictionaryConfig, SparseCoder
from mechscope.models.dictionaries.eval import density_histogram, evaluate
from tests.conftest import tiny_model
from tests.models.dictionaries._helpers import random_coder
from tests.models.dictionaries.test_training import _windows


def _exact(d: int, hook: str) -> SparseCoder:
    """ReLU over [x, -x] and back: a lossless dictionary of 2 d latents."""
    c = SparseCoder(DictionaryConfig(d_in=d, n_latents=2 * d, hook=hook, activation="relu", k=None))
    eye = torch.eye(d)
    with torch.no_grad():
        c.W_enc.copy_(torch.cat([eye, -eye], 1))
        c.W_dec.copy_(torch.cat([eye, -eye], 0))
    return c


@pytest.mark.parametrize("hook", ["blocks.0.resid_post", "blocks.1.mlp.post", "blocks.0.attn.z"])
def test_a_lossless_dictionary_scores_perfectly(hook: str) -> None:
    model = tiny_model("gpt2")
    d = {"blocks.1.mlp.post": 48}.get(hook, 32)
    e = evaluate(model, _exact(d, hook), _windows(12), batch=5)
    assert e.explained_variance == pytest.approx(1, abs=1e-6)
    assert e.loss_added_nats == pytest.approx(0, abs=1e-4) and e.kl_to_clean == pytest.approx(0, abs=1e-5)
    assert e.ce_recovered_vs_zero == pytest.approx(1, abs=1e-3)
    assert e.ce_recovered_vs_mean == pytest.approx(1, abs=1e-3)
    assert e.tokens == 12 * 15 and e.predictions == 12 * 15
    assert abs(e.ce_zero_ablation - e.ce_clean) > 1e-3  # the ablation matters (random model: either way)


def test_a_zero_dictionary_is_zero_ablation_and_the_variances_differ() -> None:
    model = tiny_model("llama")
    hook = "blocks.0.resid_post"
    c = SparseCoder(DictionaryConfig(d_in=32, n_latents=8, hook=hook, k=2))  # all weights zero
    e = evaluate(model, c, _windows(10))
    assert e.ce_with_dictionary == pytest.approx(e.ce_zero_ablation, rel=1e-5)
    assert e.ce_recovered_vs_zero == pytest.approx(0, abs=1e-5)
    assert e.explained_variance_legacy_around_zero == pytest.approx(0, abs=1e-6)
    _, cache = model.run_with_cache(_windows(10), names=[hook])
    x = cache[hook][:, 1:].reshape(-1, 32).double()
    around_mean = 1 - x.pow(2).sum() / (x - x.mean(0)).pow(2).sum()
    assert e.explained_variance == pytest.approx(float(around_mean), rel=1e-6) and e.explained_variance < 0
    assert e.l0 == 0 and e.dead_latents == 8 and e.dead_fraction == 1


def test_sparsity_counts_match_the_latents() -> None:
    model = tiny_model("llama")
    hook = "blocks.1.resid_mid"
    coder = random_coder(model, hook, activation="relu")
    e = evaluate(model, coder, _windows(10))
    _, cache = model.run_with_cache(_windows(10), names=[hook])
    a = coder.encode(cache[hook][:, 1:].reshape(-1, 32))
    density = (a > 0).double().mean(0)
    assert e.l0 == pytest.approx(float((a > 0).sum(-1).double().mean()))
    assert e.dense_latents == int((density > 0.1).sum()) and e.dead_latents == int((density == 0).sum())
    hist = density_histogram(density)
    assert sum(hist["counts"]) + hist["dead"][0] == 64
    assert e.log10_density_histogram == hist
