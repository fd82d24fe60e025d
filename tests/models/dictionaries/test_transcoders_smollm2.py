"""A small transcoder trained on SmolLM2 (slow): a few thousand tokens of the default corpus are
enough for it to predict part of layer 6's MLP output and to splice in without changing the
logits until a latent is edited."""

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
    assert 0.2 < ev.explained_variance < 1 and ev.l0 == pytest.approx(16, abs=0.5)
    assert ev.ce_recovered_vs_zero > 0.5  # better than removing the MLP's output
    clean = model(windows[56:58])
    name = attach(model, coder)
    torch.testing.assert_close(model(windows[56:58]), clean, atol=1e-4, rtol=0)  # fp32, 30 layers
    detach(model, name)
