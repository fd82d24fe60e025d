"""Notebook views on a tiny model's real results: labels and values present, text escaped, tags
balanced."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import numpy as np
import pytest
import torch

from mechscope.engine.attention import attention_patterns
from mechscope.engine.attribution import attribute
from mechscope.engine.directions import LogitDiff
from mechscope.engine.lens import logit_lens
from mechscope.engine.patching import patch
from mechscope.errors import InputError
from mechscope.notebook import attention_html, attribution_html, lens_html, patching_html
from tests.conftest import tiny_model

VOID = {"area", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}
DIRECTION = LogitDiff(targets=["i"], distractors=["j"])


class _Checker(HTMLParser):
    """Fails on a closing tag that does not close the innermost open element."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.scripts: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes <{self.stack[-1:]}>"
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        if self.stack and self.stack[-1] == "script":
            self.scripts.append(data)
        elif not (self.stack and self.stack[-1] == "style"):
            self.text.append(data)


def parse(html: str) -> _Checker:
    """The parsed document, after checking that every element is closed in order."""
    checker = _Checker()
    checker.feed(html)
    checker.close()
    assert checker.stack == [], f"unclosed: {checker.stack}"
    return checker


def titles(html: str) -> list[str]:
    return re.findall(r'title="([^"]*)"', html)


def test_attribution_view_shows_prompt_value_and_each_kinds_top_nodes() -> None:
    model = tiny_model("llama")
    attr = attribute(model, "ab<script>c", DIRECTION)
    summary = attr.summary(k=3)
    html = attr._repr_html_()
    doc = parse(html)
    text = "".join(doc.text)
    assert f"{summary.value:.3g}" in text and summary.direction in text
    # Tokens are escaped: the character tokenizer splits "<script>" into "<", "s", ...; the raw
    # tag never appears, its escaped form does.
    assert "<script>" not in html and "&lt;" in html
    kinds = {r.node.kind for r in summary.nodes}
    assert len(kinds) >= 2
    for kind in kinds:
        label = attr._kind(kind).label
        assert label in text  # each kind's table is titled with its own label
    top = summary.nodes[0]
    assert top.label in text and f"{top.total_effect:.3g}" in text
    # Per kind, at most ``per_kind`` rows (the kind's table row count).
    small = attribution_html(summary, per_kind=1)
    assert small.count("<tr>") == len(kinds) * 2  # one header row and one node row per kind


def test_patching_view_is_a_labelled_diverging_heatmap() -> None:
    model = tiny_model("llama")
    res = patch(model, "abcdefgh", "abcXefgh", DIRECTION, site="resid_pre")
    html = res._repr_html_()
    doc = parse(html)
    text = "".join(doc.text)
    assert all(r in text for r in res.rows) and "d" in text
    tips = titles(html)
    # The differing position at layer 0 restores the whole clean value: a saturated blue cell.
    assert any(t.startswith("L0 × &#x27;d&#x27; (position 4): 1") for t in tips), tips[:12]
    # Colours centred at 0: the largest |value| is the scale's blue extreme (the web app's rgb at
    # 85%), an unchanged position (before the edit) is white.
    cells = dict((tip, style) for style, tip in re.findall(r'style="([^"]*)" title="([^"]*)"', html))
    peak = max((abs(v), i, j) for i, row in enumerate(res.values) for j, v in enumerate(row))
    assert res.values[peak[1]][peak[2]] > 0
    assert any(s.startswith("background:rgb(70, 122, 238)") for s in cells.values())
    # (0 up to float rounding: the patched and corrupted runs may take different matmul kernels)
    bos = [tip for tip in cells if tip.startswith("L1 × &#x27;&lt;bos&gt;&#x27; (position 0): ")]
    assert len(bos) == 1 and abs(float(bos[0].rsplit(": ", 1)[1])) < 1e-5
    assert cells[bos[0]].startswith("background:rgb(255, 255, 255)")
    assert f"{res.clean_value:.3g}" in text and f"{res.corrupted_value:.3g}" in text
    # A value of 0 is white; a negative one would be red: check the scale's centre directly.
    heads = patch(model, "abcdefgh", "abcXefgh", DIRECTION, site="heads")
    assert all(f"H{h}" in patching_html(heads) for h in range(model.cfg.n_heads))
    negatives = [v for row in heads.values for v in row if v < 0]
    if negatives:
        assert "rgb(2" in patching_html(heads)  # a red-tinted cell (red channel stays high)


def test_lens_view_shows_top_token_and_probability_per_layer_and_position() -> None:
    model = tiny_model("llama")
    lens = logit_lens(model, "a<b>&", k=3)
    html = lens._repr_html_()
    doc = parse(html)
    text = "".join(doc.text)
    assert all(layer in text for layer in lens.layers)
    best = lens.top[-1][2][0]
    assert f"{best.value:.2f}" in text
    assert "<b>" not in html and "&lt;" in html
    tip = next(t for t in titles(html) if t.startswith("final, position 2"))
    assert all(f"{t.value:.3f}" in tip for t in lens.top[-1][2])


def test_attention_view_per_head_heatmaps_and_token_view() -> None:
    model = tiny_model("llama")
    tokens = ["<bos>", "<script>", "a", "b"]
    ids = torch.tensor([[model.tokenizer.bos_id, 5, 6, 7]])  # type: ignore[union-attr]
    _, cache = model.run_with_cache(ids, names="blocks.0.attn.pattern")
    pattern = cache["blocks.0.attn.pattern"][0]  # (head, query, key)
    html = attention_html(tokens, pattern, head_labels=[f"L0.H{h}" for h in range(pattern.shape[0])])
    doc = parse(html)
    text = "".join(doc.text)
    assert "<script>alert" not in html and "&lt;script&gt;" in html
    assert all(f"L0.H{h}" in text for h in range(pattern.shape[0]))
    v = float(pattern[1, 3, 2])
    assert f"L0.H1 · query 3 &#x27;b&#x27; ← key 2 &#x27;a&#x27;: {v:.3f}" in html
    # Without JavaScript the token view already shows the last query's attention in the first head.
    assert html.count("ms-q") >= 2  # the class rule and the marked query chip
    # The data for the script is the patterns themselves, and the script is the only other one.
    data = next(s for s in doc.scripts if s.startswith("[["))
    assert np.allclose(np.array(__import__("json").loads(data)), pattern.numpy(), atol=1e-3)
    one = attention_html(tokens, pattern[0].numpy())
    assert "H0" in one and "H1" not in "".join(parse(one).text)


def test_attention_patterns_render_as_the_attention_view() -> None:
    """The engine's result shows itself in Jupyter: each head's full (query x key) pattern, the
    masked keys zero, labelled by layer and head."""
    model = tiny_model("llama")
    res = attention_patterns(model, "abcd", 1)
    ids = torch.tensor([res.ids])
    _, cache = model.run_with_cache(ids, names="blocks.1.attn.pattern")
    assert torch.allclose(res.dense(), cache["blocks.1.attn.pattern"][0].float(), atol=1e-6)
    html = res._repr_html_()
    doc = parse(html)
    assert all(f"L1.H{h}" in "".join(doc.text) for h in res.heads)
    data = next(s for s in doc.scripts if s.startswith("[["))
    assert np.allclose(np.array(__import__("json").loads(data)), res.dense().numpy(), atol=1e-3)


@pytest.mark.parametrize(
    ("patterns", "labels", "match"),
    [
        (torch.zeros(2, 3, 3), None, "must both equal the number of tokens"),
        (torch.zeros(2, 2, 2, 2), None, "got 4 dimensions"),
        (torch.zeros(2, 2, 2), ["only one"], "1 head labels given for 2 heads"),
        ([[1.0]], None, "torch.Tensor or a numpy array"),
    ],
)
def test_attention_view_rejects_bad_shapes(patterns: object, labels: list[str] | None, match: str) -> None:
    with pytest.raises(InputError, match=match):
        attention_html(["a", "b"], patterns, labels)  # type: ignore[arg-type]


EVIL = '<script>alert("x")</script>'


def test_every_view_escapes_tokens_and_labels() -> None:
    """A token or label that is markup shows as text: no element of it reaches the page."""
    model = tiny_model("llama")
    summary = attribute(model, "abc", DIRECTION).summary(k=2)
    rows = [r.model_copy(update={"label": EVIL, "token": EVIL}) for r in summary.nodes]
    summary = summary.model_copy(update={"tokens": [EVIL] * len(summary.tokens), "nodes": rows})
    res = patch(model, "abcd", "abXd", DIRECTION, site="resid_pre")
    res = res.model_copy(update={"columns": [EVIL] * len(res.columns), "rows": [EVIL] * len(res.rows)})
    lens = logit_lens(model, "abc", k=2)
    lens = lens.model_copy(update={"tokens": [EVIL] * len(lens.tokens)})
    views = [
        attribution_html(summary, {"mlp_neuron": EVIL}),
        patching_html(res),
        lens_html(lens),
        attention_html([EVIL, "b"], torch.eye(2), [EVIL]),
    ]
    for html in views:
        doc = parse(html)
        assert 'alert("x")' not in "".join(doc.scripts)  # never inside a script element
        assert "<script>alert" not in html and "&lt;script&gt;alert(&quot;x&quot;)" in html
