"""The Debugger's computation against the cheapest passes that compute the same gradients.

- ``mechscope``: ``attribute(model, tokens, LogitDiff(...))`` with every default node kind, then
  ``.summary(k=10)``: what the Debugger page asks for.
- ``bare``: bench/engine.py's baseline, one plain forward (fused attention, no hooks, only the
  scored position unembedded) and backward of the same logit difference.
- ``hf-sdpa``: transformers' act x grad at every MLP neuron (the actgrad workload), the least a
  peer computes for a neuron attribution.

With ``--rss`` each implementation's peak resident memory over one call is measured instead
(one implementation per process, so that nothing else shares the peak).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import torch

from bench import machine
from bench.scripts import script
from bench.workloads import Context, build_impls, timed
from mechscope.engine.attribution import attribute
from mechscope.engine.directions import LogitDiff


def factories(ctx: Context) -> dict[str, Callable[[], Callable[[torch.Tensor], float]]]:
    model = ctx.model
    target, distractor = ctx.subject.logit_pair()
    direction = LogitDiff(targets=[[target]], distractors=[[distractor]])

    def debugger() -> Callable[[torch.Tensor], float]:
        def fn(x: torch.Tensor) -> float:
            attr = attribute(model, x, direction)
            attr.summary(k=10)
            return float(attr.value)

        return fn

    def bare() -> Callable[[torch.Tensor], float]:
        forward_with_grad = script("engine")._forward_with_grad

        def fn(x: torch.Tensor) -> float:
            with torch.enable_grad():
                logits = forward_with_grad(model, x, model.embed_tokens.weight)
                value = logits[0, -1, target] - logits[0, -1, distractor]
                value.backward()
            return float(value.detach())

        return fn

    def hf() -> Callable[[torch.Tensor], float]:
        from bench.peers import hf as peer

        model_hf = ctx.hf("sdpa")
        return lambda x: float(peer.actgrad(model_hf, x, target, distractor).sum())

    return {"mechscope": debugger, "bare": bare, "hf-sdpa": hf}


def run(ctx: Context, impls: list[str]) -> dict[str, Any]:
    fns = build_impls(ctx, impls, factories(ctx))
    tokens = ctx.subject.tokens(max(ctx.lengths))
    if ctx.rss:
        rss = {}
        for name, fn in fns.items():
            for n in ctx.lengths:
                x = tokens[:, :n]
                rss[f"{name}@{n}"] = machine.measure_peak(partial(fn, x))
                print(
                    f"  debugger peak RSS, {name}, {n} tokens: {rss[f'{name}@{n}']['peak_mib']:.0f} MiB",
                    flush=True,
                )
        return {"cells": {}, "rss": rss, "info": {}}
    cells: dict[str, Any] = {}
    for n in ctx.lengths:
        x = tokens[:, :n]
        cells[str(n)], outputs = timed({k: partial(f, x) for k, f in fns.items()}, ctx.cell_s, n, ctx.quick)
        if "mechscope" in outputs and "bare" in outputs:
            ctx.check(
                f"debugger {n} tokens: value vs the bare pass's",
                abs(outputs["mechscope"] - outputs["bare"]),
                1e-3,
            )
        print(f"  debugger {n:4d} tokens: {next(iter(cells[str(n)].values()))['n']} rounds", flush=True)
    return {"cells": cells, "info": {}}
