"""Two-run comparisons: ablated vs baseline, or two prompts aligned token by token.

A :class:`Run` is a prompt and the interventions applied to it; :func:`compare` attributes the same
direction of interest on two runs and lines their nodes up through a position alignment (the last
tokens of both prompts by default, or explicit (left, right) position pairs), so the Debugger can
show the panes side by side with a left / diff / right table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field

from mechscope.engine.attribution import AttributionSummary, NodeRow, attribute
from mechscope.engine.directions import Direction, LogitDiff, LogProb, NodeDirection, Prob, ResidualDirection
from mechscope.engine.interventions import Intervention
from mechscope.engine.nodes import Node
from mechscope.engine.prompt import prompt_ids
from mechscope.errors import InputError

if TYPE_CHECKING:
    from mechscope.engine.attribution import Attribution
    from mechscope.models.decoder import HookedDecoder


class Run(BaseModel):
    """One side of a comparison: a prompt (text or token ids) and the interventions applied to it."""

    model_config = ConfigDict(extra="forbid")

    prompt: str | list[int] = Field(min_length=1, description="text, or token ids taken as they are")
    interventions: list[Intervention] = Field(default_factory=list)

    @property
    def model_input(self) -> str | list[list[int]]:
        return self.prompt if isinstance(self.prompt, str) else [self.prompt]


Alignment = Literal["last"] | list[tuple[int, int]]
"""``"last"``: the prompts' last tokens line up, and every position before them pairwise as far as
the shorter prompt goes. Or explicit ``(left position, right position)`` pairs."""


class CandidatePair(BaseModel):
    """A next-token candidate scored on both sides."""

    id: int
    token: str
    left_logit: float | None
    right_logit: float | None
    left_prob: float | None
    right_prob: float | None


class NodePair(BaseModel):
    """A node on the left and its aligned counterpart on the right (None where it has none)."""

    left: NodeRow | None
    right: NodeRow | None
    total_effect_diff: float | None  # right - left


class ComparisonSummary(BaseModel):
    left: AttributionSummary
    right: AttributionSummary
    value_diff: float  # right - left
    alignment: list[tuple[int, int]]
    candidates: list[CandidatePair]
    nodes: list[NodePair]  # the union of both sides' top nodes, largest |difference| first


@dataclass
class Comparison:
    left: Attribution
    right: Attribution
    alignment: list[tuple[int, int]]

    @property
    def value_diff(self) -> float:
        return self.right.value - self.left.value

    def aligned(self, node: Node, to: Literal["left", "right"]) -> Node | None:
        """``node`` of the other side moved to side ``to`` through the alignment, or None."""
        mapping = {a: b for a, b in self.alignment} if to == "right" else {b: a for a, b in self.alignment}
        token = mapping.get(node.token)
        key = mapping.get(node.key) if node.key is not None else None
        if token is None or (node.key is not None and key is None):
            return None
        return node.model_copy(update={"token": token, "key": key})

    def summary(self, k: int = 10, candidates: int = 10) -> ComparisonSummary:
        left, right = self.left.summary(k, candidates), self.right.summary(k, candidates)
        pairs: dict[tuple[str, str], NodePair] = {}
        for side, rows in (("left", left.nodes), ("right", right.nodes)):
            for row in rows:
                other_side: Literal["left", "right"] = "right" if side == "left" else "left"
                other_node = self.aligned(row.node, other_side)
                other = getattr(self, other_side).node_metrics(other_node) if other_node is not None else None
                lrow, rrow = (row, other) if side == "left" else (other, row)
                key = (str(lrow.node) if lrow else "", str(rrow.node) if rrow else "")
                diff = rrow.total_effect - lrow.total_effect if lrow and rrow else None
                pairs[key] = NodePair(left=lrow, right=rrow, total_effect_diff=diff)
        nodes = sorted(
            pairs.values(),
            key=lambda p: (
                -abs(
                    p.total_effect_diff
                    if p.total_effect_diff is not None
                    else (p.left or p.right).total_effect  # type: ignore[union-attr]
                )
            ),
        )
        return ComparisonSummary(
            left=left,
            right=right,
            value_diff=self.value_diff,
            alignment=self.alignment,
            candidates=self._candidates(left, right),
            nodes=nodes,
        )

    def _candidates(self, left: AttributionSummary, right: AttributionSummary) -> list[CandidatePair]:
        ids = list(dict.fromkeys(c.id for c in [*left.candidates, *right.candidates]))
        names = {c.id: c.token for c in [*left.candidates, *right.candidates]}
        out = []
        lp = [_scores(self.left.logits, ids), _scores(self.right.logits, ids)]
        for j, i in enumerate(ids):
            (ll, lpr), (rl, rpr) = (s[j] if s else (None, None) for s in lp)
            out.append(
                CandidatePair(
                    id=i, token=names[i], left_logit=ll, right_logit=rl, left_prob=lpr, right_prob=rpr
                )
            )
        return out


def _scores(logits: torch.Tensor | None, ids: list[int]) -> list[tuple[float, float]] | None:
    if logits is None:
        return None
    probs = logits.softmax(-1)
    return [(float(logits[i]), float(probs[i])) for i in ids]


def align_positions(n_left: int, n_right: int, align: Alignment) -> list[tuple[int, int]]:
    """The (left, right) position pairs of ``align`` for prompts of these lengths, checked."""
    if align == "last":
        off = n_right - n_left
        return [(i, i + off) for i in range(n_left) if 0 <= i + off < n_right]
    pairs = [(int(a), int(b)) for a, b in align]
    if not pairs:
        raise InputError("align: give at least one (left, right) position pair, or 'last'")
    for a, b in pairs:
        if not (0 <= a < n_left and 0 <= b < n_right):
            raise InputError(
                f"align: pair ({a}, {b}) out of range (left has {n_left} tokens, right has {n_right})"
            )
    lefts, rights = [a for a, _ in pairs], [b for _, b in pairs]
    if len(set(lefts)) != len(lefts) or len(set(rights)) != len(rights):
        raise InputError("align: each left and each right position may appear in one pair only")
    return pairs


def compare(
    model: HookedDecoder,
    left: Run,
    right: Run,
    direction: Direction,
    *,
    align: Alignment = "last",
    kinds: Sequence[str] | None = None,
    freeze_norm_scale: bool = True,
) -> Comparison:
    """Attribute ``direction`` on both runs and align them.

    The direction's positions (and a traced node's tokens) refer to the left prompt; on the right
    they are moved through the alignment, so "the last token" stays the last token.
    """
    n_left, n_right = (len(prompt_ids(model, run.model_input)) for run in (left, right))
    pairs = align_positions(n_left, n_right, align)
    mapping = dict(pairs)
    right_direction = _move_direction(direction, mapping, n_left)
    sides = [
        attribute(
            model,
            run.model_input,
            d,
            interventions=run.interventions,
            kinds=kinds,
            freeze_norm_scale=freeze_norm_scale,
        )
        for run, d in ((left, direction), (right, right_direction))
    ]
    return Comparison(sides[0], sides[1], pairs)


def _move_direction(direction: Direction, mapping: dict[int, int], n_left: int) -> Direction:
    def move(pos: int, what: str) -> int:
        p = pos + n_left if pos < 0 else pos
        if p not in mapping:
            raise InputError(
                f"direction {what} {pos} of the left prompt has no aligned position on the right"
            )
        return mapping[p]

    if isinstance(direction, LogitDiff | LogProb | Prob | ResidualDirection):
        return direction.model_copy(update={"position": move(direction.position, "position")})
    assert isinstance(direction, NodeDirection)

    def move_node(node: Node) -> Node:
        key = move(node.key, "node key") if node.key is not None else None
        return node.model_copy(update={"token": move(node.token, "node token"), "key": key})

    return direction.model_copy(
        update={
            "node": move_node(direction.node),
            "downstream": move_node(direction.downstream) if direction.downstream else None,
        }
    )
