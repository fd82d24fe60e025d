"""``mechscope models`` and ``mechscope info`` on files mechscope cannot read."""

from __future__ import annotations

import json
from pathlib import Path

import gguf
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from mechscope.cli import main
from mechscope.models.loading.cache import cached_convert
from tests.conftest import CONFIGS, char_tokenizer
from tests.models.loading.test_gguf import VOCAB, D, hf_weights, write_gguf


def test_models_lists_embedded_test_model_and_caches_with_sizes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MECHSCOPE_HOME", str(tmp_path / "home"))
    source = tmp_path / "tiny.gguf"
    source.write_bytes(b"GGUF-not-really")  # the cache keys on the bytes; nothing parses them here
    cfg = CONFIGS["llama"]
    weights = {"embed_tokens.weight": torch.zeros(cfg.d_vocab, cfg.d_model)}
    cached_convert(source, "test", lambda: (cfg, weights, char_tokenizer()))
    result = CliRunner().invoke(main, ["models", "--json"])
    assert result.exit_code == 0, result.output
    entries = {e["kind"]: e for e in json.loads(result.output)}
    assert set(entries) == {"embedded", "test model", "converted cache"}
    assert entries["embedded"]["name"] == "smollm2"
    cache = entries["converted cache"]
    assert cache["name"].startswith("tiny-") and cache["description"].startswith("llama")
    assert cache["size_bytes"] == sum(f.stat().st_size for f in Path(cache["path"]).iterdir())
    for e in entries.values():  # an installed model has a size; a missing one says how to install it
        assert (e["size_bytes"] > 0) if e["installed"] else e["path"].startswith("pip install")
    text = CliRunner().invoke(main, ["models"]).output
    assert "smollm2" in text and "converted cache" in text and "Add a model" in text


def _qwen2_with_type(tmp_path: Path, qtype: gguf.GGMLQuantizationType) -> Path:
    _, type_size = gguf.GGML_QUANT_SIZES[qtype]
    data = np.zeros((D, type_size), dtype=np.uint8)
    return write_gguf(
        tmp_path / "t.gguf",
        "qwen2",
        hf_weights("qwen2", ff=256),
        raw={"blk.0.ffn_down.weight": (data, qtype)},
        meta={"feed_forward_length": 256},
    )


def test_info_names_the_missing_piece(tmp_path: Path) -> None:
    arch = write_gguf(tmp_path / "a.gguf", "mamba", {"model.embed_tokens.weight": torch.zeros(VOCAB, D)})
    qtype = _qwen2_with_type(tmp_path, gguf.GGMLQuantizationType.Q8_K)
    # A tokenizer kind mechscope does not rebuild: tokenizer.ggml.model "gpt2" -> "bert" (same length).
    path = write_gguf(tmp_path / "w.gguf", "qwen2", hf_weights("qwen2"))
    tok = tmp_path / "tok.gguf"
    tok.write_bytes(path.read_bytes().replace(b"gpt2", b"bert", 1))
    for file, piece in (
        (arch, "architecture 'mamba'"),
        (qtype, "type Q8_K"),
        (tok, "tokenizer model 'bert'"),
    ):
        result = CliRunner().invoke(main, ["info", str(file)])
        assert result.exit_code == 1, result.output
        assert result.output.strip().count("\n") == 0 and piece in result.output, result.output
