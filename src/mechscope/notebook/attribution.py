"""The attribution summary as a notebook view: the prompt, the objective's value, the next-token
candidates and each kind's top nodes with their metrics."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from mechscope.notebook._html import bar, card, esc, fmt, max_abs, tok_span

if TYPE_CHECKING:
    from mechscope.engine.attribution import AttributionSummary, NodeRow

# A row's fields that describe the node rather than measure it; every other field is a metric.
_DESCRIPTIVE = ("node", "label", "token", "key_token")


def attribution_html(
    summary: AttributionSummary, kind_labels: Mapping[str, str] | None = None, per_kind: int = 10
) -> str:
    """``summary`` (``Attribution.summary()``) as HTML: one table per node kind, its ``per_kind``
    rows of largest |total effect| first, each metric with a bar scaled to the kind's largest |value|.
    ``kind_labels`` maps kind names to the titles shown (the kinds' own labels)."""
    labels = kind_labels or {}
    tokens = "".join(
        tok_span(t, cls="ms-here" if i == summary.position else "") for i, t in enumerate(summary.tokens)
    )
    head = (
        f'<div><span class="ms-muted">objective</span> {esc(summary.direction)} = '
        f"<b>{fmt(summary.value)}</b> "
        f'<span class="ms-muted">at position {summary.position}'
        f"{' (direct effects sum to it)' if summary.linear else ''}</span></div>"
        f'<div class="ms-tokens">{tokens}</div>'
    )
    candidates = ""
    if summary.candidates:
        chips = " ".join(f"{tok_span(c.token)}&nbsp;{c.prob:.2f}" for c in summary.candidates)
        candidates = f'<div><span class="ms-muted">next-token candidates</span> {chips}</div>'
    by_kind: dict[str, list[NodeRow]] = {}
    for row in summary.nodes:  # already sorted by |total effect|
        by_kind.setdefault(row.node.kind, []).append(row)
    tables = "".join(
        _kind_table(labels.get(kind, kind), kind, rows[:per_kind]) for kind, rows in by_kind.items()
    )
    body = head + candidates + (tables or '<div class="ms-muted">no nodes</div>')
    return card("attribution", body, "attribution", f"{len(summary.nodes)} nodes")


def _metrics(rows: Sequence[NodeRow]) -> list[str]:
    return [f for f in type(rows[0]).model_fields if f not in _DESCRIPTIVE]


def _kind_table(title: str, kind: str, rows: list[NodeRow]) -> str:
    metrics = [m for m in _metrics(rows) if any(getattr(r, m) is not None for r in rows)]
    scales = {m: max_abs(getattr(r, m) for r in rows) for m in metrics}
    keyed = any(r.key_token is not None for r in rows)
    head = (
        '<th class="ms-l">node</th><th class="ms-l">token</th>'
        + ('<th class="ms-l">key token</th>' if keyed else "")
        + "".join(f"<th>{esc(m.replace('_', ' '))}</th>" for m in metrics)
    )
    body = []
    for r in rows:
        key = (
            f'<td class="ms-l">{tok_span(r.key_token) if r.key_token is not None else ""}</td>'
            if keyed
            else ""
        )
        cells = "".join(
            f'<td class="ms-cell" title="{esc(f"{r.label} {m}: {getattr(r, m)}")}">'
            f"{fmt(getattr(r, m))}{bar(getattr(r, m), scales[m])}</td>"
            for m in metrics
        )
        body.append(
            f'<tr><td class="ms-l ms-tok">{esc(r.label)}</td><td class="ms-l">{tok_span(r.token)}</td>'
            f"{key}{cells}</tr>"
        )
    return (
        f'<h5>{esc(title)} <span class="ms-muted">({esc(kind)}, top {len(rows)})</span></h5>'
        f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
    )
