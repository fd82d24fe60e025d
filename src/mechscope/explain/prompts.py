"""Every prompt of the explain/simulate/score pipeline, and the few-shot examples they show.

The few-shot examples are written for this project (not taken from TDB or delphi). A change to any
prompt text changes what an explanation or score means: bump :data:`PROMPT_VERSION`, which every
stored result carries (docs/explanations.md).
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from mechscope.explain.llm import Message

PROMPT_VERSION = "mx1"
"""Version of the prompts below; stored with every explanation and score."""

MAX_PROMPT_CHARS = 16_000
"""Bound on one prompt's size (about 4-5k tokens of a BPE vocabulary; SmolLM2 reads 8k): the
explainer drops its weakest records to fit, the simulator splits a long record."""

Pairs = Sequence[tuple[str, int]]  # (token, activation 0..10)


def show(token: str) -> str:
    """A token as one cell of a prompt line: newlines and tabs spelled out, so that the line and
    tab structure of the prompt stays the prompt's own."""
    return token.replace("\\", "\\\\").replace("\n", "\\n").replace("\t", "\\t").replace("\r", "\\r")


# ----- explainer: neurons and latents -------------------------------------------------------------
EXPLAIN_SYSTEM = (
    "You study one unit (a neuron or a feature) inside a language model. You see excerpts of text "
    "in which tokens where the unit fires are marked <<like this>>, followed by the marked tokens "
    "with the unit's activation, an integer from 1 to 10 (10 = its strongest). Unmarked tokens "
    "have activation 0. Say in one short phrase what makes the unit fire: which tokens, and in "
    "which context. Do not list the examples and do not mention the numbers."
)

_FEW_SHOT_UNITS: list[tuple[list[Pairs], str]] = [
    (
        [
            [("The", 0), (" treaty", 0), (" was", 0), (" signed", 0), (" on", 0), (" 4", 0),
             (" March", 10), (" 1801", 1), (" and", 0), (" ratified", 0), (" on", 0), (" 12", 0),
             (" June", 8), (".", 0)],
            [("Her", 0), (" birthday", 0), (" is", 0), (" 30", 0), (" October", 9), (",", 0),
             (" not", 0), (" in", 0), (" May", 2), (".", 0)],
        ],
        "month names right after a day number in a date",
    ),
    (
        [
            [("He", 0), (" did", 0), (" not", 10), (" see", 1), (" the", 0), (" sign", 0), (".", 0)],
            [("We", 0), (" never", 7), (" asked", 0), (" and", 0), (" they", 0), (" did", 0),
             ("n't", 9), (" say", 1), (".", 0)],
        ],
        "negations (not, never, n't) before a verb",
    ),
    (
        [
            [("f", 0), ("(", 0), ("x", 0), (",", 0), (" g", 0), ("(", 0), ("y", 0), (")", 6),
             (")", 10), (" =", 0), (" 0", 0)],
            [("(", 0), ("see", 0), (" above", 0), (")", 7), (" and", 0), (" the", 0), (" list", 0)],
        ],
        "closing parentheses, most strongly one that closes a nested pair",
    ),
]  # fmt: skip


def unit_example(pairs: Pairs) -> str:
    """One record for the explainer: the text with firing tokens marked, then those tokens."""
    text = "".join(f"<<{show(t)}>>" if a > 0 else show(t) for t, a in pairs)
    fired = ", ".join(f"{show(t).strip() or repr(t)}={a}" for t, a in pairs if a > 0)
    return f"{text}\nFiring: {fired or 'none'}"


def _unit_user(records: Sequence[Pairs]) -> str:
    body = "\n\n".join(f"Excerpt {i + 1}: {unit_example(r)}" for i, r in enumerate(records))
    return f"{body}\n\nWhat makes this unit fire?"


def explain_unit_messages(records: Sequence[Pairs]) -> list[Message]:
    msgs = [Message("system", EXPLAIN_SYSTEM)]
    for shots, answer in _FEW_SHOT_UNITS:
        msgs += [Message("user", _unit_user(shots)), Message("assistant", answer)]
    return [*msgs, Message("user", _unit_user(records))]


# ----- explainer: attention heads -----------------------------------------------------------------
EXPLAIN_HEAD_SYSTEM = (
    "You study one attention head inside a language model. In each excerpt the head's strongest "
    "(query, key) pair is marked: the query token, where the head reads from, as [[query]], and "
    "the key token it attends to as **key** ([[**both**]] when they are the same token). Say in "
    "one short phrase which tokens it attends to, from which tokens, in the form "
    "'attends to ... from ...'."
)

HeadShot = tuple[list[str], int, int]  # tokens, query index, key index

_FEW_SHOT_HEADS: list[tuple[list[HeadShot], str]] = [
    (
        [
            (["When", " Mira", " met", " Tomas", ",", " Mira", " smiled"], 5, 1),
            (["The", " cat", " saw", " the", " other", " cat"], 5, 1),
        ],
        "attends to an earlier copy of the current word from its repetition",
    ),
    (
        [
            (["The", " old", " dog", " slowly", " barked"], 4, 2),
            (["A", " storm", " in", " the", " north", " destroyed", " roofs"], 5, 1),
        ],
        "attends to the sentence's subject noun from its main verb",
    ),
]


def head_example(tokens: Sequence[str], query: int, key: int | None) -> str:
    out = []
    for i, t in enumerate(tokens):
        s = show(t)
        if i == key:
            s = f"**{s}**"
        if i == query:
            s = f"[[{s}]]"
        out.append(s)
    return "".join(out)


def _head_user(examples: Sequence[tuple[Sequence[str], int, int | None]]) -> str:
    body = "\n\n".join(f"Excerpt {i + 1}: {head_example(*e)}" for i, e in enumerate(examples))
    return f"{body}\n\nWhat does this head attend to, and from where?"


def explain_head_messages(examples: Sequence[tuple[Sequence[str], int, int | None]]) -> list[Message]:
    msgs = [Message("system", EXPLAIN_HEAD_SYSTEM)]
    for shots, answer in _FEW_SHOT_HEADS:
        msgs += [Message("user", _head_user(shots)), Message("assistant", answer)]
    return [*msgs, Message("user", _head_user(examples))]


# ----- simulator ------------------------------------------------------------------------------------
SIMULATE_SYSTEM = (
    "You predict how strongly one unit of a language model fires on each token of a text, from an "
    "explanation of the unit. Write one line per token: the token, a tab, then an integer from 0 "
    "(not firing) to 10 (firing the most). Most tokens are 0. Start with <start> and end with <end>."
)
UNKNOWN = "unknown"
START, END = "<start>", "<end>"

_FEW_SHOT_SIMULATION: tuple[str, Pairs] = (
    "month names right after a day number in a date",
    [("Born", 0), (" on", 0), (" 9", 0), (" May", 10), (" 1920", 1), (",", 0), (" she", 0), (" left", 0),
     (" in", 0), (" April", 3), (".", 0)],
)  # fmt: skip


def listing(tokens: Sequence[str], values: Sequence[str]) -> str:
    """``<start>``, one ``token<TAB>value`` line per token, ``<end>`` (TDB's simulator format)."""
    lines = "".join(f"{show(t)}\t{v}\n" for t, v in zip(tokens, values, strict=True))
    return f"{START}\n{lines}{END}"


def _sim_user(explanation: str, tokens: Sequence[str] | None) -> str:
    head = f"Explanation of the unit: {explanation}"
    if tokens is None:  # all at once: the tokens come in the answer, with "unknown" values
        return head
    return head + "\nTokens, one per line:\n" + "\n".join(show(t) for t in tokens)


def simulate_messages(explanation: str, tokens: Sequence[str] | None) -> list[Message]:
    """The simulator's conversation up to its answer. ``tokens`` None: the all-at-once form, where
    the tokens are in the teacher-forced answer (:func:`listing` with "unknown" values)."""
    shot_expl, shot = _FEW_SHOT_SIMULATION
    shot_tokens = [t for t, _ in shot]
    return [
        Message("system", SIMULATE_SYSTEM),
        Message("user", _sim_user(shot_expl, None if tokens is None else shot_tokens)),
        Message("assistant", listing(shot_tokens, [str(a) for _, a in shot])),
        Message("user", _sim_user(explanation, tokens)),
    ]


SIMULATE_JSON_SYSTEM = (
    "You predict how strongly one unit of a language model fires on each token of a text, from an "
    "explanation of the unit: an integer from 0 (not firing) to 10 (firing the most) per token; "
    "most tokens are 0. Answer with a JSON array of integers only, one per token, in order."
)


def simulate_json_messages(explanation: str, tokens: Sequence[str]) -> list[Message]:
    return [
        Message("system", SIMULATE_JSON_SYSTEM),
        Message(
            "user",
            f"Explanation of the unit: {explanation}\nTokens ({len(tokens)}): {json.dumps(list(tokens))}\n"
            f"Answer with a JSON array of {len(tokens)} integers.",
        ),
    ]


# ----- detection and fuzzing --------------------------------------------------------------------------
DETECT_SYSTEM = (
    "An explanation says when one unit of a language model fires. For each numbered text, decide "
    "whether the unit fires anywhere in it, going by the explanation. Answer with a JSON array "
    "with one entry per text, in order: 1 if it fires, 0 if not. Answer with the array only."
)
FUZZ_SYSTEM = (
    "An explanation says when one unit of a language model fires. In each numbered text some "
    "tokens are marked <<like this>>. Decide whether the marked tokens are ones the unit fires on, "
    "going by the explanation. Answer with a JSON array with one entry per text, in order: 1 if "
    "the marks are right, 0 if not. Answer with the array only."
)


def judge_messages(system: str, explanation: str, texts: Sequence[str]) -> list[Message]:
    body = "\n".join(f"Text {i + 1}: {t}" for i, t in enumerate(texts))
    return [
        Message("system", system),
        Message(
            "user",
            f"Explanation of the unit: {explanation}\n\n{body}\n\n"
            f"Answer with a JSON array of {len(texts)} values (0 or 1).",
        ),
    ]


def marked_text(tokens: Sequence[str], marked: set[int]) -> str:
    return "".join(f"<<{show(t)}>>" if i in marked else show(t) for i, t in enumerate(tokens))


def prompt_chars(messages: Sequence[Message], extra: str = "") -> int:
    return sum(len(m.content) for m in messages) + len(extra)
