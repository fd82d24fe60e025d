"""Forward pass, batch 1, fp32, under ``torch.inference_mode()``: logits of every position."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import torch

from bench import _common
from bench.workloads import Context, build_impls, timed

TOLERANCE = 1e-3  # max |logit difference| from mechscope's forward (float32 reordering: ~5e-5)


def factories(ctx: Context) -> dict[str, Callable[[], Callable[[torch.Tensor], torch.Tensor]]]:
    def hf(attn: str) -> Callable[[torch.Tensor], torch.Tensor]:
        model = ctx.hf(attn)
        return lambda x: model(input_ids=x, use_cache=False).logits

    def nnsight() -> Callable[[torch.Tensor], torch.Tensor]:
        from bench.peers import nns

        lm = ctx.nnsight()
        return lambda x: nns.forward(lm, x)

    def tl(which: str) -> Callable[[torch.Tensor], torch.Tensor]:
        model = ctx.tl() if which == "tl" else ctx.bridge()
        return lambda x: model(x)

    return {
        "mechscope": lambda: ctx.model,
        "hf-eager": lambda: hf("eager"),
        "hf-sdpa": lambda: hf("sdpa"),
        "tl": lambda: tl("tl"),
        "tl-bridge": lambda: tl("tl-bridge"),
        "nnsight": nnsight,
        "bare": lambda: ctx.bare(),
        "floor": lambda: ctx.bare().matmul_floor,
    }


def run(ctx: Context, impls: list[str]) -> dict[str, Any]:
    fns = build_impls(ctx, impls, factories(ctx))
    cells: dict[str, Any] = {}
    gflop: dict[str, float] = {}
    diffs: dict[str, dict[str, float]] = {}
    tokens = ctx.subject.tokens(max(ctx.lengths))
    with torch.inference_mode():
        for n in ctx.lengths:
            x = tokens[:, :n]
            cells[str(n)], outputs = timed(
                {name: partial(f, x) for name, f in fns.items()}, ctx.cell_s, n, ctx.quick
            )
            gflop[str(n)] = _common.forward_flops(ctx.model.cfg, n) / 1e9
            if "mechscope" in outputs:
                ref = outputs["mechscope"]
                diffs[str(n)] = {}
                for name, out in outputs.items():
                    if name in ("mechscope", "floor"):
                        continue
                    d = float((out.float() - ref.float()).abs().max())
                    diffs[str(n)][name] = d
                    ctx.check(f"forward {n} tokens: {name} logits vs mechscope's (max abs)", d, TOLERANCE)
            first = next(iter(cells[str(n)].values()))
            print(f"  forward {n:4d} tokens: {first['n']} rounds", flush=True)
    return {"cells": cells, "info": {"gflop": gflop, "max_abs_logit_diff": diffs}}
