"""Regenerate the figures and numbers of docs/attribution.md on the embedded SmolLM2.

python scripts/docs_figures.py        # writes docs/images/*.svg and prints the numbers
"""

from __future__ import annotations

import html
from pathlib import Path

import mechscope as ms
from mechscope.engine.attribution import attribute
from mechscope.engine.directions import LogitDiff
from mechscope.engine.patching import PatchingResult, patch
from mechscope.engine.verify import ablation_effects, verify

CLEAN = "When Mary and John went to the store, John gave a drink to"
CORRUPT = "When John and Mary went to the store, Mary gave a drink to"
DIRECTION = LogitDiff(targets=[" Mary"], distractors=[" John"])
OUT = Path(__file__).resolve().parent.parent / "docs" / "images"


def _colour(v: float) -> str:
    """White at 0, blue towards 1 (clean restored), red towards -1."""
    v = max(-1.0, min(1.0, v))
    fade = int(255 * (1 - abs(v)))
    return f"rgb({fade},{fade},255)" if v >= 0 else f"rgb(255,{fade},{fade})"


def heatmap_svg(res: PatchingResult, title: str, cell: int = 26) -> str:
    left, top = 60, 120
    w = left + cell * len(res.columns) + 20
    h = top + cell * len(res.rows) + 20
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="11">',
        f'<rect width="{w}" height="{h}" fill="white"/>',
        f'<text x="{left}" y="18" font-size="13">{html.escape(title)}</text>',
    ]
    for j, tok in enumerate(res.columns):
        x = left + j * cell + cell / 2
        parts.append(
            f'<text transform="translate({x},{top - 6}) rotate(-60)">{html.escape(repr(tok)[1:-1])}</text>'
        )
    for i, (label, row) in enumerate(zip(res.rows, res.values, strict=True)):
        y = top + i * cell
        parts.append(f'<text x="{left - 6}" y="{y + cell * 0.65}" text-anchor="end">{label}</text>')
        for j, v in enumerate(row):
            parts.append(
                f'<rect x="{left + j * cell}" y="{y}" width="{cell}" height="{cell}" fill="{_colour(v)}">'
                f"<title>{label} {html.escape(res.columns[j])}: {v:.3f}</title></rect>"
            )
    parts.append("</svg>")
    return "\n".join(parts)


def main() -> None:
    model = ms.load_model()
    OUT.mkdir(parents=True, exist_ok=True)
    for method in ("activation", "attribution"):
        res = patch(model, CLEAN, CORRUPT, DIRECTION, site="resid_pre", method=method)  # type: ignore[arg-type]
        title = f"SmolLM2-135M, {method} patching of resid_pre (1 = clean restored)"
        (OUT / f"ioi_resid_{method}_patching.svg").write_text(heatmap_svg(res, title))
        print(method, "clean", round(res.clean_value, 3), "corrupted", round(res.corrupted_value, 3))
    attr = attribute(model, CLEAN, DIRECTION)
    heads = [
        r for r in attr.top_nodes(k=10, kinds=["attn_head"], by=("direct_effect",)) if r.direct_effect > 0
    ]
    heads.sort(key=lambda r: -r.direct_effect)
    print("logit diff", round(attr.value, 3))
    for n in (1, 3, 5, 10):
        drop = float(ablation_effects(attr, [r.node for r in heads[:n]], together=True)[0])
        print(f"top {n} heads by direct effect zero-ablated: {attr.value:.3f} -> {attr.value - drop:.3f}")
    print("heads:", ", ".join(f"{r.label} ({r.direct_effect:.2f})" for r in heads[:5]))
    v = verify(attr, top_n=20)
    print(f"verify top 20: pearson {v.pearson:.3f}, spearman {v.spearman:.3f}")


if __name__ == "__main__":
    main()
