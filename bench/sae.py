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
   - "mechscope relu + L1" and "plain PyTorch relu + L1 loop" (the issue's 576 -> 4608 ReLU+L1 case);
   - "SAELens ... (SAETrainer.step)": SAELens's own trainer step (TopKTrainingSAE / StandardTrainingSAE,
     its dead-feature counts, gradient clipping, Adam, schedulers), when SAELens is installed
     (`pip install -e .[bench]`); skipped with a line saying so otherwise.
2. Sparse vs dense TopK decoding (forward + backward of the decoder alone) at widths 4608, 9216 and
   18432 (SmolLM2's 8x, 16x and 32x).
3. Capturing activations for three layers: one forward feeding all three vs one forward per layer.
4. End to end from the model: each step's batch captured by a forward to layer 6 (32 windows of
   128 tokens, mechscope's forward for every trainer: SAELens's own runner needs a TransformerLens
   model, which cannot load this GGUF offline), then trained on.
5. Quality at equal width, L0 and token budget: mechscope and SAELens TopK (576 -> 4608, k=32) trained
   on the same cached activations of real corpus text (blocks.6.resid_post, same batches, same
   order, same lr), explained variance around the mean and L0 on held-out tokens; mechscope in
   both matmul precisions where the CPU has native bf16 (the default there).
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import sys
import time
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
from mechscope.models.dictionaries.training import (
    TrainConfig,
    decode_topk,
    lr_at,
    matmul_dtype,
    new_trainee,
    step,
)

HOOK = "blocks.6.resid_post"
AUTO = f"auto = {'bf16' if matmul_dtype('auto') == torch.bfloat16 else 'fp32'}"


def saelens_version() -> str | None:
    try:
        import sae_lens
    except ImportError:
        return None
    return str(sae_lens.__version__)


class SaeLensLoop:
    """SAELens's own trainer (SAETrainer.step) on a TopK or ReLU + L1 ("standard") SAE."""

    def __init__(
        self,
        d: int,
        n: int,
        k: int | None,
        l1: float,
        lr: float,
        batch: int,
        tokens: int,
        scale: bool,
        autocast: bool = False,
    ) -> None:
        from sae_lens import (
            SAETrainer,
            StandardTrainingSAE,
            StandardTrainingSAEConfig,
            TopKTrainingSAE,
            TopKTrainingSAEConfig,
        )
        from sae_lens.config import LoggingConfig, SAETrainerConfig

        torch.manual_seed(0)
        norm = "expected_average_only_in" if scale else "none"
        common = dict(d_in=d, d_sae=n, dtype="float32", device="cpu", normalize_activations=norm)
        if k is not None:
            self.sae = TopKTrainingSAE(TopKTrainingSAEConfig(k=k, **common))  # type: ignore[arg-type]
        else:
            self.sae = StandardTrainingSAE(StandardTrainingSAEConfig(l1_coefficient=l1, **common))  # type: ignore[arg-type]
        cfg = SAETrainerConfig(
            total_training_samples=tokens,
            train_batch_size_samples=batch,
            lr=lr,
            lr_end=lr,
            logger=LoggingConfig(log_to_wandb=False),
            n_batches_for_norm_estimate=8,
            autocast=autocast,  # torch.autocast to bfloat16 around the step, on CPU too
        )
        self.trainer = SAETrainer(cfg, self.sae, data_provider=iter(()))  # type: ignore[arg-type]

    def step(self, x: torch.Tensor) -> float:
        out = self.trainer.step(x)
        self.trainer.n_training_steps += 1
        return float(out.loss.detach())

    def fit(self, batches: list[torch.Tensor]) -> torch.nn.Module:
        """SAETrainer.fit on ``batches`` (the scale is estimated on the first 8, as SAELens does)."""
        self.trainer.data_provider = iter(batches[:8] + batches)
        return self.trainer.fit().eval()


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
    mine = {  # name -> (activation, decode, precision); "auto" is the default
        f"mechscope topk (sparse decode, {AUTO})": ("topk", "sparse", "auto"),
        "mechscope topk (sparse decode, fp32)": ("topk", "sparse", "fp32"),
        "mechscope topk (dense decode, fp32)": ("topk", "dense", "fp32"),
        f"mechscope relu + L1 ({AUTO})": ("relu", "dense", "auto"),
        "mechscope relu + L1 (fp32)": ("relu", "dense", "fp32"),
    }
    trainees = {}
    for name, (act, decode, precision) in mine.items():
        cfg = TrainConfig(hooks=(hook,), n_latents=n, k=k, activation=act, decode=decode, tokens=10**12,
                          precision=precision)  # fmt: skip
        trainees[name] = (new_trainee(cfg, hook, d, x[:4096], "bench"), cfg)
    plain_topk, plain_relu = PlainLoop(d, n, k), PlainLoop(d, n, None, l1=1e-3)
    lens = {}
    if saelens_version() is not None:
        total = 10**9
        for autocast in (False, True):
            tag = " autocast bf16" if autocast else ""
            lens[f"SAELens topk{tag} (SAETrainer.step)"] = SaeLensLoop(
                d, n, k, 0.0, 1e-4, batch, total, scale=False, autocast=autocast
            )
            lens[f"SAELens relu + L1{tag} (SAETrainer.step)"] = SaeLensLoop(
                d, n, None, 1e-3, 1e-4, batch, total, scale=False, autocast=autocast
            )
    it = {"i": 0}

    def run(fn):  # one step per call, on the next batch
        def call() -> None:
            fn(batches[it["i"] % steps])
            it["i"] += 1

        return call

    def mine_step(name: str):
        t, cfg = trainees[name]
        return run(lambda b: step(t, cfg, b, 1e-4))

    fns = {name: mine_step(name) for name in mine}
    fns["plain PyTorch topk loop"] = run(plain_topk.step)
    fns["plain PyTorch relu + L1 loop"] = run(plain_relu.step)
    for name, loop in lens.items():
        fns[name] = run(loop.step)
    timings, _ = bench_interleaved(fns, cell_s=steps * 0.0, warmup=1, reps=steps)
    return speed_rows(timings, batch)


def speed_rows(timings: dict, tokens: int) -> list[list[str]]:
    """ms, tok/s, and the ratios against the plain loop and SAELens (fp32, and with its bf16
    autocast) of the same activation."""
    rows = []
    for name, t in timings.items():
        act = "relu + L1" if "relu" in name else "topk"
        plain = timings[f"plain PyTorch {act} loop"].median_ms
        ratios = []
        for tag in ("", " autocast bf16"):
            lens = timings.get(f"SAELens {act}{tag} (SAETrainer.step)")
            ratios.append(f"{lens.median_ms / t.median_ms:.2f}x" if lens is not None else "n/a")
        rows.append([name, f"{t.median_ms:.0f}", f"{tokens / t.median_ms * 1e3:,.0f}",
                     f"{plain / t.median_ms:.2f}x", *ratios])  # fmt: skip
    return rows


def end_to_end_speed(model: torch.nn.Module, n: int, k: int, windows: int, reps: int) -> list[list[str]]:
    """Each call: one forward to layer 6 of ``windows`` x 128 random-but-fixed tokens, then one
    training step on its stream tokens, per implementation."""
    ids = torch.randint(100, 40000, (windows, 128), generator=torch.Generator().manual_seed(3))
    x0, _ = capture(model, ids, [HOOK], None)  # type: ignore[arg-type]
    d, batch = x0[HOOK].shape[1], x0[HOOK].shape[0]
    cfg = TrainConfig(hooks=(HOOK,), n_latents=n, k=k, tokens=10**12)
    ours = new_trainee(cfg, HOOK, d, x0[HOOK][:4096], "bench")
    plain = PlainLoop(d, n, k)
    trainers = {f"mechscope topk (sparse decode, {AUTO})": lambda x: step(ours, cfg, x, 1e-4),
                "plain PyTorch topk loop": plain.step}  # fmt: skip
    if saelens_version() is not None:
        trainers["SAELens topk (SAETrainer.step)"] = SaeLensLoop(d, n, k, 0, 1e-4, batch, 10**9, False).step

    def call(train: object) -> None:
        with torch.no_grad():
            x, _ = capture(model, ids, [HOOK], None)  # type: ignore[arg-type]
        train(x[HOOK])  # type: ignore[operator]

    fns = {name: (lambda t=t: call(t)) for name, t in trainers.items()}
    timings, _ = bench_interleaved(fns, cell_s=0, warmup=1, reps=reps)
    return speed_rows(timings, batch)


def real_activations(model: torch.nn.Module, tokens: int) -> torch.Tensor:
    """blocks.6.resid_post stream tokens of the default corpus (sinks left out, as training does)."""
    from mechscope.data.corpora import make_windows, open_corpus

    windows = make_windows(open_corpus(None), model.tokenizer, 128, int(tokens * 1.05)).tokens  # type: ignore[attr-defined]
    out = []
    for b in range(0, len(windows), 16):
        got, _ = capture(model, windows[b : b + 16], [HOOK], 10.0)  # type: ignore[arg-type]
        out.append(got[HOOK])
    return torch.cat(out)


def quality(x: torch.Tensor, n: int, k: int, train_tokens: int, batch: int, lr: float) -> list[list[str]]:
    """mechscope's recipe and SAELens's TopK trained on the same batches in the same order (one
    epoch of ``train_tokens``), evaluated on the tokens after them."""
    g = torch.Generator().manual_seed(0)
    train_x, held = x[:train_tokens], x[train_tokens:]
    train_x = train_x[torch.randperm(len(train_x), generator=g)]
    batches = [train_x[b : b + batch] for b in range(0, len(train_x) - batch + 1, batch)]
    rows = []
    precisions = ["auto", "fp32"] if matmul_dtype("auto") != torch.float32 else ["fp32"]
    for precision in precisions:  # bf16 matmuls must not cost quality: both, same batches
        cfg = TrainConfig(hooks=(HOOK,), n_latents=n, k=k, tokens=len(batches) * batch, batch_tokens=batch,
                          lr=lr, precision=precision)  # fmt: skip
        t = new_trainee(cfg, HOOK, x.shape[1], train_x[:16384], "bench")
        t0 = time.perf_counter()
        for b in batches:
            step(t, cfg, b, lr_at(cfg, t))
        seconds = time.perf_counter() - t0
        name = f"mechscope topk ({AUTO if precision == 'auto' else precision})"
        with torch.no_grad():
            c = t.coder.eval()
            rows.append(
                _quality_row(name, held, c.decode(c.encode(held)), c.encode(held), seconds, cfg.tokens)
            )
    if saelens_version() is not None:
        lens = SaeLensLoop(x.shape[1], n, k, 0.0, lr, batch, len(batches) * batch, scale=True)
        t0 = time.perf_counter()
        sae = lens.fit(batches)
        seconds = time.perf_counter() - t0
        with torch.no_grad():
            acts = sae.encode(held)
            rows.append(_quality_row("SAELens topk (SAETrainer.fit)", held, sae.decode(acts), acts, seconds,
                                     cfg.tokens))  # fmt: skip
    return rows


def _quality_row(
    name: str, x: torch.Tensor, recon: torch.Tensor, acts: torch.Tensor, s: float, n: int
) -> list[str]:
    ev = 1 - float((x - recon).pow(2).sum() / (x - x.mean(0)).pow(2).sum())
    ev0 = 1 - float((x - recon).pow(2).sum() / x.pow(2).sum())
    l0 = float((acts > 0).sum(-1).float().mean())
    dead = int(((acts > 0).sum(0) == 0).sum())
    return [name, f"{l0:.1f}", f"{ev:.4f}", f"{ev0:.4f}", str(dead), f"{s:.0f}", f"{n / s:,.0f}"]


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
    os.environ.setdefault("TQDM_DISABLE", "1")  # SAELens's progress bars would interleave with the tables
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--random-weights", action="store_true")
    ap.add_argument("--latents", type=int, default=4608)
    ap.add_argument("--k", type=int, default=32)
    ap.add_argument("--batch", type=int, default=4096)
    ap.add_argument("--quality-tokens", type=int, default=200_000, help="training tokens of section 5")
    ap.add_argument("--lr", type=float, default=1e-3, help="section 5's learning rate (both tools)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    probe = contention_probe()
    model, which = load_model_under_test(args.random_weights)
    print(f"model: {which}; {torch.get_num_threads()} threads")
    if (w := busy_warning(probe)) is not None:
        print(w)
    lens = saelens_version()
    print(
        f"SAELens {lens}"
        if lens
        else "SAELens is not installed (pip install -e .[bench]): its rows are skipped"
    )
    steps = 4 if args.quick else 10
    hooks = ["blocks.3.resid_post", "blocks.6.resid_post", "blocks.9.resid_post"]
    with torch.no_grad():
        x = cached_activations(model, ["blocks.6.resid_post"], args.batch * 4)["blocks.6.resid_post"]
    out: dict = {"model": which, "probe": probe}
    header = ["implementation", "ms/step", "tok/s", "vs plain loop", "vs SAELens", "vs SAELens bf16"]
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
    rows = end_to_end_speed(model, args.latents, args.k, 32, 3 if args.quick else 6)
    print(f"\n4. end to end: forward to layer 6 of 32 x 128 tokens, then one step, 576 -> {args.latents}")
    print(table(rows, header))
    out["end_to_end"] = rows
    if which.startswith("random"):
        print("\n5. quality: skipped with random weights (it needs the real model's activations)")
    else:
        held = 16_384
        with torch.no_grad():
            x = real_activations(model, args.quality_tokens + held)
        rows = quality(x, args.latents, args.k, len(x) - held, args.batch, args.lr)
        print(
            f"\n5. quality: 576 -> {args.latents}, k={args.k}, {len(x) - held:,} training tokens, batch "
            f"{args.batch}, lr {args.lr}; evaluated on the next {held:,} tokens"
        )
        print(table(rows, ["implementation", "L0", "EV (around mean)", "EV legacy (around 0)", "dead",
                           "train s", "tok/s"]))  # fmt: skip
        out["quality"] = rows
    write_json(args.json, out)


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
