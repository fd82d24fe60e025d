"""The debugger's computation: why does the model produce this direction of interest?

:func:`attribute` runs one forward and one backward pass and scores every node (see
:mod:`mechscope.engine.metrics`); :class:`Attribution` holds the full metric tensors for notebook
use and turns them into the node table, token effects and logits table (pydantic models, the
server's JSON) with :meth:`Attribution.summary`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch
from pydantic import BaseModel

from mechscope.engine.directions import Direction, Objective, compile_direction
from mechscope.engine.interventions import Intervention, intervention_hooks
from mechscope.engine.metrics import KIND_METRICS, Context, Metrics, attn_pairs_and_heads, required_points
from mechscope.engine.nodes import NODE_KINDS, Node, NodeKind
from mechscope.engine.ranking import top_indices
from mechscope.engine.recorder import record
from mechscope.errors import InputError

if TYPE_CHECKING:
    from mechscope.models.decoder import HookedDecoder, ModelInput

METRIC_NAMES = ("activation", "write_norm", "direct_effect", "total_effect")
# Metrics whose most negative values mean something (a node pushing against the direction).
SIGNED = {"direct_effect", "total_effect"}


class NodeRow(BaseModel):
    node: Node
    label: str  # e.g. "L5.attn_head.2@10<-3"
    token: str  # the node's token (the query token for heads)
    key_token: str | None = None
    activation: float | None
    write_norm: float
    direct_effect: float
    total_effect: float


class TokenEffects(BaseModel):
    """Per prompt token, summed over layers: direct effects and estimated total effects."""

    embedding_direct: list[float]
    embedding_total: list[float]
    mlp_direct: list[float]
    mlp_total: list[float]
    attn_from_direct: list[float]  # by attended-from (query) token
    attn_from_total: list[float]
    attn_to_direct: list[float]  # by attended-to (key) token
    attn_to_total: list[float]


class TokenScore(BaseModel):
    id: int
    token: str
    logit: float
    prob: float
    rank: int


class AttributionSummary(BaseModel):
    """The JSON-ready result: what the Debugger page shows."""

    tokens: list[str]
    token_ids: list[int]
    direction: str
    value: float
    position: int
    linear: bool  # direct effects (+ the final norm's bias term) sum to the value
    candidates: list[TokenScore]  # next-token candidates at ``position``: top-k, then pinned tokens
    token_effects: TokenEffects | None
    nodes: list[NodeRow]


@dataclass
class Attribution:
    """Every node's metrics for one prompt and one direction of interest."""

    model: HookedDecoder
    token_ids: list[int]
    objective: Objective
    value: float
    metrics: dict[str, Metrics]  # kind -> metrics; "attn_head_pair" holds (query, key) pairs
    logits: torch.Tensor | None  # (d_vocab,) at the scored position, when the forward reached them
    interventions: list[Intervention] = field(default_factory=list)

    # ----- views -----------------------------------------------------------------------------
    def candidates(self, k: int = 10) -> list[TokenScore]:
        if self.logits is None:
            return []
        row = self.logits
        probs = row.softmax(-1)
        top = row.topk(min(k, len(row))).indices.tolist()
        ids = list(dict.fromkeys([*top, *self.objective.pinned]))
        return [
            TokenScore(
                id=i,
                token=self._tok(i),
                logit=float(row[i]),
                prob=float(probs[i]),
                rank=int((row > row[i]).sum()),  # 0 = the most likely token
            )
            for i in ids
        ]

    def token_effects(self) -> TokenEffects | None:
        m = self.metrics
        if not {"embedding", "mlp_neuron", "attn_head_pair"} <= m.keys():
            return None
        pair = m["attn_head_pair"]

        def lst(x: torch.Tensor) -> list[float]:
            return [float(v) for v in x]

        return TokenEffects(
            embedding_direct=lst(m["embedding"].direct_effect),
            embedding_total=lst(m["embedding"].total_effect),
            mlp_direct=lst(m["mlp_neuron"].direct_effect.sum((0, 2))),
            mlp_total=lst(m["mlp_neuron"].total_effect.sum((0, 2))),
            attn_from_direct=lst(pair.direct_effect.sum((0, 1, 3))),
            attn_from_total=lst(pair.total_effect.sum((0, 1, 3))),
            attn_to_direct=lst(pair.direct_effect.sum((0, 1, 2))),
            attn_to_total=lst(pair.total_effect.sum((0, 1, 2))),
        )

    def top_nodes(
        self, k: int = 10, kinds: Sequence[str] | None = None, by: Sequence[str] = METRIC_NAMES
    ) -> list[NodeRow]:
        """The union of each kind's top-k nodes by each metric in ``by`` (and bottom-k of signed
        metrics), sorted by |estimated total effect|."""
        if k < 1:
            raise InputError(f"k must be >= 1, got {k}")
        rows: dict[tuple[str, tuple[int, ...]], NodeRow] = {}
        for kind in kinds or self.metrics:
            metrics = self.metrics[kind]
            picks: list[torch.Tensor] = []
            for metric in by:
                t = getattr(metrics, metric)
                if t is None:
                    continue
                picks.append(top_indices(t, k))
                if metric in SIGNED:
                    picks.append(top_indices(t, k, largest=False))
            if not picks:
                continue
            shape = metrics.write_norm.shape
            # One unravel for all picks: per-index calls cost more than the top-k itself.
            coords = torch.stack(torch.unravel_index(torch.cat(picks).unique(), shape), -1).tolist()
            for c in coords:
                key = (kind, tuple(c))
                if key not in rows and self._is_real(kind, key[1]):
                    rows[key] = self._row(kind, key[1])
        return sorted(rows.values(), key=lambda r: -abs(r.total_effect))

    def node_metrics(self, node: Node) -> NodeRow:
        """The metrics of one node."""
        node.check(self.model.cfg, len(self.token_ids))
        kind, coords = _coords(node)
        if kind not in self.metrics:
            raise InputError(f"this attribution has no {kind} metrics; ask for that kind")
        return self._row(kind, coords)

    def summary(self, k: int = 10, candidates: int = 10) -> AttributionSummary:
        return AttributionSummary(
            tokens=[self._tok(i) for i in self.token_ids],
            token_ids=self.token_ids,
            direction=self.objective.description,
            value=self.value,
            position=self.objective.position,
            linear=self.objective.linear,
            candidates=self.candidates(candidates),
            token_effects=self.token_effects(),
            nodes=self.top_nodes(k),
        )

    # ----- helpers ---------------------------------------------------------------------------
    def _tok(self, i: int) -> str:
        tok = self.model.tokenizer
        return tok.token_str(i) if tok is not None else str(i)

    def _is_real(self, kind: str, coords: tuple[int, ...]) -> bool:
        return not (kind == "attn_head_pair" and coords[3] > coords[2])  # causally masked pairs

    def _row(self, kind: str, coords: tuple[int, ...]) -> NodeRow:
        m = self.metrics[kind]
        node = _node(kind, coords)
        return NodeRow(
            node=node,
            label=str(node),
            token=self._tok(self.token_ids[node.token]),
            key_token=self._tok(self.token_ids[node.key]) if node.key is not None else None,
            activation=float(m.activation[coords]) if m.activation is not None else None,
            write_norm=float(m.write_norm[coords]),
            direct_effect=float(m.direct_effect[coords]),
            total_effect=float(m.total_effect[coords]),
        )


def _node(kind: str, c: tuple[int, ...]) -> Node:
    if kind == "mlp_neuron":
        return Node(kind="mlp_neuron", layer=c[0], token=c[1], index=c[2])
    if kind == "attn_head_pair":
        return Node(kind="attn_head", layer=c[0], index=c[1], token=c[2], key=c[3])
    if kind == "attn_head":
        return Node(kind="attn_head", layer=c[0], index=c[1], token=c[2])
    if kind == "embedding":
        return Node(kind="embedding", token=c[0])
    return Node(kind=kind, layer=c[0], token=c[1])  # type: ignore[arg-type]


def _coords(node: Node) -> tuple[str, tuple[int, ...]]:
    if node.kind == "mlp_neuron":
        assert node.layer is not None and node.index is not None
        return "mlp_neuron", (node.layer, node.token, node.index)
    if node.kind == "attn_head":
        assert node.layer is not None and node.index is not None
        if node.key is not None:
            return "attn_head_pair", (node.layer, node.index, node.token, node.key)
        return "attn_head", (node.layer, node.index, node.token)
    if node.kind == "embedding":
        return "embedding", (node.token,)
    assert node.layer is not None
    return node.kind, (node.layer, node.token)


def prompt_ids(model: HookedDecoder, prompt: ModelInput) -> list[int]:
    """One prompt's token ids; a batch is refused (the debugger explains one prompt at a time)."""
    tokens, _ = model.to_tokens(prompt)
    if tokens.shape[0] != 1:
        raise InputError(f"the debugger takes one prompt, got a batch of {tokens.shape[0]}")
    return [int(t) for t in tokens[0]]


def attribute(
    model: HookedDecoder,
    prompt: ModelInput,
    direction: Direction,
    *,
    interventions: Sequence[Intervention] = (),
    kinds: Sequence[NodeKind] = NODE_KINDS,
    freeze_norm_scale: bool = True,
) -> Attribution:
    """Score every node of ``kinds`` for ``direction`` on ``prompt`` (one forward, one backward).

    ``interventions`` are applied during the pass: the result explains the edited model.
    ``freeze_norm_scale`` (default, as in TDB) stops the gradient through the final norm's scale
    (the traced node's norm when tracing), which makes direct effects linear.
    """
    bad = [k for k in kinds if k not in NODE_KINDS]
    if bad:
        raise InputError(f"unknown node kinds {bad}; allowed: {list(NODE_KINDS)}")
    ids = prompt_ids(model, prompt)
    objective = compile_direction(model, ids, direction, freeze_norm_scale)
    acts, grads = required_points(model, set(kinds))
    extra = intervention_hooks(model, list(interventions), len(ids))
    rec = record(model, objective, acts, grads, extra)
    ctx = Context(model, rec, objective.start, objective.start_rank, len(ids))
    metrics: dict[str, Metrics] = {}
    for kind in kinds:
        if kind == "attn_head":
            metrics["attn_head_pair"], metrics["attn_head"] = attn_pairs_and_heads(ctx)
        else:
            metrics[kind] = KIND_METRICS[kind](ctx)
    return Attribution(model, ids, objective, rec.value, metrics, rec.logits, list(interventions))
