"""Baseline explanations of the demo's dataset, written in the background once its collation is done.

``mechscope demo`` collates a slice of the corpus in a background process (server/datasets.py); when
it has finished, a thread of the server gives every collated unit the baseline explanation (no LLM:
the tokens its top examples peak on, what precedes them, what it promotes) with the scores that need
no LLM, so that node pages and the Debugger's node table show explanations without a separate
``mechscope explain``. It reads the dataset alone and the model's weights (promoted tokens), never
runs a forward: the model's worker thread owns its hooks. Kinds with fewer units come first (heads
before neurons), nodes already explained are skipped (a restart resumes), and rows are written in
small batches, the file opened for writing only meanwhile, so the API's reads take turns with it.

Every open of ``explanations.duckdb`` in this process goes through :func:`open_store`: DuckDB refuses
a second connection to one file with another mode (read-only vs read-write) in the same process.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from mechscope.explain.store import ExplanationStore, StoreLocked

if TYPE_CHECKING:
    from mechscope.models.decoder import HookedDecoder
    from mechscope.server.datasets import DatasetSource

log = logging.getLogger("mechscope.server")
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


class BackgroundExplainer:
    """A daemon thread: waits for ``source``'s collation to finish, then explains its units."""

    def __init__(self, source: DatasetSource, model: HookedDecoder, poll_s: float = POLL_S) -> None:
        self.source, self.model, self.poll_s = source, model, poll_s
        self.stop = threading.Event()
        self.done = 0  # nodes explained by this thread
        self.finished = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mechscope-explain", daemon=True)

    def start(self) -> None:
        self._thread.start()

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
        from mechscope.explain.jobs import Backends, JobConfig, explain_node, select_nodes
        from mechscope.explain.records import RecordConfig

        if not self._wait_for_dataset():
            return
        ds = self.source.dataset()
        assert ds is not None and self.source.root is not None
        backends = Backends(embed=default_embedder())
        cfg = JobConfig(records=RecordConfig(extra_random=0), forwards=False)
        units = ds.units()
        nodes = sorted(select_nodes(ds), key=lambda n: (units[n[0]][0] * units[n[0]][1], n))
        done: set[tuple[str, int, int]] | None = None
        while done is None and not self.stop.is_set():
            try:
                with open_store(self.source.root, read_only=False) as store:
                    done = store.done(*backends.key)
            except StoreLocked:  # a `mechscope explain` holds it: wait for it
                self.stop.wait(self.poll_s)
        todo = [n for n in nodes if done is not None and n not in done]
        log.info("baseline explanations: %d of %d units to do", len(todo), len(nodes))
        for i in range(0, len(todo), BATCH):
            if self.stop.is_set():
                return
            rows = [explain_node(ds, node, self.model, backends, cfg) for node in todo[i : i + BATCH]]
            while not self.stop.is_set():
                try:
                    with open_store(self.source.root, read_only=False) as store:
                        for row in rows:
                            store.add(row)
                    break
                except StoreLocked:
                    self.stop.wait(self.poll_s)
            self.done += len(rows)
        log.info("baseline explanations: done (%d units)", self.done)
