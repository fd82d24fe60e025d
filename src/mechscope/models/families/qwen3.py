"""Qwen3: Llama with an RMSNorm on each head's query and key before rotary, and no q/k/v biases."""

from __future__ import annotations

import dataclasses

from mechscope.models.config import ModelConfig
from mechscope.models.families import Family, HFConfig, StateDict, llama, rename

TABLE = {
    **llama.TABLE,
    "model.layers.{i}.self_attn.q_norm.weight": "blocks.{i}.attn.q_norm.weight",
    "model.layers.{i}.self_attn.k_norm.weight": "blocks.{i}.attn.k_norm.weight",
}


def config(hf: HFConfig) -> ModelConfig:
    return dataclasses.replace(llama.config(hf), architecture="qwen3", qk_norm=True)


def weights(sd: StateDict, cfg: ModelConfig) -> StateDict:
    return rename(sd, TABLE, cfg.n_layers, ignore=("rotary_emb.inv_freq",))


FAMILY = Family("qwen3", ("qwen3",), config, weights)
