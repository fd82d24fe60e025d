"""The logit lens as a notebook view: layer x position, each cell the top token and its probability."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mechscope.notebook._html import card, cell_style, esc, sequential, show_token

if TYPE_CHECKING:
    from mechscope.engine.lens import LensResult


def lens_html(result: LensResult) -> str:
    """Rows are layers (the residual stream entering each block, then the final one), columns the
    prompt's positions; a cell shows the most likely next token, shaded by its probability, and
    lists the top k with their probabilities in its tooltip."""
    head = "".join(
        f'<th title="{esc(f"position {i}: {t!r}")}">{show_token(t)}</th>' for i, t in enumerate(result.tokens)
    )
    rows = []
    for layer, positions in zip(result.layers, result.top, strict=True):
        cells = []
        for i, top in enumerate(positions):
            if not top:
                cells.append('<td class="ms-cell"></td>')
                continue
            best = top[0]
            tip = esc(
                f"{layer}, position {i} ({result.tokens[i]!r}):\n"
                + "\n".join(f"{t.token!r}: {t.value:.3f}" for t in top)
            )
            style = cell_style(sequential(best.value), best.value, 1.0)
            cells.append(
                f'<td class="ms-cell ms-l" style="{style}" title="{tip}">'
                f'<span class="ms-tok">{show_token(best.token)}</span> {best.value:.2f}</td>'
            )
        rows.append(f'<tr><th class="ms-l">{esc(layer)}</th>{"".join(cells)}</tr>')
    body = (
        '<div class="ms-muted">each cell: the most likely next token read from that layer\'s residual '
        "stream and its probability (hover for the top k)</div>"
        f'<table><thead><tr><th class="ms-l">layer</th>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'
    )
    return card("logit lens", body, "lens")
