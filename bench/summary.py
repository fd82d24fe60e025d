"""Pure arithmetic of the harness: medians with their spread, ratios, target verdicts.

No torch here: the report and the tests use it on JSON alone.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any


def summarize(samples_s: Sequence[float]) -> dict[str, Any]:
    """Median and min-max of one implementation's timed repeats, in milliseconds.

    The raw samples are kept: ratios of two implementations timed in the same rounds are paired
    round by round (see :func:`ratio`).
    """
    if not samples_s:
        raise ValueError("no samples to summarize")
    ms = [s * 1e3 for s in samples_s]
    return {
        "median_ms": statistics.median(ms),
        "min_ms": min(ms),
        "max_ms": max(ms),
        "n": len(ms),
        "samples_s": list(samples_s),
    }


def ratio(num: dict[str, Any], den: dict[str, Any], paired: bool) -> dict[str, Any]:
    """``num`` / ``den`` as the ratio of their medians.

    ``paired``: both were timed in the same rounds of one process (interleaved), so round i of one
    is compared with round i of the other and the min-max of those per-round ratios is the
    spread. Across processes there is no such pairing and only the ratio of medians is given.
    """
    value = num["median_ms"] / den["median_ms"]
    out: dict[str, Any] = {"ratio": value, "min": None, "max": None, "paired": paired}
    a, b = num.get("samples_s") or [], den.get("samples_s") or []
    if paired and a and len(a) == len(b):
        per_round = [x / y for x, y in zip(a, b, strict=True) if y > 0]
        if per_round:
            out["min"], out["max"] = min(per_round), max(per_round)
    else:
        out["paired"] = False
    return out


@dataclass(frozen=True)
class Target:
    """One printed verdict: a measured ratio against the most it may be."""

    name: str  # what is compared, as printed
    value: float | None  # None: not measured in this run (a peer or a workload was skipped)
    limit: float
    where: str = ""  # e.g. "16 tokens"

    @property
    def met(self) -> bool | None:
        return None if self.value is None else self.value <= self.limit

    @property
    def verdict(self) -> str:
        return {True: "met", False: "NOT met", None: "not measured"}[self.met]

    def line(self) -> str:
        where = f" at {self.where}" if self.where else ""
        value = "n/a" if self.value is None else f"{self.value:.2f}x"
        return f"{self.name}{where}: {value} (target <= {self.limit:.2f}x) {self.verdict}"

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "met": self.met, "verdict": self.verdict}


def all_met(targets: Iterable[Target]) -> bool:
    """Whether every measured target is met (unmeasured ones do not count either way)."""
    return all(t.met is not False for t in targets)


def fmt_ms(stat: dict[str, Any] | None) -> str:
    """``median (min-max)`` in ms, with a precision that suits the size."""
    if stat is None:
        return "-"
    digits = 1 if stat["median_ms"] < 100 else 0
    return f"{stat['median_ms']:.{digits}f} ({stat['min_ms']:.{digits}f}-{stat['max_ms']:.{digits}f})"


def fmt_ratio(r: dict[str, Any] | None) -> str:
    """``1.02x (0.97-1.10)`` for a paired ratio, ``1.02x`` for an unpaired one."""
    if r is None:
        return "-"
    if r.get("min") is None:
        return f"{r['ratio']:.2f}x"
    return f"{r['ratio']:.2f}x ({r['min']:.2f}-{r['max']:.2f})"
