"""The machine a run measured: what it is, its matmul and memory-bandwidth limits, peak RSS.

The roofline is measured in the same run as the workloads, so each workload's fraction of it
(forward GFLOP/s over the matmul peak, generation's weight bytes per second over the read
bandwidth) compares numbers taken under the same load.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import os
import resource
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# distribution name -> what the report calls it; versions are read without importing anything.
DISTRIBUTIONS = {
    "torch": "torch",
    "transformers": "transformers",
    "transformer-lens": "TransformerLens",
    "nnsight": "nnsight",
    "sae-lens": "SAELens",
    "matplotlib": "matplotlib",
    "mechscope": "mechscope",
}


def versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for dist in DISTRIBUTIONS:
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = None
    return out


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or "unknown CPU"


def describe() -> dict[str, Any]:
    """CPU, cores, versions, date and load average: the header of every report."""
    import platform

    return {
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "versions": versions(),
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "load_average": list(os.getloadavg()),
    }


def _best_of(fn: Callable[[], object], reps: int) -> list[float]:
    fn()  # warm-up: thread pool, first-touch of the buffers
    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def roofline(quick: bool = False) -> dict[str, Any]:
    """fp32 matmul GFLOP/s (a large and a SmolLM2-sized small sgemm) and read/copy GB/s.

    The median is the figure the fractions use (a limit the workloads saw, not a best case);
    the maximum is kept beside it.
    """
    import torch

    def stat(values: list[float]) -> dict[str, float]:
        return {"median": statistics.median(values), "max": max(values), "min": min(values), "n": len(values)}

    out: dict[str, Any] = {"threads": torch.get_num_threads()}
    g = torch.Generator().manual_seed(0)
    square = torch.randn(2, 2048, 2048, generator=g)
    times = _best_of(lambda: square[0] @ square[1], 3 if quick else 7)
    out["sgemm_2048_gflops"] = stat([2 * 2048**3 / t / 1e9 for t in times])
    x, w = torch.randn(16, 576, generator=g), torch.randn(576, 1536, generator=g)
    inner = 50

    def small() -> None:
        for _ in range(inner):
            x @ w

    times = _best_of(small, 10 if quick else 30)
    out["sgemm_16x576x1536_gflops"] = stat([2 * 16 * 576 * 1536 * inner / t / 1e9 for t in times])
    n_bytes = (256 if quick else 1024) << 20
    big = torch.ones(n_bytes // 4)
    # Read bandwidth as a decode step sees it: one vector times a weight matrix that does not
    # fit in any cache (every byte read once); summing the buffer is the plain-read reference.
    side = int((n_bytes // 4) ** 0.5)
    matrix, vector = big[: side * side].view(side, side), torch.ones(1, side)
    times = _best_of(lambda: torch.nn.functional.linear(vector, matrix), 3 if quick else 7)
    out["read_gb_s"] = stat([side * side * 4 / t / 1e9 for t in times])
    times = _best_of(big.sum, 3 if quick else 7)
    out["sum_gb_s"] = stat([n_bytes / t / 1e9 for t in times])
    half = big[: big.numel() // 2]
    dst = torch.empty_like(half)
    times = _best_of(lambda: dst.copy_(half), 3 if quick else 7)
    out["copy_gb_s"] = stat([2 * half.numel() * 4 / t / 1e9 for t in times])  # read + write
    out["buffer_mib"] = n_bytes >> 20
    return out


# ----- peak resident memory ---------------------------------------------------------------------
def reset_peak_rss() -> bool:
    """Restart the kernel's peak-RSS counter (VmHWM) of this process; False where it cannot.

    Linux >= 4.0: writing 5 to /proc/self/clear_refs resets it, so the peak of one call can be
    read without the load's own transient peak.
    """
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _status_kib(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def rss_mib() -> float | None:
    kib = _status_kib("VmRSS")
    return None if kib is None else kib / 1024


def peak_rss_mib() -> float:
    """The process's peak resident memory since start, or since :func:`reset_peak_rss`."""
    kib = _status_kib("VmHWM")
    if kib is None:  # not Linux: ru_maxrss (KiB on Linux, bytes on macOS) since start
        kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kib / 1024


def measure_peak(fn: Callable[[], object]) -> dict[str, Any]:
    """Peak RSS of one call of ``fn`` (after a warm call), and the resident memory before it."""
    fn()
    before = rss_mib()
    reset = reset_peak_rss()
    fn()
    return {"peak_mib": peak_rss_mib(), "before_mib": before, "peak_of_this_call_only": reset}
