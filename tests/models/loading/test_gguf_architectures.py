"""Every GGUF architecture mechscope reads, end to end: random Hugging Face weights are written as
llama.cpp's converter would (tensor names from gguf's own TensorNameMap, Llama's q/k permutation,
Gemma's ``w + 1`` norms, Llama 3's ``rope_freqs``), loaded with ``mechscope.load_model`` and
compared with transformers' model on the same weights; where transformers reads the GGUF itself,
its loader is compared too."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import gguf
import numpy as np
import pytest
import torch

import mechscope as ms
from tests.models.loading.test_gguf import VOCAB, add_tiny_tokenizer, llamacpp_permute

transformers = pytest.importorskip("transformers")

D, HEADS, KV_HEADS, HEAD_DIM, FF, LAYERS = 64, 4, 2, 16, 96, 2
COMMON = dict(
    vocab_size=VOCAB,
    hidden_size=D,
    intermediate_size=FF,
    num_hidden_layers=LAYERS,
    num_attention_heads=HEADS,
    num_key_value_heads=KV_HEADS,
    max_position_embeddings=256,
    rms_norm_eps=1e-6,
    tie_word_embeddings=False,
)
LLAMA3 = dict(
    rope_type="llama3",
    factor=8.0,
    low_freq_factor=1.0,
    high_freq_factor=4.0,
    original_max_position_embeddings=8,
)
# case -> (gguf arch, HF config class, HF model class, HF config kwargs, transformers reads the GGUF)
# GPT-2's defaults for n_inner and n_positions: transformers' own GGUF reader ignores
# gpt2.feed_forward_length and gpt2.context_length.
GPT2 = dict(vocab_size=VOCAB, n_embd=D, n_layer=LAYERS, n_head=HEADS, n_inner=4 * D, n_positions=1024)
CASES: dict[str, tuple[str, str, str, dict[str, Any], bool]] = {
    "gpt2": ("gpt2", "GPT2Config", "GPT2LMHeadModel", GPT2, True),
    "gptneox": (
        "gptneox",
        "GPTNeoXConfig",
        "GPTNeoXForCausalLM",
        dict(COMMON, rotary_pct=0.25, use_parallel_residual=True, layer_norm_eps=1e-5),
        False,
    ),
    "gptneox_sequential": (
        "gptneox",
        "GPTNeoXConfig",
        "GPTNeoXForCausalLM",
        dict(COMMON, rotary_pct=0.5, use_parallel_residual=False, layer_norm_eps=1e-5),
        False,
    ),
    "llama": ("llama", "LlamaConfig", "LlamaForCausalLM", COMMON, True),
    "llama3_rope_freqs": (
        "llama",
        "LlamaConfig",
        "LlamaForCausalLM",
        dict(COMMON, rope_scaling=LLAMA3),
        False,
    ),
    "mistral": ("llama", "MistralConfig", "MistralForCausalLM", dict(COMMON, sliding_window=None), True),
    "qwen2": ("qwen2", "Qwen2Config", "Qwen2ForCausalLM", COMMON, True),
    # transformers' own GGUF reader ignores qwen3.attention.key_length (keeps head_dim=128).
    "qwen3": ("qwen3", "Qwen3Config", "Qwen3ForCausalLM", dict(COMMON, head_dim=HEAD_DIM), False),
    # transformers 5.24's own GGUF reader was tried on these three files too: its phi3 and gemma2
    # logits differ from its own model on the same weights, and it fails to build gemma3
    # (pad_token_id out of range), so only our loader is compared there.
    "phi3": (
        "phi3",
        "Phi3Config",
        "Phi3ForCausalLM",
        dict(COMMON, num_key_value_heads=HEADS, partial_rotary_factor=0.5, pad_token_id=0),
        False,
    ),
    "gemma2": (
        "gemma2",
        "Gemma2Config",
        "Gemma2ForCausalLM",
        dict(
            COMMON,
            head_dim=HEAD_DIM,
            query_pre_attn_scalar=HEAD_DIM,  # llama.cpp scales q by 1/sqrt(head_dim)
            sliding_window=4,
            tie_word_embeddings=True,  # llama.cpp's Gemma has no output tensor
            attn_logit_softcapping=2.0,
            final_logit_softcapping=3.0,
        ),
        False,
    ),
    "gemma3": (
        "gemma3",
        "Gemma3TextConfig",
        "Gemma3ForCausalLM",
        dict(
            COMMON,
            head_dim=HEAD_DIM,
            query_pre_attn_scalar=HEAD_DIM,
            sliding_window=4,
            tie_word_embeddings=True,
            rope_parameters=None,
        ),
        False,
    ),
}
_ARCH = {
    "gpt2": gguf.MODEL_ARCH.GPT2,
    "gptneox": gguf.MODEL_ARCH.GPTNEOX,
    "llama": gguf.MODEL_ARCH.LLAMA,
    "qwen2": gguf.MODEL_ARCH.QWEN2,
    "qwen3": gguf.MODEL_ARCH.QWEN3,
    "phi3": gguf.MODEL_ARCH.PHI3,
    "gemma2": gguf.MODEL_ARCH.GEMMA2,
    "gemma3": gguf.MODEL_ARCH.GEMMA3,
}


def _hf_model(case: str) -> Any:
    _, cfg_cls, model_cls, kwargs, _ = CASES[case]
    kwargs = {k: v for k, v in kwargs.items() if v is not None or k == "sliding_window"}
    torch.manual_seed(0)
    cfg = getattr(transformers, cfg_cls)(**kwargs)
    cfg._attn_implementation = "eager"
    model = getattr(transformers, model_cls)(cfg).eval()
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.2)
    return model


def _llama3_rope_freqs(hf_cfg: Any) -> np.ndarray:
    """convert_hf_to_gguf.py's LlamaModel.generate_extra_tensors, written out."""
    rs = LLAMA3
    base = float(hf_cfg.rope_parameters["rope_theta"])
    freqs = 1.0 / (base ** (torch.arange(0, HEAD_DIM, 2, dtype=torch.float32) / HEAD_DIM))
    low_wavelen = rs["original_max_position_embeddings"] / rs["low_freq_factor"]
    high_wavelen = rs["original_max_position_embeddings"] / rs["high_freq_factor"]
    factors = []
    for freq in freqs.tolist():
        wavelen = 2 * math.pi / freq
        if wavelen < high_wavelen:
            factors.append(1.0)
        elif wavelen > low_wavelen:
            factors.append(rs["factor"])
        else:
            smooth = (rs["original_max_position_embeddings"] / wavelen - rs["low_freq_factor"]) / (
                rs["high_freq_factor"] - rs["low_freq_factor"]
            )
            factors.append(1 / ((1 - smooth) / rs["factor"] + smooth))
    return np.array(factors, dtype=np.float32)


def write_converted(path: Path, case: str, model: Any) -> Path:
    arch = CASES[case][0]
    cfg = model.config
    names = gguf.TensorNameMap(_ARCH[arch], LAYERS)
    w = gguf.GGUFWriter(str(path), arch)
    w.add_block_count(LAYERS)
    w.add_context_length(cfg.n_positions if arch == "gpt2" else 256)
    w.add_embedding_length(D)
    w.add_feed_forward_length(cfg.n_inner if arch == "gpt2" else FF)
    w.add_head_count(HEADS)
    rp: dict[str, Any] = {}
    if arch == "gpt2":
        w.add_layer_norm_eps(cfg.layer_norm_epsilon)
    elif arch == "gptneox":
        w.add_layer_norm_eps(cfg.layer_norm_eps)
        rp = cfg.rope_parameters
        w.add_rope_freq_base(float(rp["rope_theta"]))
        w.add_rope_dimension_count(int(HEAD_DIM * rp["partial_rotary_factor"]))
        w.add_parallel_residual(cfg.use_parallel_residual)
    else:
        w.add_head_count_kv(cfg.num_key_value_heads)
        w.add_layer_norm_rms_eps(1e-6)
        rp = cfg.rope_parameters if isinstance(cfg.rope_parameters, dict) else {}
        w.add_rope_freq_base(float(rp.get("rope_theta", 10000.0)))
    if arch in ("gemma2", "gemma3", "qwen3"):
        w.add_key_length(HEAD_DIM)
        w.add_value_length(HEAD_DIM)
    if arch in ("gemma2", "gemma3"):
        w.add_sliding_window(cfg.sliding_window)
    if arch == "gemma2":
        w.add_attn_logit_softcapping(cfg.attn_logit_softcapping)
        w.add_final_logit_softcapping(cfg.final_logit_softcapping)
    if arch == "phi3":
        w.add_rope_dimension_count(int(HEAD_DIM * rp.get("partial_rotary_factor", 1.0)))
    add_tiny_tokenizer(w)
    for name, tensor in model.state_dict().items():
        if name.endswith("rotary_emb.inv_freq") or (name == "lm_head.weight" and cfg.tie_word_embeddings):
            continue  # llama.cpp writes no output tensor for tied embeddings
        t = tensor.detach().float()
        if arch == "llama" and name.endswith("q_proj.weight"):
            t = llamacpp_permute(t, HEADS)
        elif arch == "llama" and name.endswith("k_proj.weight"):
            t = llamacpp_permute(t, cfg.num_key_value_heads)
        if arch in ("gemma2", "gemma3") and name.endswith("norm.weight"):
            t = t + 1
        if arch == "gpt2" and name.endswith(("c_attn.weight", "c_proj.weight", "c_fc.weight")):
            t = t.T  # GPT2Model.modify_tensors: Conv1D (in, out) -> (out, in)
        if arch == "gptneox" and ".query_key_value." in name:
            # GPTNeoXModel.modify_tensors: per-head [q, k, v] rows -> [q; k; v] blocks.
            t = t.reshape(HEADS, 3, HEAD_DIM, *t.shape[1:]).transpose(0, 1).reshape(t.shape)
        gguf_name = names.get_name(name, try_suffixes=(".weight", ".bias"))
        assert gguf_name is not None, name
        w.add_tensor(gguf_name, t.numpy())
    if case == "llama3_rope_freqs":
        w.add_tensor("rope_freqs.weight", _llama3_rope_freqs(cfg))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


@pytest.mark.parametrize("case", sorted(CASES))
def test_gguf_matches_transformers(case: str, tmp_path: Path) -> None:
    hf = _hf_model(case)
    path = write_converted(tmp_path / f"{case}.gguf", case, hf)
    ours = ms.load_model(path, use_cache=False)
    if case in ("qwen3", "phi3", "gemma2", "gpt2"):
        assert ours.cfg.architecture == case
    if case.startswith("gptneox"):
        assert ours.cfg.architecture == "neox"
    tokens = torch.randint(0, VOCAB, (2, 11), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        ref = hf(tokens).logits
        torch.testing.assert_close(ours(tokens), ref, atol=1e-4, rtol=1e-4)
        if CASES[case][4]:
            theirs = transformers.AutoModelForCausalLM.from_pretrained(
                tmp_path, gguf_file=path.name, dtype=torch.float32
            ).eval()
            torch.testing.assert_close(theirs(tokens).logits, ref, atol=1e-4, rtol=1e-4)
