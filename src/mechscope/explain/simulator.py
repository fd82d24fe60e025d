"""Simulators: from an explanation and a record's tokens to a predicted activation 0..10 per token.

Three ways, tried in this order (:class:`Simulator` remembers the first that the backend has):

1. ``all_at_once``: TDB's simulator. The answer is teacher-forced as ``token<TAB>unknown`` lines
   (:func:`mechscope.explain.prompts.listing`) and :meth:`LLM.prompt_logprobs` gives, at every
   "unknown" slot, the model's distribution over what it would have written there; the simulated
   value is the expected value over "0".."10", renormalised over those eleven. One forward per
   record: a local model always can, and reports those tokens' logprobs wherever they rank (so a
   weak model's values are read however little it puts on numbers: that mass is reported with
   the score); most endpoints cannot (returns None).
2. ``generation``: the model writes the ``token<TAB>n`` lines itself with ``top_logprobs``; the
   expected value is read the same way at each generated number.
3. ``json``: the model answers a JSON array of integers. A parse failure or a wrong length is a
   FAILURE of that record, recorded with its reason, never zeros (TDB's logprob-free simulator
   returned zeros).

"10" and tokenizers that split digits: where "10" is one token (GPT-2's vocabulary), P(10) is read
at the slot like any digit. SmolLM2 (and Llama 3, Gemma) write "10" as "1" then "0", so P("1") at
the slot is P(1) + P(10) + P(11..19). Then P(10) = P("1") * P("0" | "1") and P(1) = P("1") *
P(no further digit | "1"), with the conditional read one token later: in generation, at the token
after a generated "1"; all at once, from a second teacher-forced pass whose slots hold "1" where
P("1") >= :data:`SPLIT_MIN` and "0" elsewhere (a slot's mass on "1" below that is read as 1: at
most 0.2 off in expectation). The second pass sees "0"/"1" where the first saw "unknown", so its
conditionals are read in a slightly different context: the price of one extra forward per record
instead of one per slot.
"""

from __future__ import annotations

import json
import math
import re
import statistics
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from mechscope.explain import prompts
from mechscope.explain.llm import LLM, LLMError, TokenLogprobs
from mechscope.explain.records import SCALE_MAX

TOP_LOGPROBS = 15  # alternatives asked per position (TDB asked 15)
SPLIT_MIN = 0.02  # P("1") at a slot above which its "1"-or-"10" split is read from a second pass
METHODS = ("all_at_once", "generation", "json")
_VALUES = [str(v) for v in range(SCALE_MAX + 1)]
_DIGITS = set("0123456789")


class SimulationFailed(Exception):
    """One record's simulation could not be read; the message says why (stored as the failure)."""


@dataclass(frozen=True)
class Simulation:
    expected: list[float] | None  # per token, 0..10; None on failure
    method: str
    failure: str | None = None
    mass: float | None = None  # all at once: median P("0".."10") over the record's value slots


# ----- reading a distribution over "0".."10" ------------------------------------------------------------
def value_probabilities(top: dict[str, float], after_one: dict[str, float] | None) -> dict[int, float]:
    """Unnormalised P(value) for 0..10 from one position's top logprobs. ``after_one``: the top
    logprobs of the position after a "1" (needed when "10" is not one token; None: it is, or
    unknown, and then "1" counts as 1)."""
    p: dict[int, float] = {}
    for tok, lp in top.items():
        t = tok.strip()
        if t in _VALUES:
            p[int(t)] = p.get(int(t), 0.0) + math.exp(lp)
    if 10 not in p and 1 in p and after_one is not None:
        cont = {t.strip(): math.exp(lp) for t, lp in after_one.items()}
        zero = sum(v for t, v in cont.items() if t == "0")
        more = sum(v for t, v in cont.items() if t and t[0] in _DIGITS)  # "0" included: two digits
        end = max(0.0, 1.0 - more)  # a newline or any non-digit: the number was "1"
        p1 = p[1]
        p[1], p[10] = p1 * end, p1 * zero  # 11..19 are out of range: left out, as is renormalisation's way
    return p


def value_mass(top: dict[str, float]) -> float:
    """P(a number 0..10 is written here): the mass on the value tokens (a "1" that starts 10 included)."""
    return sum(math.exp(lp) for tok, lp in top.items() if tok.strip() in _VALUES)


def expected_value(p: dict[int, float]) -> float | None:
    total = sum(p.values())
    return None if total <= 0 else sum(v * q for v, q in p.items()) / total


# ----- 1. all at once ---------------------------------------------------------------------------------
def _slot_offsets(tokens: Sequence[str]) -> list[int]:
    """Character offset of each value slot in :func:`prompts.listing`'s text."""
    offsets, pos = [], len(prompts.START) + 1
    for t in tokens:
        pos += len(prompts.show(t)) + 1  # the token and its tab
        offsets.append(pos)
        pos += len(prompts.UNKNOWN) + 1  # the value and its newline
    return offsets


def slot_entries(lps: Sequence[TokenLogprobs], text: str, offsets: Sequence[int]) -> list[int]:
    """Index in ``lps`` of the token that starts at each offset of ``text`` (a value slot).

    When the backend's tokens spell ``text`` (the usual case), by character offsets. When they do
    not (a byte-level tokenizer's piece of a multi-byte character decodes to U+FFFD on its own),
    by structure instead: raw tabs occur only before value slots (:func:`prompts.show` escapes
    the tabs of tokens), so slot k is the k-th token that follows a token ending in a tab and
    starts with the slot's first character. A slot whose token starts earlier (merged with the
    tab) cannot be read either way."""
    if "".join(e.token for e in lps) == text:
        starts, pos = {}, 0
        for i, e in enumerate(lps):
            starts[pos] = i
            pos += len(e.token)
        missing = [o for o in offsets if o not in starts]
        if missing:
            raise SimulationFailed(f"{len(missing)} value slots do not start a token (merged with the tab)")
        return [starts[o] for o in offsets]
    found: list[int] = []
    for i in range(1, len(lps)):
        if len(found) < len(offsets) and lps[i - 1].token.endswith("\t"):
            if not lps[i].token.startswith(text[offsets[len(found)]]):
                raise SimulationFailed(
                    f"value slot {len(found)} does not start a token (merged with the tab)"
                )
            found.append(i)
    if len(found) != len(offsets):
        raise SimulationFailed(f"found {len(found)} of {len(offsets)} value slots in the backend's tokens")
    return found


def simulate_all_at_once(
    llm: LLM, explanation: str, tokens: Sequence[str], masses: list[float] | None = None
) -> list[float] | None:
    """Expected values per token, or None when the backend has no prompt logprobs. ``masses``
    receives each slot's :func:`value_mass`."""
    msgs = prompts.simulate_messages(explanation, None)
    text = prompts.listing(tokens, [prompts.UNKNOWN] * len(tokens))
    lps = llm.prompt_logprobs(msgs, text, top_logprobs=TOP_LOGPROBS, always=_VALUES)
    if lps is None:
        return None
    offsets = _slot_offsets(tokens)
    slots = [lps[i].top for i in slot_entries(lps, text, offsets)]
    if masses is not None:
        masses += [value_mass(top) for top in slots]
    has_ten = any("10" in {t.strip() for t in top} for top in slots)
    p1 = [
        math.exp(max((lp for t, lp in top.items() if t.strip() == "1"), default=-math.inf)) for top in slots
    ]
    after: list[dict[str, float] | None] = [None] * len(tokens)
    if not has_ten and max(p1, default=0.0) >= SPLIT_MIN:
        after = _after_one(llm, msgs, tokens, p1)
    out = []
    for i, top in enumerate(slots):
        ev = expected_value(value_probabilities(top, after[i]))
        if ev is None:
            raise SimulationFailed(f"no number 0..10 among the top {TOP_LOGPROBS} tokens at token {i}")
        out.append(ev)
    return out


def _after_one(
    llm: LLM, msgs: list[prompts.Message], tokens: Sequence[str], p1: list[float]
) -> list[dict[str, float] | None]:
    """Second pass (module docstring): the distribution after a "1" at each slot where it matters."""
    values = ["1" if p >= SPLIT_MIN else "0" for p in p1]
    text = prompts.listing(tokens, values)
    # "unknown" and a one-digit value differ in length: the offsets of this text's slots.
    offsets, pos = [], len(prompts.START) + 1
    for t, v in zip(tokens, values, strict=True):
        pos += len(prompts.show(t)) + 1
        offsets.append(pos)
        pos += len(v) + 1
    lps = llm.prompt_logprobs(msgs, text, top_logprobs=TOP_LOGPROBS, always=_VALUES)
    if lps is None:
        raise SimulationFailed("the backend stopped giving prompt logprobs")
    idx = slot_entries(lps, text, offsets)
    out: list[dict[str, float] | None] = []
    for i, v in zip(idx, values, strict=True):
        if v != "1":
            out.append(None)
        elif lps[i].token != "1" or i + 1 >= len(lps):
            raise SimulationFailed("a slot's '1' is not a token of its own: cannot read 1 vs 10")
        else:
            out.append(lps[i + 1].top)
    return out


# ----- 2. generation with top logprobs ----------------------------------------------------------------
def simulate_generation(llm: LLM, explanation: str, tokens: Sequence[str]) -> list[float] | None:
    """Expected values read at each generated number, or None when the backend gives no logprobs."""
    msgs = prompts.simulate_messages(explanation, tokens)
    done = llm.complete(msgs, max_tokens=8 * len(tokens) + 16, top_logprobs=TOP_LOGPROBS)
    if done.logprobs is None:
        return None
    if done.finish_reason == "length":
        raise SimulationFailed("the simulation was cut off (finish_reason 'length')")
    values: list[float] = []
    text = ""
    lps = done.logprobs
    for i, e in enumerate(lps):
        if text.endswith("\t") and e.token[:1] in _DIGITS:
            after = lps[i + 1].top if e.token == "1" and i + 1 < len(lps) else None
            ev = expected_value(value_probabilities(e.top or {e.token: e.logprob}, after))
            if ev is None:
                raise SimulationFailed(
                    f"no number 0..10 among the top logprobs at generated line {len(values) + 1}"
                )
            values.append(ev)
        text += e.token
    if len(values) != len(tokens):
        raise SimulationFailed(f"the simulation gave {len(values)} values for {len(tokens)} tokens")
    return values


# ----- 3. structured JSON -----------------------------------------------------------------------------
def parse_json_values(answer: str, n: int) -> list[float]:
    """The JSON array of ``n`` integers 0..10 in ``answer``; :class:`SimulationFailed` otherwise."""
    m = re.search(r"\[.*\]", answer, re.DOTALL)
    if m is None:
        raise SimulationFailed(f"no JSON array in the answer: {answer[:60]!r}")
    try:
        values = json.loads(m.group(0))
    except json.JSONDecodeError as e:
        raise SimulationFailed(f"the answer's array is not JSON ({e.msg})") from None
    if not isinstance(values, list) or not all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in values
    ):
        raise SimulationFailed("the answer's array holds more than numbers")
    if len(values) != n:
        raise SimulationFailed(f"the answer has {len(values)} values for {n} tokens")
    if any(not 0 <= v <= SCALE_MAX for v in values):
        raise SimulationFailed("the answer has values outside 0..10")
    return [float(v) for v in values]


def simulate_json(llm: LLM, explanation: str, tokens: Sequence[str]) -> list[float]:
    n = len(tokens)
    schema: dict[str, object] = {
        "type": "array",
        "items": {"type": "integer", "minimum": 0, "maximum": SCALE_MAX},
        "minItems": n,
        "maxItems": n,
    }
    done = llm.complete(
        prompts.simulate_json_messages(explanation, tokens), max_tokens=4 * n + 16, json_schema=schema
    )
    if done.finish_reason == "length":
        raise SimulationFailed("the JSON answer was cut off (finish_reason 'length')")
    return parse_json_values(done.text, n)


# ----- the simulator --------------------------------------------------------------------------------------
def chunks(tokens: Sequence[str], explanation: str, limit: int = prompts.MAX_PROMPT_CHARS) -> list[list[str]]:
    """``tokens`` cut into consecutive pieces whose simulation prompt stays under ``limit`` chars."""
    size = prompts.prompt_chars(prompts.simulate_messages(explanation, tokens))
    size += sum(len(prompts.show(t)) + 10 for t in tokens)  # the answer's lines
    if size <= limit or len(tokens) <= 1:
        return [list(tokens)]
    half = len(tokens) // 2
    return chunks(tokens[:half], explanation, limit) + chunks(tokens[half:], explanation, limit)


class Simulator:
    """Simulates records with ``llm``, by the first method in ``methods`` its backend supports."""

    def __init__(self, llm: LLM, methods: Sequence[str] = METHODS) -> None:
        bad = [m for m in methods if m not in METHODS]
        if bad or not methods:
            raise ValueError(f"simulation methods must be among {METHODS}, got {list(methods)}")
        self.llm, self.methods = llm, list(methods)
        self._lock = threading.Lock()  # job workers share one simulator

    @property
    def method(self) -> str:
        return self.methods[0]

    def simulate(self, explanation: str, tokens: Sequence[str]) -> Simulation:
        values: list[float] = []
        masses: list[float] = []
        for piece in chunks(tokens, explanation):
            try:
                got = self._one(explanation, piece, masses)
            except SimulationFailed as e:
                return Simulation(None, self.method, str(e))
            except LLMError as e:
                return Simulation(None, self.method, f"simulator call failed: {e}")
            values += got
        return Simulation(values, self.method, mass=statistics.median(masses) if masses else None)

    def _one(self, explanation: str, tokens: list[str], masses: list[float]) -> list[float]:
        while True:
            method = self.methods[0]
            if method == "all_at_once":
                got = simulate_all_at_once(self.llm, explanation, tokens, masses)
            elif method == "generation":
                got = simulate_generation(self.llm, explanation, tokens)
            else:
                return simulate_json(self.llm, explanation, tokens)
            if got is not None:
                return got
            with self._lock:  # the backend lacks these logprobs: fall back for good (once)
                if self.methods[0] == method:
                    self.methods.pop(0)
