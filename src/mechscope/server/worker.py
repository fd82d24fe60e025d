"""Model work off the event loop: one job at a time per model, a bounded queue, a result cache.

A model's forward uses every core and its hooks are model state, so jobs on one model run one
after another on a single worker thread. The event loop stays free to answer other requests
(model info, static files, a 503 when the queue is full). Results are cached by request, so
toggling a display option in the UI, or reloading a shared link, costs nothing; identical
requests in flight share one computation.
"""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


class QueueFull(Exception):
    """More jobs are waiting than the queue holds; the client should retry later."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"the model is busy ({retry_after} s estimated); retry later")
        self.retry_after = retry_after


class ModelWorker:
    def __init__(self, queue_size: int, cache_size: int) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mechscope-model")
        self._queue_size = queue_size
        self._pending = 0  # jobs submitted and not finished, the running one included
        self._cache: OrderedDict[str, Any] = OrderedDict()
        self._cache_size = cache_size
        self._inflight: dict[str, asyncio.Future[Any]] = {}
        self._lock = threading.Lock()
        self.last_job_seconds = 1.0  # for Retry-After

    @property
    def pending(self) -> int:
        return self._pending

    def cached(self, key: str) -> Any | None:
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        return None

    async def run(self, key: str | None, fn: Callable[[], T]) -> tuple[T, bool]:
        """``fn()`` on the model thread; (result, came from the cache). ``key`` None: never cached."""
        if key is not None:
            hit = self.cached(key)
            if hit is not None:
                return hit, True
            shared = self._inflight.get(key)
            if shared is not None:
                return await asyncio.shield(shared), True
        if self._pending >= self._queue_size:
            raise QueueFull(max(1, round(self.last_job_seconds * self._pending)))
        self._pending += 1
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        if key is not None:
            self._inflight[key] = fut
        try:
            result = await loop.run_in_executor(self._executor, self._timed, fn)
            fut.set_result(result)
        except BaseException as e:
            fut.set_exception(e)
            fut.exception()  # mark retrieved: waiters re-raise it, nobody else must
            raise
        finally:
            self._pending -= 1
            if key is not None:
                self._inflight.pop(key, None)
        if key is not None and self._cache_size > 0:
            with self._lock:
                self._cache[key] = result
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        return result, False

    def _timed(self, fn: Callable[[], T]) -> T:
        import time

        start = time.perf_counter()
        try:
            return fn()
        finally:
            self.last_job_seconds = time.perf_counter() - start

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
