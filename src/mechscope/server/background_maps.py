"""The dataset maps computed in a background thread of the server (``POST /api/maps/compute``).

One job at a time per app: t-SNE over tens of thousands of units takes a minute or two of CPU, so a
second request while one runs gets the running job's status instead of a second copy. The thread
runs at nice 10 (as background_explain.py's does), reads the dataset alone (no model, no worker),
and writes each map atomically (data/maps.py): a server killed mid-way keeps the previous files.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mechscope.data.maps import MapParams, What
    from mechscope.data.store import Dataset

log = logging.getLogger("mechscope.server")


class MapsJob:
    """The app's one maps computation: its status, and the thread that runs it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.status = "idle"  # idle, computing, done, failed
        self.what: tuple[What, ...] = ()
        self.error: str | None = None
        self.started = 0.0
        self.finished = 0.0

    def start(self, ds: Dataset, what: tuple[What, ...], params: MapParams, force: bool) -> bool:
        """Start computing ``what``; False (nothing started) while a job runs."""
        with self._lock:
            if self.status == "computing":
                return False
            self.status, self.what, self.error = "computing", what, None
            self.started, self.finished = time.monotonic(), 0.0
            self._thread = threading.Thread(
                target=self._run, args=(ds, what, params, force), name="mechscope-maps", daemon=True
            )
            self._thread.start()
            return True

    def _run(self, ds: Dataset, what: tuple[What, ...], params: MapParams, force: bool) -> None:
        from mechscope.data.maps import compute_maps
        from mechscope.errors import MechscopeError

        with contextlib.suppress(AttributeError, OSError):  # behind the model's thread (Linux: per thread)
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
        try:
            compute_maps(ds, what, params, force=force)
            status, error = "done", None
        except MechscopeError as e:
            status, error = "failed", str(e)
        except Exception as e:  # a background job must not take the server down; the log has it
            log.exception("computing the dataset maps failed")
            status, error = (
                "failed",
                f"computing the maps failed ({type(e).__name__}); the server log has details",
            )
        with self._lock:
            self.status, self.error, self.finished = status, error, time.monotonic()

    @property
    def working(self) -> bool:
        return self.status == "computing"

    def computing(self, what: What) -> bool:
        return self.working and what in self.what

    def describe(self) -> dict[str, Any]:
        end = self.finished or time.monotonic()
        seconds = round(end - self.started, 1) if self.status != "idle" else None
        return {"status": self.status, "what": list(self.what), "error": self.error, "seconds": seconds}

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)
