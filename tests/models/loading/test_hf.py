"""Hugging Face folder loading: round trip and every error a user can hit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

import mechscope as ms
from mechscope.errors import ModelLoadError, UnsupportedArchitectureError

HF_LLAMA = {
    "model_type": "llama",
    "hidden_size": 16,
    "intermediate_size": 24,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "num_key_value_heads": 1,
    "vocab_size": 11,
    "max_position_embeddings": 32,
    "rms_norm_eps": 1e-6,
    "tie_word_embeddings": True,
}


def hf_weights(seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    shapes = {
        "model.embed_tokens.weight": (11, 16),
        "model.norm.weight": (16,),
        "model.layers.0.input_layernorm.weight": (16,),
        "model.layers.0.post_attention_layernorm.weight": (16,),
        "model.layers.0.self_attn.q_proj.weight": (16, 16),
        "model.layers.0.self_attn.k_proj.weight": (8, 16),
        "model.layers.0.self_attn.v_proj.weight": (8, 16),
        "model.layers.0.self_attn.o_proj.weight": (16, 16),
        "model.layers.0.mlp.gate_proj.weight": (24, 16),
        "model.layers.0.mlp.up_proj.weight": (24, 16),
        "model.layers.0.mlp.down_proj.weight": (16, 24),
    }
    return {k: torch.randn(s, generator=g) for k, s in shapes.items()}


def write_folder(path: Path, config: dict | None = None, weights: dict | None = None) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(json.dumps(config or HF_LLAMA))
    save_file(weights if weights is not None else hf_weights(), str(path / "model.safetensors"))
    return path


def test_round_trip_keeps_every_weight(tmp_path: Path) -> None:
    model = ms.load_model(write_folder(tmp_path / "m"))
    w = hf_weights()
    torch.testing.assert_close(
        model.blocks[0].attn.k_proj.weight, w["model.layers.0.self_attn.k_proj.weight"]
    )
    assert model.W_U is model.embed_tokens.weight
    assert model.tokenizer is None and model.cfg.n_kv_heads == 1


def test_sharded_safetensors_and_bfloat16(tmp_path: Path) -> None:
    folder = tmp_path / "sharded"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(HF_LLAMA))
    w = hf_weights()
    names = sorted(w)
    half = len(names) // 2
    save_file({k: w[k] for k in names[:half]}, str(folder / "a.safetensors"))
    save_file({k: w[k] for k in names[half:]}, str(folder / "b.safetensors"))
    index = {
        "weight_map": {k: ("a.safetensors" if i < half else "b.safetensors") for i, k in enumerate(names)}
    }
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    model = ms.load_model(folder, dtype="bfloat16")
    assert model.dtype == torch.bfloat16
    assert model.run(torch.tensor([[1, 2, 3]])).shape == (1, 3, 11)


def test_pytorch_bin_is_read_weights_only(tmp_path: Path) -> None:
    folder = tmp_path / "bin"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(HF_LLAMA))
    torch.save(hf_weights(), folder / "pytorch_model.bin")
    ms.load_model(folder)

    class Evil:
        def __reduce__(self) -> tuple:
            return (print, ("pwned",))

    torch.save({"x": Evil()}, folder / "pytorch_model.bin")
    with pytest.raises(ModelLoadError, match="weights-only"):
        ms.load_model(folder)


def test_errors_name_the_file_the_tensor_and_the_expectation(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="no such file or folder"):
        ms.load_model(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelLoadError, match=r"no config\.json"):
        ms.load_model(tmp_path / "empty")
    with pytest.raises(UnsupportedArchitectureError, match="model_type 'bert' is not supported; supported:"):
        ms.load_model(write_folder(tmp_path / "bert", {**HF_LLAMA, "model_type": "bert"}))
    w = hf_weights()
    del w["model.layers.0.mlp.up_proj.weight"]
    with pytest.raises(
        ModelLoadError, match=r"missing tensor\(s\) for llama: blocks\.0\.mlp\.up_proj\.weight"
    ):
        ms.load_model(write_folder(tmp_path / "missing", weights=w))
    w = hf_weights()
    w["model.layers.0.mlp.up_proj.weight"] = torch.zeros(25, 16)
    with pytest.raises(
        ModelLoadError, match=r"blocks\.0\.mlp\.up_proj\.weight has shape \(25, 16\); expected \(24, 16\)"
    ):
        ms.load_model(write_folder(tmp_path / "shape", weights=w))
    w = hf_weights()
    w["model.layers.0.extra.weight"] = torch.zeros(2)
    with pytest.raises(ModelLoadError, match=r"unexpected tensor\(s\).*model\.layers\.0\.extra\.weight"):
        ms.load_model(write_folder(tmp_path / "extra", weights=w))
    folder = write_folder(tmp_path / "truncated")
    data = (folder / "model.safetensors").read_bytes()
    (folder / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelLoadError, match="corrupted or truncated"):
        ms.load_model(folder)
    with pytest.raises(ModelLoadError, match=r"dtype .int8. is not supported"):
        ms.load_model(write_folder(tmp_path / "ok"), dtype="int8")


def test_shard_index_cannot_point_outside_the_folder(tmp_path: Path) -> None:
    folder = tmp_path / "escape"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(HF_LLAMA))
    (folder / "model.safetensors.index.json").write_text(
        json.dumps({"weight_map": {"x": "../../etc/passwd"}})
    )
    with pytest.raises(ModelLoadError, match="outside the checkpoint folder"):
        ms.load_model(folder)


def test_tokenizer_json_and_flags_are_read(tmp_path: Path) -> None:
    from tests.conftest import char_tokenizer

    folder = write_folder(tmp_path / "tok")
    char_tokenizer().backend.save(str(folder / "tokenizer.json"))
    (folder / "tokenizer_config.json").write_text(
        json.dumps({"bos_token": "<bos>", "eos_token": "<eos>", "pad_token": "<pad>", "add_bos_token": True})
    )
    tok = ms.load_model(folder).tokenizer
    assert tok is not None
    assert (tok.bos_id, tok.eos_ids, tok.pad_id, tok.add_bos) == (1, (2,), 0, True)
    assert tok.encode("ab") == [1, tok.backend.token_to_id("a"), tok.backend.token_to_id("b")]
