"""Nodes: the units the debugger scores — a neuron, a head, an embedding, a layer's output at a token.

A node is a pydantic model, so the same value travels through the library, the JSON API and a URL
(``str(node)`` / :meth:`Node.parse`).
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from mechscope.errors import InputError
from mechscope.models.config import ModelConfig

NodeKind = Literal["mlp_neuron", "attn_head", "embedding", "attn_out", "mlp_out"]
NODE_KINDS: tuple[NodeKind, ...] = ("mlp_neuron", "attn_head", "embedding", "attn_out", "mlp_out")
"""Every kind, in residual-stream order. SAE latents join when the autoencoders land."""

_LAYERED = {"mlp_neuron", "attn_head", "attn_out", "mlp_out"}
_INDEXED = {"mlp_neuron", "attn_head"}
_PATTERN = re.compile(
    r"^(?:L(?P<layer>\d+)\.)?(?P<kind>mlp_neuron|attn_head|embedding|attn_out|mlp_out)"
    r"(?:\.(?P<index>\d+))?@(?P<token>\d+)(?:<-(?P<key>\d+))?$"
)


class Node(BaseModel):
    """One node. ``token`` is its position (the query position for heads); ``key`` makes an
    attention head node a single (query, key) pair, otherwise the head is summed over keys."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: NodeKind
    layer: int | None = Field(default=None, ge=0, description="block index; None for embeddings")
    index: int | None = Field(default=None, ge=0, description="neuron or head index")
    token: int = Field(ge=0, description="position of the node (query position for heads)")
    key: int | None = Field(default=None, ge=0, description="attended-to position (attention pairs only)")

    def __str__(self) -> str:
        s = f"L{self.layer}." if self.layer is not None else ""
        s += self.kind + (f".{self.index}" if self.index is not None else "") + f"@{self.token}"
        return s + (f"<-{self.key}" if self.key is not None else "")

    @classmethod
    def parse(cls, text: str) -> Node:
        """``L3.mlp_neuron.123@5``, ``L5.attn_head.2@10<-3``, ``L5.attn_head.2@10``, ``embedding@4``."""
        m = _PATTERN.match(text.strip())
        if m is None:
            raise InputError(
                f"cannot parse node {text!r}; expected e.g. 'L3.mlp_neuron.123@5', 'L5.attn_head.2@10<-3', "
                "'L5.attn_head.2@10', 'L2.mlp_out@4' or 'embedding@4'"
            )
        g = {k: (int(v) if v is not None and k != "kind" else v) for k, v in m.groupdict().items()}
        return cls.model_validate(g)

    def check(self, cfg: ModelConfig, n_tokens: int) -> Node:
        """This node, or an :class:`InputError` naming the field that does not fit the model/prompt."""
        if (self.layer is None) == (self.kind in _LAYERED):
            raise InputError(f"node {self}: 'layer' is {'required' if self.layer is None else 'not allowed'}")
        if self.layer is not None and self.layer >= cfg.n_layers:
            raise InputError(f"node {self}: layer {self.layer} out of range 0..{cfg.n_layers - 1}")
        if (self.index is None) == (self.kind in _INDEXED):
            raise InputError(f"node {self}: 'index' is {'required' if self.index is None else 'not allowed'}")
        size = {"mlp_neuron": cfg.d_mlp, "attn_head": cfg.n_heads}.get(self.kind, 0)
        if self.index is not None and self.index >= size:
            raise InputError(f"node {self}: index {self.index} out of range 0..{size - 1}")
        if self.token >= n_tokens:
            raise InputError(f"node {self}: token {self.token} out of range 0..{n_tokens - 1}")
        if self.key is not None:
            if self.kind != "attn_head":
                raise InputError(f"node {self}: 'key' is only for attn_head nodes")
            if self.key > self.token:
                raise InputError(
                    f"node {self}: key {self.key} is after the query {self.token} (causal attention)"
                )
        return self
