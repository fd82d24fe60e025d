"""The one configuration dataclass that every supported family translates into.

A family file (``families/*.py``) only maps a checkpoint's own config onto these fields;
the decoder reads nothing else, so there are no ``if arch == ...`` branches in the maths.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, Literal

NormKind = Literal["layernorm", "rmsnorm"]
ActKind = Literal["gelu", "gelu_tanh", "silu", "relu"]
LayerType = Literal["full", "sliding"]


@dataclass(frozen=True)
class ModelConfig:
    """Shape and maths of a decoder-only transformer."""

    architecture: str
    """Family name: gpt2, llama, mistral, qwen2, qwen3, phi3, neox, gemma2 or gemma3."""
    d_model: int
    """Width of the residual stream."""
    n_layers: int
    """Number of transformer blocks."""
    n_heads: int
    """Query heads per attention layer."""
    d_head: int
    """Width of one head's query, key and value."""
    d_mlp: int
    """Number of MLP neurons per layer."""
    d_vocab: int
    """Rows of the embedding and unembedding matrices."""
    n_ctx: int
    """Longest sequence the model was trained for (positions)."""
    n_kv_heads: int = 0
    """Key/value heads (grouped-query attention); 0 means equal to ``n_heads``."""
    norm: NormKind = "rmsnorm"
    """LayerNorm (mean-centred, with bias) or RMSNorm."""
    norm_eps: float = 1e-5
    """Epsilon added to the variance inside every norm."""
    norm_weight_offset: float = 0.0
    """Added to every norm weight before use: Gemma stores ``w`` and multiplies by ``1 + w``."""
    act: ActKind = "silu"
    """MLP nonlinearity (applied to the gate branch of a gated MLP)."""
    gated_mlp: bool = True
    """``down(act(gate(x)) * up(x))`` when true, ``down(act(up(x)))`` when false."""
    positional: Literal["learned", "rotary"] = "rotary"
    """Learned absolute position embeddings (GPT-2) or rotary embeddings on q and k."""
    rotary_dim: int = 0
    """Leading dimensions of each head that are rotated (partial rotary); 0 means ``d_head``."""
    rope_theta: float = 10000.0
    """Rotary base frequency of full-attention layers."""
    rope_theta_local: float = 0.0
    """Rotary base of sliding-window layers (Gemma 3); 0 means ``rope_theta``."""
    rope_scaling: dict[str, Any] | None = None
    """Hugging Face ``rope_scaling`` dict for full-attention layers (types: linear, llama3)."""
    qkv_bias: bool = False
    """Biases on the q, k and v projections (GPT-2, Qwen2, NeoX)."""
    attn_out_bias: bool = False
    """Bias on the attention output projection."""
    mlp_bias: bool = False
    """Biases on the MLP projections."""
    qk_norm: bool = False
    """RMSNorm on each head's query and key before rotary (Gemma 3)."""
    parallel_residual: bool = False
    """Attention and MLP both read the block input and add to it (NeoX)."""
    sandwich_norms: bool = False
    """Extra norms on the attention and MLP outputs before they are added (Gemma 2/3)."""
    attn_scale: float = 0.0
    """Multiplier of q·k; 0 means ``d_head ** -0.5``."""
    attn_softcap: float = 0.0
    """``c * tanh(scores / c)`` on attention scores when non-zero."""
    final_softcap: float = 0.0
    """``c * tanh(logits / c)`` on the logits when non-zero."""
    embed_scale: float = 1.0
    """Token embeddings are multiplied by this (Gemma: ``sqrt(d_model)``)."""
    sliding_window: int = 0
    """Window of sliding-window layers, in tokens (the query itself included)."""
    layer_types: tuple[LayerType, ...] = field(default_factory=tuple)
    """Per layer, full or sliding-window attention; empty means all full."""
    tie_embeddings: bool = False
    """The unembedding is the embedding matrix (no separate ``lm_head.weight``)."""
    eos_token_ids: tuple[int, ...] = ()
    """Token ids that end generation by default."""
    name: str = ""
    """Human-readable model name shown by ``mechscope info``."""
    note: str = ""
    """Free text about provenance, e.g. "dequantized 4-bit weights (GGUF Q4_1)"."""

    def __post_init__(self) -> None:
        if self.n_kv_heads == 0:
            object.__setattr__(self, "n_kv_heads", self.n_heads)
        if self.rotary_dim == 0 and self.positional == "rotary":
            object.__setattr__(self, "rotary_dim", self.d_head)
        if not self.layer_types:
            object.__setattr__(self, "layer_types", ("full",) * self.n_layers)
        object.__setattr__(self, "layer_types", tuple(self.layer_types))
        object.__setattr__(self, "eos_token_ids", tuple(self.eos_token_ids))
        if len(self.layer_types) != self.n_layers:
            raise ValueError(
                f"layer_types has {len(self.layer_types)} entries, expected n_layers={self.n_layers}"
            )
        if self.n_heads % self.n_kv_heads:
            raise ValueError(f"n_heads={self.n_heads} is not a multiple of n_kv_heads={self.n_kv_heads}")
        if "sliding" in self.layer_types and self.sliding_window <= 0:
            raise ValueError("sliding layers need sliding_window > 0")

    @property
    def scale(self) -> float:
        """The factor applied to q·k."""
        return self.attn_scale or self.d_head**-0.5

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ModelConfig:
        data = json.loads(text)
        data["layer_types"] = tuple(data.get("layer_types", ()))
        data["eos_token_ids"] = tuple(data.get("eos_token_ids", ()))
        return cls(**data)
