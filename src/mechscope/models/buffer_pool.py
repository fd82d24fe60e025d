"""Recycled storage for the activations a cache keeps, where malloc would give it back to the kernel.

``run_with_cache`` of SmolLM2 at 512 tokens keeps 1.3 GB. Where :mod:`mechscope.models.memory`
cannot make glibc keep freed memory (another C library, macOS, or
``MECHSCOPE_KEEP_FREED_MEMORY=0``), the next call gets that memory back from the kernel as fresh
pages, each of which faults in zeroed: 375k faults a call, 1.33x the time of a process whose
malloc keeps it. There ``run_with_cache`` copies each activation it records into a buffer of this
pool and passes the copy on, and the model writes its largest outputs (logits, attention scores
and pattern) into pooled buffers directly (:func:`output_buffer`): 1.04-1.06x, no faults.

A buffer is reused only once nothing but the pool references its storage: the cache, and every
tensor or view taken from it, are gone. A tensor a user kept is never overwritten. At the end of
each recording, free buffers it did not use are dropped, so the pool holds at most what the
live caches hold plus one recording's worth (glibc, tuned, keeps the process's peak instead).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

import torch

from mechscope.models import memory

# The reference count of a storage: what tells the pool that no tensor uses a buffer any more.
_use_count: Callable[[int], int] | None = getattr(torch._C, "_storage_Use_Count", None)

_Key = tuple[torch.device, int]  # device, bytes


@dataclass(eq=False)
class _Buffer:
    storage: torch.UntypedStorage
    used: int  # the last recording that took it


class BufferPool:
    """Storages reused across recordings, keyed by device and size in bytes (any dtype)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buffers: dict[_Key, list[_Buffer]] = {}
        self._free: dict[_Key, list[_Buffer]] = {}
        self._owned: set[int] = set()  # data pointers of the buffers
        self._recording = 0

    @contextmanager
    def recording(self) -> Iterator[Callable[[torch.Tensor], torch.Tensor]]:
        """A recording: yields ``keep(x)``, which returns a copy of ``x`` in a pooled buffer (or
        ``x`` itself when it already is one). Buffers this recording did not take and nothing
        uses are dropped when it ends."""
        with self._lock:
            self._recording += 1
            number = self._recording
            self._free = {key: [b for b in bufs if self._unused(b)] for key, bufs in self._buffers.items()}

        def keep(x: torch.Tensor) -> torch.Tensor:
            return self._take(x, number)

        token = _RECORDING.set((self, number))
        try:
            yield keep
        finally:
            _RECORDING.reset(token)
            with self._lock:
                self._drop(lambda b: b.used < number)

    def nbytes(self) -> int:
        """Bytes held by the pool's buffers, in use or free."""
        with self._lock:
            return sum(b.storage.nbytes() for bufs in self._buffers.values() for b in bufs)

    def clear(self) -> None:
        """Drop every buffer that nothing uses (buffers in use leave the pool when freed)."""
        with self._lock:
            self._drop(lambda b: True)

    def _take(self, x: torch.Tensor, number: int) -> torch.Tensor:
        if x.untyped_storage().data_ptr() in self._owned:
            return x  # a pooled buffer (a copy passed on, or an op's output written into one)
        return self._empty(x.shape, x.dtype, x.device, number).copy_(x)

    def _empty(
        self, shape: torch.Size, dtype: torch.dtype, device: torch.device, number: int
    ) -> torch.Tensor:
        key = (device, shape.numel() * dtype.itemsize)
        with self._lock:
            free = self._free.get(key)
            buf = free.pop() if free else None
            if buf is None:
                buf = _Buffer(torch.UntypedStorage(key[1], device=device), number)
                self._buffers.setdefault(key, []).append(buf)
                self._owned.add(buf.storage.data_ptr())
            buf.used = number
            # The tensor holds a reference to the storage from here on: not free until it dies.
            return torch.empty(0, dtype=dtype, device=device).set_(buf.storage).view(shape)

    def _unused(self, buf: _Buffer) -> bool:
        assert _use_count is not None
        return _use_count(buf.storage._cdata) == 1  # the pool's own reference only

    def _drop(self, which: Callable[[_Buffer], bool]) -> None:
        for key, bufs in list(self._buffers.items()):
            gone = {id(b) for b in bufs if which(b) and self._unused(b)}
            if not gone:
                continue
            for b in bufs:
                if id(b) in gone:
                    self._owned.discard(b.storage.data_ptr())
            kept = [b for b in bufs if id(b) not in gone]
            if kept:
                self._buffers[key] = kept
            else:
                del self._buffers[key]
            if key in self._free:
                self._free[key] = [b for b in self._free[key] if id(b) not in gone]


POOL = BufferPool()
_RECORDING: ContextVar[tuple[BufferPool, int] | None] = ContextVar("mechscope_buffer_pool", default=None)


def output_buffer(shape: tuple[int, ...], like: torch.Tensor, *inputs: torch.Tensor) -> torch.Tensor | None:
    """An uninitialised pooled tensor for an op's ``out=`` while a recording of this pool runs,
    else None (the op allocates as usual). The model asks for its largest outputs (logits,
    attention scores and pattern) so that they are written once, into reused memory, instead of being
    written and then copied. None too when an input needs a gradient: ``out=`` has none."""
    current = _RECORDING.get()
    if current is None or (torch.is_grad_enabled() and any(t.requires_grad for t in (like, *inputs))):
        return None
    pool, number = current
    return pool._empty(torch.Size(shape), like.dtype, like.device, number)


def pool_for_caches() -> BufferPool | None:
    """The pool ``run_with_cache`` records into: only where freed memory would go back to the
    kernel (with glibc keeping it, the copy would only cost), and where torch exposes the
    storage reference counts that make reuse safe."""
    if _use_count is None or memory.is_keeping_freed_memory():
        return None
    return POOL
