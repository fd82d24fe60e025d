"""The workloads, each timed inside one worker process (``python -m bench.worker``).

A workload module has ``run(ctx, impls) -> dict`` (its implementations and their labels are in
``bench/catalog.py``). ``Context`` holds the model under test and builds each peer at most once
per process.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bench.summary import summarize

if TYPE_CHECKING:  # the load workload times its own imports: nothing heavy at import time here
    import torch

    from bench import _common
    from bench.subjects import Subject

NAMES = ("forward", "actgrad", "debugger", "generation", "cache", "load", "sae")


@dataclass
class Context:
    subject: Subject
    lengths: list[int]
    cell_s: float
    quick: bool
    rss: bool = False  # measure peak RSS of each implementation (one per process)
    folder: str | None = None  # the Hugging Face checkpoint folder of the load workload
    skipped: dict[str, str] = field(default_factory=dict)
    checks: list[dict[str, Any]] = field(default_factory=list)
    _built: dict[str, Any] = field(default_factory=dict)

    @property
    def model(self) -> Any:
        return self.subject.model

    def build(self, key: str, factory: Callable[[], Any]) -> Any:
        if key not in self._built:
            self._built[key] = factory()
        return self._built[key]

    # ----- the peers, built on the model under test's weights --------------------------------
    def hf_tokenizer(self) -> Any:
        from bench.peers import hf

        return self.build("hf-tokenizer", lambda: hf.tokenizer(self.model))

    def hf(self, attn: str) -> Any:
        from bench import _common

        return self.build(f"hf-{attn}", lambda: _common.hf_llama(self.model, attn))

    def tl(self) -> Any:
        from bench.peers import tlens

        n_ctx = max([*self.lengths, 64]) + 64
        return self.build("tl", lambda: tlens.hooked_transformer(self.model, n_ctx))

    def bridge(self) -> Any:
        from bench.peers import tlens

        return self.build("tl-bridge", lambda: tlens.bridge(self.model, self.hf_tokenizer()))

    def nnsight(self) -> Any:
        from bench.peers import nns

        return self.build("nnsight", lambda: nns.wrap(self.model, self.hf_tokenizer()))

    def bare(self) -> _common.BareLlama:
        from bench import _common

        return self.build("bare", lambda: _common.BareLlama(self.model))

    def check(self, what: str, value: float, tolerance: float) -> bool:
        ok = bool(value <= tolerance)
        self.checks.append({"what": what, "value": value, "tolerance": tolerance, "ok": ok})
        if not ok:
            print(f"  CHECK FAILED: {what}: {value:.2e} > {tolerance:g}", flush=True)
        return ok


def build_impls(ctx: Context, impls: list[str], factories: dict[str, Callable[[], Any]]) -> dict[str, Any]:
    """Each implementation's object from its factory; one that cannot be built is skipped with
    the reason (a peer version without the API used, say), not fatal."""
    out: dict[str, Any] = {}
    for impl in impls:
        if impl not in factories:
            ctx.skipped[impl] = "not part of this workload"
            continue
        try:
            out[impl] = factories[impl]()
        except Exception as e:  # a peer's failure must not lose the other peers' numbers
            ctx.skipped[impl] = f"could not be built: {type(e).__name__}: {e}"
            print(f"  skipped {impl}: {ctx.skipped[impl]}", flush=True)
    return out


def timed(
    fns: dict[str, Callable[[], Any]], cell_s: float, n_tokens: int, quick: bool, warmup: int | None = None
) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """``bench_interleaved`` with the harness's round policy; summaries (ms) and last outputs.

    Rounds: enough for the slowest implementation to spend ``cell_s`` being timed, at least 7
    for short prompts (cheap but jittery), 5 up to 128 tokens, 3 beyond or with ``quick``;
    ``warmup=0`` where every callable has just run (then the minimum is used).
    """
    from bench import _common

    min_reps = 3 if quick or n_tokens > 128 else 7 if n_tokens <= 64 else 5
    if warmup is None:
        warmup = 2 if n_tokens <= 64 else 1
    timings, outputs = _common.bench_interleaved(fns, cell_s, warmup=warmup, min_reps=min_reps, max_reps=40)
    return {name: summarize(t.samples) for name, t in timings.items()}, outputs


def rel_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    """max |a - b| / max |b|: one number for "these agree" that does not depend on scale."""
    scale = float(b.abs().max())
    return float((a.float() - b.float()).abs().max()) / (scale if scale > 0 else 1.0)


def stopwatch() -> Callable[[], float]:
    t0 = time.perf_counter()
    return lambda: time.perf_counter() - t0
