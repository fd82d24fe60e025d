"""Simulators: expected values read from canned logprobs ("10" whole or as "1", "0"), generation
with top logprobs, and JSON answers whose failures are recorded, never turned into zeros."""

from __future__ import annotations

import math

import pytest

from mechscope.explain import prompts
from mechscope.explain.llm import Completion, TokenLogprobs
from mechscope.explain.records import Record
from mechscope.explain.scoring import simulation_score
from mechscope.explain.simulator import (
    Simulator,
    chunks,
    expected_value,
    simulate_all_at_once,
    value_probabilities,
)
from tests.explain.fake_llm import RuleFake, ScriptedLLM, tl

LN = math.log


def _canned(
    text: str, slots: dict[int, dict[str, float]], after: dict[int, dict[str, float]] | None = None
) -> list[TokenLogprobs]:
    """``text`` cut at newlines and tabs into tokens; the n-th token after a tab gets ``slots[n]``
    as its alternatives and the token after it ``after[n]``."""
    import re

    pieces = [p for p in re.split(r"(\n|\t)", text) if p]
    out, slot = [], 0
    for i, p in enumerate(pieces):
        if i and pieces[i - 1] == "\t":
            out.append(tl(p, slots[slot]))
            slot += 1
        elif after is not None and i >= 2 and pieces[i - 2] == "\t" and slot - 1 in after:
            out.append(tl(p, after[slot - 1]))
        else:
            out.append(tl(p))
    return out


def test_expected_value_with_ten_as_one_token() -> None:
    tokens = ["a", "b"]
    text = prompts.listing(tokens, [prompts.UNKNOWN] * 2)
    slots = {
        0: {"10": LN(0.5), "0": LN(0.25), "3": LN(0.25)},
        1: {"0": LN(0.6), "2": LN(0.2), " hello": LN(0.2)},
    }
    llm = ScriptedLLM([_canned(text, slots)])
    got = simulate_all_at_once(llm, "x", tokens)
    # slot 1: renormalised over the numbers only: (0 * 0.6 + 2 * 0.2) / 0.8
    assert got == pytest.approx([0.5 * 10 + 0.25 * 3, 0.4 / 0.8])
    assert llm.prefixes == [text]  # one pass: "10" is a token of its own, nothing to split


def test_expected_value_when_the_tokenizer_writes_ten_as_one_then_zero() -> None:
    tokens = ["a", "b"]
    text = prompts.listing(tokens, [prompts.UNKNOWN] * 2)
    first = _canned(text, {0: {"1": LN(0.5), "0": LN(0.5)}, 1: {"0": LN(0.99), "1": LN(0.01)}})
    # Second pass: slot 0 holds "1" (P("1") >= SPLIT_MIN), slot 1 holds "0"; after slot 0's "1":
    # P("0") = 0.6 (the number is 10), P("\n") = 0.4 (it is 1).
    text2 = prompts.listing(tokens, ["1", "0"])
    second = _canned(text2, {0: {"1": LN(0.5)}, 1: {"0": LN(0.99)}}, after={0: {"0": LN(0.6), "\n": LN(0.4)}})
    llm = ScriptedLLM([first, second])
    got = simulate_all_at_once(llm, "x", tokens)
    # P(1) = 0.5 * 0.4, P(10) = 0.5 * 0.6, P(0) = 0.5: E = 0.2 + 3.0; slot 1: "1" below SPLIT_MIN reads as 1
    assert got == pytest.approx([0.2 * 1 + 0.3 * 10, 0.01])
    assert llm.prefixes == [text, text2]


def test_value_probabilities_ignores_other_tokens_and_two_digit_continuations() -> None:
    p = value_probabilities({"1": LN(0.8), "x": LN(0.2)}, {"0": LN(0.5), "5": LN(0.25), "\n": LN(0.25)})
    # after "1": "0" -> 10 (0.5), "5" -> 15 (out of range, dropped), end -> 1 (0.25)
    assert p[10] == pytest.approx(0.4) and p[1] == pytest.approx(0.2) and set(p) == {1, 10}
    assert expected_value(p) == pytest.approx((0.2 + 4.0) / 0.6)
    assert expected_value({}) is None


def test_rule_fake_all_at_once_split_and_whole_ten() -> None:
    tokens = ["a", "7", "b"]
    split = Simulator(RuleFake()).simulate("digits", tokens)
    # firing: P("1") 0.9 then "0" 0.95: 0.9 * (0.05 * 1 + 0.95 * 10); quiet: 0.05 * (0.9 * 1 + 0.1 * 10)
    assert split.method == "all_at_once" and split.expected == pytest.approx([0.095, 8.595, 0.095])
    whole = Simulator(RuleFake(ten_token=True)).simulate("digits", tokens)
    assert whole.expected == pytest.approx([0.05, 9.0, 0.05])


def test_generation_reads_the_generated_numbers() -> None:
    fake = RuleFake(mode="generate")
    sim = Simulator(fake).simulate("digits", ["a", "7", "b"])
    # "1" then "0" generated at the digit: the conditional is read at the generated "0"
    assert sim.method == "generation" and sim.expected == pytest.approx([0.05, 0.9 * (0.05 + 9.5), 0.05])
    assert fake.calls["prompt"] == 1  # tried once, then generation for good


def test_json_fallback_and_its_failures_are_recorded_not_zeros() -> None:
    ok = Simulator(RuleFake(mode="json")).simulate("digits", ["a", "7"])
    assert ok.method == "json" and ok.expected == [0.0, 10.0]
    for tokens in (["a"], ["a", "b"]):  # odd: broken JSON; even: one value too many
        bad = Simulator(RuleFake(mode="badjson")).simulate("digits", tokens)
        assert bad.expected is None and bad.failure is not None and bad.method == "json"
    cut = Simulator(ScriptedLLM([None], [Completion("<start>", "stop"), Completion("[1, 2", "length")]))
    res = cut.simulate("x", ["a", "b"])
    assert res.expected is None and "cut off" in (res.failure or "")


def test_long_records_are_split_under_the_prompt_bound() -> None:
    tokens = [f"tok{i}" for i in range(300)]
    pieces = chunks(tokens, "digits", limit=1500)
    assert len(pieces) > 1 and [t for p in pieces for t in p] == tokens
    for p in pieces:
        msgs = prompts.simulate_messages("digits", p)
        assert prompts.prompt_chars(msgs) + sum(len(t) + 10 for t in p) <= 1500
    sim = Simulator(RuleFake()).simulate("digits", ["7"] * 400)
    assert sim.expected is not None and len(sim.expected) == 400


def test_slots_are_found_when_the_backend_spells_a_character_as_pieces() -> None:
    """A byte-level tokenizer decodes each half of "é" to U+FFFD: the tokens no longer spell the
    answer, and the slots are found by structure (a tab, then the slot's token)."""
    tokens = ["caf", "é", "!"]
    text = prompts.listing(tokens, [prompts.UNKNOWN] * 3)
    lps = _canned(text, {0: {"0": LN(1.0)}, 1: {"3": LN(1.0)}, 2: {"5": LN(0.5), "7": LN(0.5)}})
    i = next(k for k, e in enumerate(lps) if e.token == "é")
    lps[i : i + 1] = [tl("\ufffd"), tl("\ufffd")]
    assert "".join(e.token for e in lps) != text
    assert simulate_all_at_once(ScriptedLLM([lps]), "x", tokens) == pytest.approx([0.0, 3.0, 6.0])


def test_the_mass_on_numbers_is_reported_with_the_values_and_the_score() -> None:
    tokens = ["a", "b"]
    text = prompts.listing(tokens, [prompts.UNKNOWN] * 2)
    # A weak model: a little mass on numbers at each slot, the rest on words.
    slots = {0: {"8": LN(0.02), " the": LN(0.9)}, 1: {"0": LN(0.01), "2": LN(0.01), "is": LN(0.9)}}
    masses: list[float] = []
    got = simulate_all_at_once(ScriptedLLM([_canned(text, slots)]), "x", tokens, masses)
    assert got == pytest.approx([8.0, 1.0])  # renormalised over the numbers, as TDB reads them
    assert masses == pytest.approx([0.02, 0.02])
    sim = Simulator(ScriptedLLM([_canned(text, slots)] * 3)).simulate("x", tokens)
    assert sim.expected == pytest.approx([8.0, 1.0]) and sim.mass == pytest.approx(0.02)
    records = [Record(window_id=i, source="top", tokens=tokens, acts=[1.0, 0.0]) for i in range(3)]
    score = simulation_score(Simulator(ScriptedLLM([_canned(text, slots)] * 3)), "x", records)
    assert score.mass == pytest.approx(0.02) and score.as_dict()["mass"] == pytest.approx(0.02)
