"""Batch jobs: explain and score many nodes of a dataset, resumably.

Each node is done start to finish (records, explanation, scores) and stored as one row committed
on its own (:mod:`mechscope.explain.store`); a re-run skips the nodes whose row exists for the
same backend, model, prompt version and scorer, so a job killed at any moment (kill -9) loses only the
nodes in flight and repeats none. ``workers`` threads explain nodes side by side (LLM calls
overlap); the subject model's forwards (records, promoted tokens) take turns under a lock, since
its temporary hooks are per model, and only the calling thread writes to the store.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TextIO

import numpy as np

from mechscope.errors import InputError
from mechscope.explain.explainer import (
    BASELINE_VERSION,
    Explanation,
    explain_baseline,
    explain_with_llm,
    promoted_tokens,
)
from mechscope.explain.prompts import PROMPT_VERSION
from mechscope.explain.records import LayerWindows, RecordConfig, layer_windows, load_records
from mechscope.explain.scoring import BATCH, SCORES, Embedder, Score, absent, score_all
from mechscope.explain.simulator import Simulator
from mechscope.explain.store import ExplanationStore, StoredExplanation

if TYPE_CHECKING:
    from mechscope.data.store import Dataset
    from mechscope.explain.llm import LLM
    from mechscope.models.decoder import HookedDecoder

Node = tuple[str, int, int]  # (kind, layer, unit) as the dataset's tables address it
MAX_CALLS_WITHOUT_LIMIT = 20_000  # LLM calls a job may plan before --limit must be given


@dataclass
class Backends:
    """Who does what: ``explainer`` None is the baseline explainer; ``scorer`` simulates and
    judges (None: only the embedding score); ``embed`` gives the embedding score."""

    explainer: LLM | None = None
    scorer: LLM | None = None
    embed: Embedder | None = None
    simulator: Simulator | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        # One simulator for the whole job: the method it falls back to is found once, not per node.
        self.simulator = Simulator(self.scorer) if self.scorer is not None else None

    @property
    def key(self) -> tuple[str, str, str, str | None, str | None]:
        """(backend, model, prompt_version, scorer, scorer_model): a stored row's identity besides
        its node (:meth:`ExplanationStore.done`)."""
        scorer = (self.scorer.name, self.scorer.model) if self.scorer is not None else (None, None)
        if self.explainer is None:
            return "baseline", "-", BASELINE_VERSION, *scorer
        return self.explainer.name, self.explainer.model, PROMPT_VERSION, *scorer


@dataclass(frozen=True)
class BackendSpec:
    """Backends named by strings, as the command line gives them: small and picklable, so that a
    Ray worker builds its own (its own local LLM, its own HTTP client, the key read from its own
    environment). ``backend``: baseline, local or a URL; ``simulator``: local, none or a URL
    (None: the backend's, local for the baseline)."""

    backend: str = "baseline"
    simulator: str | None = None
    llm_model: str | None = None  # an endpoint's model name
    local_model: str | None = None  # what load_model() takes; None: the shipped SmolLM2
    embed: bool = True  # the embedding score, when its package is installed

    def __post_init__(self) -> None:
        from mechscope.explain.backends import is_url

        if self.backend not in ("baseline", "local") and not is_url(self.backend):
            raise InputError(f"--backend {self.backend!r} is not one of: baseline, local, an http(s):// URL")
        if self.scorer not in ("none", "local") and not is_url(self.scorer):
            raise InputError(f"--simulator {self.scorer!r} is not one of: local, none, an http(s):// URL")

    @property
    def scorer(self) -> str:
        return self.simulator or ("local" if self.backend == "baseline" else self.backend)

    def build(self) -> Backends:
        """The backends, each LLM loaded once (a local explainer that also scores is one model)."""
        from mechscope.explain.backends import default_embedder, make_llm

        llms: dict[str, LLM] = {}

        def llm(spec: str) -> LLM:
            if spec not in llms:
                llms[spec] = make_llm(spec, model=self.llm_model, local_model=self.local_model)
            return llms[spec]

        return Backends(
            explainer=None if self.backend == "baseline" else llm(self.backend),
            scorer=None if self.scorer == "none" else llm(self.scorer),
            embed=default_embedder() if self.embed else None,
        )


@dataclass(frozen=True)
class JobConfig:
    records: RecordConfig = field(default_factory=RecordConfig)
    seed: int = 0
    promoted: int = 5  # promoted output tokens the baseline names
    forwards: bool = True
    """False: records from the dataset alone (no quantile or extra windows recomputed); the model is
    used for its weights only (promoted tokens). The server's background explanations run so,
    beside the model's worker thread, whose forwards own the model's hooks."""


def select_nodes(
    ds: Dataset,
    kinds: list[str] | None = None,
    layers: list[int] | None = None,
    limit: int | None = None,
    seed: int = 0,
) -> list[Node]:
    """The dataset's nodes of ``kinds`` (default: all collated) in ``layers`` (default: all); with
    ``limit``, a seeded uniform sample of that many, in node order."""
    units = ds.units()
    for k in kinds or []:
        if k not in units:
            raise InputError(f"node kind {k!r} is not collated in this dataset; collated: {', '.join(units)}")
    nodes: list[Node] = []
    for kind, (n_layers, size) in units.items():
        if kinds and kind not in kinds:
            continue
        for layer in layers if layers is not None else range(n_layers):
            if not 0 <= layer < n_layers:
                raise InputError(f"layer {layer} of {kind} does not exist: layers 0..{n_layers - 1}")
            nodes += [(kind, layer, u) for u in range(size)]
    if limit is not None and limit < len(nodes):
        pick = np.random.default_rng(seed).choice(len(nodes), size=limit, replace=False)
        nodes = [nodes[i] for i in sorted(pick)]
    return nodes


def calls_per_node(key: tuple[str, str, str, str | None, str | None], cfg: JobConfig) -> int:
    """A rough upper bound of LLM calls per node of a job whose backends have this ``key``
    (:attr:`Backends.key`), for the cost printed before it starts: one explanation; per test
    record up to two simulation forwards; detection and fuzzing prompts."""
    n_test = cfg.records.train_top + 8 + 8 + cfg.records.extra_random  # odd-rank top, quantile, random, extra
    backend, _, _, scorer, _ = key
    calls = 0 if backend == "baseline" else 1
    if scorer is not None:
        calls += 2 * n_test + 2 * -(-n_test // BATCH)
    return calls


def explain_node(
    ds: Dataset,
    node: Node,
    model: HookedDecoder | None,
    backends: Backends,
    cfg: JobConfig | None = None,
    model_lock: threading.Lock | None = None,
    layers: dict[tuple[str, int], LayerWindows] | None = None,
) -> StoredExplanation:
    """One node, records to scores; every failure lands in the row, none is raised. ``layers``:
    the job's cache of extra windows per (kind, layer), shared under ``model_lock``."""
    cfg = cfg or JobConfig()
    kind, layer, unit = node
    lock = model_lock or threading.Lock()
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    with lock:
        extra = None
        if model is not None and cfg.forwards and cfg.records.extra_random > 0 and layers is not None:
            if (kind, layer) not in layers:
                while len(layers) >= 2:  # the job's nodes come in layer order: keep the last two
                    layers.pop(next(iter(layers)))
                layers[kind, layer] = layer_windows(ds, model, kind, layer, cfg.records)
            extra = layers[kind, layer]
        records = load_records(ds, kind, layer, unit, model if cfg.forwards else None, cfg.records, extra)
        timings["records"] = time.perf_counter() - t0
        t = time.perf_counter()
        promoted = None
        if backends.explainer is None and model is not None:
            promoted = promoted_tokens(model, kind, layer, unit, cfg.promoted)
    if backends.explainer is None:
        expl: Explanation = explain_baseline(records, promoted)
    else:
        expl = explain_with_llm(backends.explainer, records)
    timings["explain"] = time.perf_counter() - t
    t = time.perf_counter()
    scores: dict[str, Score] = (
        score_all(expl.text, records, backends.simulator, backends.scorer, backends.embed, cfg.seed)
        if records.test
        else {name: absent("no test records") for name in SCORES}
    )
    timings["score"] = time.perf_counter() - t
    backend, model_name, version, scorer, scorer_model = backends.key
    return StoredExplanation(
        kind=kind, layer=layer, unit=unit, backend=backend, model=model_name, prompt_version=version,
        explainer=expl.explainer, explanation=expl.text, failure=expl.failure,
        scorer=scorer, scorer_model=scorer_model,
        dataset=str(ds.meta().get("windows", "")),
        train_windows=expl.shown or [r.window_id for r in records.train],
        test_windows=[r.window_id for r in records.test],
        scores={k: v.as_dict() for k, v in scores.items()},
        notes=records.notes, seconds=time.perf_counter() - t0, timings=timings,
        explanation_vector=explanation_vector(backends.embed, expl.text),
    )  # fmt: skip


def explanation_vector(embed: Embedder | None, text: str | None) -> list[float] | None:
    """The explanation's sentence embedding, stored for semantic search; None without an embedder
    or when it fails (the embedding score records that failure)."""
    if embed is None or text is None:
        return None
    try:
        return [float(x) for x in np.asarray(embed([text]), dtype=np.float32)[0]]
    except Exception:  # search leaves the row out; the embedding score records the failure
        return None


@dataclass
class JobSummary:
    planned: int  # nodes selected
    skipped: int  # already in the store
    done: int = 0
    failed: int = 0  # stored with an explanation failure
    seconds: float = 0.0


def progress_line(stream: TextIO | None = None) -> Callable[[JobSummary, int], None]:
    """One live line on stderr: nodes done of those to do, seconds per node, ETA, failures."""
    out = stream or sys.stderr

    def show(s: JobSummary, todo: int) -> None:
        if s.done:
            per = s.seconds / s.done
            left = int((todo - s.done) * per)
            rate = f"{per:.2f} s/node  ETA {left // 60}m{left % 60:02d}s"
        else:
            rate = "? s/node  ETA ?"
        out.write(f"\rexplain {s.done}/{todo} nodes  {rate}  failed {s.failed}   ")
        out.flush()

    return show


class JobRecorder:
    """The driver's side of a job: stores each finished row at once (the one writer of the
    store), counts it and reports progress. Shared by :func:`run_job` and ``explain --ray``."""

    def __init__(
        self,
        store: ExplanationStore,
        nodes: list[Node],
        backends_key: tuple[str, str, str, str | None, str | None],
        progress: Callable[[JobSummary, int], None] | None = None,
        on_node: Callable[[StoredExplanation], None] | None = None,
    ) -> None:
        self.key = backends_key
        done = store.done(*backends_key)
        self.todo = [n for n in nodes if n not in done]
        self.summary = JobSummary(planned=len(nodes), skipped=len(nodes) - len(self.todo))
        self.store, self.progress, self.on_node = store, progress, on_node
        self.t0 = 0.0  # set by start()

    def start(self) -> None:
        """Show the progress line at 0 and start the clock."""
        self.t0 = time.perf_counter()
        if self.progress is not None:
            self.progress(self.summary, len(self.todo))

    def finished(self, row: StoredExplanation) -> None:
        self.store.add(row)  # committed on its own: a kill loses only the nodes in flight
        s = self.summary
        s.done += 1
        s.failed += row.explanation is None
        s.seconds = time.perf_counter() - self.t0
        if self.on_node is not None:
            self.on_node(row)
        if self.progress is not None:
            self.progress(s, len(self.todo))


def run_job(
    ds: Dataset,
    store: ExplanationStore,
    nodes: list[Node],
    model: HookedDecoder | None,
    backends: Backends,
    cfg: JobConfig | None = None,
    workers: int = 1,
    progress: Callable[[JobSummary, int], None] | None = None,
    on_node: Callable[[StoredExplanation], None] | None = None,
    before: Callable[[JobRecorder], None] | None = None,
) -> JobSummary:
    """Explain and score ``nodes`` not yet in ``store``, storing each as soon as it is done.
    ``before`` sees the recorder (what is left to do) before any node starts, as with
    :func:`~mechscope.explain.distributed.explain_on_ray`: the command line prints the cost there
    and may refuse."""
    cfg = cfg or JobConfig()
    rec = JobRecorder(store, nodes, backends.key, progress, on_node)
    if before is not None:
        before(rec)
    rec.start()
    lock = threading.Lock()
    layers: dict[tuple[str, int], LayerWindows] = {}
    if workers <= 1:
        for node in rec.todo:
            rec.finished(explain_node(ds, node, model, backends, cfg, lock, layers))
        return rec.summary
    with ThreadPoolExecutor(workers) as pool:
        pending: set[Future[StoredExplanation]] = set()
        for node in rec.todo:  # at most 2 x workers in flight: a kill loses little work
            pending.add(pool.submit(explain_node, ds, node, model, backends, cfg, lock, layers))
            if len(pending) >= 2 * workers:
                ready, pending = wait(pending, return_when=FIRST_COMPLETED)
                for f in ready:
                    rec.finished(f.result())
        for f in pending:
            rec.finished(f.result())
    return rec.summary
