"""Process memory settings that make activation-heavy forwards fast on CPU.

glibc's malloc hands every freed block over its (dynamic) mmap threshold back to the kernel and
trims the heap's top as soon as it passes 128 KiB. A forward that keeps its activations
(``run_with_cache`` of SmolLM2 at 512 tokens holds 1.4 GB) then gets fresh pages on every call,
and each 4 KiB page faults in zeroed: measured on this project's 2-core VMs, 300k faults that
made ``run_with_cache`` 2.0-2.8x a plain forward instead of 1.1-1.2x. :func:`keep_freed_memory`
tells glibc to keep freed memory for reuse. The cost: the process's resident memory stays at
its peak instead of shrinking after a big call, the right trade for a debugger that runs the
same kind of call again and again.

:func:`mechscope.load_model` applies it once per process, except where the user has set
``MECHSCOPE_KEEP_FREED_MEMORY=0`` or tuned malloc themselves with ``MALLOC_*_`` variables.
Where it is not in effect, ``run_with_cache`` recycles its own buffers instead
(:mod:`mechscope.models.buffer_pool`).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import platform

log = logging.getLogger(__name__)

# From glibc's malloc.h.
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3
# Blocks under this come from the reusable heap: 1 GiB covers the logits of a 2k-token prompt
# (400 MB for SmolLM2). glibc before 2.35 caps it at 32 MiB, which we fall back to.
_MMAP_THRESHOLDS = (1 << 30, 32 << 20)
_TRIM_THRESHOLD = 2**31 - 1  # mallopt takes a C int: the largest value it can express
_TOP_PAD = 256 << 20  # grow the heap in large steps

_applied: bool | None = None


def keep_freed_memory() -> bool:
    """Ask glibc to keep freed memory for reuse (idempotent); True where it took effect.

    Equivalent to starting Python with ``MALLOC_MMAP_THRESHOLD_=1073741824
    MALLOC_TRIM_THRESHOLD_=2147483647 MALLOC_TOP_PAD_=268435456``. A no-op returning False on
    other C libraries and operating systems.
    """
    global _applied
    if _applied is None:
        _applied = _apply()
    return _applied


def keep_freed_memory_by_default() -> bool:
    """:func:`keep_freed_memory` unless the environment opts out (see the module docstring)."""
    if os.environ.get("MECHSCOPE_KEEP_FREED_MEMORY", "1").strip().lower() in ("0", "false", "no", "off"):
        return False
    if "glibc.malloc" in os.environ.get("GLIBC_TUNABLES", "") or any(
        k.startswith("MALLOC_") and k.endswith("_") for k in os.environ
    ):
        return False  # the user tuned malloc: theirs wins
    return keep_freed_memory()


def is_keeping_freed_memory() -> bool:
    """Whether :func:`keep_freed_memory` has taken effect in this process."""
    return bool(_applied)


def _apply() -> bool:
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    name = ctypes.util.find_library("c")
    if not name:
        return False
    libc = ctypes.CDLL(name)

    def mallopt(param: int, value: int) -> bool:
        return bool(libc.mallopt(ctypes.c_int(param), ctypes.c_int(value)) == 1)

    ok = any(mallopt(_M_MMAP_THRESHOLD, v) for v in _MMAP_THRESHOLDS)
    ok = mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD) and ok
    ok = mallopt(_M_TOP_PAD, _TOP_PAD) and ok
    if not ok:
        log.debug("mallopt refused a setting; malloc keeps its defaults")
    return ok
