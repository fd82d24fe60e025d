"""SAE training steps on the same cached activations: mechscope vs SAELens vs a plain loop.

bench/sae.py's trainers, on ``blocks.{L}.resid_post`` (L = 6, or the last layer of a smaller
model), width 8 x d_model, batch 4096 tokens, fp32 for every trainer:

- ``mechscope``: ``dictionaries.training.step``, the full recipe (input normalisation, AuxK,
  unit-norm decoder, dead-latent counts);
- ``sae-lens``: SAELens' own ``SAETrainer.step`` (its TopK / standard ReLU + L1 training SAEs);
- ``bare``: a plain PyTorch loop (encode, top-k, decode, MSE, Adam; nothing else).

TopK (k = 32) and ReLU + L1, interleaved step by step on the same batches.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import torch

from bench.scripts import script
from bench.workloads import Context, build_impls, timed

ACTIVATIONS = ("topk", "relu")
BATCH, K = 4096, 32


def activations(ctx: Context, n_tokens: int) -> tuple[str, torch.Tensor]:
    """Stream-token activations of fixed random ids (a step's speed does not depend on the text)."""
    from mechscope.models.dictionaries.source import capture

    layer = min(6, ctx.model.cfg.n_layers - 1)
    hook = f"blocks.{layer}.resid_post"
    window = 128
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(3, ctx.model.cfg.d_vocab, (n_tokens // (window - 1) + 1, window), generator=g)
    out = []
    for b in range(0, len(ids), 16):
        got, _ = capture(ctx.model, ids[b : b + 16], [hook], None)
        out.append(got[hook])
    return hook, torch.cat(out)[:n_tokens]


def factories(
    ctx: Context, hook: str, x: torch.Tensor
) -> dict[str, Callable[[], dict[str, Callable[[torch.Tensor], Any]]]]:
    from mechscope.models.dictionaries.training import TrainConfig, new_trainee, step

    d, n = x.shape[1], 8 * x.shape[1]
    sae = script("sae")

    def ours() -> dict[str, Callable[[torch.Tensor], Any]]:
        out: dict[str, Callable[[torch.Tensor], Any]] = {}
        for act in ACTIVATIONS:
            cfg = TrainConfig(
                hooks=(hook,), n_latents=n, k=K, activation=act, tokens=10**12, precision="fp32"
            )
            t = new_trainee(cfg, hook, d, x[:BATCH], "bench")
            out[act] = partial(_step, step, t, cfg)
        return out

    def lens() -> dict[str, Callable[[torch.Tensor], Any]]:
        topk = sae.SaeLensLoop(d, n, K, 0.0, 1e-4, BATCH, 10**9, scale=False)
        relu = sae.SaeLensLoop(d, n, None, 1e-3, 1e-4, BATCH, 10**9, scale=False)
        return {"topk": topk.step, "relu": relu.step}

    def plain() -> dict[str, Callable[[torch.Tensor], Any]]:
        return {"topk": sae.PlainLoop(d, n, K).step, "relu": sae.PlainLoop(d, n, None, l1=1e-3).step}

    return {"mechscope": ours, "sae-lens": lens, "bare": plain}


def alternating(fn: Callable[[torch.Tensor], Any], batches: list[torch.Tensor]) -> Callable[[], Any]:
    """One training step per call, on the batches in turn."""
    calls = [0]

    def call() -> Any:
        calls[0] += 1
        return fn(batches[calls[0] % len(batches)])

    return call


def _step(step: Callable[..., Any], trainee: Any, cfg: Any, batch: torch.Tensor) -> Any:
    return step(trainee, cfg, batch, 1e-4)


def run(ctx: Context, impls: list[str]) -> dict[str, Any]:
    hook, x = activations(ctx, 2 * BATCH)
    trainers = build_impls(ctx, impls, factories(ctx, hook, x))
    batches = [x[:BATCH], x[BATCH:]]
    cells: dict[str, Any] = {}
    for act in ACTIVATIONS:
        fns = {name: alternating(t[act], batches) for name, t in trainers.items()}
        cells[act], _ = timed(fns, ctx.cell_s * 2, BATCH, ctx.quick)
        print(f"  SAE {act}: {next(iter(cells[act].values()))['n']} steps", flush=True)
    return {
        "cells": cells,
        "info": {"hook": hook, "d_in": x.shape[1], "latents": 8 * x.shape[1], "k": K, "batch": BATCH},
    }
