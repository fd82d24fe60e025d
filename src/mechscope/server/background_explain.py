"""Baseline explanations of the demo's dataset, written in the background once its collation is done.

``mechscope demo`` collates a slice of the corpus in a background process (server/datasets.py); when
it has finished, a thread of the server gives every collated unit the baseline explanation (no LLM:
the tokens its top examples peak on, what precedes them, what it promotes) with the scores that need
no LLM, so that node pages and the Debugger's node table show explanations without a separate
``mechscope explain``. It reads the dataset alone and the model's weights (promoted tokens), never
runs a forward: the model's worker thread owns its hooks. Kinds with fewer units come first (heads
before neurons), nodes already explained are skipped (a restart resumes), and rows are written in
small batches, the file opened for writing only meanwhile, so the API's reads take turns with it.

With ``llm`` (``mechscope demo``'s default, ``--no-background-llm`` to skip), a second pass follows:
the same units explained by a local LLM (the shipped SmolLM2: its own copy, loaded in this thread,
never the served model) with the embedding score, one row written per node. It runs at nice 10 like
the first; the node pages show, of a node's rows, the one whose embedding score is best
(:meth:`ExplanationStore.latest`). Both passes resume where the last start stopped.

Every open of ``explanations.duckdb`` in this process goes through :func:`open_store`: DuckDB refuses
a second connection to one file with another mode (read-only vs read-write) in the same process.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from mechscope.explain.store import ExplanationStore, StoreLocked

if TYPE_CHECKING:
    from mechscope.explain.jobs import Backends, JobConfig, Node
    from mechscope.explain.llm import LLM
    from mechscope.explain.store import StoredExplanation
    from mechscope.models.decoder import HookedDecoder
    from mechscope.server.datasets import DatasetSource

log = logging.getLogger("mechscope.server")
_T = TypeVar("_T")
_store_lock = threading.Lock()
BATCH = 32  # nodes per write: the file is held for writing only while a batch is stored
POLL_S = 5.0  # how often the collation's progress is checked, and a locked file retried


@contextmanager
def open_store(root: Path, read_only: bool = True) -> Iterator[ExplanationStore]:
    """The dataset's explanations, opened for this block only (in turn with this process's others)."""
    with _store_lock:
        store = ExplanationStore(root, read_only=read_only)
        try:
            yield store
        finally:
            store.close()


def _add_all(store: ExplanationStore, rows: list[StoredExplanation]) -> int:
    for row in rows:
        store.add(row)
    return len(rows)


class BackgroundExplainer:
    """A daemon thread: waits for ``source``'s collation to finish, then explains its units."""

    def __init__(
        self,
        source: DatasetSource,
        model: HookedDecoder,
        poll_s: float = POLL_S,
        llm: Callable[[], LLM] | None = None,
    ) -> None:
        self.source, self.model, self.poll_s, self.llm = source, model, poll_s, llm
        self.stop = threading.Event()
        self.done = 0  # nodes explained by this thread (both passes)
        self.llm_done = 0  # of which by the LLM
        self.finished = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mechscope-explain", daemon=True)

    def start(self) -> None:
        self._thread.start()

    @property
    def working(self) -> bool:
        """Started and not finished (waiting for the collation counts: the collation runs then)."""
        return self._thread.is_alive() and not self.finished.is_set()

    def close(self, timeout: float = 5.0) -> None:
        self.stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        with contextlib.suppress(AttributeError, OSError):  # behind the model's thread (Linux: per thread)
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
        try:
            self._explain_all()
        except Exception:  # a background job must not take the server down; the log has it
            log.exception("background explanations stopped")
        finally:
            self.finished.set()

    def _wait_for_dataset(self) -> bool:
        while not self.stop.is_set():
            status = self.source.progress()["status"]
            if status == "done":
                return True
            if status in ("failed", "none"):
                return False
            self.stop.wait(self.poll_s)
        return False

    def _explain_all(self) -> None:
        from mechscope.explain.backends import default_embedder
        from mechscope.explain.jobs import Backends, JobConfig, select_nodes
        from mechscope.explain.records import RecordConfig

        if not self._wait_for_dataset():
            return
        ds = self.source.dataset()
        assert ds is not None
        cfg = JobConfig(records=RecordConfig(extra_random=0), forwards=False)
        units = ds.units()
        nodes = sorted(select_nodes(ds), key=lambda n: (units[n[0]][0] * units[n[0]][1], n))
        embed = default_embedder()
        self._explain(nodes, Backends(embed=embed), cfg, BATCH, "baseline")
        if self.llm is None or self.stop.is_set():
            return
        llm = self.llm()  # loaded here, after the baseline pass: its own copy, this thread's
        self._explain(nodes, Backends(explainer=llm, embed=embed), cfg, 1, f"{llm.name} LLM ({llm.model})")

    def _explain(self, nodes: list[Node], backends: Backends, cfg: JobConfig, batch: int, what: str) -> None:
        from mechscope.explain.jobs import explain_node

        ds = self.source.dataset()
        assert ds is not None
        done = self._retry(lambda store: store.done(*backends.key))
        if done is None:
            return
        todo = [n for n in nodes if n not in done]
        log.info("%s explanations: %d of %d units to do", what, len(todo), len(nodes))
        for i in range(0, len(todo), batch):
            if self.stop.is_set():
                return
            rows = [explain_node(ds, node, self.model, backends, cfg) for node in todo[i : i + batch]]
            if self._retry(functools.partial(_add_all, rows=rows)) is None:
                return
            self.done += len(rows)
            self.llm_done += len(rows) if backends.explainer is not None else 0
        log.info("%s explanations: done (%d units)", what, len(todo))

    def _retry(self, work: Callable[[ExplanationStore], _T]) -> _T | None:
        """``work`` on the store opened for writing, waiting while a `mechscope explain` holds the
        file; None when stopped first."""
        assert self.source.root is not None
        while not self.stop.is_set():
            try:
                with open_store(self.source.root, read_only=False) as store:
                    return work(store)
            except StoreLocked:
                self.stop.wait(self.poll_s)
        return None
