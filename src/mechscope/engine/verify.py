"""Validation built in: do the estimated effects predict what ablating the nodes really does?

For the top-N nodes of an attribution (by |estimated total effect|), each node is zero-ablated on
its own (all of them in one batched forward) and its true effect on the direction of interest is
compared with the estimate.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from pydantic import BaseModel

from mechscope.engine.attribution import Attribution
from mechscope.engine.interventions import Intervention, intervention_hooks
from mechscope.engine.kinds import get_kind
from mechscope.engine.nodes import Node
from mechscope.engine.recorder import evaluate
from mechscope.errors import InputError


class VerifiedNode(BaseModel):
    node: Node
    label: str
    estimated: float  # activation x gradient
    actual: float  # value - value with the node zero-ablated


class Verification(BaseModel):
    value: float
    nodes: list[VerifiedNode]
    pearson: float | None  # None with fewer than 3 nodes or no spread
    spearman: float | None


def ablation_effects(attr: Attribution, nodes: Sequence[Node], together: bool = False) -> torch.Tensor:
    """value - value with each node zero-ablated (shape (len(nodes),)), or with all of them at once
    (shape (1,)) when ``together``; interventions of the attribution stay applied."""
    model, obj = attr.model, attr.objective
    r = obj.rows.shape[0]
    variants = 1 if together else len(nodes)
    hooks = intervention_hooks(model, attr.interventions, obj.prompt_len)
    for v, node in enumerate(nodes):
        node.check(model, obj.prompt_len)
        rows = range((0 if together else v) * r, (0 if together else v) * r + r)
        hooks += intervention_hooks(model, [Intervention.on_node(node)], obj.prompt_len, rows)
    return attr.value - evaluate(model, obj, variants, hooks)


def verify(attr: Attribution, top_n: int = 20, kinds: Sequence[str] | None = None) -> Verification:
    """Ablate the ``top_n`` nodes with the largest |estimated total effect| one at a time.

    By default the nodes are those of the kinds marked ``verify`` (neurons, heads and head pairs):
    zero-ablating a whole embedding or layer output moves the residual stream far off its
    distribution, where no linear estimate holds.
    """
    if top_n < 1:
        raise InputError(f"top_n must be >= 1, got {top_n}")
    if kinds is None:
        kinds = [k for k in attr.metrics if get_kind(k, attr.model).verify]
    rows = attr.top_nodes(k=top_n, kinds=[k for k in kinds if k in attr.metrics], by=("total_effect",))[
        :top_n
    ]
    nodes = [r.node for r in rows]
    actual = ablation_effects(attr, nodes).tolist()
    est = [r.total_effect for r in rows]
    return Verification(
        value=attr.value,
        nodes=[
            VerifiedNode(node=r.node, label=r.label, estimated=e, actual=a)
            for r, e, a in zip(rows, est, actual, strict=True)
        ],
        pearson=_pearson(est, actual),
        spearman=_pearson(_ranks(est), _ranks(actual)),
    )


def _ranks(x: Sequence[float]) -> list[float]:
    order = sorted(range(len(x)), key=lambda i: x[i])
    ranks = [0.0] * len(x)
    for r, i in enumerate(order):
        ranks[i] = float(r)
    return ranks


def _pearson(x: Sequence[float], y: Sequence[float]) -> float | None:
    if len(x) < 3:
        return None
    a, b = torch.tensor(x, dtype=torch.float64), torch.tensor(y, dtype=torch.float64)
    a, b = a - a.mean(), b - b.mean()
    denom = float(a.norm() * b.norm())
    return float((a * b).sum()) / denom if denom > 0 else None
