"""Model work off the event loop: one job at a time per model, a bounded fair queue, a result cache.

A model's forward uses every core and its hooks are model state, so jobs on one model run one
after another on a single worker thread. The event loop stays free to answer other requests
(model info, static files, a 503 when the queue is full). Results are cached by request, so
toggling a display option in the UI, or reloading a shared link, costs nothing; identical
requests in flight share one computation.

Back-pressure: at most ``queue_size`` jobs wait, and the last quarter of the queue is kept for
clients (by address) that have no job in it, so a client that floods the queue cannot starve one
that waits its Retry-After. The Retry-After of a 503 is the measured mean job time times the jobs
ahead.

Stopping: each job has a deadline (``max_job_seconds``) and a stop flag, set when its client
disconnects (and no other request shares the job). A queued job whose flag is set never starts; a
running one stops where it calls :meth:`ModelWorker.check_stop` (patching sweeps do, between
chunks), so the model thread is freed.

Contention: while the server's own background work runs (the demo's collation process, its
explanations, a maps computation; ``contended``), each job runs on one thread. A job's ops are
thousands of short parallel regions, and each waits for its slowest thread; with the other core
busy (even at nice 10, even at SCHED_IDLE) that thread is often not running. On a 2-core EPYC the
Debugger's IOI request took 0.5-4.7 s on 2 threads beside the collation, 0.21 s on one, and 0.17 s
on 2 threads alone.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any, TypeVar

import torch

from mechscope.errors import MechscopeError

T = TypeVar("T")
DISCONNECT_POLL_S = 0.25


class QueueFull(Exception):
    """More jobs are waiting than the queue holds; the client should retry later."""

    def __init__(self, retry_after: int, why: str = "the model is busy") -> None:
        super().__init__(f"{why} ({retry_after} s estimated); retry later")
        self.retry_after = retry_after


class JobStopped(MechscopeError):
    """A job stopped before its end: past its time limit, or its client went away."""


@dataclass
class _Job:
    stop: threading.Event = field(default_factory=threading.Event)
    deadline: float = math.inf
    waiters: int = 1  # requests awaiting this job (identical requests share it)


@contextmanager
def one_thread() -> Iterator[None]:
    """torch's intra-op threads set to one for a block, then restored (the calling thread's
    OpenMP count; MKL's is process-wide)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class ModelWorker:
    def __init__(
        self,
        queue_size: int,
        cache_size: int,
        max_job_seconds: float = math.inf,
        contended: Callable[[], bool] = lambda: False,
    ) -> None:
        self.contended = contended  # is the server's background work running? (see the module)
        self._executor: ThreadPoolExecutor | None = None  # made at the first job, again after close()
        self._queue_size = queue_size
        self._reserved = queue_size // 4  # slots only a client with no job queued may take
        self._pending = 0  # jobs submitted and not finished, the running one included
        self._by_client: Counter[str] = Counter()
        self._cache: OrderedDict[str, Any] = OrderedDict()
        self._cache_size = cache_size
        self._inflight: dict[str, tuple[asyncio.Future[Any], _Job]] = {}
        self._lock = threading.Lock()
        self._current: _Job | None = None  # the job on the model thread
        self.max_job_seconds = max_job_seconds
        self.mean_job_seconds = 1.0  # moving average, for Retry-After

    @property
    def pending(self) -> int:
        return self._pending

    def cached(self, key: str) -> Any | None:
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        return None

    def retry_after(self, ahead: int) -> int:
        return max(1, math.ceil(self.mean_job_seconds * ahead))

    async def run(
        self,
        key: str | None,
        fn: Callable[[], T],
        client: str = "",
        disconnected: Callable[[], Awaitable[bool]] | None = None,
    ) -> tuple[T, bool]:
        """``fn()`` on the model thread; (result, came from the cache). ``key`` None: never cached.
        ``client`` names the caller for the fair share; ``disconnected`` tells when it has gone."""
        if key is not None:
            hit = self.cached(key)
            if hit is not None:
                return hit, True
            shared = self._inflight.get(key)
            if shared is not None:
                shared[1].waiters += 1
                try:
                    return await asyncio.shield(shared[0]), True
                finally:
                    shared[1].waiters -= 1
        if self._pending >= self._queue_size:
            raise QueueFull(self.retry_after(self._pending))
        mine = self._by_client[client]
        if mine and self._pending >= self._queue_size - self._reserved:
            raise QueueFull(
                self.retry_after(self._pending), f"the model is busy and this client has {mine} jobs queued"
            )
        self._pending += 1
        self._by_client[client] += 1
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        job = _Job()
        if key is not None:
            self._inflight[key] = (fut, job)
        watch = asyncio.ensure_future(self._watch(job, disconnected)) if disconnected else None
        try:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mechscope-model")
            result = await loop.run_in_executor(self._executor, self._timed, job, fn)
            fut.set_result(result)
        except BaseException as e:
            fut.set_exception(e)
            fut.exception()  # mark retrieved: waiters re-raise it, nobody else must
            raise
        finally:
            if watch is not None:
                watch.cancel()
            self._pending -= 1
            self._by_client[client] -= 1
            if self._by_client[client] <= 0:
                del self._by_client[client]
            if key is not None:
                self._inflight.pop(key, None)
        if key is not None and self._cache_size > 0:
            with self._lock:
                self._cache[key] = result
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        return result, False

    @staticmethod
    async def _watch(job: _Job, disconnected: Callable[[], Awaitable[bool]]) -> None:
        while not job.stop.is_set():
            if await disconnected() and job.waiters <= 1:
                job.stop.set()
                return
            await asyncio.sleep(DISCONNECT_POLL_S)

    def _timed(self, job: _Job, fn: Callable[[], T]) -> T:
        if job.stop.is_set():
            raise JobStopped("the client went away before the job started")
        start = time.perf_counter()
        job.deadline = time.monotonic() + self.max_job_seconds
        self._current = job
        try:
            with one_thread() if self.contended() else nullcontext():
                return fn()
        finally:
            self._current = None
            elapsed = time.perf_counter() - start
            self.mean_job_seconds = 0.7 * self.mean_job_seconds + 0.3 * elapsed

    def check_stop(self) -> None:
        """Called by a job between chunks of its work: raises :class:`JobStopped` when the job should
        stop (its client went away, or it ran past ``max_job_seconds``)."""
        job = self._current
        if job is None:
            return
        if job.stop.is_set():
            raise JobStopped("the client went away; the job was stopped")
        if time.monotonic() > job.deadline:
            raise JobStopped(
                f"the job ran past {self.max_job_seconds:g} s (max_job_seconds) and was stopped; "
                "ask for fewer tokens or a coarser site"
            )

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None


@dataclass
class RequestJobs:
    """The worker as one request sees it: its jobs count against its client's share and stop when
    it disconnects."""

    worker: ModelWorker
    client: str
    disconnected: Callable[[], Awaitable[bool]] | None = None

    @property
    def pending(self) -> int:
        return self.worker.pending

    def cached(self, key: str) -> Any | None:
        return self.worker.cached(key)

    async def run(self, key: str | None, fn: Callable[[], T]) -> tuple[T, bool]:
        return await self.worker.run(key, fn, client=self.client, disconnected=self.disconnected)

    def check_stop(self) -> None:
        self.worker.check_stop()
