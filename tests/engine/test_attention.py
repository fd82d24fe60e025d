"""Attention patterns and the head detectors on tiny models, with patterns set by hand where the
expected scores are known exactly."""

from __future__ import annotations

import pytest
import torch

from mechscope.engine.attention import (
    DETECTORS,
    HeadDetection,
    attention_patterns,
    detect_heads,
    ordinary_ids,
    repeated_tokens,
)
from mechscope.errors import InputError
from mechscope.models.decoder import HookedDecoder
from mechscope.models.hooks import HookPoint
from tests.conftest import tiny_model


def scores(d: HeadDetection) -> dict[str, torch.Tensor]:
    return {x.name: torch.tensor(x.scores) for x in d.detectors}


def test_patterns_are_the_models_own(model: HookedDecoder) -> None:
    prompt = "hello hello"
    _, cache = model.run_with_cache(prompt, names="blocks.1.attn.pattern")
    want = cache["blocks.1.attn.pattern"][0].float()
    got = attention_patterns(model, prompt, 1)
    assert got.kind == "attn_head" and got.layer == 1 and got.heads == [0, 1, 2, 3]
    assert len(got.tokens) == len(got.ids) == want.shape[-1] == 12
    for h, ph in enumerate(got.patterns):
        assert [len(row) for row in ph] == list(range(1, 13))  # causal: keys 0..query
        for q, row in enumerate(ph):
            assert row == pytest.approx(want[h, q, : q + 1].tolist(), abs=1e-6)
            assert sum(row) == pytest.approx(1.0, abs=1e-4)
    one = attention_patterns(model, prompt, 0, [2])
    assert one.heads == [2] and len(one.patterns) == 1


def test_bad_layer_and_head_are_named(llama: HookedDecoder) -> None:
    with pytest.raises(InputError, match=r"layer 2 does not exist: layers 0\.\.1"):
        attention_patterns(llama, "hi", 2)
    with pytest.raises(InputError, match=r"head 4 does not exist: heads 0\.\.3"):
        attention_patterns(llama, "hi", 0, [4])
    with pytest.raises(InputError, match="one length"):
        detect_heads(llama, [[1, 5, 6], [1, 5]])


def _set_pattern(target: dict[int, torch.Tensor]) -> list[tuple[str, object]]:
    """Forward hooks that replace layer l's pattern with ``target[l]`` (query, key), every head."""

    def hook(layer: int):  # type: ignore[no-untyped-def]
        def fn(p: torch.Tensor, _h: HookPoint) -> torch.Tensor:
            return target[layer].to(p.dtype).expand_as(p).clone()

        return fn

    return [(f"blocks.{layer}.attn.pattern", hook(layer)) for layer in target]


def one_hot_rows(keys: list[int]) -> torch.Tensor:
    """(query, key): query q puts all its attention on keys[q]."""
    t = len(keys)
    p = torch.zeros(t, t)
    p[torch.arange(t), torch.tensor(keys)] = 1.0
    return p


def test_exact_previous_token_and_sink_heads(llama: HookedDecoder) -> None:
    ids = [1, 40, 41, 42, 43, 44, 45]  # no repeated token: duplicate and induction are undefined
    t = len(ids)
    prev = one_hot_rows([0, *range(t - 1)])
    sink = one_hot_rows([0] * t)
    with llama.hooks(fwd=_set_pattern({0: prev, 1: sink})):  # type: ignore[arg-type]
        d = detect_heads(llama, [ids, ids])
    s = scores(d)
    assert d.rows == 2 and d.length == t and [x.name for x in d.detectors] == [x.name for x in DETECTORS]
    assert s["previous_token"][0].tolist() == pytest.approx([1.0] * 4)
    assert s["attention_sink"][1].tolist() == pytest.approx([1.0] * 4)
    # query 1's previous token is position 0: each counts it once out of t - 1 queries
    assert s["previous_token"][1].tolist() == pytest.approx([1 / (t - 1)] * 4)
    assert s["attention_sink"][0].tolist() == pytest.approx([1 / (t - 1)] * 4)
    assert s["induction"].abs().max() == 0 and s["duplicate_token"].abs().max() == 0
    counts = {x.name: x.queries for x in d.detectors}
    assert counts == {
        "previous_token": 2 * (t - 1),
        "attention_sink": 2 * (t - 1),
        "induction": 0,
        "duplicate_token": 0,
    }


def test_exact_induction_and_duplicate_heads(llama: HookedDecoder) -> None:
    r = 4
    half = [30, 31, 32, 33]
    ids = [1, *half, *half]  # queries r + 1.. have an earlier occurrence, r positions back
    t = len(ids)
    induction = one_hot_rows([i - (r - 1) if i > r else 0 for i in range(t)])
    duplicate = one_hot_rows([i - r if i > r else 0 for i in range(t)])
    with llama.hooks(fwd=_set_pattern({0: induction, 1: duplicate})):  # type: ignore[arg-type]
        s = scores(detect_heads(llama, [ids]))
    assert s["induction"][0].tolist() == pytest.approx([1.0] * 4)
    assert s["duplicate_token"][1].tolist() == pytest.approx([1.0] * 4)
    assert s["duplicate_token"][0].abs().max() == 0 and s["induction"][1].abs().max() == 0
    # the induction head's query r + 1 attends to position 2, its previous-token key: none else
    assert s["previous_token"][0].tolist() == pytest.approx([1 / (t - 1)] * 4)


def test_a_half_and_half_head_scores_a_half(llama: HookedDecoder) -> None:
    ids = [1, 40, 41, 42, 43]
    t = len(ids)
    mixed = 0.5 * one_hot_rows([0, *range(t - 1)]) + 0.5 * one_hot_rows([0] * t)
    with llama.hooks(fwd=_set_pattern({0: mixed, 1: mixed})):  # type: ignore[arg-type]
        s = scores(detect_heads(llama, [ids]))
    # query 1's previous token is the sink: 1.0 for both there, 0.5 elsewhere
    expect = (1.0 + 0.5 * (t - 2)) / (t - 1)
    assert s["previous_token"].flatten().tolist() == pytest.approx([expect] * 8)
    assert s["attention_sink"].flatten().tolist() == pytest.approx([expect] * 8)


def test_real_patterns_score_in_unit_interval_with_batching(
    model: HookedDecoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = repeated_tokens(model, 6, n=5, seed=3)
    whole = detect_heads(model, rows)
    for x in whole.detectors:
        s = torch.tensor(x.scores)
        assert s.shape == (2, 4) and bool(((s >= 0) & (s <= 1 + 1e-6)).all())
    import mechscope.engine.attention as attention

    monkeypatch.setattr(attention, "MAX_TOKENS_PER_FORWARD", 26)  # two rows of 13 per forward
    calls: list[int] = []
    chunked = detect_heads(model, rows, check=lambda: calls.append(1))
    assert len(calls) == 3
    for a, b in zip(whole.detectors, chunked.detectors, strict=True):
        assert a.queries == b.queries
        assert torch.tensor(a.scores) == pytest.approx(torch.tensor(b.scores), abs=1e-5)


def test_repeated_tokens_are_seeded_ordinary_and_repeated() -> None:
    model = tiny_model("llama")
    rows = repeated_tokens(model, 7, n=3, seed=11)
    assert rows[:2] == repeated_tokens(model, 7, n=2, seed=11)  # the first rows do not depend on n
    assert rows != repeated_tokens(model, 7, n=3, seed=12)
    pool = set(ordinary_ids(model).tolist())
    assert {0, 1, 2}.isdisjoint(pool)  # pad, BOS, EOS
    for row in rows:
        assert len(row) == 15 and row[0] == 1 and row[1:8] == row[8:]
        assert set(row[1:]) <= pool
    assert repeated_tokens(model, 2, n=1, seed=0, start=5)[0][0] == 5
    with pytest.raises(InputError, match="length >= 1"):
        repeated_tokens(model, 0)
