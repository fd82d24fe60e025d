"""Greedy KV-cached generation: 32 new tokens after a 16-token prompt (bench/forward.py's).

Each implementation is timed generating all the tokens and generating one (prefill + 1), in the
same rounds; decode ms/token is the difference over the remaining tokens. With the bytes of
weights one decode step reads, it gives the bandwidth the decode used, which the report puts
against the machine's measured read bandwidth.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import torch

from bench.subjects import weight_bytes
from bench.workloads import Context, build_impls, timed

PROMPT, NEW = 16, 32


def factories(ctx: Context) -> dict[str, Callable[[], Callable[[torch.Tensor, int], list[int]]]]:
    def ours() -> Callable[[torch.Tensor, int], list[int]]:
        return lambda p, k: ctx.model.generate(p, max_new_tokens=k, stop_tokens=[]).tokens[0]

    def hf() -> Callable[[torch.Tensor, int], list[int]]:
        model = ctx.hf("sdpa")
        model.generation_config.eos_token_id = None  # like stop_tokens=[]: always ``k`` tokens
        model.generation_config.pad_token_id = 0

        def fn(p: torch.Tensor, k: int) -> list[int]:
            out = model.generate(p, max_new_tokens=k, do_sample=False)
            return [int(t) for t in out[0, p.shape[1] :]]

        return fn

    return {"mechscope": ours, "hf-sdpa": hf}


def run(ctx: Context, impls: list[str]) -> dict[str, Any]:
    fns = build_impls(ctx, impls, factories(ctx))
    prompt = ctx.subject.tokens(PROMPT)
    cells_fns: dict[str, Callable[[], Any]] = {}
    for name, fn in fns.items():
        cells_fns[f"{name}|generate"] = partial(fn, prompt, NEW)
        cells_fns[f"{name}|prefill+1"] = partial(fn, prompt, 1)
    with torch.inference_mode():
        for fn in fns.values():
            fn(prompt, 2)  # warm-up: prefill and decode shapes, cheaply
        stats, outputs = timed(cells_fns, 0.0 if ctx.quick else ctx.cell_s * 3, 10**6, ctx.quick)
    cells: dict[str, dict[str, Any]] = {"generate": {}, "prefill+1": {}}
    for key, stat in stats.items():
        name, what = key.split("|")
        cells[what][name] = stat
    made = {name: outputs[f"{name}|generate"] for name in fns}
    for name, toks in made.items():
        if len(toks) != NEW:
            ctx.check(
                f"generation: {name} made {len(toks)} tokens, not {NEW}", float(abs(len(toks) - NEW)), 0
            )
    same = None
    if len(made) == 2:
        a, b = made.values()
        same = next((i for i, (p, q) in enumerate(zip(a, b, strict=False)) if p != q), min(len(a), len(b)))
    print(f"  generation: {next(iter(stats.values()))['n']} rounds", flush=True)
    return {
        "cells": cells,
        "info": {
            "prompt_tokens": PROMPT,
            "new_tokens": NEW,
            "identical_prefix": same,
            "weight_bytes": weight_bytes(ctx.model),
        },
    }
