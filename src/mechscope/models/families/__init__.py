"""Families: each maps a Hugging Face ``config.json`` onto :class:`ModelConfig` and HF parameter
names onto the decoder's. The maths lives only in ``models/components.py``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from mechscope.errors import UnsupportedArchitectureError
from mechscope.models.config import ModelConfig

HFConfig = dict[str, Any]
StateDict = dict[str, torch.Tensor]


@dataclass(frozen=True)
class Family:
    """One architecture family: config translation plus weight conversion."""

    name: str
    model_types: tuple[str, ...]
    config: Callable[[HFConfig], ModelConfig]
    weights: Callable[[StateDict, ModelConfig], StateDict]


def _registry() -> dict[str, Family]:
    from mechscope.models.families import gemma2, gemma3, gpt2, llama, neox, phi3, qwen3

    out: dict[str, Family] = {}
    for fam in (
        gpt2.FAMILY,
        llama.FAMILY,
        neox.FAMILY,
        gemma3.FAMILY,
        gemma2.FAMILY,
        qwen3.FAMILY,
        phi3.FAMILY,
    ):
        for mt in fam.model_types:
            out[mt] = fam
    return out


def family_for(hf_config: HFConfig, source: str = "config.json") -> Family:
    """The family of a Hugging Face config, or an error naming the supported model types."""
    model_type = hf_config.get("model_type")
    if model_type == "gemma3" and "text_config" in hf_config:
        model_type = "gemma3_text"
    families = _registry()
    if model_type not in families:
        raise UnsupportedArchitectureError(
            f"{source}: model_type {model_type!r} is not supported; supported: {', '.join(sorted(families))}"
        )
    return families[model_type]


def rope_params(hf: HFConfig, layer_kind: str | None = None) -> dict[str, Any]:
    """Rotary parameters from either ``rope_parameters`` (transformers 5) or the older flat keys."""
    rp = hf.get("rope_parameters")
    if isinstance(rp, dict) and layer_kind is not None and layer_kind in rp:
        rp = rp[layer_kind]
    if isinstance(rp, dict) and rp:
        return dict(rp)
    out: dict[str, Any] = dict(hf.get("rope_scaling") or {})
    if "rope_theta" in hf:
        out["rope_theta"] = hf["rope_theta"]
    return out


def scaling_only(rp: dict[str, Any]) -> dict[str, Any] | None:
    """The ``rope_scaling`` part of rotary parameters, or None for plain rotary."""
    kind = rp.get("rope_type", rp.get("type", "default"))
    if kind in (None, "default"):
        return None
    return {k: v for k, v in rp.items() if k not in ("rope_theta", "partial_rotary_factor")}


def rename(sd: StateDict, table: dict[str, str], n_layers: int, ignore: tuple[str, ...] = ()) -> StateDict:
    """Rename HF tensors with a table of ``{hf_suffix: our_suffix}`` (``{i}`` = layer index)."""
    lookup: dict[str, str] = {}
    for hf_name, ours in table.items():
        if "{i}" in hf_name:
            for i in range(n_layers):
                lookup[hf_name.format(i=i)] = ours.format(i=i)
        else:
            lookup[hf_name] = ours
    out: StateDict = {}
    for name, t in sd.items():
        if name in lookup:
            out[lookup[name]] = t
        elif not name.endswith(ignore):
            out[name] = t  # left as is: the loader reports it as unexpected
    return out
