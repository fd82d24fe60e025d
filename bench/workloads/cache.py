"""Cache everything at one length: each library's "keep every activation" call vs its own forward.

- mechscope: ``model.run_with_cache(x)`` (every default hook point) vs ``model(x)``;
- TransformerLens (HookedTransformer and bridge): ``run_with_cache(x)`` (every hook point) vs a
  plain call;
- transformers: ``output_hidden_states=True, output_attentions=True`` (eager attention: the
  residual stream after each layer and each layer's pattern) vs a plain eager call.

Each cache-all call is timed interleaved with its own library's plain forward, so the
overhead ratio is paired; with ``--rss`` the peak resident memory of one cache-all call is
measured too (one implementation per process).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import torch

from bench import machine
from bench.workloads import Context, build_impls, timed

Pair = tuple[
    Callable[[torch.Tensor], Any], Callable[[torch.Tensor], Any], Callable[[Any], list[torch.Tensor]]
]


def _values(out: Any) -> list[torch.Tensor]:
    logits, cache = out
    return [logits, *cache.values()]


def factories(ctx: Context) -> dict[str, Callable[[], Pair]]:
    """Each implementation's (cache-all call, plain forward, the tensors its cache holds)."""

    def ours() -> Pair:
        m = ctx.model
        return (lambda x: m.run_with_cache(x), lambda x: m(x), _values)

    def hf() -> Pair:
        from bench.peers import hf as peer

        m = ctx.hf("eager")
        return (
            lambda x: peer.cache_all(m, x),
            lambda x: m(input_ids=x, use_cache=False).logits,
            peer.cache_tensors,
        )

    def tl(which: str) -> Pair:
        m = ctx.tl() if which == "tl" else ctx.bridge()
        return (lambda x: m.run_with_cache(x), lambda x: m(x), _values)

    return {"mechscope": ours, "hf-eager": hf, "tl": lambda: tl("tl"), "tl-bridge": lambda: tl("tl-bridge")}


def run(ctx: Context, impls: list[str]) -> dict[str, Any]:
    pairs = build_impls(ctx, impls, factories(ctx))
    (n,) = ctx.lengths
    x = ctx.subject.tokens(n)
    fns: dict[str, Callable[[], Any]] = {}
    for name, (cache_all, plain, _) in pairs.items():
        fns[f"{name}|cache"] = partial(cache_all, x)
        fns[f"{name}|plain"] = partial(plain, x)
    contents: dict[str, dict[str, float]] = {}
    rss: dict[str, Any] = {}
    with torch.inference_mode():
        for name, (cache_all, _, tensors) in pairs.items():
            held = tensors(cache_all(x))
            contents[name] = {
                "tensors": len(held),
                "mib": sum(t.numel() * t.element_size() for t in held) / 2**20,
            }
            del held
        if ctx.rss:
            # Before the timed rounds: with mechscope's malloc tuning the process keeps what
            # they freed, and the peak would then measure that rather than one call.
            for name, (cache_all, _, _) in pairs.items():
                rss[name] = machine.measure_peak(partial(cache_all, x))
                print(f"  cache-all peak RSS, {name}: {rss[name]['peak_mib']:.0f} MiB", flush=True)
        stats, _ = timed(fns, ctx.cell_s, n, ctx.quick)
    cells: dict[str, dict[str, Any]] = {"cache": {}, "plain": {}}
    for key, stat in stats.items():
        name, what = key.split("|")
        cells[what][name] = stat
    print(f"  cache-all {n} tokens: {next(iter(stats.values()))['n']} rounds", flush=True)
    return {"cells": cells, "rss": rss, "info": {"tokens": n, "contents": contents}}
