"""Nodes: the units the debugger scores — a neuron, a head, an embedding, a layer's output at a token.

A node is a pydantic model, so the same value travels through the library, the JSON API and a URL
(``str(node)`` / :meth:`Node.parse`). Its ``kind`` names a node kind of the registry
(:mod:`mechscope.engine.kinds`), which says whether it has a layer, an index and a key.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

from mechscope.engine.kinds import get_kind, kinds_of
from mechscope.errors import InputError

if TYPE_CHECKING:
    from mechscope.models.decoder import HookedDecoder

_PATTERN = re.compile(
    r"^(?:L(?P<layer>\d+)\.)?(?P<kind>[a-z][a-z0-9_]*)(?:\.(?P<index>\d+))?@(?P<token>\d+)(?:<-(?P<key>\d+))?$"
)


class Node(BaseModel):
    """One node. ``token`` is its position (the query position for heads); ``key`` makes an
    attention head node a single (query, key) pair, otherwise the head is summed over keys."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: str = Field(pattern=r"^[a-z][a-z0-9_]*$", description="a node kind of GET /api/model's kinds")
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
        names = [k.name for k in kinds_of()]
        if m is None:
            raise InputError(
                f"cannot parse node {text!r}; expected e.g. 'L3.mlp_neuron.123@5', 'L5.attn_head.2@10<-3', "
                f"'L5.attn_head.2@10', 'L2.mlp_out@4' or 'embedding@4' (kinds: {', '.join(names)})"
            )
        g = {k: (int(v) if v is not None and k != "kind" else v) for k, v in m.groupdict().items()}
        return cls.model_validate(g)

    def check(self, model: HookedDecoder, n_tokens: int) -> Node:
        """This node, or an :class:`InputError` naming the field that does not fit the model/prompt."""
        cfg = model.cfg
        kind = get_kind(self.kind, model)
        if (self.layer is None) == kind.layered:
            raise InputError(f"node {self}: 'layer' is {'required' if self.layer is None else 'not allowed'}")
        if self.layer is not None and self.layer >= cfg.n_layers:
            raise InputError(f"node {self}: layer {self.layer} out of range 0..{cfg.n_layers - 1}")
        if (self.index is None) == (kind.unit is not None):
            raise InputError(f"node {self}: 'index' is {'required' if self.index is None else 'not allowed'}")
        size = kind.size(cfg)
        if self.index is not None and self.index >= size:
            raise InputError(f"node {self}: index {self.index} out of range 0..{size - 1}")
        if self.token >= n_tokens:
            raise InputError(f"node {self}: token {self.token} out of range 0..{n_tokens - 1}")
        if self.key is not None:
            if not kind.pairs:
                pairs = ", ".join(k.name for k in kinds_of(model) if k.pairs)
                raise InputError(f"node {self}: 'key' is only for kinds with (query, key) pairs ({pairs})")
            if self.key > self.token:
                raise InputError(
                    f"node {self}: key {self.key} is after the query {self.token} (causal attention)"
                )
        return self
