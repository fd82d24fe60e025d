"""Scores against hand-computed values; intervals; failures that leave a score absent, never 0."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from mechscope.explain.llm import Completion, Message
from mechscope.explain.records import NodeRecords, Record
from mechscope.explain.scoring import (
    activating_split,
    auc,
    balanced_accuracy,
    bootstrap_ci,
    correlation_score,
    detection_score,
    embedding_score,
    fuzzing_score,
    fuzzing_texts,
    pearson,
    score_all,
)
from mechscope.explain.simulator import Simulator
from tests.explain.fake_llm import RuleFake


def test_balanced_accuracy_and_auc_by_hand() -> None:
    labels = np.array([1, 1, 1, 0, 0])
    preds = np.array([1, 0, 1, 0, 1])
    assert balanced_accuracy(labels, preds) == pytest.approx((2 / 3 + 1 / 2) / 2)
    scores = np.array([0.9, 0.4, 0.5, 0.4, 0.1])
    labels = np.array([1, 1, 0, 0, 0])
    # 0.9 beats all three negatives; 0.4 loses to 0.5, ties 0.4, beats 0.1: (3 + 1.5) / 6
    assert auc(labels, scores) == pytest.approx(4.5 / 6)
    assert np.isnan(balanced_accuracy(np.array([1, 1]), np.array([1, 0])))


def test_pearson_matches_numpy() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=50), rng.normal(size=50)
    assert pearson(x, y) == pytest.approx(np.corrcoef(x, y)[0, 1])
    assert np.isnan(pearson(np.ones(5), x[:5]))
    assert np.isnan(pearson(x[:7], np.full(7, 0.095)))  # centring 0.095 leaves rounding noise


def _noisy(n: int, seed: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    true = [rng.normal(size=8) for _ in range(n)]
    return true, [t + rng.normal(size=8) for t in true]


def test_bootstrap_interval_contains_the_estimate_and_shrinks_with_n() -> None:
    widths = []
    for n in (10, 160):
        true, sim = _noisy(n, 1)
        s = correlation_score(true, sim, [], "all_at_once", seed=0)
        assert s.value is not None and s.lo is not None and s.hi is not None
        assert s.lo <= s.value <= s.hi and s.n == n
        widths.append(s.hi - s.lo)
    assert widths[1] < widths[0] / 2  # ~1/sqrt(n): 16x the records, about a quarter of the width
    lo, hi = bootstrap_ci(lambda i: float(np.mean(i)), [np.arange(1)])
    assert lo is None and hi is None  # one unit: no interval


def _rec(i: int, tokens: str, acts: list[float], source: str = "top") -> Record:
    return Record(i, list(tokens), acts, source)


def _digits_records() -> NodeRecords:
    train = [_rec(0, "ab1c", [0, 0, 3, 0])]
    pos = [_rec(10 + i, f"x{i}yz", [0, 3, 0, 0], "top") for i in range(6)]
    neg = [_rec(20 + i, "abcd", [0, 0, 0, 0], "random") for i in range(6)]
    middle = [_rec(30, "ab.d", [0, 0.4, 0, 0], "quantile")]  # scales to 1: simulation only
    return NodeRecords("mlp_neuron", 0, 0, train, pos + neg + middle, pairs=False)


def test_activating_split_and_fuzzing_marks() -> None:
    recs = _digits_records()
    pos, neg = activating_split(recs)
    assert [r.window_id for r in pos] == list(range(10, 16)) and [r.window_id for r in neg] == list(
        range(20, 26)
    )
    texts = fuzzing_texts(pos, neg, recs.scale, seed=0)
    assert texts[0] == "x<<0>>yz"
    assert all(t.count("<<") == 1 for t in texts[6:])  # as many random marks as the mean true ones


def test_right_explanation_beats_wrong_one_on_every_score() -> None:
    recs = _digits_records()
    pos, neg = activating_split(recs)
    fake = RuleFake()
    right = detection_score(fake, "digits", pos, neg)
    wrong = detection_score(fake, "vowels", pos, neg)
    assert (
        right.value == 1.0 and right.n == 12 and wrong.value == 0.0
    )  # vowels: only the quiet texts have them
    assert fuzzing_score(fake, "digits", pos, neg, recs.scale).value == 1.0
    sim = Simulator(RuleFake())
    scores = score_all("digits", recs, sim, fake, None)
    assert scores["simulation"].value is not None and scores["simulation"].value > 0.9
    assert scores["embedding"].value is None and "embedder" in (scores["embedding"].failure or "")


def test_the_judge_asks_for_an_array_of_n_verdicts() -> None:
    """Endpoints with structured output constrain the judge's answer to the schema sent; only
    those get room for the whitespace a JSON grammar allows."""
    from mechscope.explain import prompts
    from mechscope.explain.scoring import BATCH, judge

    fake = RuleFake()
    complete = fake.complete
    calls: list[tuple[object, object]] = []

    def spy(messages: list[Message], **kw: Any) -> Completion:
        calls.append((kw.get("json_schema"), kw.get("max_tokens")))
        return complete(messages, **kw)

    fake.complete = spy  # type: ignore[method-assign]
    texts = ["a 1 b", "c d e"] * BATCH  # two batches
    preds, ok, _ = judge(fake, prompts.DETECT_SYSTEM, "digits", texts, seed=0)
    assert ok.all() and preds.tolist() == [1, 0] * BATCH
    want = {
        "type": "array",
        "items": {"type": "integer", "enum": [0, 1]},
        "minItems": BATCH,
        "maxItems": BATCH,
    }
    assert calls == [(want, 4 * BATCH + 16)] * 2
    fake.structured_output = True  # type: ignore[attr-defined]
    judge(fake, prompts.DETECT_SYSTEM, "digits", texts[:BATCH], seed=0)
    assert calls[-1] == (want, 24 * BATCH + 32)


def test_failed_judgements_leave_the_score_absent_not_zero() -> None:
    recs = _digits_records()
    pos, neg = activating_split(recs)
    s = detection_score(RuleFake(judge_answer="I think [1, 0"), "digits", pos, neg)
    assert s.value is None and s.failed == 12 and "no activating" in (s.failure or "")
    sims = score_all("digits", recs, Simulator(RuleFake(mode="badjson")), None, None)
    assert sims["simulation"].value is None and "every simulation failed" in (
        sims["simulation"].failure or ""
    )
    assert sims["simulation"].failed == len(recs.test)
    nothing = score_all(None, recs, Simulator(RuleFake()), RuleFake(), None)
    assert all(s.value is None and s.failure == "no explanation" for s in nothing.values())


def test_a_backend_that_keeps_failing_is_given_up_on_after_a_few_calls() -> None:
    """The first GIVE_UP calls of a score all failing stops it there: the rest of the records
    count as failed (the score stays absent), without a call each."""
    from mechscope.explain.scoring import GIVE_UP, simulation_score

    recs = _digits_records()
    assert len(recs.test) > GIVE_UP + 1
    fake = RuleFake(mode="badjson")
    calls: list[int] = []
    simulator = Simulator(fake)
    original = simulator.simulate
    simulator.simulate = lambda e, t: (calls.append(1), original(e, t))[1]  # type: ignore[method-assign]
    s = simulation_score(simulator, "digits", recs.test)
    assert len(calls) == GIVE_UP and s.value is None and s.failed == len(recs.test)
    judge_fake = RuleFake(judge_answer="I think [1, 0")
    complete = judge_fake.complete
    judged: list[int] = []
    judge_fake.complete = lambda m, **kw: (judged.append(1), complete(m, **kw))[1]  # type: ignore[method-assign]
    from mechscope.explain import prompts
    from mechscope.explain.scoring import BATCH, judge

    texts = ["a 1 b", "c d e"] * (BATCH * (GIVE_UP + 3) // 2)  # GIVE_UP + 3 batches
    _, ok, _ = judge(judge_fake, prompts.DETECT_SYSTEM, "digits", texts, seed=0)
    assert len(judged) == GIVE_UP and not ok.any()


def test_embedding_score_is_the_auc_of_cosines() -> None:
    recs = _digits_records()
    pos, neg = activating_split(recs)

    def embed(texts: list[str]) -> np.ndarray:  # a fake embedder: [mentions or has a digit, 1]
        return np.array([[any(c.isdigit() for c in t) or "digit" in t, 1.0] for t in texts], float)

    s = embedding_score(embed, "digits", pos, neg)
    assert s.value == 1.0 and s.n == 12 and s.lo == 1.0
