"""Scores of an explanation on a node's held-out TEST records (docs/explanations.md, "Scores").

- ``simulation``: Pearson correlation between simulated and true activations over all test tokens
  pooled (TDB's "all at once" score, which pools rather than averaging per-record correlations);
- ``detection``: balanced accuracy of an LLM judging, from the explanation, which texts make the
  node fire (activating test records vs non-activating ones), in prompts of ``batch`` texts;
- ``fuzzing``: balanced accuracy of judging whether the tokens marked <<...>> are the ones it
  fires on (an activating record's firing tokens vs as many random tokens of a non-activating one);
- ``embedding``: ROC AUC of cosine(explanation, text) separating activating from non-activating
  records (delphi's embedding score; no LLM, a sentence embedder).

Every score carries ``n`` (records scored) and a 95% bootstrap interval (percentiles of
:data:`N_BOOT` resamples, seeded; records are resampled, never single tokens, and for the
accuracies and the AUC within each class, so that both classes are always present). A score
whose inputs failed is absent (``value`` None) with the reason; failed inputs are left out and
counted, never scored as 0.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from mechscope.explain import prompts
from mechscope.explain.llm import LLM, LLMError
from mechscope.explain.records import NodeRecords, Record, scaled
from mechscope.explain.simulator import SimulationFailed, Simulator, parse_json_values

N_BOOT = 1000
ACTIVE = 2  # a token or record is activating from 2 on the 0..10 scale (20% of the train max)
QUIET = 0  # a record is non-activating when its every token scales to 0 (below 10%)
BATCH = 5  # texts per detection or fuzzing prompt (delphi's default)
SCORES = ("simulation", "detection", "fuzzing", "embedding")

Embedder = Callable[[list[str]], np.ndarray]


@dataclass(frozen=True)
class Score:
    value: float | None  # None: absent, see ``failure``
    n: int  # records it was computed from
    lo: float | None = None  # 95% bootstrap interval
    hi: float | None = None
    failure: str | None = None
    failed: int = 0  # records left out because their LLM call or its answer failed
    method: str | None = None  # simulation: all_at_once, generation or json
    mass: float | None = None  # simulation, all at once: median P(a number 0..10) at a value slot

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def absent(reason: str, n: int = 0, failed: int = 0, method: str | None = None) -> Score:
    return Score(None, n, failure=reason, failed=failed, method=method)


# ----- statistics -------------------------------------------------------------------------------------
def pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson r; NaN when either side is constant (checked exactly: rounding in the centring
    would otherwise turn a constant simulation into a tiny, meaningless correlation)."""
    if len(x) < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    xc, yc = x - x.mean(), y - y.mean()
    den = float(np.sqrt((xc * xc).sum() * (yc * yc).sum()))
    return float((xc * yc).sum() / den) if den > 0 else float("nan")


def balanced_accuracy(labels: np.ndarray, preds: np.ndarray) -> float:
    """(recall + specificity) / 2; NaN unless both classes are present."""
    pos, neg = labels == 1, labels == 0
    if not pos.any() or not neg.any():
        return float("nan")
    return float((np.mean(preds[pos] == 1) + np.mean(preds[neg] == 0)) / 2)


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """ROC AUC = P(score of a positive > score of a negative), ties counting half."""
    pos, neg = scores[labels == 1], scores[labels == 0]
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    diff = pos[:, None] - neg[None, :]
    return float(((diff > 0).sum() + 0.5 * (diff == 0).sum()) / diff.size)


def bootstrap_ci(
    stat: Callable[[np.ndarray], float], strata: Sequence[np.ndarray], seed: int = 0, n_boot: int = N_BOOT
) -> tuple[float | None, float | None]:
    """95% percentile interval of ``stat(indices)`` over resamples drawn with replacement within
    each stratum (arrays of unit indices); None when fewer than 2 units or no finite replicate."""
    if sum(len(s) for s in strata) < 2:
        return None, None
    rng = np.random.default_rng(seed)
    reps = []
    for _ in range(n_boot):
        idx = np.concatenate([rng.choice(s, size=len(s), replace=True) for s in strata if len(s)])
        v = stat(idx)
        if np.isfinite(v):
            reps.append(v)
    if not reps:
        return None, None
    lo, hi = np.percentile(reps, [2.5, 97.5])
    return float(lo), float(hi)


GIVE_UP = 5
"""LLM calls of one score that may fail before any succeeds; then the score gives up on the rest.
A model that cannot follow a format (SmolLM2-135M as simulator or judge: docs/explanations.md)
would otherwise spend every record's call (about 120 a node, 10 min on 2 cores) to learn nothing."""


def _gave_up(left: int) -> list[str]:
    return [f"not tried: the first {GIVE_UP} calls all failed"] * left


# ----- simulation -------------------------------------------------------------------------------------
def simulation_score(
    simulator: Simulator, explanation: str, records: Sequence[Record], seed: int = 0
) -> Score:
    true: list[np.ndarray] = []
    sim: list[np.ndarray] = []
    failures: list[str] = []
    masses: list[float] = []
    for i, r in enumerate(records):
        if not true and len(failures) >= GIVE_UP:
            failures += _gave_up(len(records) - i)
            break
        s = simulator.simulate(explanation, r.tokens)
        if s.expected is None:
            failures.append(s.failure or "failed")
        else:
            true.append(np.asarray(r.acts, dtype=np.float64))
            sim.append(np.asarray(s.expected, dtype=np.float64))
            if s.mass is not None:
                masses.append(s.mass)
    score = correlation_score(true, sim, failures, simulator.method, seed)
    # How much the simulator believed its own numbers: a renormalised expectation resting on a
    # small mass is reported as such, beside the correlation that says whether it carried signal.
    return replace(score, mass=float(np.median(masses))) if masses else score


def correlation_score(
    true: list[np.ndarray], sim: list[np.ndarray], failures: list[str], method: str | None, seed: int = 0
) -> Score:
    """Pooled Pearson r of per-record arrays, its interval from resampled records."""
    if not true:
        reason = f"every simulation failed ({failures[0]})" if failures else "no test records"
        return absent(reason, failed=len(failures), method=method)

    def stat(idx: np.ndarray) -> float:
        return pearson(np.concatenate([true[i] for i in idx]), np.concatenate([sim[i] for i in idx]))

    r = stat(np.arange(len(true)))
    if not np.isfinite(r):
        return absent(
            "undefined: the simulated or the true activations are constant", len(true), len(failures), method
        )
    lo, hi = bootstrap_ci(stat, [np.arange(len(true))], seed)
    return Score(r, len(true), lo, hi, failed=len(failures), method=method)


# ----- detection and fuzzing -------------------------------------------------------------------------
def activating_split(records: NodeRecords) -> tuple[list[Record], list[Record]]:
    """Test records that activate the node (a token at >= ACTIVE) and those that stay quiet
    (every token at QUIET); those in between take part in the simulation score only."""
    pos, neg = [], []
    for r in records.test:
        peak = int(scaled(r.acts, records.scale).max(initial=0))
        if peak >= ACTIVE:
            pos.append(r)
        elif peak <= QUIET:
            neg.append(r)
    return pos, neg


def class_score(
    name: str, labels: np.ndarray, preds: np.ndarray, ok: np.ndarray, stat: Callable[..., float], seed: int
) -> Score:
    """A balanced accuracy or AUC over the examples whose judgement succeeded (``ok``)."""
    failed = int((~ok).sum())
    y, p = labels[ok], preds[ok]
    if not (y == 1).any() or not (y == 0).any():
        missing = "activating" if not (y == 1).any() else "non-activating"
        why = f"no {missing} test records" + (f" left ({failed} judgements failed)" if failed else "")
        return absent(f"{name}: {why}", len(y), failed)
    value = stat(y, p)
    lo, hi = bootstrap_ci(lambda i: stat(y[i], p[i]), [np.flatnonzero(y == 1), np.flatnonzero(y == 0)], seed)
    return Score(value, len(y), lo, hi, failed=failed)


def judge_schema(n: int) -> dict[str, object]:
    """The judge's answer, a JSON array of n verdicts 0 or 1: an endpoint with structured output
    (OpenAI, vLLM, llama.cpp's server) decodes only such arrays, so even a small model answers."""
    return {"type": "array", "items": {"type": "integer", "enum": [0, 1]}, "minItems": n, "maxItems": n}


def _judge_tokens(llm: LLM, n: int) -> int:
    """~4 tokens a verdict; where the backend decodes to the schema (an endpoint's
    ``structured_output``), also room for the whitespace a JSON grammar allows around each item
    (llama.cpp's: up to 20 characters; SmolLM2 fills it with tabs). An unconstrained answer keeps
    the short cap: a model that is not answering in JSON fails as soon."""
    return 24 * n + 32 if getattr(llm, "structured_output", False) else 4 * n + 16


def judge(
    llm: LLM, system: str, explanation: str, texts: list[str], seed: int, batch: int = BATCH
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The LLM's 0/1 verdict on each text, in shuffled batches; ``ok`` False where it failed."""
    order = np.random.default_rng(seed).permutation(len(texts))
    preds = np.zeros(len(texts), dtype=np.int64)
    ok = np.zeros(len(texts), dtype=bool)
    failures: list[str] = []
    for s in range(0, len(order), batch):
        if not ok.any() and len(failures) >= GIVE_UP:
            failures += _gave_up(1)  # the remaining batches stay ok=False: failed, not guessed
            break
        idx = order[s : s + batch]
        msgs = prompts.judge_messages(system, explanation, [texts[i] for i in idx])
        try:
            done = llm.complete(
                msgs,
                max_tokens=_judge_tokens(llm, len(idx)),
                temperature=0.0,
                json_schema=judge_schema(len(idx)),
            )
            values = parse_json_values(done.text, len(idx))
            if any(v not in (0, 1) for v in values):
                raise SimulationFailed("the answer has values other than 0 and 1")
        except (LLMError, SimulationFailed) as e:
            failures.append(str(e))
            continue
        preds[idx] = [int(v) for v in values]
        ok[idx] = True
    return preds, ok, failures


def detection_score(llm: LLM, explanation: str, pos: list[Record], neg: list[Record], seed: int = 0) -> Score:
    records = pos + neg
    labels = np.array([1] * len(pos) + [0] * len(neg))
    texts = [prompts.marked_text(r.tokens, set()) for r in records]
    preds, ok, _ = judge(llm, prompts.DETECT_SYSTEM, explanation, texts, seed)
    return class_score("detection", labels, preds, ok, balanced_accuracy, seed)


def fuzzing_texts(pos: list[Record], neg: list[Record], scale: float, seed: int) -> list[str]:
    """Activating records with their firing tokens marked, then non-activating ones with as many
    random tokens marked as the activating ones have on average (delphi's default fuzzing)."""
    rng = np.random.default_rng(seed)
    marks = [set(np.flatnonzero(scaled(r.acts, scale) >= ACTIVE).tolist()) for r in pos]
    k = max(1, round(float(np.mean([len(m) for m in marks]))) if marks else 1)
    texts = [prompts.marked_text(r.tokens, m) for r, m in zip(pos, marks, strict=True)]
    for r in neg:
        wrong = rng.choice(len(r.tokens), size=min(k, len(r.tokens)), replace=False)
        texts.append(prompts.marked_text(r.tokens, set(wrong.tolist())))
    return texts


def fuzzing_score(
    llm: LLM, explanation: str, pos: list[Record], neg: list[Record], scale: float, seed: int = 0
) -> Score:
    labels = np.array([1] * len(pos) + [0] * len(neg))
    texts = fuzzing_texts(pos, neg, scale, seed)
    preds, ok, _ = judge(llm, prompts.FUZZ_SYSTEM, explanation, texts, seed + 1)
    return class_score("fuzzing", labels, preds, ok, balanced_accuracy, seed)


def embedding_score(
    embed: Embedder, explanation: str, pos: list[Record], neg: list[Record], seed: int = 0
) -> Score:
    records = pos + neg
    if not records:
        return absent("embedding: no activating or non-activating test records")
    labels = np.array([1] * len(pos) + [0] * len(neg))
    try:
        vecs = np.asarray(embed([explanation] + ["".join(r.tokens) for r in records]), dtype=np.float64)
    except Exception as e:  # an embedder's failure is recorded like an LLM's
        return absent(f"embedding failed: {type(e).__name__}: {e}", len(records))
    vecs = vecs / np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12)
    cos = vecs[1:] @ vecs[0]
    return class_score("embedding", labels, cos, np.ones(len(records), dtype=bool), auc, seed)


def score_all(
    explanation: str | None,
    records: NodeRecords,
    simulator: Simulator | None,
    judge_llm: LLM | None,
    embed: Embedder | None,
    seed: int = 0,
) -> dict[str, Score]:
    """Every score of ``explanation`` on ``records.test``; a score without its backend is absent."""
    if explanation is None:
        return {name: absent("no explanation") for name in SCORES}
    pos, neg = activating_split(records)
    none = "not run: this job had no {} (scored without an LLM)"
    return {
        "simulation": simulation_score(simulator, explanation, records.test, seed)
        if simulator is not None
        else absent(none.format("simulator")),
        "detection": detection_score(judge_llm, explanation, pos, neg, seed)
        if judge_llm is not None
        else absent(none.format("judge")),
        "fuzzing": fuzzing_score(judge_llm, explanation, pos, neg, records.scale, seed)
        if judge_llm is not None
        else absent(none.format("judge")),
        "embedding": embedding_score(embed, explanation, pos, neg, seed)
        if embed is not None
        else absent("no sentence embedder (mechscope.explain.embedding)"),
    }
