"""Gemma 3 (text): GeGLU MLP, q/k RMSNorm, sandwich norms, (1 + w) norm weights, scaled embeddings,
interleaved sliding-window and global layers with their own rotary bases."""

from __future__ import annotations

from mechscope.models.config import ModelConfig
from mechscope.models.families import Family, HFConfig, StateDict, rename, rope_params, scaling_only


def config(hf: HFConfig) -> ModelConfig:
    if "text_config" in hf:
        hf = {**hf["text_config"], "model_type": "gemma3_text"}
    n_layers = hf["num_hidden_layers"]
    types = hf.get("layer_types")
    if not types:
        pattern = hf.get("sliding_window_pattern") or hf.get("_sliding_window_pattern") or 6
        types = ["full_attention" if (i + 1) % pattern == 0 else "sliding_attention" for i in range(n_layers)]
    full = rope_params(hf, "full_attention")
    # Local layers have their own base: nested in rope_parameters (transformers 5) or the flat
    # rope_local_base_freq of older configs, never the global rope_theta.
    nested = hf.get("rope_parameters")
    local_theta = (
        nested["sliding_attention"].get("rope_theta")
        if isinstance(nested, dict) and isinstance(nested.get("sliding_attention"), dict)
        else None
    ) or hf.get("rope_local_base_freq", 10_000.0)
    act = hf.get("hidden_activation") or hf.get("hidden_act") or "gelu_pytorch_tanh"
    eos = hf.get("eos_token_id")
    d_model = hf["hidden_size"]
    return ModelConfig(
        architecture="gemma3",
        d_model=d_model,
        n_layers=n_layers,
        n_heads=hf["num_attention_heads"],
        n_kv_heads=hf.get("num_key_value_heads") or hf["num_attention_heads"],
        d_head=hf.get("head_dim", 256),
        d_mlp=hf["intermediate_size"],
        d_vocab=hf["vocab_size"],
        n_ctx=hf.get("max_position_embeddings", 32768),
        norm="rmsnorm",
        norm_eps=hf.get("rms_norm_eps", 1e-6),
        norm_weight_offset=1.0,
        act="gelu_tanh" if act in ("gelu_pytorch_tanh", "gelu_new") else "gelu",
        gated_mlp=True,
        rope_theta=float(full.get("rope_theta", 1_000_000.0)),
        rope_theta_local=float(local_theta),
        rope_scaling=scaling_only(full),
        qkv_bias=bool(hf.get("attention_bias")),
        attn_out_bias=bool(hf.get("attention_bias")),
        qk_norm=True,
        sandwich_norms=True,
        attn_scale=float(hf.get("query_pre_attn_scalar") or 256) ** -0.5,
        attn_softcap=float(hf.get("attn_logit_softcapping") or 0.0),
        final_softcap=float(hf.get("final_logit_softcapping") or 0.0),
        embed_scale=d_model**0.5,
        sliding_window=hf.get("sliding_window") or 4096,
        layer_types=tuple("sliding" if t == "sliding_attention" else "full" for t in types),
        tie_embeddings=bool(hf.get("tie_word_embeddings", True)),
        eos_token_ids=tuple(eos if isinstance(eos, list) else [eos] if eos is not None else []),
        name=hf.get("_name_or_path", "") or "gemma3",
    )


TABLE = {
    "model.embed_tokens.weight": "embed_tokens.weight",
    "model.norm.weight": "ln_final.weight",
    "lm_head.weight": "lm_head.weight",
    "model.layers.{i}.input_layernorm.weight": "blocks.{i}.ln1.weight",
    "model.layers.{i}.post_attention_layernorm.weight": "blocks.{i}.ln1_post.weight",
    "model.layers.{i}.pre_feedforward_layernorm.weight": "blocks.{i}.ln2.weight",
    "model.layers.{i}.post_feedforward_layernorm.weight": "blocks.{i}.ln2_post.weight",
    "model.layers.{i}.self_attn.q_norm.weight": "blocks.{i}.attn.q_norm.weight",
    "model.layers.{i}.self_attn.k_norm.weight": "blocks.{i}.attn.k_norm.weight",
    **{
        f"model.layers.{{i}}.self_attn.{p}_proj.{w}": f"blocks.{{i}}.attn.{p}_proj.{w}"
        for p in "qkvo"
        for w in ("weight", "bias")
    },
    **{
        f"model.layers.{{i}}.mlp.{p}_proj.weight": f"blocks.{{i}}.mlp.{p}_proj.weight"
        for p in ("gate", "up", "down")
    },
}


def weights(sd: StateDict, cfg: ModelConfig) -> StateDict:
    # Multimodal Gemma 3 checkpoints nest the text model under language_model.
    sd = {
        k.replace("model.language_model.", "model.").replace("language_model.model.", "model."): v
        for k, v in sd.items()
    }
    return rename(sd, TABLE, cfg.n_layers, ignore=("rotary_emb.inv_freq",))


FAMILY = Family("gemma3", ("gemma3_text", "gemma3"), config, weights)
