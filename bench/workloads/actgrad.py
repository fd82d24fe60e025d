"""Activation x gradient at every MLP neuron for a logit difference at the last position.

Each implementation runs one forward that keeps every layer's MLP activation (mechscope
``blocks.{l}.mlp.post``, transformers' ``mlp.down_proj`` input, TransformerLens ``hook_post``)
and one backward of ``logit[target] - logit[distractor]`` that keeps their gradients, then sums
activation x gradient over positions per neuron: (n_layers, d_mlp). Only the last position is
unembedded, each in its library's way. Every peer's result is checked against mechscope's
before it is timed; one that disagrees is not timed.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import torch

from bench.workloads import Context, build_impls, rel_diff, timed
from mechscope.models.decoder import HookedDecoder

TOLERANCE = 1e-3  # relative to the largest |act x grad|

ActGrad = Callable[[torch.Tensor, int, int], torch.Tensor]


def mechscope_actgrad(model: HookedDecoder, x: torch.Tensor, target: int, distractor: int) -> torch.Tensor:
    """The same computation through mechscope's public hook API."""
    n = model.cfg.n_layers
    acts: dict[int, torch.Tensor] = {}
    grads: dict[int, torch.Tensor] = {}

    def keep(store: dict[int, torch.Tensor], layer: int) -> Callable[[torch.Tensor, Any], None]:
        def fn(t: torch.Tensor, hook: Any) -> None:
            store[layer] = t.detach()

        return fn

    names = [f"blocks.{i}.mlp.post" for i in range(n)]
    fwd = [(nm, keep(acts, i)) for i, nm in enumerate(names)]
    bwd = [(nm, keep(grads, i)) for i, nm in enumerate(names)]
    with torch.enable_grad(), model.hooks(fwd=fwd, bwd=bwd):
        logits = model(x, logits_from=-1)
        (logits[0, -1, target] - logits[0, -1, distractor]).backward()
    return torch.stack([(acts[i] * grads[i]).sum((0, 1)) for i in range(n)])


def factories(ctx: Context) -> dict[str, Callable[[], ActGrad]]:
    def hf() -> ActGrad:
        from bench.peers import hf as peer

        return partial(peer.actgrad, ctx.hf("sdpa"))

    def tl(which: str) -> ActGrad:
        from bench.peers import tlens

        return partial(tlens.actgrad, ctx.tl() if which == "tl" else ctx.bridge())

    def nnsight() -> ActGrad:
        from bench.peers import nns

        return partial(nns.actgrad, ctx.nnsight())

    return {
        "mechscope": lambda: partial(mechscope_actgrad, ctx.model),
        "hf-sdpa": hf,
        "tl": lambda: tl("tl"),
        "tl-bridge": lambda: tl("tl-bridge"),
        "nnsight": nnsight,
    }


def agreeing(
    ctx: Context, fns: dict[str, ActGrad], x: torch.Tensor, pair: tuple[int, int]
) -> dict[str, ActGrad]:
    """The implementations whose act x grad matches mechscope's (all of them when it is absent)."""
    if "mechscope" not in fns:
        return fns
    ref = fns["mechscope"](x, *pair)
    keep = {}
    for name, fn in fns.items():
        if name == "mechscope":
            keep[name] = fn
            continue
        try:
            ok = ctx.check(
                f"act x grad {x.shape[1]} tokens: {name} vs mechscope (relative)",
                rel_diff(fn(x, *pair), ref),
                TOLERANCE,
            )
        except Exception as e:
            ctx.skipped[name] = f"failed: {type(e).__name__}: {e}"
            continue
        if ok:
            keep[name] = fn
        else:
            ctx.skipped[name] = "its act x grad disagrees with mechscope's (see checks): not timed"
    return keep


def run(ctx: Context, impls: list[str]) -> dict[str, Any]:
    fns = build_impls(ctx, impls, factories(ctx))
    pair = ctx.subject.logit_pair()
    tokens = ctx.subject.tokens(max(ctx.lengths))
    cells: dict[str, Any] = {}
    for n in ctx.lengths:
        x = tokens[:, :n]
        fns = agreeing(ctx, fns, x, pair)
        cells[str(n)], _ = timed(
            {k: partial(f, x, *pair) for k, f in fns.items()}, ctx.cell_s, n, ctx.quick, warmup=0
        )  # the agreement check was each one's warm-up
        print(f"  act x grad {n:4d} tokens: {next(iter(cells[str(n)].values()))['n']} rounds", flush=True)
    return {"cells": cells, "info": {}}
