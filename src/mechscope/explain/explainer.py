"""Explainers: from a node's train records to a one-phrase explanation.

- :func:`explain_with_llm`: an LLM reads the records (units: tokens with 0-10 marks; heads: the
  strongest (query, key) pair of each excerpt) and answers in one phrase, post-processed by
  :func:`clean_explanation`.
- :func:`explain_baseline`: no LLM; the node's top tokens, the tokens before them, and (where the
  node's write is a fixed direction) the output tokens it promotes, as a short sentence.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING

from mechscope.explain import prompts
from mechscope.explain.llm import LLM, LLMError, Message
from mechscope.explain.records import NodeRecords, Record, scaled

if TYPE_CHECKING:
    from mechscope.models.decoder import HookedDecoder

BASELINE_VERSION = "baseline1"
"""Version of the baseline explainer's rendering (its ``prompt_version``)."""


@dataclass(frozen=True)
class Explanation:
    text: str | None  # None when the explainer failed
    explainer: str  # "baseline" or "llm"
    backend: str  # "baseline", "local" or the endpoint's URL
    model: str  # the explaining model's name ("-" for the baseline)
    prompt_version: str
    shown: list[int] = field(default_factory=list)  # window ids shown to the explainer
    failure: str | None = None
    seconds: float = 0.0


# "the main thing this neuron does is find ..." and kin: the few-shot answers start with the
# content, but small models often restate the question first.
_PREFIX = re.compile(
    r"^(?:explanation(?: of [^:]*)?:\s*)?(?:(?:the )?main thing )?(?:this|the) "
    r"(?:neuron|unit|feature|latent|head|attention head)(?: mainly| most(?:ly)?)?"
    r"(?: does is| is| fires| activates| responds)?(?: (?:on|for|to|when|at|by))?\s*(?:find(?:ing)?\s+)?",
    re.IGNORECASE,
)


def clean_explanation(answer: str) -> str | None:
    """The first line of ``answer`` without preambles, quotes and a final period; None if empty."""
    text = answer.strip()
    text = text.split("\n", 1)[0].strip()
    text = _PREFIX.sub("", text, count=1).strip().rstrip(".").strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'`":  # the whole answer quoted
        text = text[1:-1].strip()
    return text or None


def explain_with_llm(llm: LLM, records: NodeRecords, max_tokens: int = 60) -> Explanation:
    """Ask ``llm`` for an explanation of the records' node; a failure is recorded, not raised."""
    t0 = time.perf_counter()
    shown = list(records.train)
    messages = _messages(records, shown)
    while len(shown) > 1 and prompts.prompt_chars(messages) > prompts.MAX_PROMPT_CHARS:
        shown = shown[:-1]  # the weakest record goes first (TDB drops records likewise)
        messages = _messages(records, shown)
    make = partial(
        Explanation,
        explainer="llm",
        backend=llm.name,
        model=llm.model,
        prompt_version=prompts.PROMPT_VERSION,
        shown=[r.window_id for r in shown],
    )
    if not shown:
        return make(None, failure="no train records")
    try:
        answer = llm.complete(messages, max_tokens=max_tokens, temperature=0.0)
    except LLMError as e:
        return make(None, failure=f"explainer call failed: {e}", seconds=time.perf_counter() - t0)
    text = clean_explanation(answer.text)
    failure = None if text else f"empty explanation (finish: {answer.finish_reason}): {answer.text[:80]!r}"
    return make(text, failure=failure, seconds=time.perf_counter() - t0)


def _messages(records: NodeRecords, shown: list[Record]) -> list[Message]:
    if records.pairs:
        return prompts.explain_head_messages([(r.tokens, r.peak, r.key) for r in shown])
    scale = records.scale
    return prompts.explain_unit_messages(
        [list(zip(r.tokens, (int(v) for v in scaled(r.acts, scale)), strict=True)) for r in shown]
    )


# ----- baseline -------------------------------------------------------------------------------------
def promoted_tokens(model: HookedDecoder, kind: str, layer: int, unit: int, k: int = 5) -> list[str] | None:
    """The output tokens the node's write promotes most (the node page's list: its write through
    the final norm's gain and the unembedding, engine/lens.py), or None when its write depends on
    the prompt (heads) or is not defined."""
    from mechscope.engine.kinds import get_kind
    from mechscope.engine.lens import node_tokens
    from mechscope.engine.nodes import Node

    kd = get_kind(kind, model)
    if kd.write is None or kd.write_needs_prompt:
        return None
    node = Node(kind=kind, layer=layer if kd.layered else None, index=unit, token=0)
    return [t.token for t in node_tokens(model, node, None, k).promoted]


def _top(counter: Counter[str], n: int) -> list[str]:
    return [repr(t) for t, _ in counter.most_common(n)]


def explain_baseline(records: NodeRecords, promoted: list[str] | None = None) -> Explanation:
    """A sentence from the train records alone: the tokens the node peaks on (how many of the
    excerpts), the tokens just before them, and the promoted output tokens when known. Heads: the
    query and key tokens of their strongest pairs."""
    t0 = time.perf_counter()
    shown = records.train
    make = partial(
        Explanation,
        explainer="baseline",
        backend="baseline",
        model="-",
        prompt_version=BASELINE_VERSION,
        shown=[r.window_id for r in shown],
    )
    if not shown or records.scale <= 0:
        return make(None, failure="no activating train records")
    peaks = Counter(r.tokens[r.peak] for r in shown)
    before = Counter(r.tokens[r.peak - 1] for r in shown if r.peak > 0)
    n = len(shown)
    top_tok, top_n = peaks.most_common(1)[0]
    if records.pairs:
        keys = Counter(r.tokens[r.key] for r in shown if r.key is not None)
        text = f"attends from {', '.join(_top(peaks, 3))}"
        text += f" to {', '.join(_top(keys, 3))}" if keys else " mostly to the start token"
    else:
        text = f"fires on {', '.join(_top(peaks, 3))} ({top_n} of {n} top excerpts peak on {top_tok!r})"
        if before:
            text += f", after {', '.join(_top(before, 3))}"
    if promoted:
        text += f"; promotes {', '.join(repr(t) for t in promoted[:5])}"
    return make(text, seconds=time.perf_counter() - t0)
