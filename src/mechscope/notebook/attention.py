"""Attention patterns as a notebook view: a query x key heatmap per head, and a token view where
hovering a token highlights the tokens it attends to (in the spirit of CircuitsVis).

The token view works without JavaScript too: it is drawn for the last query token of the first
head, and the small inline script only repaints it on hover or when another head is chosen.
"""

from __future__ import annotations

import json

import numpy as np
import torch

from mechscope.errors import InputError
from mechscope.notebook._html import BLUE, card, cell_style, esc, new_id, sequential, show_token, tok_span

# Repaints the token view; the same colour rule as ``_html.sequential`` (white to blue).
_SCRIPT = """(function(){var r=document.getElementById(%(id)s);if(!r||r.dataset.live)return;r.dataset.live=1;
var d=JSON.parse(r.querySelector('script[type="application/json"]').textContent);
var s=r.querySelector('select'),t=r.querySelectorAll('.ms-tokens .ms-tok'),q=t.length-1,c=%(blue)s;
s.hidden=false;r.querySelector('.ms-hint').hidden=false;
function bg(v){v=Math.min(1,Math.max(0,v||0));return v<=0?'rgb(255, 255, 255)':'rgb('+c.map(function(x){
return Math.round(255+(x-255)*v*0.85)}).join(', ')+')'}
function paint(){var row=d[+s.value][q];t.forEach(function(e,j){var v=row[j]||0;e.style.background=bg(v);
e.style.color=v>0.6?'#fff':'#1f2328';e.classList.toggle('ms-q',j===q)});
r.querySelector('.ms-now').textContent=s.options[s.selectedIndex].text+', query position '+q}
t.forEach(function(e,i){e.addEventListener('mouseenter',function(){q=i;paint()})});
s.addEventListener('change',paint);paint()})();"""


def attention_html(
    tokens: list[str], patterns: torch.Tensor | np.ndarray, head_labels: list[str] | None = None
) -> str:
    """``patterns`` is one (query x key) matrix or (heads x query x key), over ``tokens`` (both axes
    as long as ``tokens``); ``head_labels`` names the heads (default ``H0``, ``H1``, ...)."""
    grid = _as_array(patterns)
    if grid.ndim == 2:
        grid = grid[None]
    if grid.ndim != 3:
        raise InputError(f"patterns must be (query, key) or (heads, query, key), got {grid.ndim} dimensions")
    n = len(tokens)
    if grid.shape[1:] != (n, n):
        raise InputError(
            f"patterns' query and key dimensions {tuple(grid.shape[1:])} must both equal the number "
            f"of tokens ({n})"
        )
    labels = head_labels if head_labels is not None else [f"H{h}" for h in range(grid.shape[0])]
    if len(labels) != grid.shape[0]:
        raise InputError(f"{len(labels)} head labels given for {grid.shape[0]} heads")
    body = (
        _token_view(tokens, grid, labels)
        + '<div class="ms-grid">'
        + "".join(_head_table(tokens, grid[h], labels[h]) for h in range(grid.shape[0]))
        + "</div>"
    )
    return card("attention", body, "attention", esc(f"{len(labels)} head(s), {n} tokens"))


def _as_array(patterns: torch.Tensor | np.ndarray) -> np.ndarray:
    if isinstance(patterns, torch.Tensor):
        return patterns.detach().float().cpu().numpy()
    if isinstance(patterns, np.ndarray):
        return patterns.astype(np.float32)
    raise InputError(f"patterns must be a torch.Tensor or a numpy array, got {type(patterns).__name__}")


def _token_view(tokens: list[str], grid: np.ndarray, labels: list[str]) -> str:
    """Tokens coloured by the attention of one query (the last, until hovered) in one head."""
    view = new_id("ms-attn")
    q = len(tokens) - 1
    chips = "".join(
        tok_span(
            t,
            cell_style(sequential(float(grid[0, q, j])), float(grid[0, q, j]), 1.0),
            f' data-i="{j}"',
            "ms-q" if j == q else "",
        )
        for j, t in enumerate(tokens)
    )
    options = "".join(f'<option value="{h}">{esc(label)}</option>' for h, label in enumerate(labels))
    # Numbers only, but "<" is escaped anyway so nothing in the data can close the script element.
    data = json.dumps(np.round(grid.astype(np.float64), 3).tolist()).replace("<", "\\u003c")
    script = _SCRIPT % {"id": json.dumps(view), "blue": json.dumps(list(BLUE))}
    return (
        f'<div id="{esc(view)}"><h5>tokens <span class="ms-muted">attended to by '
        f'<span class="ms-now">{esc(labels[0])}, query position {q}</span> <span class="ms-hint" hidden>(hover a '
        f'token to make it the query)</span></span> <select hidden aria-label="head">{options}</select></h5>'
        f'<div class="ms-tokens">{chips}</div>'
        f'<script type="application/json">{data}</script><script>{script}</script></div>'
    )


def _head_table(tokens: list[str], pattern: np.ndarray, label: str) -> str:
    """One head's pattern: rows are query tokens, columns key tokens, the weight in each tooltip."""
    keys = "".join(
        f'<th title="{esc(f"key {j}: {t!r}")}" style="writing-mode:vertical-rl;text-align:left">'
        f"{show_token(t)}</th>"
        for j, t in enumerate(tokens)
    )
    rows = []
    for i, qt in enumerate(tokens):
        cells = "".join(
            f'<td class="ms-cell" style="{cell_style(sequential(float(v)), float(v), 1.0)}" '
            f'title="{esc(f"{label} · query {i} {qt!r} ← key {j} {tokens[j]!r}: {float(v):.3f}")}"></td>'
            for j, v in enumerate(pattern[i])
        )
        rows.append(f'<tr><th class="ms-l">{show_token(qt)}</th>{cells}</tr>')
    return (
        f'<div><h5>{esc(label)} <span class="ms-muted">query ↓ key →</span></h5>'
        f'<table><thead><tr><th class="ms-l"></th>{keys}</tr></thead><tbody>{"".join(rows)}</tbody></table></div>'
    )
