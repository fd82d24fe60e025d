"""Joining or starting a Ray cluster, shared by the commands that scale out on it (``collate
--ray``, ``explain --ray``). Ray is an optional extra (``mechscope[ray]``), imported only here."""

from __future__ import annotations

import logging
import os
from typing import Any

from mechscope.errors import InputError


def ray_module() -> Any:
    """The ``ray`` module, or an :class:`InputError` saying how to install it."""
    try:
        import ray
        import ray.util
    except ImportError:
        raise InputError("--ray needs Ray: pip install 'mechscope[ray]' (or pip install ray)") from None
    return ray


def connect(ray: Any, address: str | None) -> bool:
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


def worker_count(ray: Any, workers: int | None) -> int:
    """``workers``, or one per GPU of the cluster, or one per CPU when it has no GPU."""
    if workers is not None and workers < 1:
        raise InputError(f"--workers must be at least 1, got {workers}")
    res = ray.cluster_resources()
    return workers or int(res.get("GPU", 0) or res.get("CPU", 1)) or 1


def share(ray: Any, n: int) -> tuple[float, float]:
    """The CPUs and GPUs each of ``n`` workers reserves: the cluster's, shared evenly (fractions when
    there are more workers than CPUs, so that they all start)."""
    res = ray.cluster_resources()
    cpus, gpus = float(res.get("CPU", 1)), float(res.get("GPU", 0))
    per_cpu = max(1.0, cpus // n) if n <= cpus else cpus / n
    return per_cpu, min(1.0, gpus / n) if gpus else 0.0
