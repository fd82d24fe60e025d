"""Render each notebook view (mechscope.notebook) once on the embedded SmolLM2, as a standalone
HTML page per view, for the screenshots of docs/notebooks.md:

python scripts/notebook_views.py /tmp/nbviews    # then: (cd web && HTML_DIR=/tmp/nbviews node e2e/notebook-docs.mjs)
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from mechscope.engine.attribution import attribute
from mechscope.engine.directions import LogitDiff
from mechscope.engine.lens import logit_lens
from mechscope.engine.patching import patch
from mechscope.models.loading import load_model
from mechscope.notebook import attention_html

CLEAN = "When Mary and John went to the store, John gave a drink to"
CORRUPT = "When Mary and John went to the store, Mary gave a drink to"
DIRECTION = LogitDiff(targets=[" Mary"], distractors=[" John"])
LAYER, HEADS = 5, 4  # the attention view: the first heads of one layer


def page(body: str, dark: bool) -> str:
    """A page like a notebook's output area; the dark one checks the views' own background."""
    bg = "#1e1e1e" if dark else "#fff"
    return f"<!doctype html><meta charset=utf-8><body style='margin:12px;background:{bg}'>{body}"


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    model = load_model(None)
    ids, _ = model.to_tokens(CLEAN)
    with torch.no_grad():
        _, cache = model.run_with_cache(ids, names=f"blocks.{LAYER}.attn.pattern")
    tokens = [model.tokenizer.token_str(int(i)) for i in ids[0]] if model.tokenizer else []
    views = {
        "attribution": attribute(model, CLEAN, DIRECTION)._repr_html_(),
        "patching": patch(model, CLEAN, CORRUPT, DIRECTION, site="resid_pre")._repr_html_(),
        "lens": logit_lens(model, "The capital of France is Paris. The capital of Germany is")._repr_html_(),
        "attention": attention_html(
            tokens, cache[f"blocks.{LAYER}.attn.pattern"][0, :HEADS], [f"L{LAYER}.H{h}" for h in range(HEADS)]
        ),
    }
    for name, html in views.items():
        (out / f"{name}.html").write_text(page(html, dark=False))
        (out / f"{name}-dark.html").write_text(page(html, dark=True))
        print(out / f"{name}.html")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "notebook-views"))
