"""GPT-NeoX / Pythia: LayerNorm, parallel residual, partial rotary, fused per-head QKV, GELU MLP."""

from __future__ import annotations

from mechscope.models.config import ModelConfig
from mechscope.models.families import Family, HFConfig, StateDict, rename, rope_params, scaling_only

_ACTS = {
    "gelu": "gelu",
    "gelu_new": "gelu_tanh",
    "gelu_pytorch_tanh": "gelu_tanh",
    "relu": "relu",
    "silu": "silu",
}


def config(hf: HFConfig) -> ModelConfig:
    d, heads = hf["hidden_size"], hf["num_attention_heads"]
    d_head = d // heads
    rp = rope_params(hf)
    pct = rp.get("partial_rotary_factor", hf.get("rotary_pct", 1.0))
    theta = rp.get("rope_theta") or hf.get("rotary_emb_base") or 10000.0
    eos = hf.get("eos_token_id")
    return ModelConfig(
        architecture="neox",
        d_model=d,
        n_layers=hf["num_hidden_layers"],
        n_heads=heads,
        d_head=d_head,
        d_mlp=hf["intermediate_size"],
        d_vocab=hf["vocab_size"],
        n_ctx=hf.get("max_position_embeddings", 2048),
        norm="layernorm",
        norm_eps=hf.get("layer_norm_eps", 1e-5),
        act=_ACTS[hf.get("hidden_act", "gelu")],  # type: ignore[arg-type]
        gated_mlp=False,
        rotary_dim=int(d_head * pct),
        rope_theta=float(theta),
        rope_scaling=scaling_only(rp),
        qkv_bias=bool(hf.get("attention_bias", True)),
        attn_out_bias=bool(hf.get("attention_bias", True)),
        mlp_bias=True,
        parallel_residual=bool(hf.get("use_parallel_residual", True)),
        tie_embeddings=bool(hf.get("tie_word_embeddings", False)),
        eos_token_ids=(eos,) if isinstance(eos, int) else (),
        name=hf.get("_name_or_path", "") or "neox",
    )


TABLE = {
    "gpt_neox.embed_in.weight": "embed_tokens.weight",
    "embed_out.weight": "lm_head.weight",
    **{f"gpt_neox.final_layer_norm.{w}": f"ln_final.{w}" for w in ("weight", "bias")},
    **{f"gpt_neox.layers.{{i}}.input_layernorm.{w}": f"blocks.{{i}}.ln1.{w}" for w in ("weight", "bias")},
    **{
        f"gpt_neox.layers.{{i}}.post_attention_layernorm.{w}": f"blocks.{{i}}.ln2.{w}"
        for w in ("weight", "bias")
    },
    **{
        f"gpt_neox.layers.{{i}}.attention.dense.{w}": f"blocks.{{i}}.attn.o_proj.{w}"
        for w in ("weight", "bias")
    },
    **{
        f"gpt_neox.layers.{{i}}.mlp.dense_h_to_4h.{w}": f"blocks.{{i}}.mlp.up_proj.{w}"
        for w in ("weight", "bias")
    },
    **{
        f"gpt_neox.layers.{{i}}.mlp.dense_4h_to_h.{w}": f"blocks.{{i}}.mlp.down_proj.{w}"
        for w in ("weight", "bias")
    },
}


def weights(sd: StateDict, cfg: ModelConfig) -> StateDict:
    out = rename(
        sd, TABLE, cfg.n_layers, ignore=("rotary_emb.inv_freq", "attention.bias", "attention.masked_bias")
    )
    h, dh, d = cfg.n_heads, cfg.d_head, cfg.d_model
    for i in range(cfg.n_layers):
        for kind in ("weight", "bias"):
            fused = out.pop(f"gpt_neox.layers.{i}.attention.query_key_value.{kind}", None)
            if fused is None:
                continue
            # Rows are grouped per head as [q, k, v] (transformers views (.., head, 3 * d_head)).
            per_head = fused.view(h, 3, dh, d) if kind == "weight" else fused.view(h, 3, dh)
            for j, proj in enumerate("qkv"):
                part = per_head[:, j]
                out[f"blocks.{i}.attn.{proj}_proj.{kind}"] = (
                    part.reshape(h * dh, d) if kind == "weight" else part.reshape(-1)
                )
    return out


FAMILY = Family("neox", ("gpt_neox",), config, weights)
