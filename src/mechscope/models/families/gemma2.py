"""Gemma 2: Gemma 3's block (sandwich norms, (1 + w) norm weights, GeGLU, scaled embeddings,
alternating sliding and global layers) without q/k norms, with soft-capped attention scores and
logits, and one rotary base for every layer."""

from __future__ import annotations

import dataclasses

from mechscope.models.config import ModelConfig
from mechscope.models.families import Family, HFConfig, StateDict, gemma3


def config(hf: HFConfig) -> ModelConfig:
    # Every other layer is sliding when an older config does not list layer_types.
    cfg = gemma3.config({"sliding_window_pattern": 2, **hf})
    name = hf.get("_name_or_path", "") or "gemma2"
    return dataclasses.replace(cfg, architecture="gemma2", qk_norm=False, rope_theta_local=0.0, name=name)


def weights(sd: StateDict, cfg: ModelConfig) -> StateDict:
    return gemma3.weights(sd, cfg)


FAMILY = Family("gemma2", ("gemma2",), config, weights)
