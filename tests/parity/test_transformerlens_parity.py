"""Hook-name parity with TransformerLens (an independent implementation of the same hooks).

A TransformerLens model is built from a ``HookedTransformerConfig`` with random weights (no
download), its weights are copied into a mechscope decoder, and every hook TransformerLens caches
(its optional points switched on, gradients included) must exist under the same name in
mechscope's cache, with the same shape and values.
"""

from __future__ import annotations

import importlib.util
import warnings
from typing import Any

import pytest
import torch

from mechscope.models.config import ModelConfig
from mechscope.models.decoder import HookedDecoder
from mechscope.models.running import next_token_loss
from tests.conftest import need

need(importlib.util.find_spec("transformer_lens") is not None, "transformer-lens is not installed")
try:
    from transformer_lens import HookedTransformer, HookedTransformerConfig
except ImportError:  # TransformerLens 4 removed HookedTransformer
    need(False, "this test needs TransformerLens 3.x (HookedTransformer)")

D, H, DH, MLP, V, CTX = 32, 4, 8, 48, 50, 32
TL_CONFIGS: dict[str, dict[str, Any]] = {
    "gpt2": dict(
        act_fn="gelu_new", normalization_type="LN", positional_embedding_type="standard", gated_mlp=False
    ),
    "llama": dict(
        act_fn="silu",
        normalization_type="RMS",
        final_rms=True,
        positional_embedding_type="rotary",
        rotary_dim=DH,
        rotary_base=10000,
        rotary_adjacent_pairs=False,
        gated_mlp=True,
        n_key_value_heads=2,
        eps=1e-6,
    ),
}
OURS: dict[str, dict[str, Any]] = {
    "gpt2": dict(
        norm="layernorm",
        act="gelu_tanh",
        gated_mlp=False,
        positional="learned",
        qkv_bias=True,
        attn_out_bias=True,
        mlp_bias=True,
    ),
    "llama": dict(n_kv_heads=2, norm_eps=1e-6, qkv_bias=True, attn_out_bias=True, mlp_bias=False),
}


def _pair(family: str, split: bool) -> tuple[Any, HookedDecoder]:
    torch.manual_seed(0)
    tl_cfg = HookedTransformerConfig(
        n_layers=2, d_model=D, n_heads=H, d_head=DH, d_mlp=MLP, d_vocab=V, n_ctx=CTX, **TL_CONFIGS[family]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # 3.x warns that 4.0 drops the class
        tl = HookedTransformer(tl_cfg).eval()
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in tl.named_parameters():
            # mechscope has no unembedding bias; TransformerLens' gated MLP adds b_in after the
            # product (act(gate) * up + b_in), unlike Hugging Face's Llama: the Llama case has no MLP biases.
            if name != "unembed.b_U" and not (tl_cfg.gated_mlp and ".mlp.b_" in name):
                p.add_(torch.randn(p.shape, generator=g) * 0.2)
    tl.set_use_attn_result(True)
    tl.set_use_hook_mlp_in(True)
    if split:
        tl.set_use_split_qkv_input(True)
    else:
        tl.set_use_attn_in(True)
    ours = HookedDecoder(
        ModelConfig(
            architecture=family,
            d_model=D,
            n_layers=2,
            n_heads=H,
            d_head=DH,
            d_mlp=MLP,
            d_vocab=V,
            n_ctx=CTX,
            **OURS[family],
        )
    )
    ours.load_state_dict(_convert(tl.state_dict(), ours.cfg))
    return tl, ours.requires_grad_(False).eval()


def _convert(sd: dict[str, torch.Tensor], cfg: ModelConfig) -> dict[str, torch.Tensor]:
    """TransformerLens' weight layout -> mechscope's parameter names."""
    out = {"embed_tokens.weight": sd["embed.W_E"], "lm_head.weight": sd["unembed.W_U"].T}
    if "pos_embed.W_pos" in sd:
        out["embed_positions.weight"] = sd["pos_embed.W_pos"]
    for ln in ("ln_final",):
        out[f"{ln}.weight"] = sd[f"{ln}.w"]
        if f"{ln}.b" in sd:
            out[f"{ln}.bias"] = sd[f"{ln}.b"]
    for i in range(cfg.n_layers):
        p, q = f"blocks.{i}.", f"blocks.{i}."
        for ln in ("ln1", "ln2"):
            out[f"{q}{ln}.weight"] = sd[f"{p}{ln}.w"]
            if f"{p}{ln}.b" in sd:
                out[f"{q}{ln}.bias"] = sd[f"{p}{ln}.b"]
        for m in "QKV":
            w = sd.get(f"{p}attn.W_{m}", sd.get(f"{p}attn._W_{m}"))  # grouped K/V: _W_K
            b = sd.get(f"{p}attn.b_{m}", sd.get(f"{p}attn._b_{m}"))
            assert w is not None and b is not None
            out[f"{q}attn.{m.lower()}_proj.weight"] = w.permute(0, 2, 1).reshape(-1, cfg.d_model)
            out[f"{q}attn.{m.lower()}_proj.bias"] = b.reshape(-1)
        out[f"{q}attn.o_proj.weight"] = sd[f"{p}attn.W_O"].reshape(-1, cfg.d_model).T
        out[f"{q}attn.o_proj.bias"] = sd[f"{p}attn.b_O"]
        out[f"{q}mlp.up_proj.weight"] = sd[f"{p}mlp.W_in"].T
        out[f"{q}mlp.down_proj.weight"] = sd[f"{p}mlp.W_out"].T
        if cfg.gated_mlp:
            out[f"{q}mlp.gate_proj.weight"] = sd[f"{p}mlp.W_gate"].T
        if cfg.mlp_bias:
            out[f"{q}mlp.up_proj.bias"] = sd[f"{p}mlp.b_in"]
            out[f"{q}mlp.down_proj.bias"] = sd[f"{p}mlp.b_out"]
    return out


# TransformerLens refuses use_attn_in with grouped-query attention, so Llama runs split inputs only.
@pytest.mark.parametrize(
    ("family", "split"),
    [("gpt2", False), ("gpt2", True), ("llama", True)],
    ids=["gpt2-attn_in", "gpt2-split_qkv_input", "llama-split_qkv_input"],
)
def test_every_transformerlens_hook_matches(family: str, split: bool) -> None:
    tl, ours = _pair(family, split)
    tokens = torch.randint(0, V, (2, 7), generator=torch.Generator().manual_seed(2))
    tl_loss, tl_cache = tl.run_with_cache(tokens, return_type="loss", incl_bwd=True)
    names = list(tl_cache.keys())
    forward = [n for n in names if not n.endswith("_grad")]
    logits, cache = ours.run_with_cache(tokens, names_filter=forward, incl_bwd=True)
    torch.testing.assert_close(logits, tl(tokens), atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(next_token_loss(logits, tokens, None), tl_loss, atol=1e-5, rtol=1e-5)
    missing = [n for n in names if n not in cache]
    assert not missing, f"TransformerLens hooks without a mechscope point: {missing}"
    grads = [n for n in names if n.endswith("_grad")]
    assert len(grads) == len(forward)  # TL caches a gradient for every forward point
    for name in names:
        ref, got = tl_cache[name], cache[name]
        assert got.shape == ref.shape, (name, tuple(got.shape), tuple(ref.shape))
        torch.testing.assert_close(got, ref, atol=1e-4, rtol=1e-4, msg=name)
