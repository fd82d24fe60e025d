"""What every notebook view shares: escaping, the colour scales (the web app's, ``web/src/lib/color.ts``),
number formatting, inline bars and the card every view is drawn in.

Views are self-contained HTML strings (inline CSS, no server, no external asset). The card has an
explicit light background and dark text, so it reads the same in light and dark Jupyter themes.
"""

from __future__ import annotations

import html
import itertools
import math
from collections.abc import Iterable

BLUE = (37, 99, 235)  # positive values, as in the web app
RED = (220, 38, 38)  # negative values
WHITE = "rgb(255, 255, 255)"

# One style block per view, scoped by the ``ms-nb`` class: several views share one notebook page.
CSS = """
.ms-nb{background:#fff;color:#1f2328;font:12px/1.4 system-ui,-apple-system,'Segoe UI',sans-serif;
 padding:8px 10px;border:1px solid #d0d7de;border-radius:6px;display:inline-block;max-width:100%;
 overflow-x:auto;box-sizing:border-box}
.ms-nb h4{margin:0 0 6px;font-size:13px;font-weight:600;color:#1f2328}
.ms-nb h5{margin:8px 0 4px;font-size:12px;font-weight:600;color:#1f2328}
.ms-nb .ms-muted{color:#57606a}
.ms-nb table{border-collapse:collapse;margin:2px 0 6px;background:#fff;color:#1f2328}
.ms-nb th,.ms-nb td{border:1px solid #eaeef2;padding:1px 5px;text-align:right;white-space:nowrap;
 background:#fff;color:#1f2328}
.ms-nb th{background:#f6f8fa;font-weight:600}
.ms-nb th.ms-l,.ms-nb td.ms-l{text-align:left}
.ms-nb td.ms-cell{min-width:14px;font-variant-numeric:tabular-nums}
.ms-nb .ms-tok{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;white-space:pre;
 border-radius:3px;padding:0 2px}
.ms-nb .ms-bar{display:inline-block;height:8px;vertical-align:middle;margin-left:4px;
 background:#eaeef2;width:48px;position:relative}
.ms-nb .ms-bar>span{position:absolute;top:0;height:8px}
.ms-nb .ms-tokens{line-height:1.9;max-width:900px;white-space:normal}
.ms-nb .ms-tokens .ms-tok{border:1px solid #d0d7de;margin:0 1px;cursor:default}
.ms-nb .ms-tokens .ms-tok.ms-q{outline:2px solid #1f2328}
.ms-nb .ms-here{outline:2px solid #1f2328}
.ms-nb .ms-grid{display:flex;flex-wrap:wrap;gap:10px;align-items:flex-start}
"""

_ids = itertools.count()


def esc(text: object) -> str:
    """``text`` safe inside an element and inside a quoted attribute."""
    return html.escape(str(text), quote=True)


def show_token(token: str) -> str:
    """A token with its whitespace visible (a leading space, a newline), escaped."""
    shown = token.replace("\n", "\u21b5").replace("\t", "\u21e5").replace(" ", "\u00b7")
    return esc(shown if shown else "\u2205")


def tok_span(token: str, style: str = "", extra: str = "", cls: str = "") -> str:
    """A token as an inline monospace chip; the raw token (escaped) in its tooltip. ``extra`` is
    more attributes, already escaped."""
    s = f' style="{style}"' if style else ""
    c = f"ms-tok {cls}" if cls else "ms-tok"
    return f'<span class="{c}"{s} title="{esc(repr(token))}"{extra}>{show_token(token)}</span>'


def fmt(value: float | None) -> str:
    """Three significant figures; an em dash for a missing or non-finite value."""
    if value is None or not math.isfinite(value):
        return "\u2014"
    return f"{value + 0.0:.3g}"  # + 0.0 turns -0.0 into 0.0


def max_abs(values: Iterable[float | None]) -> float:
    return max((abs(v) for v in values if v is not None and math.isfinite(v)), default=0.0)


def _mix(colour: tuple[int, int, int], t: float) -> str:
    r, g, b = (round(255 + (c - 255) * t * 0.85) for c in colour)
    return f"rgb({r}, {g}, {b})"


def diverging(value: float | None, scale: float) -> str:
    """Blue for positive, red for negative, white at 0, saturating at ``|value| = scale``."""
    if value is None or not math.isfinite(value) or not scale > 0 or value == 0:
        return WHITE
    return _mix(BLUE if value > 0 else RED, min(1.0, abs(value) / scale))


def sequential(value: float, scale: float = 1.0) -> str:
    """White at 0 to blue at ``scale`` (probabilities, attention weights)."""
    if not math.isfinite(value) or not scale > 0 or value <= 0:
        return WHITE
    return _mix(BLUE, min(1.0, value / scale))


def ink(value: float | None, scale: float) -> str:
    """Dark text on light cells, white on saturated ones."""
    if value is None or not math.isfinite(value) or not scale > 0:
        return "#1f2328"
    return "#fff" if abs(value) / scale > 0.6 else "#1f2328"


def cell_style(background: str, value: float | None, scale: float) -> str:
    return f"background:{background};color:{ink(value, scale)}"


def bar(value: float | None, scale: float) -> str:
    """A small bar centred at 0: rightwards and blue for positive, leftwards and red for negative."""
    if value is None or not math.isfinite(value) or not scale > 0:
        return '<span class="ms-bar"></span>'
    half = min(1.0, abs(value) / scale) * 50
    side = (
        f"left:50%;width:{half:.1f}%;background:rgb{BLUE}"
        if value >= 0
        else (f"right:50%;width:{half:.1f}%;background:rgb{RED}")
    )
    return f'<span class="ms-bar"><span style="{side}"></span></span>'


def new_id(prefix: str) -> str:
    """A DOM id unique in this Python process (each view's script finds only its own elements)."""
    return f"{prefix}-{next(_ids)}"


def card(title: str, body: str, view: str, subtitle: str = "") -> str:
    """The frame every view is drawn in: its style block, a heading, the body. ``title`` and
    ``subtitle`` are HTML the caller has escaped."""
    sub = f' <span class="ms-muted">{subtitle}</span>' if subtitle else ""
    return f'<div class="ms-nb ms-{view}"><style>{CSS}</style><h4>{title}{sub}</h4>{body}</div>'
