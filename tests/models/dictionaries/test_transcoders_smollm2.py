"""A small skip-transcoder trained on SmolLM2 (slow): the whole path on the real model (one
forward feeding input and target, training, evaluation against the MLP output, splicing with the
error term kept) on a few thousand tokens of the default corpus."""

from __future__ import annotations

import pytest
import torch

import mechscope as ms
from mechscope.data.corpora import make_windows, open_corpus
from mechscope.engine.kinds.latent import attach, detach
from mechscope.models.dictionaries.eval import evaluate
from mechscope.models.dictionaries.training import TrainConfig, train

pytestmark = pytest.mark.slow


def test_a_small_skip_transcoder_on_smollm2() -> None:
    model = ms.load_model()
    assert model.tokenizer is not None
    windows = make_windows(open_corpus(), model.tokenizer, 64, 64 * 63).tokens  # 4,032 stream tokens
    cfg = TrainConfig(hooks=("blocks.6.mlp",), kind="skip_transcoder", n_latents=1152, k=16, tokens=3072,
                      batch_tokens=256, window=64, model_batch=16, chunk_tokens=1024, lr=1e-3,
                      init_tokens=1024)  # fmt: skip
    coder = train(model, windows[:56], cfg)["blocks.6.mlp"]
    assert coder.training_stats["tokens"] == 3072
    ev = evaluate(model, coder, windows[56:])
    print(ev.explained_variance, ev.ce_recovered_vs_zero, ev.ce_recovered_vs_mean, ev.loss_added_nats)
    # 12 steps: far from converged (docs/autoencoders.md has a real run), but already better than
    # predicting the mean output, and than removing the MLP's output.
    assert 0 < ev.explained_variance < 1 and ev.l0 == pytest.approx(16, abs=0.5)
    assert ev.ce_with_dictionary < ev.ce_zero_ablation
    clean = model(windows[56:58])
    name = attach(model, coder)
    torch.testing.assert_close(model(windows[56:58]), clean, atol=1e-4, rtol=0)  # fp32, 30 layers
    detach(model, name)
