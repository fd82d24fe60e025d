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

from mechscope.engine.directions import Direction, compile_direction
from mechscope.engine.interventions import Intervention, intervention_hooks
from mechscope.engine.kinds import Kind, get_kind, kinds_of
from mechscope.engine.metrics import (
    METRIC_NAMES,
    SIGNED,
    Context,
    KindMetrics,
    MetricTable,
    Values,
    ravel,
    unravel,
)
from mechscope.engine.nodes import Node
from mechscope.engine.objective import Objective
from mechscope.engine.prompt import prompt_ids
from mechscope.engine.recorder import record
from mechscope.errors import InputError

if TYPE_CHECKING:
    from mechscope.models.decoder import HookedDecoder, ModelInput


class NodeRow(BaseModel):
    node: Node
    label: str  # e.g. "L5.attn_head.2@10<-3"
    token: str  # the node's token (the query token for heads)
    key_token: str | None = None
    activation: float | None
    write_norm: float
    direct_effect: float
    total_effect: float


class TokenEffectRow(BaseModel):
    """One source of effect per prompt token, summed over layers and units (a kind's row)."""

    name: str
    label: str
    help: str
    direct: list[float]  # direct effects
    total: list[float]  # estimated total effects


class TokenEffects(BaseModel):
    """The Debugger's token heatmap: rows from each scored kind (embedding, MLP, attention from
    the query's side and to the key's side, ...)."""

    rows: list[TokenEffectRow]


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
    metrics: dict[str, KindMetrics]  # kind name -> its metrics (with ``pairs`` for kinds with pairs)
    logits: torch.Tensor | None  # (d_vocab,) at the scored position, when the forward reached them
    interventions: list[Intervention] = field(default_factory=list)

    # ----- views -----------------------------------------------------------------------------
    def candidates(self, k: int = 10) -> list[TokenScore]:
        if self.logits is None:
            return []
        row = self.logits
        top = row.topk(min(k, len(row))).indices.tolist()
        ids = list(dict.fromkeys([*top, *self.objective.pinned]))
        at = torch.tensor(ids, dtype=torch.long)
        logits = row[at]
        # One pass over the vocabulary for every candidate at once (a read per token cost more).
        probs = (logits - row.logsumexp(-1)).exp()
        ranks = (row[None, :] > logits[:, None]).sum(-1)  # 0 = the most likely token
        return [
            TokenScore(id=i, token=self._tok(i), logit=lg, prob=pr, rank=rk)
            for i, lg, pr, rk in zip(ids, logits.tolist(), probs.tolist(), ranks.tolist(), strict=True)
        ]

    def token_effects(self) -> TokenEffects | None:
        rows = [
            TokenEffectRow(**vars(r))
            for name, m in self.metrics.items()
            for r in self._kind(name).token_rows(m)
        ]
        return TokenEffects(rows=rows) if rows else None

    def top_nodes(
        self, k: int = 10, kinds: Sequence[str] | None = None, by: Sequence[str] = METRIC_NAMES
    ) -> list[NodeRow]:
        """The union of each kind's top-k nodes by each metric in ``by`` (and bottom-k of signed
        metrics), sorted by |estimated total effect|."""
        if k < 1:
            raise InputError(f"k must be >= 1, got {k}")
        rows: dict[str, NodeRow] = {}
        for name in kinds or self.metrics:
            kind = self._kind(name)
            tables: list[tuple[MetricTable, tuple[str, ...]]] = [(self.metrics[name], kind.coords)]
            if self.metrics[name].pairs is not None:
                tables.append((self.metrics[name].pairs, kind.pair_coords))  # type: ignore[arg-type]
            for metrics, coords in tables:
                picks: list[torch.Tensor] = []
                for metric in by:
                    for largest in (True, False) if metric in SIGNED else (True,):
                        found = metrics.top(metric, k, largest)
                        if found is not None:
                            picks.append(found)
                if not picks:
                    continue
                flat = torch.cat(picks).unique()
                # One unravel and one gather per metric for all picks: per-index calls cost more
                # than the top-k itself.
                where = zip(*(c.tolist() for c in unravel(flat, tuple(metrics.shape))), strict=True)
                for c, values in zip(where, metrics.values(flat), strict=True):
                    node = _node(name, coords, c)
                    label = str(node) if node is not None else ""
                    if node is not None and label not in rows:
                        rows[label] = self._row(node, values, label)
        return sorted(rows.values(), key=lambda r: -abs(r.total_effect))

    def node_metrics(self, node: Node) -> NodeRow:
        """The metrics of one node."""
        node.check(self.model, len(self.token_ids))
        if node.kind not in self.metrics:
            raise InputError(f"this attribution has no {node.kind} metrics; ask for that kind")
        kind, m = self._kind(node.kind), self.metrics[node.kind]
        table: MetricTable = m
        coords = kind.coords
        if node.key is not None and m.pairs is not None:
            table, coords = m.pairs, kind.pair_coords
        flat = ravel([torch.tensor([getattr(node, f)]) for f in coords], table.shape)
        return self._row(node, table.values(flat)[0])

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

    def _repr_html_(self) -> str:
        """Jupyter's view of :meth:`summary`, with each kind's label (:mod:`mechscope.notebook`,
        imported only when shown)."""
        from mechscope.notebook.attribution import attribution_html

        return attribution_html(self.summary(), {name: self._kind(name).label for name in self.metrics})

    # ----- helpers ---------------------------------------------------------------------------
    def _tok(self, i: int) -> str:
        tok = self.model.tokenizer
        return tok.token_str(i) if tok is not None else str(i)

    def _kind(self, name: str) -> Kind:
        return get_kind(name, self.model)

    def _row(self, node: Node, values: Values, label: str | None = None) -> NodeRow:
        act, write, de, te = values
        return NodeRow(
            node=node,
            label=label or str(node),
            token=self._tok(self.token_ids[node.token]),
            key_token=self._tok(self.token_ids[node.key]) if node.key is not None else None,
            activation=act,
            write_norm=write,
            direct_effect=de,
            total_effect=te,
        )


def _node(kind: str, coords: tuple[str, ...], values: tuple[int, ...]) -> Node | None:
    """The node at ``values`` of a metric tensor with dimensions ``coords``; None for a causally
    masked pair (key after query), which has metrics of zero and no meaning."""
    fields = dict(zip(coords, values, strict=True))
    if fields.get("key", 0) > fields["token"]:
        return None
    return Node(kind=kind, **fields)


def attribute(
    model: HookedDecoder,
    prompt: ModelInput,
    direction: Direction,
    *,
    interventions: Sequence[Intervention] = (),
    kinds: Sequence[str] | None = None,
    freeze_norm_scale: bool = True,
) -> Attribution:
    """Score every node of ``kinds`` (default: every kind of the model marked ``default``) for
    ``direction`` on ``prompt`` (one forward, one backward).

    ``interventions`` are applied during the pass: the result explains the edited model.
    ``freeze_norm_scale`` (default, as in TDB) stops the gradient through the final norm's scale
    (the traced node's norm when tracing), which makes direct effects linear.
    """
    chosen = [get_kind(k, model) for k in kinds] if kinds is not None else default_kinds(model)
    ids = prompt_ids(model, prompt)
    objective = compile_direction(model, ids, direction, freeze_norm_scale)
    extra = intervention_hooks(model, list(interventions), len(ids))
    acts: list[str] = []
    grads: list[str] = []
    for kind in chosen:
        # An edited run may break what a kind rebuilds its metrics from (an ablated head's z is
        # no longer its pattern times its values): such kinds name what to record instead.
        a, g = kind.edited_points(model) if extra and kind.edited_points else kind.points(model)
        acts += a
        grads += g
    rec = record(model, objective, acts, grads, extra)
    ctx = Context(model, rec, objective.start, objective.start_rank, len(ids))
    metrics = {kind.name: kind.metrics(ctx) for kind in chosen}
    return Attribution(model, ids, objective, rec.value, metrics, rec.logits, list(interventions))


def default_kinds(model: HookedDecoder) -> list[Kind]:
    """The kinds :func:`attribute` scores when the caller names none."""
    return [k for k in kinds_of(model) if k.default]
