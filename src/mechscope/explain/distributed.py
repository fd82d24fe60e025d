"""``mechscope explain --ray``: nodes explained on Ray workers, stored by the driver.

Each worker (a Ray actor) holds one copy of the subject model (shipped by the driver, dictionaries
attached, checked by its weights' fingerprint), opens the dataset read-only and builds its own
backends from a :class:`~mechscope.explain.jobs.BackendSpec`: its own local LLM, its own HTTP
client with the key from its own environment. It returns finished rows; only the driver writes the
store, one committed row per node (:class:`~mechscope.explain.jobs.JobRecorder`), so killing the
driver loses at most one node per worker and a re-run, with or without Ray, skips the rest. A row is
the same as the single-process job's for the same seed: records, baseline and scores depend on the
node and the seed only.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from mechscope.data.collate import weights_fingerprint
from mechscope.errors import InputError
from mechscope.explain.jobs import (
    BackendSpec,
    JobConfig,
    JobRecorder,
    JobSummary,
    Node,
    explain_node,
)
from mechscope.explain.records import LayerWindows
from mechscope.ray_cluster import connect, ray_module, share, worker_count

if TYPE_CHECKING:
    from mechscope.data.store import Dataset
    from mechscope.explain.store import ExplanationStore, StoredExplanation
    from mechscope.models.decoder import HookedDecoder


class RayNodeExplainer:
    """A Ray actor's body: one subject model, the dataset and the backends, explaining nodes."""

    def __init__(
        self, model: HookedDecoder, root: str, spec: BackendSpec, cfg: JobConfig, threads: int
    ) -> None:
        from mechscope.data.store import Dataset

        torch.set_num_threads(threads)
        self.weights = weights_fingerprint(model)
        self.model, self.cfg = model, cfg
        self.ds = Dataset(root)
        self.backends = spec.build()
        self.layers: dict[tuple[str, int], LayerWindows] = {}  # this worker's extra windows per layer

    def key(self) -> tuple[tuple[str, str, str, str | None, str | None], str]:
        return self.backends.key, self.weights

    def explain(self, node: Node) -> StoredExplanation:
        return explain_node(self.ds, node, self.model, self.backends, self.cfg, None, self.layers)


def explain_on_ray(
    ds: Dataset,
    store: ExplanationStore,
    nodes: list[Node],
    model: HookedDecoder,
    spec: BackendSpec,
    cfg: JobConfig | None = None,
    address: str | None = None,
    workers: int | None = None,
    progress: Callable[[JobSummary, int], None] | None = None,
    before: Callable[[JobRecorder], None] | None = None,
) -> JobSummary:
    """:func:`~mechscope.explain.jobs.run_job` on a Ray cluster (``address``, or a local one when
    None or ""), ``workers`` actors (default: one per GPU, else per CPU). ``before`` sees the
    recorder (what is left to do) once the workers have said which backends they built, before any
    node starts: the command line prints the cost there and may refuse."""
    cfg = cfg or JobConfig()
    root = str(Path(ds.root).resolve())
    ray = ray_module()
    started = connect(ray, address)
    try:
        n = min(worker_count(ray, workers), max(1, len(nodes)))
        cpus, gpus = share(ray, n)
        actor = ray.remote(RayNodeExplainer).options(num_cpus=cpus, num_gpus=gpus)
        shipped = ray.put(model)
        pool = [actor.remote(shipped, root, spec, cfg, max(1, int(cpus))) for _ in range(n)]
        answers = ray.get([a.key.remote() for a in pool])
        expected = weights_fingerprint(model)
        if any(w != expected for _, w in answers):  # rows would describe other weights
            raise InputError("a Ray worker's copy of the model differs from the driver's")
        keys = {k for k, _ in answers}
        if len(keys) != 1:
            raise InputError(f"the Ray workers built different backends: {sorted(map(str, keys))}")
        rec = JobRecorder(store, nodes, keys.pop(), progress)
        if before is not None:
            before(rec)
        rec.start()
        # One node per worker at a time (ActorPool), rows stored as they come back.
        for row in ray.util.ActorPool(pool).map_unordered(lambda a, node: a.explain.remote(node), rec.todo):
            rec.finished(row)
        return rec.summary
    finally:
        if started:
            ray.shutdown()
