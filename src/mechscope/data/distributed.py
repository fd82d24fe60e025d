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
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

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
    ray = _ray()
    started = _connect(ray, address)
    try:
        wanted = _workers(ray, workers)
        todo = runs(state.done, windows.n, cfg.shard_windows, wanted)
        n_workers = min(wanted, len(todo)) or 1
        cpus, gpus = _share(ray, n_workers)
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


def _ray() -> Any:
    try:
        import ray
        import ray.util
    except ImportError:
        raise InputError("--ray needs Ray: pip install 'mechscope[ray]' (or pip install ray)") from None
    return ray


def _connect(ray: Any, address: str | None) -> bool:
    """Join the cluster at ``address`` or start a local one; True if this call started Ray."""
    if ray.is_initialized():
        return False
    kwargs: dict[str, Any] = {"include_dashboard": False, "logging_level": logging.WARNING}
    try:
        if address:
            ray.init(address=address, **kwargs)
        else:
            ray.init(num_cpus=os.cpu_count() or 1, **kwargs)
    except ConnectionError as e:
        raise InputError(f"cannot reach the Ray cluster at {address!r}: {e}") from None
    return True


def _workers(ray: Any, workers: int | None) -> int:
    """``workers``, or one per GPU of the cluster, or one per CPU when it has no GPU."""
    if workers is not None and workers < 1:
        raise InputError(f"--workers must be at least 1, got {workers}")
    res = ray.cluster_resources()
    return workers or int(res.get("GPU", 0) or res.get("CPU", 1)) or 1


def _share(ray: Any, n: int) -> tuple[float, float]:
    """The CPUs and GPUs each of ``n`` workers reserves: the cluster's, shared evenly (fractions when
    there are more workers than CPUs, so that they all start)."""
    res = ray.cluster_resources()
    cpus, gpus = float(res.get("CPU", 1)), float(res.get("GPU", 0))
    per_cpu = max(1.0, cpus // n) if n <= cpus else cpus / n
    return per_cpu, min(1.0, gpus / n) if gpus else 0.0
