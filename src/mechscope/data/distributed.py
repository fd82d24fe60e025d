"""Collation scaled out on Ray: the corpus is cut into runs of whole shards, Ray actors (one
model copy each, on a GPU when their node has one) collate them, and the driver merges the results
in window order and checkpoints after each, exactly as a single process would.

Why the result is identical to :func:`mechscope.data.collate.collate`: top-k, samples, counts
and histograms merge exactly whatever the split (unique keys, integer sums); the moments are kept
per shard by the workers and merged by the driver in the single pass's order (see
:class:`mechscope.data.collate.KindState`). Killing the driver loses at most the runs in flight;
re-running the same command resumes from the last merged run, with or without Ray.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from mechscope.data.collate import (
    CollateConfig,
    CollationState,
    ProgressBar,
    begin,
    checkpoint,
    collate_range,
    finish,
    weights_fingerprint,
)
from mechscope.errors import InputError
from mechscope.ray_cluster import connect, ray_module, share, worker_count

if TYPE_CHECKING:
    from mechscope.data.corpora import Windows
    from mechscope.data.store import Workspace
    from mechscope.models.decoder import HookedDecoder

log = logging.getLogger(__name__)

RUNS_PER_WORKER = 4
"""Work is cut into about this many runs per worker: enough to balance uneven workers, few enough
that merging (a whole model's top-k buffers per run) stays a small part of the time."""


class RayCollator:
    """A Ray actor's body: one model copy that collates runs of windows."""

    def __init__(self, model: HookedDecoder, windows: Windows, cfg: CollateConfig, threads: int) -> None:
        self.weights = weights_fingerprint(model)
        if torch.cuda.is_available():
            model = model.to("cuda")
        else:
            torch.set_num_threads(threads)
        self.model, self.windows, self.cfg = model, windows, cfg

    def run(self, start: int, stop: int) -> CollationState:
        state = CollationState(self.model, self.cfg)
        state.keep_shards_apart()
        return collate_range(self.model, self.windows, self.cfg, start, stop, state)

    def fingerprint(self) -> str:
        return self.weights


def runs(done: int, n: int, shard: int, workers: int) -> list[tuple[int, int]]:
    """Cut windows ``[done, n)`` into runs of whole shards (the last may be shorter)."""
    shards = -(-(n - done) // shard)
    per_run = max(1, -(-shards // (workers * RUNS_PER_WORKER))) * shard
    return [(a, min(a + per_run, n)) for a in range(done, n, per_run)]


def collate_on_ray(
    model: HookedDecoder,
    windows: Windows,
    workspace: Workspace,
    cfg: CollateConfig | None = None,
    corpus_name: str = "",
    attribution: str | None = None,
    progress: ProgressBar | None = None,
    address: str | None = None,
    workers: int | None = None,
    preview: bool = False,
) -> Path:
    """:func:`mechscope.data.collate.collate` on a Ray cluster (``address``, or a local one when
    None or ""): the same dataset, bit for bit."""
    cfg = cfg or CollateConfig()
    state = begin(model, windows, workspace, cfg)
    if state is None:
        return workspace.root
    ray = ray_module()
    started = connect(ray, address)
    try:
        wanted = worker_count(ray, workers)
        todo = runs(state.done, windows.n, cfg.shard_windows, wanted)
        n_workers = min(wanted, len(todo)) or 1
        cpus, gpus = share(ray, n_workers)
        threads = max(1, int(cpus))
        log.info(
            "collating %d runs on %d Ray workers (%d threads, %g GPU each)",
            len(todo),
            n_workers,
            threads,
            gpus,
        )
        actor = ray.remote(RayCollator).options(num_cpus=cpus, num_gpus=gpus)
        shared = ray.put(model), ray.put(windows)
        pool = [actor.remote(*shared, cfg, threads) for _ in range(n_workers)]
        expected = weights_fingerprint(model)
        for got in ray.get([a.fingerprint.remote() for a in pool]):
            if got != expected:  # a worker with other weights would merge into a wrong dataset
                raise InputError("a Ray worker's copy of the model differs from the driver's")
        if progress is not None:
            progress.start(windows.n, state.done)
        first = state.done
        for part in ray.util.ActorPool(pool).map(lambda a, r: a.run.remote(*r), todo):
            state.merge_(part)  # in window order: ActorPool.map yields results in submission order
            checkpoint(state, model, windows, workspace, cfg, preview, corpus_name, attribution)
            if progress is not None:
                progress.update(state.done - first)
        if progress is not None:
            progress.finish()
    finally:
        if started:
            ray.shutdown()
    return finish(state, model, windows, workspace, cfg, corpus_name, attribution)
