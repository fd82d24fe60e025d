"""Phi-3: Llama maths (partial rotary possible) with fused ``qkv_proj`` and ``gate_up_proj``
weights, split here into the decoder's separate projections."""

from __future__ import annotations

import dataclasses

from mechscope.models.config import ModelConfig
from mechscope.models.families import Family, HFConfig, StateDict, llama, rename, rope_params


def config(hf: HFConfig) -> ModelConfig:
    cfg = llama.config({**hf, "attention_bias": False})
    factor = float(rope_params(hf).get("partial_rotary_factor") or hf.get("partial_rotary_factor") or 1.0)
    return dataclasses.replace(cfg, architecture="phi3", rotary_dim=int(cfg.d_head * factor))


def weights(sd: StateDict, cfg: ModelConfig) -> StateDict:
    out: StateDict = {}
    q_rows, kv_rows = cfg.n_heads * cfg.d_head, cfg.n_kv_heads * cfg.d_head
    for name, t in sd.items():
        if name.endswith("self_attn.qkv_proj.weight"):
            # Rows are [q; k; v] (transformers' Phi3Attention slices them the same way).
            stem = name.removesuffix("qkv_proj.weight")
            q, k, v = t.split([q_rows, kv_rows, kv_rows])
            out |= {f"{stem}q_proj.weight": q, f"{stem}k_proj.weight": k, f"{stem}v_proj.weight": v}
        elif name.endswith("mlp.gate_up_proj.weight"):
            stem = name.removesuffix("gate_up_proj.weight")
            gate, up = t.chunk(2)  # the gate half first
            out |= {f"{stem}gate_proj.weight": gate, f"{stem}up_proj.weight": up}
        else:
            out[name] = t
    return rename(out, llama.TABLE, cfg.n_layers, ignore=("rotary_emb.inv_freq",))


FAMILY = Family("phi3", ("phi3",), config, weights)
