"""The patching grid as a notebook view: a heatmap table of a :class:`PatchingResult`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mechscope.notebook._html import card, cell_style, diverging, esc, fmt, max_abs, show_token

if TYPE_CHECKING:
    from mechscope.engine.patching import PatchingResult

TEXT_CELLS = 24  # print values inside cells up to this many columns; wider grids show colour only


def patching_html(result: PatchingResult) -> str:
    """Rows x columns, diverging colours centred at 0 (blue restores the clean behaviour, red
    pushes the other way); every cell's row, column and value are in its tooltip."""
    values = result.values
    scale = max(max_abs(v for row in values for v in row), 1e-9)
    token_columns = result.site != "heads"  # the columns are the clean prompt's tokens
    head = "".join(
        f'<th title="{esc(c)}">{show_token(c) if token_columns else esc(c)}</th>' for c in result.columns
    )
    text = len(result.columns) <= TEXT_CELLS
    rows = []
    for label, row in zip(result.rows, values, strict=True):
        cells = []
        for j, (column, v) in enumerate(zip(result.columns, row, strict=True)):
            where = f"{column!r} (position {j})" if token_columns else column
            tip = esc(f"{label} × {where}: {v + 0.0:.4g}")  # + 0.0: no "-0"
            shown = _two_places(v) if text else ""
            style = cell_style(diverging(v, scale), v, scale)
            cells.append(f'<td class="ms-cell" style="{style}" title="{tip}">{shown}</td>')
        rows.append(f'<tr><th class="ms-l">{esc(label)}</th>{"".join(cells)}</tr>')
    normalised = "restored fraction" if result.method == "activation" else "estimated restored fraction"
    body = (
        f'<div class="ms-muted">clean value {fmt(result.clean_value)} · corrupted value '
        f"{fmt(result.corrupted_value)} · cells: {normalised} (0 = no effect, 1 = the clean value); "
        f"colour scale ±{fmt(scale)}</div>"
        f'<table><thead><tr><th class="ms-l"></th>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'
    )
    return card(f"{esc(result.method)} patching", body, "patching", esc(f"site {result.site}"))


def _two_places(v: float) -> str:
    """A cell's text: two decimals (the grid is a fraction of the clean value), "0" for what rounds to 0."""
    text = f"{v:.2f}"
    return "0" if text in ("0.00", "-0.00") else text
