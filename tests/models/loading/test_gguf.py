"""GGUF reading: tiny files written with gguf.GGUFWriter, plus slow parity with transformers."""

from __future__ import annotations

import struct
from pathlib import Path

import gguf
import numpy as np
import pytest
import torch
from gguf import GGMLQuantizationType as Q

from mechscope.errors import (
    InputError,
    ModelLoadError,
    UnsupportedArchitectureError,
    UnsupportedTensorTypeError,
)
from mechscope.models.loading.gguf import ALLOWED_TYPES, provenance_note, read_gguf

D, HEADS, KV_HEADS, HEAD_DIM, FF, LAYERS = 64, 4, 2, 16, 96, 2
TOKENS = (
    ["<|endoftext|>", "<|im_start|>", "<|im_end|>"] + [chr(c) for c in range(ord("a"), ord("z") + 1)] + ["ab"]
)
VOCAB = len(TOKENS)


def add_tiny_tokenizer(w: gguf.GGUFWriter) -> None:
    """The byte-level BPE tokenizer of TOKENS, as llama.cpp writes one into a GGUF."""
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("gpt-2")
    w.add_token_list(TOKENS)
    w.add_token_types([3, 3, 3] + [1] * (VOCAB - 3))
    w.add_token_merges(["a b"])
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)


def hf_weights(arch: str, seed: int = 0, untied: bool = False, ff: int = FF) -> dict[str, torch.Tensor]:
    """Random weights under HF names and shapes. Values are bf16-exact so Gemma's w + 1 is exact."""
    g = torch.Generator().manual_seed(seed)

    def rand(*shape: int) -> torch.Tensor:
        return (torch.randn(*shape, generator=g) * 0.1).to(torch.bfloat16).float()

    w = {"model.embed_tokens.weight": rand(VOCAB, D), "model.norm.weight": rand(D)}
    if untied:
        w["lm_head.weight"] = rand(VOCAB, D)
    for i in range(LAYERS):
        p = f"model.layers.{i}."
        w[p + "self_attn.q_proj.weight"] = rand(HEADS * HEAD_DIM, D)
        w[p + "self_attn.k_proj.weight"] = rand(KV_HEADS * HEAD_DIM, D)
        w[p + "self_attn.v_proj.weight"] = rand(KV_HEADS * HEAD_DIM, D)
        w[p + "self_attn.o_proj.weight"] = rand(D, HEADS * HEAD_DIM)
        w[p + "mlp.gate_proj.weight"] = rand(ff, D)
        w[p + "mlp.up_proj.weight"] = rand(ff, D)
        w[p + "mlp.down_proj.weight"] = rand(D, ff)
        w[p + "input_layernorm.weight"] = rand(D)
        w[p + "post_attention_layernorm.weight"] = rand(D)
        if arch == "gemma3":
            w[p + "pre_feedforward_layernorm.weight"] = rand(D)
            w[p + "post_feedforward_layernorm.weight"] = rand(D)
            w[p + "self_attn.q_norm.weight"] = rand(HEAD_DIM)
            w[p + "self_attn.k_norm.weight"] = rand(HEAD_DIM)
        if arch == "qwen2":
            for m, rows in (("q", HEADS), ("k", KV_HEADS), ("v", KV_HEADS)):
                w[p + f"self_attn.{m}_proj.bias"] = rand(rows * HEAD_DIM)
    return w


def llamacpp_permute(w: torch.Tensor, n_head: int) -> torch.Tensor:
    """convert_hf_to_gguf.py's LlamaModel.permute, written out independently of the reader."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


_TO_GGUF = {
    "self_attn.q_proj": "attn_q",
    "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output",
    "mlp.gate_proj": "ffn_gate",
    "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
    "input_layernorm": "attn_norm",
    "self_attn.q_norm": "attn_q_norm",
    "self_attn.k_norm": "attn_k_norm",
}


def gguf_name(arch: str, hf: str) -> str:
    stem, suffix = hf.rsplit(".", 1)
    if not stem.startswith("model.layers."):
        globals_ = {"model.embed_tokens": "token_embd", "model.norm": "output_norm", "lm_head": "output"}
        return globals_.get(stem, stem) + "." + suffix
    _, _, i, module = stem.split(".", 3)
    table = dict(_TO_GGUF)
    if arch == "gemma3":
        table |= {
            "pre_feedforward_layernorm": "ffn_norm",
            "post_attention_layernorm": "post_attention_norm",
            "post_feedforward_layernorm": "post_ffw_norm",
        }
    else:
        table["post_attention_layernorm"] = "ffn_norm"
    return f"blk.{i}.{table[module]}.{suffix}"


def write_gguf(
    path: Path,
    arch: str,
    hf: dict[str, torch.Tensor],
    qtype: Q = Q.F32,
    raw: dict[str, tuple[np.ndarray, Q]] | None = None,
    drop: tuple[str, ...] = (),
    meta: dict[str, int] | None = None,
    file_type: int | None = None,
) -> Path:
    """Write what llama.cpp's converter would: permuted q/k (llama), w + 1 norms (gemma3)."""
    w = gguf.GGUFWriter(str(path), arch)
    ints = {
        "block_count": LAYERS,
        "embedding_length": D,
        "feed_forward_length": FF,
        "attention.head_count": HEADS,
        "attention.head_count_kv": KV_HEADS,
        "context_length": 256,
    }
    ints |= meta or {}
    for key, value in ints.items():
        w.add_uint32(f"{arch}.{key}", value)
    w.add_float32(f"{arch}.attention.layer_norm_rms_epsilon", 1e-6)
    w.add_float32(f"{arch}.rope.freq_base", 10000.0)
    if arch == "gemma3":
        w.add_uint32(f"{arch}.attention.key_length", HEAD_DIM)
        w.add_uint32(f"{arch}.attention.value_length", HEAD_DIM)
        w.add_uint32(f"{arch}.attention.sliding_window", 8)
    if file_type is not None:
        w.add_file_type(file_type)
    add_tiny_tokenizer(w)
    for name, tensor in hf.items():
        if name in drop:
            continue
        if arch == "llama" and name.endswith("q_proj.weight"):
            tensor = llamacpp_permute(tensor, HEADS)
        elif arch == "llama" and name.endswith("k_proj.weight"):
            tensor = llamacpp_permute(tensor, KV_HEADS)
        if arch == "gemma3" and name.endswith("norm.weight"):
            tensor = tensor + 1
        array = tensor.numpy().astype(np.float32)
        if raw and gguf_name(arch, name) in raw:
            data, kind = raw[gguf_name(arch, name)]
            w.add_tensor(gguf_name(arch, name), data, raw_dtype=kind)
        elif qtype == Q.F32 or array.ndim == 1:
            w.add_tensor(gguf_name(arch, name), array)
        else:
            w.add_tensor(gguf_name(arch, name), gguf.quants.quantize(array, qtype), raw_dtype=qtype)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


@pytest.fixture
def llama_file(tmp_path: Path) -> Path:
    return write_gguf(tmp_path / "tiny-llama.gguf", "llama", hf_weights("llama"))


def test_llama_round_trip_undoes_the_qk_permutation(llama_file: Path) -> None:
    hf = hf_weights("llama")
    ck = read_gguf(llama_file)
    assert set(ck.tensors) == set(hf)  # tied: no lm_head.weight
    for name, tensor in hf.items():
        assert torch.equal(ck.tensors[name], tensor), name
    c = ck.hf_config
    assert c["model_type"] == "llama" and c["tie_word_embeddings"] is True
    assert (c["hidden_size"], c["num_hidden_layers"], c["intermediate_size"]) == (D, LAYERS, FF)
    assert (c["num_attention_heads"], c["num_key_value_heads"], c["head_dim"]) == (HEADS, KV_HEADS, HEAD_DIM)
    assert (c["vocab_size"], c["max_position_embeddings"]) == (VOCAB, 256)
    assert c["rms_norm_eps"] == 1e-6 and c["rope_theta"] == 10000.0  # float32 metadata, shortest repr
    assert (c["bos_token_id"], c["eos_token_id"]) == (1, 2)
    assert ck.tokenizer.single_token("<|im_start|>") == 1


def test_untied_lm_head(tmp_path: Path) -> None:
    hf = hf_weights("llama", untied=True)
    ck = read_gguf(write_gguf(tmp_path / "untied.gguf", "llama", hf))
    assert ck.hf_config["tie_word_embeddings"] is False
    assert torch.equal(ck.tensors["lm_head.weight"], hf["lm_head.weight"])


def test_qwen2_is_not_permuted_and_keeps_biases(tmp_path: Path) -> None:
    hf = hf_weights("qwen2")
    ck = read_gguf(write_gguf(tmp_path / "qwen.gguf", "qwen2", hf))
    assert ck.hf_config["model_type"] == "qwen2"
    for name, tensor in hf.items():
        assert torch.equal(ck.tensors[name], tensor), name


def test_gemma3_norms_lose_the_plus_one_and_config_is_filled_in(tmp_path: Path) -> None:
    hf = hf_weights("gemma3")
    ck = read_gguf(write_gguf(tmp_path / "gemma.gguf", "gemma3", hf))
    assert set(ck.tensors) == set(hf)
    for name, tensor in hf.items():  # every norm, q_norm/k_norm and the post norms included
        assert torch.equal(ck.tensors[name], tensor), name
    c = ck.hf_config
    assert c["model_type"] == "gemma3_text" and c["head_dim"] == HEAD_DIM
    assert c["sliding_window"] == 8 and c["sliding_window_pattern"] == 6
    assert c["layer_types"] == ["sliding_attention", "sliding_attention"]
    assert c["query_pre_attn_scalar"] == HEAD_DIM and c["rope_local_base_freq"] == 10000.0
    assert c["final_logit_softcapping"] is None and c["attn_logit_softcapping"] is None
    assert c["hidden_activation"] == "gelu_pytorch_tanh"


@pytest.mark.parametrize("qtype", [Q.F16, Q.BF16, Q.Q8_0, Q.Q4_0, Q.Q4_1, Q.Q5_0, Q.Q5_1])
def test_quantized_tensors_equal_gguf_dequantize(tmp_path: Path, qtype: Q) -> None:
    hf = hf_weights("qwen2")  # unpermuted, so each tensor is exactly the dequantized file data
    ck = read_gguf(write_gguf(tmp_path / "q.gguf", "qwen2", hf, qtype=qtype))
    for name, tensor in hf.items():
        if tensor.dim() == 2:
            expected = gguf.quants.dequantize(gguf.quants.quantize(tensor.numpy(), qtype), qtype)
            np.testing.assert_array_equal(ck.tensors[name].numpy(), expected, err_msg=name)
            assert (ck.tensors[name] - tensor).abs().max() < 0.05  # and close to the original


def test_quantized_llama_qk_are_unpermuted(tmp_path: Path) -> None:
    hf = hf_weights("llama")  # permuted rows quantize row by row, so the inverse still applies
    ck = read_gguf(write_gguf(tmp_path / "q8.gguf", "llama", hf, qtype=Q.Q8_0))
    for name in ("model.layers.0.self_attn.q_proj.weight", "model.layers.1.self_attn.k_proj.weight"):
        assert (ck.tensors[name] - hf[name]).abs().max() < 0.01, name


@pytest.mark.parametrize("qtype", ALLOWED_TYPES, ids=lambda t: t.name)
def test_every_dequantizable_type_is_read(tmp_path: Path, qtype: Q) -> None:
    # gguf-py cannot quantize most types: write random blocks (256-wide rows) and check the
    # reader hands them to gguf.quants.dequantize with the right shape.
    hf = hf_weights("qwen2", ff=256)
    block, type_size = gguf.GGML_QUANT_SIZES[qtype]
    data = np.random.default_rng(0).integers(0, 256, size=(D, 256 // block * type_size), dtype=np.uint8)
    data[:, 1::2] &= 0xBF  # keep most float16 fields (at even offsets) finite
    path = write_gguf(
        tmp_path / "k.gguf",
        "qwen2",
        hf,
        raw={"blk.0.ffn_down.weight": (data, qtype)},
        meta={"feed_forward_length": 256},
    )
    got = read_gguf(path).tensors["model.layers.0.mlp.down_proj.weight"]
    expected = gguf.quants.dequantize(data, qtype).reshape(D, 256)
    np.testing.assert_array_equal(got.numpy(), expected)  # NaNs compare equal


def test_bfloat16_output(llama_file: Path) -> None:
    full, half = read_gguf(llama_file), read_gguf(llama_file, dtype=torch.bfloat16)
    for name, tensor in full.tensors.items():
        assert half.tensors[name].dtype == torch.bfloat16
        assert torch.equal(half.tensors[name], tensor.to(torch.bfloat16)), name


def test_quantization_name(tmp_path: Path) -> None:
    hf = hf_weights("llama")
    tagged = write_gguf(
        tmp_path / "a.gguf", "llama", hf, qtype=Q.Q4_1, file_type=gguf.LlamaFileType.MOSTLY_Q4_1
    )
    assert read_gguf(tagged).quantization == "Q4_1"
    untagged = write_gguf(tmp_path / "b.gguf", "llama", hf, qtype=Q.Q8_0)
    assert read_gguf(untagged).quantization == "Q8_0"  # the commonest matrix type


def test_provenance_note() -> None:
    assert provenance_note("Q4_1") == "dequantized 4-bit weights (GGUF Q4_1)"
    assert provenance_note("Q4_K_M") == "dequantized 4-bit weights (GGUF Q4_K_M)"
    assert provenance_note("F16") == "16-bit float weights (GGUF F16)"


# ---- errors: each names the file, the tensor or key, and what was expected ----


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match=r"nope\.gguf: GGUF file not found"):
        read_gguf(tmp_path / "nope.gguf")


def test_bad_magic(tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    path.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}")
    with pytest.raises(ModelLoadError, match=r"model\.safetensors: not a GGUF file"):
        read_gguf(path)


@pytest.mark.parametrize("keep", [4, 30, 500, 0.5, 0.999])
def test_truncated_file(llama_file: Path, tmp_path: Path, keep: float) -> None:
    data = llama_file.read_bytes()
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(data[: int(keep * len(data)) if isinstance(keep, float) else keep])
    with pytest.raises(ModelLoadError, match=r"cut\.gguf: .*truncated") as err:
        read_gguf(cut)
    if isinstance(keep, float):  # the header survived: the message names a tensor
        assert "tensor 'blk." in str(err.value) or "tensor 'output_norm" in str(err.value)


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (struct.pack("<IQQ", 1, 0, 0), "GGUF version 1"),  # the pre-2023 layout
        (struct.pack("<IQQQ", 3, 0, 1, 1) + b"a" + struct.pack("<I", 99), "99"),  # unknown value type
        (struct.pack("<IQQQ", 3, 0, 1, 10**9) + b"key", "past the end"),  # string longer than the file
    ],
)
def test_corrupted_header(tmp_path: Path, body: bytes, why: str) -> None:
    path = tmp_path / "bad.gguf"
    path.write_bytes(b"GGUF" + body)
    with pytest.raises(ModelLoadError, match=rf"bad\.gguf: GGUF header is truncated or corrupted \(.*{why}"):
        read_gguf(path)


def test_unsupported_architecture(tmp_path: Path) -> None:
    path = write_gguf(tmp_path / "m.gguf", "mamba", {"model.embed_tokens.weight": torch.zeros(VOCAB, D)})
    with pytest.raises(
        UnsupportedArchitectureError,
        match=r"m\.gguf: GGUF architecture 'mamba'.*'gemma2', 'gemma3', 'gpt2', 'gptneox', 'llama', 'phi3', 'qwen2', 'qwen3'",
    ):
        read_gguf(path)


def test_unsupported_quant_type(tmp_path: Path) -> None:
    # Q8_K is llama.cpp's intermediate type for dot products; gguf-py cannot dequantize it.
    hf = hf_weights("qwen2", ff=256)
    _, type_size = gguf.GGML_QUANT_SIZES[Q.Q8_K]
    data = np.zeros((D, type_size), dtype=np.uint8)
    path = write_gguf(
        tmp_path / "q8k.gguf",
        "qwen2",
        hf,
        raw={"blk.0.ffn_down.weight": (data, Q.Q8_K)},
        meta={"feed_forward_length": 256},
    )
    with pytest.raises(
        UnsupportedTensorTypeError,
        match=r"q8k\.gguf: tensor 'blk\.0\.ffn_down\.weight' has type Q8_K, which mechscope cannot "
        r"dequantize; supported: F32.*IQ2_XXS.*TQ1_0",
    ):
        read_gguf(path)
    names = {t.name for t in ALLOWED_TYPES}
    assert {"Q2_K", "Q3_K", "Q5_1", "Q8_0", "IQ1_S", "IQ4_XS", "TQ1_0", "TQ2_0", "MXFP4", "BF16"} <= names


def test_missing_tensor(tmp_path: Path) -> None:
    hf = hf_weights("llama")
    path = write_gguf(tmp_path / "gap.gguf", "llama", hf, drop=("model.layers.1.mlp.up_proj.weight",))
    expected = (
        r"gap\.gguf: tensor 'blk\.1\.ffn_up\.weight' \(model\.layers\.1\.mlp\.up_proj\.weight\) is missing"
    )
    with pytest.raises(ModelLoadError, match=expected + r"; expected shape \(96, 64\)"):
        read_gguf(path)


def test_shape_mismatch_with_metadata(tmp_path: Path) -> None:
    path = write_gguf(tmp_path / "odd.gguf", "llama", hf_weights("llama"), meta={"feed_forward_length": 128})
    with pytest.raises(
        ModelLoadError,
        match=r"odd\.gguf: tensor 'blk\.0\.ffn_gate\.weight' .* has shape \(96, 64\), expected \(128, 64\)",
    ):
        read_gguf(path)


def test_unknown_tensor_is_an_error(tmp_path: Path) -> None:
    hf = hf_weights("llama") | {"rope_factors_long.weight": torch.ones(HEAD_DIM // 2)}
    with pytest.raises(
        ModelLoadError, match=r"tensor 'rope_factors_long\.weight' is not part of a llama model"
    ):
        read_gguf(write_gguf(tmp_path / "r.gguf", "llama", hf))


def test_rope_freqs_of_the_wrong_size_is_an_error(tmp_path: Path) -> None:
    hf = hf_weights("llama") | {"rope_freqs.weight": torch.ones(HEAD_DIM)}
    with pytest.raises(ModelLoadError, match=r"rope_freqs\.weight.*has shape \(16,\), expected \(8,\)"):
        read_gguf(write_gguf(tmp_path / "r.gguf", "llama", hf))


def test_bad_dtype(llama_file: Path) -> None:
    with pytest.raises(InputError, match="dtype must be"):
        read_gguf(llama_file, dtype=torch.int8)


# ---- slow: the real embedded models against transformers' own GGUF loading ----


def _transformers_state(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, object]]:
    transformers = pytest.importorskip("transformers")
    model = transformers.AutoModelForCausalLM.from_pretrained(
        path.parent, gguf_file=path.name, dtype=torch.float32
    )
    return model.state_dict(), model.config.to_dict()


def _assert_matches_transformers(path: Path) -> None:
    ours = read_gguf(path)
    theirs, config = _transformers_state(path)
    if ours.hf_config["tie_word_embeddings"]:
        theirs.pop("lm_head.weight")  # the tied copy transformers lists
    assert set(ours.tensors) == set(theirs)
    for name, tensor in ours.tensors.items():
        assert torch.equal(tensor, theirs[name]), name
    for key, value in ours.hf_config.items():
        if key in config and config[key] is not None and key != "architectures":
            expected = config[key]
            assert value == (pytest.approx(expected, rel=1e-6) if isinstance(value, float) else expected), key


@pytest.mark.slow
def test_smollm2_matches_transformers() -> None:
    from mechscope.models.loading.assets import smollm2_gguf_path

    path = smollm2_gguf_path()
    _assert_matches_transformers(path)
    ck = read_gguf(path)
    assert ck.quantization == "Q4_1" and ck.hf_config["model_type"] == "llama"


@pytest.mark.slow
def test_gemma3_matches_transformers(tmp_path_factory: pytest.TempPathFactory) -> None:
    from mechscope.models.loading.assets import gemma3_270m_gguf_path

    path = gemma3_270m_gguf_path(tmp_path_factory.mktemp("assets"))
    _assert_matches_transformers(path)
    ck = read_gguf(path)
    assert ck.quantization == "Q4_K_M"
    c = ck.hf_config
    assert c["layer_types"].count("full_attention") == 3 and c["layer_types"][5] == "full_attention"
    assert (c["sliding_window"], c["query_pre_attn_scalar"], c["rope_local_base_freq"]) == (512, 256, 10000.0)


@pytest.mark.parametrize(
    ("key", "value"),
    [("block_count", 2**32 - 1), ("embedding_length", 2**32 - 1), ("attention.head_count", 0)],
)
def test_hostile_declared_sizes_are_refused_before_allocating(tmp_path: Path, key: str, value: int) -> None:
    path = write_gguf(tmp_path / "hostile.gguf", "llama", hf_weights("llama"), meta={key: value})
    with pytest.raises(ModelLoadError, match=r"hostile\.gguf"):
        read_gguf(path)
