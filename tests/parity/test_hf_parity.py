"""Numerical parity with Hugging Face transformers (an independent implementation).

Tiny random models of every family are built with transformers' own classes, saved to a
folder, loaded by mechscope's loader, and compared: logits and every layer's residual stream.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

import mechscope as ms

transformers = pytest.importorskip("transformers")

COMMON = dict(vocab_size=97, hidden_size=64, intermediate_size=96, num_hidden_layers=3, num_attention_heads=4)

FAMILIES: dict[str, tuple[str, str, dict[str, Any]]] = {
    "gpt2": (
        "GPT2Config",
        "GPT2LMHeadModel",
        dict(vocab_size=97, n_embd=64, n_layer=3, n_head=4, n_positions=64),
    ),
    "llama": ("LlamaConfig", "LlamaForCausalLM", dict(COMMON, num_key_value_heads=2, rope_theta=500.0)),
    "llama_tied_bias": (
        "LlamaConfig",
        "LlamaForCausalLM",
        dict(COMMON, num_key_value_heads=4, tie_word_embeddings=True, attention_bias=True, mlp_bias=True),
    ),
    "llama3_scaling": (
        "LlamaConfig",
        "LlamaForCausalLM",
        dict(
            COMMON,
            num_key_value_heads=2,
            rope_scaling=dict(
                rope_type="llama3",
                factor=8.0,
                low_freq_factor=1.0,
                high_freq_factor=4.0,
                original_max_position_embeddings=8,
            ),
        ),
    ),
    "mistral": (
        "MistralConfig",
        "MistralForCausalLM",
        dict(COMMON, num_key_value_heads=2, sliding_window=5, head_dim=16),
    ),
    "qwen2": ("Qwen2Config", "Qwen2ForCausalLM", dict(COMMON, num_key_value_heads=2)),
    "neox": (
        "GPTNeoXConfig",
        "GPTNeoXForCausalLM",
        dict(COMMON, rotary_pct=0.25, use_parallel_residual=True),
    ),
    "neox_sequential": (
        "GPTNeoXConfig",
        "GPTNeoXForCausalLM",
        dict(COMMON, rotary_pct=0.5, use_parallel_residual=False),
    ),
    "qwen3": ("Qwen3Config", "Qwen3ForCausalLM", dict(COMMON, num_key_value_heads=2, head_dim=16)),
    "phi3": ("Phi3Config", "Phi3ForCausalLM", dict(COMMON, num_key_value_heads=2, pad_token_id=0)),
    "phi3_partial_rotary": (
        "Phi3Config",
        "Phi3ForCausalLM",
        dict(COMMON, num_key_value_heads=4, pad_token_id=0, partial_rotary_factor=0.5),
    ),
    "gemma2": (
        "Gemma2Config",
        "Gemma2ForCausalLM",
        dict(
            COMMON,
            num_key_value_heads=2,
            head_dim=16,
            sliding_window=4,
            query_pre_attn_scalar=20,
            attn_logit_softcapping=2.0,  # low, so that the cap bends the random scores
            final_logit_softcapping=3.0,
        ),
    ),
    "gemma3": (
        "Gemma3TextConfig",
        "Gemma3ForCausalLM",
        dict(
            COMMON,
            num_hidden_layers=4,
            num_key_value_heads=1,
            head_dim=16,
            sliding_window=4,
            layer_types=["sliding_attention", "full_attention", "sliding_attention", "full_attention"],
            query_pre_attn_scalar=20,
            rope_parameters=None,
        ),
    ),
    "gemma3_softcap": (
        "Gemma3TextConfig",
        "Gemma3ForCausalLM",
        dict(
            COMMON,
            num_hidden_layers=2,
            num_key_value_heads=2,
            head_dim=16,
            sliding_window=3,
            final_logit_softcapping=3.0,  # transformers' Gemma 3 ignores attn_logit_softcapping
        ),
    ),
}


def _randomize(model: torch.nn.Module, seed: int) -> None:
    """Perturb every parameter so that norms, biases and offsets are not at their neutral values."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.2)


@pytest.fixture(scope="module", params=sorted(FAMILIES))
def pair(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Any]:
    cfg_cls, model_cls, kwargs = FAMILIES[request.param]
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    torch.manual_seed(0)
    hf_cfg = getattr(transformers, cfg_cls)(**kwargs)
    hf_cfg._attn_implementation = "eager"
    hf = getattr(transformers, model_cls)(hf_cfg).eval()
    _randomize(hf, seed=1)
    folder: Path = tmp_path_factory.mktemp(request.param)
    hf.save_pretrained(folder, safe_serialization=True)
    ours = ms.load_model(folder)
    return hf, ours


def _tokens(n: int, vocab: int = 97, batch: int = 2) -> torch.Tensor:
    return torch.randint(0, vocab, (batch, n), generator=torch.Generator().manual_seed(n))


@torch.no_grad()
def test_logits_and_residuals_match(pair: tuple[Any, Any]) -> None:
    hf, ours = pair
    tokens = _tokens(12)
    out = hf(tokens, output_hidden_states=True)
    logits, cache = ours.run_with_cache(tokens, names="blocks.*.resid_post")
    torch.testing.assert_close(logits, out.logits, atol=1e-4, rtol=1e-4)
    # HF's hidden_states[i + 1] is block i's output, except the last, which is after the final norm.
    for i in range(ours.cfg.n_layers - 1):
        torch.testing.assert_close(
            cache[f"blocks.{i}.resid_post"], out.hidden_states[i + 1], atol=1e-4, rtol=1e-4
        )


@torch.no_grad()
def test_left_padded_batch_matches_unpadded_rows(pair: tuple[Any, Any]) -> None:
    hf, ours = pair
    long, short = _tokens(9, batch=1)[0].tolist(), _tokens(5, batch=1)[0].tolist()
    tokens, mask = ours.to_tokens([long, short])
    assert mask is not None
    batched = ours(tokens, attention_mask=mask)
    alone = ours(torch.tensor([short]))
    torch.testing.assert_close(batched[1, -5:], alone[0], atol=1e-4, rtol=1e-4)
    # Explicit positions: some transformers models (GPT-2) would count padding as positions.
    ref = hf(tokens, attention_mask=mask, position_ids=(mask.cumsum(-1) - 1).clamp(min=0)).logits
    torch.testing.assert_close(batched[1, -5:], ref[1, -5:], atol=1e-4, rtol=1e-4)


@torch.no_grad()
def test_kv_cached_greedy_generation_matches_transformers(pair: tuple[Any, Any]) -> None:
    hf, ours = pair
    prompt = _tokens(6, batch=1)
    ref = hf.generate(prompt, max_new_tokens=8, do_sample=False, eos_token_id=None, pad_token_id=0)[0, 6:]
    got = ours.generate(prompt, max_new_tokens=8, stop_tokens=[])
    assert got.tokens[0] == ref.tolist()
