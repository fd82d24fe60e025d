"""Llama, SmolLM/SmolLM2, Mistral and Qwen2: RMSNorm, rotary, grouped-query attention, gated SiLU MLP."""

from __future__ import annotations

from mechscope.models.config import ModelConfig
from mechscope.models.families import Family, HFConfig, StateDict, rename, rope_params, scaling_only

_ACTS = {"silu": "silu", "gelu": "gelu", "gelu_pytorch_tanh": "gelu_tanh", "relu": "relu"}


def config(hf: HFConfig) -> ModelConfig:
    n_layers = hf["num_hidden_layers"]
    n_heads = hf["num_attention_heads"]
    d_head = hf.get("head_dim") or hf["hidden_size"] // n_heads
    window = hf.get("sliding_window") or 0
    if hf["model_type"] in ("qwen2", "qwen3"):
        # Qwen2/3 name its sliding layers explicitly; most checkpoints have use_sliding_window=False.
        types = tuple("sliding" if t == "sliding_attention" else "full" for t in hf.get("layer_types") or ())
        if not hf.get("use_sliding_window"):
            types, window = (), 0
    else:
        types = ("sliding",) * n_layers if window else ()
    rp = rope_params(hf)
    eos = hf.get("eos_token_id")
    return ModelConfig(
        architecture=hf["model_type"],
        d_model=hf["hidden_size"],
        n_layers=n_layers,
        n_heads=n_heads,
        n_kv_heads=hf.get("num_key_value_heads") or n_heads,
        d_head=d_head,
        d_mlp=hf["intermediate_size"],
        d_vocab=hf["vocab_size"],
        n_ctx=hf.get("max_position_embeddings", 2048),
        norm="rmsnorm",
        norm_eps=hf.get("rms_norm_eps", 1e-6),
        act=_ACTS[hf.get("hidden_act", "silu")],  # type: ignore[arg-type]
        gated_mlp=True,
        rope_theta=float(rp.get("rope_theta", 10000.0)),
        rope_scaling=scaling_only(rp),
        qkv_bias=hf["model_type"] == "qwen2" or bool(hf.get("attention_bias")),
        attn_out_bias=bool(hf.get("attention_bias")),
        mlp_bias=bool(hf.get("mlp_bias")),
        sliding_window=window if types else 0,
        layer_types=types,  # type: ignore[arg-type]
        tie_embeddings=bool(hf.get("tie_word_embeddings", False)),
        eos_token_ids=tuple(eos if isinstance(eos, list) else [eos] if eos is not None else []),
        name=hf.get("_name_or_path", "") or hf["model_type"],
    )


TABLE = {
    "model.embed_tokens.weight": "embed_tokens.weight",
    "model.norm.weight": "ln_final.weight",
    "lm_head.weight": "lm_head.weight",
    "model.layers.{i}.input_layernorm.weight": "blocks.{i}.ln1.weight",
    "model.layers.{i}.post_attention_layernorm.weight": "blocks.{i}.ln2.weight",
    **{
        f"model.layers.{{i}}.self_attn.{p}_proj.{w}": f"blocks.{{i}}.attn.{p}_proj.{w}"
        for p in "qkvo"
        for w in ("weight", "bias")
    },
    **{
        f"model.layers.{{i}}.mlp.{p}_proj.{w}": f"blocks.{{i}}.mlp.{p}_proj.{w}"
        for p in ("gate", "up", "down")
        for w in ("weight", "bias")
    },
}


def weights(sd: StateDict, cfg: ModelConfig) -> StateDict:
    return rename(sd, TABLE, cfg.n_layers, ignore=("rotary_emb.inv_freq",))


FAMILY = Family("llama", ("llama", "mistral", "qwen2"), config, weights)
