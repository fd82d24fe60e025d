"""Sparse-autoencoder training speed, in one run, with ratios against baselines run alongside.

    python bench/sae.py                   # SmolLM2 blocks.6.resid_post, 576 -> 4608, k=32
    python bench/sae.py --quick           # fewer steps, one width for the decode comparison
    python bench/sae.py --random-weights  # SmolLM2's shape, no GGUF needed
    python bench/sae.py --json out.json

1. Training tokens/s on cached activations (batch 4096), interleaved round by round:
   - "mechscope topk (dense decode)": :func:`mechscope.models.dictionaries.training.step`, the full
     recipe (normalised inputs, AuxK bookkeeping, unit-norm decoder with the parallel gradient
     removed, dead-latent counts);
   - "mechscope topk (sparse decode)": the same with ``decode="sparse"`` (embedding_bag);
   - "plain PyTorch topk loop": encode, top-k, scatter, decode, MSE, Adam; nothing else;
   - "mechscope relu + L1" and "plain PyTorch relu + L1 loop" (the issue's 576 -> 4608 ReLU+L1 case).
2. Sparse vs dense TopK decoding (forward + backward of the decoder alone) at widths 4608, 9216 and
   18432 (SmolLM2's 8x, 16x and 32x).
3. Capturing activations for three layers: one forward feeding all three vs one forward per layer.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    bench_interleaved,
    busy_warning,
    contention_probe,
    load_model_under_test,
    table,
    write_json,
)

from mechscope.models.dictionaries.source import capture
from mechscope.models.dictionaries.training import TrainConfig, decode_topk, new_trainee, step


def cached_activations(model: torch.nn.Module, hooks: list[str], tokens: int, window: int = 128) -> dict:
    """Stream-token activations at ``hooks`` for ``tokens`` tokens of random-but-fixed ids (the
    speed of a step does not depend on the text)."""
    g = torch.Generator().manual_seed(0)
    n = math.ceil(tokens / (window - 1))
    ids = torch.randint(100, 40000, (n, window), generator=g)
    ids[:, 0] = 0
    out: dict[str, list[torch.Tensor]] = {h: [] for h in hooks}
    for b in range(0, n, 16):
        got, _ = capture(model, ids[b : b + 16], hooks, None)  # type: ignore[arg-type]
        for h in hooks:
            out[h].append(got[h])
    return {h: torch.cat(v)[:tokens] for h, v in out.items()}


class PlainLoop:
    """The baseline: a TopK (or ReLU + L1) SAE trained with nothing but its loss and Adam."""

    def __init__(self, d: int, n: int, k: int | None, l1: float = 0.0) -> None:
        g = torch.Generator().manual_seed(0)
        self.w_dec = torch.nn.Parameter(torch.randn(n, d, generator=g) / math.sqrt(d))
        self.w_enc = torch.nn.Parameter(self.w_dec.detach().T.clone())
        self.b_enc = torch.nn.Parameter(torch.zeros(n))
        self.b_dec = torch.nn.Parameter(torch.zeros(d))
        self.k, self.l1 = k, l1
        self.opt = torch.optim.Adam([self.w_enc, self.w_dec, self.b_enc, self.b_dec], lr=1e-4)

    def step(self, x: torch.Tensor) -> float:
        pre = (x - self.b_dec) @ self.w_enc + self.b_enc
        if self.k is not None:
            vals, idx = pre.topk(self.k, dim=-1)
            acts = torch.zeros_like(pre).scatter(-1, idx, vals.relu())
        else:
            acts = pre.relu()
        loss = (acts @ self.w_dec + self.b_dec - x).pow(2).sum(-1).mean()
        if self.l1:
            loss = loss + self.l1 * acts.sum(-1).mean()
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return float(loss.detach())


def training_speed(x: torch.Tensor, n: int, k: int, batch: int, steps: int) -> list[list[str]]:
    d = x.shape[1]
    batches = [x[(i * batch) % (len(x) - batch) :][:batch] for i in range(steps)]
    hook = "blocks.6.resid_post"
    trainees = {}
    for name, act, decode in (
        ("dense", "topk", "dense"),
        ("sparse", "topk", "sparse"),
        ("relu", "relu", "dense"),
    ):
        cfg = TrainConfig(hooks=(hook,), n_latents=n, k=k, activation=act, decode=decode, tokens=10**12)
        trainees[name] = (new_trainee(cfg, hook, d, x[:4096], "bench"), cfg)
    plain_topk, plain_relu = PlainLoop(d, n, k), PlainLoop(d, n, None, l1=1e-3)
    it = {"i": 0}

    def run(fn):  # one step per call, on the next batch
        def call() -> None:
            fn(batches[it["i"] % steps])
            it["i"] += 1

        return call

    fns = {
        "mechscope topk (dense decode)": run(
            lambda b: step(trainees["dense"][0], trainees["dense"][1], b, 1e-4)
        ),
        "mechscope topk (sparse decode)": run(
            lambda b: step(trainees["sparse"][0], trainees["sparse"][1], b, 1e-4)
        ),
        "plain PyTorch topk loop": run(plain_topk.step),
        "mechscope relu + L1": run(lambda b: step(trainees["relu"][0], trainees["relu"][1], b, 1e-4)),
        "plain PyTorch relu + L1 loop": run(plain_relu.step),
    }
    timings, _ = bench_interleaved(fns, cell_s=steps * 0.0, warmup=1, reps=steps)
    base = {
        "topk": timings["plain PyTorch topk loop"].median_ms,
        "relu": timings["plain PyTorch relu + L1 loop"].median_ms,
    }
    rows = []
    for name, t in timings.items():
        ref = base["relu" if "relu" in name else "topk"]
        rows.append(
            [name, f"{t.median_ms:.0f}", f"{batch / t.median_ms * 1e3:,.0f}", f"{ref / t.median_ms:.2f}x"]
        )
    return rows


def decode_speed(widths: list[int], d: int, k: int, batch: int, reps: int) -> list[list[str]]:
    rows = []
    for n in widths:
        w = torch.nn.Parameter(torch.randn(n, d) / math.sqrt(d))
        g = torch.Generator().manual_seed(1)
        idx = torch.randint(0, n, (batch, k), generator=g)
        vals = torch.rand(batch, k, generator=g).requires_grad_()

        def fwd_bwd(
            sparse: bool, w: torch.Tensor = w, vals: torch.Tensor = vals, idx: torch.Tensor = idx
        ) -> None:
            decode_topk(w, vals, idx, sparse).sum().backward()

        timings, _ = bench_interleaved({"dense": lambda: fwd_bwd(False), "sparse": lambda: fwd_bwd(True)},
                                       cell_s=0, warmup=1, reps=reps)  # fmt: skip
        dense, sparse = timings["dense"].median_ms, timings["sparse"].median_ms
        rows.append([str(n), f"{dense:.1f}", f"{sparse:.1f}", f"{dense / sparse:.2f}x"])
    return rows


def capture_speed(model: torch.nn.Module, hooks: list[str], reps: int) -> list[list[str]]:
    ids = torch.randint(100, 40000, (16, 128), generator=torch.Generator().manual_seed(2))
    fns = {"one forward, all layers": lambda: capture(model, ids, hooks, None)}  # type: ignore[arg-type]
    fns["one forward per layer"] = lambda: [capture(model, ids, [h], None) for h in hooks]  # type: ignore[arg-type]
    timings, _ = bench_interleaved(fns, cell_s=0, warmup=1, reps=reps)
    tok = ids.numel() - ids.shape[0]
    one = timings["one forward, all layers"].median_ms
    return [[n, f"{t.median_ms:.0f}", f"{tok / t.median_ms * 1e3:,.0f}", f"{t.median_ms / one:.2f}x"]
            for n, t in timings.items()]  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--random-weights", action="store_true")
    ap.add_argument("--latents", type=int, default=4608)
    ap.add_argument("--k", type=int, default=32)
    ap.add_argument("--batch", type=int, default=4096)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    probe = contention_probe()
    model, which = load_model_under_test(args.random_weights)
    print(f"model: {which}; {torch.get_num_threads()} threads")
    if (w := busy_warning(probe)) is not None:
        print(w)
    steps = 4 if args.quick else 10
    hooks = ["blocks.3.resid_post", "blocks.6.resid_post", "blocks.9.resid_post"]
    with torch.no_grad():
        x = cached_activations(model, ["blocks.6.resid_post"], args.batch * 4)["blocks.6.resid_post"]
    out: dict = {"model": which, "probe": probe}
    header = ["implementation", "ms/step", "tok/s", "vs plain loop"]
    rows = training_speed(x, args.latents, args.k, args.batch, steps)
    print(f"\n1. training on cached activations: 576 -> {args.latents}, k={args.k}, batch {args.batch}")
    print(table(rows, header))
    out["training"] = rows
    widths = [args.latents] if args.quick else [4608, 9216, 18432]
    rows = decode_speed(widths, x.shape[1], args.k, args.batch, 3 if args.quick else 7)
    print(f"\n2. TopK decode, forward + backward, batch {args.batch}, k={args.k}")
    print(table(rows, ["latents", "dense ms", "sparse ms", "sparse speed-up"]))
    out["decode"] = rows
    with torch.no_grad():
        rows = capture_speed(model, hooks, 2 if args.quick else 4)
    print(f"\n3. capturing {', '.join(hooks)} from 16 x 128 tokens")
    print(table(rows, ["", "ms", "tok/s", "time vs one forward"]))
    out["capture"] = rows
    write_json(args.json, out)


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
