"""Forward-pass and generation speed of mechscope against transformers and a bare PyTorch Llama.

    python bench/forward.py                 # ~2-3 min on 2 CPU cores
    python bench/forward.py --quick         # < 40 s: 16 and 128 tokens, fewer repeats
    python bench/forward.py --json out.json

Everything runs in one process on the same weights (the embedded SmolLM2-135M-Instruct, or
random weights of its shape with --random-weights) and the same token ids, batch 1, fp32,
under ``torch.inference_mode()`` with torch's default thread count. The implementations are
interleaved round by round and the median of each is reported, so slow drift of the machine
hits all of them alike. A neighbour process holding a core is another matter: OpenMP's
barriers then make every multi-threaded matmul several times slower and no ratio means much.
A probe before each length detects that and the run ends with a warning; rerun when idle.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from typing import Any

import torch
from _common import (
    BareLlama,
    bench_interleaved,
    busy_warning,
    check_llama_like,
    contention_probe,
    forward_flops,
    hf_llama,
    load_model_under_test,
    machine,
    table,
    write_json,
)

from mechscope.models.decoder import HookedDecoder
from mechscope.models.hooks import HookPoint
from mechscope.models.memory import is_keeping_freed_memory

# Name of each implementation, as printed; the keys of the timing dicts.
HF_EAGER = "transformers eager"
HF_SDPA = "transformers sdpa"
OURS = "mechscope forward (no hooks)"
CACHE = "mechscope run_with_cache (all)"
BARE = "bare PyTorch Llama (no hooks)"
FLOOR = "floor: matmuls + sdpa only"
LAST = "mechscope, last position's logits"  # logits_from=-1: generation's prefill

# (numerator, denominator, target, note)
RATIOS = [
    (OURS, HF_EAGER, 1.00, "ours / transformers eager"),
    (CACHE, OURS, 1.25, "cache-all / ours plain"),
    (OURS, BARE, 1.05, "ours / bare (no hook machinery)"),
    (OURS, HF_SDPA, None, "ours / transformers sdpa"),
    (OURS, FLOOR, None, "ours / matmul floor"),
    (LAST, OURS, None, "last logits only / ours (prefill)"),
]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="16 and 128 tokens, ~0.8 s per cell (< 40 s)")
    p.add_argument("--lengths", type=int, nargs="+", help="prompt lengths (default 16 128 512)")
    p.add_argument("--cell-seconds", type=float, help="time spent timing each implementation per length")
    p.add_argument("--gen-tokens", type=int, default=32, help="greedy tokens generated (default 32)")
    p.add_argument("--no-generate", action="store_true", help="skip the generation benchmark")
    p.add_argument("--random-weights", action="store_true", help="random weights of SmolLM2's shape")
    p.add_argument("--threads", type=int, help="torch threads (default: torch's own default)")
    p.add_argument("--profile", action="store_true", help="also print torch.profiler's top ops, ours vs bare")
    p.add_argument(
        "--system-malloc",
        action="store_true",
        help="leave glibc's malloc at its defaults instead of mechscope's (see bench/README.md)",
    )
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = p.parse_args(argv)
    args.lengths = args.lengths or ([16, 128] if args.quick else [16, 128, 512])
    args.cell_seconds = args.cell_seconds or (0.8 if args.quick else 2.5)
    return args


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.float() - b.float()).abs().max())


def hook_dispatch(model: HookedDecoder, tokens: torch.Tensor) -> dict[str, Any]:
    """How many idle hook points one forward passes through and what that costs at least."""
    calls = 0
    original = HookPoint.__call__

    def counting(self: HookPoint, x: torch.Tensor) -> torch.Tensor:
        nonlocal calls
        calls += 1
        return original(self, x)

    HookPoint.__call__ = counting  # type: ignore[method-assign]
    try:
        model(tokens)
    finally:
        HookPoint.__call__ = original  # type: ignore[method-assign]
    hp, x, n = next(iter(model.hook_points.values())), tokens, 200_000
    t0 = time.perf_counter()
    for _ in range(n):
        hp(x)
    per_call = (time.perf_counter() - t0) / n
    return {
        "hook_points": len(model.hook_points),
        "calls_per_forward": calls,
        "ns_per_idle_call": per_call * 1e9,
        "min_overhead_ms": calls * per_call * 1e3,
    }


def forward_bench(
    model: HookedDecoder, fns: dict[str, Callable[[torch.Tensor], Any]], tokens: torch.Tensor, args: Any
) -> tuple[dict[int, dict[str, Any]], list[str]]:
    """Time every implementation at every length; check their logits against ours."""
    results: dict[int, dict[str, Any]] = {}
    failures: list[str] = []
    tolerances = {HF_EAGER: 1e-3, HF_SDPA: 1e-3, BARE: 1e-4, CACHE: 1e-4}
    for n in args.lengths:
        x = tokens[:, :n]
        cells = {name: (lambda f=f, x=x: f(x)) for name, f in fns.items()}
        t0 = time.perf_counter()
        probe = contention_probe()
        # Short prompts are cheap but jittery: give their medians more rounds.
        min_reps = 3 if args.quick or n > 128 else 7
        timings, outputs = bench_interleaved(
            cells, args.cell_seconds, warmup=2 if n <= 64 else 1, min_reps=min_reps
        )
        diffs = {name: max_diff(outputs[name], outputs[OURS]) for name in tolerances}
        diffs[LAST] = max_diff(outputs[LAST], outputs[OURS][:, -1:])
        if not diffs[LAST] <= 1e-4:  # a 1-row matmul blocks its sums differently: ~3e-5
            failures.append(f"{n} tokens: the last position's logits differ from ours by {diffs[LAST]:.2e}")
        for name, tol in tolerances.items():
            if not diffs[name] <= tol:
                failures.append(f"{n} tokens: {name} logits differ from ours by {diffs[name]:.2e} > {tol:g}")
        results[n] = {
            "timings": {k: v.to_json() for k, v in timings.items()},
            "max_abs_logit_diff_vs_ours": diffs,
            "gflop": forward_flops(model.cfg, n) / 1e9,
            "seconds": time.perf_counter() - t0,
            "contention_probe": probe,
        }
        print(
            f"  {n:4d} tokens: {len(timings[OURS].samples)} rounds in {results[n]['seconds']:.1f} s "
            f"(load average {probe['load_average']:.1f}, {probe['slowdown']:.2f}x matmul slowdown probe)"
        )
    return results, failures


def generation_bench(
    model: HookedDecoder, hf: torch.nn.Module, prompt: torch.Tensor, new: int, args: Any
) -> dict[str, Any]:
    """Greedy KV-cached generation: total ms per token, and decode-only ms per token."""
    hf.generation_config.eos_token_id = None  # like stop_tokens=[]: always generate ``new`` tokens
    hf.generation_config.pad_token_id = 0

    def ours(k: int) -> list[int]:
        return model.generate(prompt, max_new_tokens=k, stop_tokens=[]).tokens[0]

    def theirs(k: int) -> list[int]:
        out = hf.generate(prompt, max_new_tokens=k, do_sample=False)
        return out[0, prompt.shape[1] :].tolist()

    cells = {
        "mechscope generate": lambda: ours(new),
        "transformers generate (sdpa)": lambda: theirs(new),
        "mechscope prefill+1": lambda: ours(1),
        "transformers prefill+1": lambda: theirs(1),
    }
    ours(2), theirs(2)  # warm-up: prefill and decode shapes, cheaply
    timings, outputs = bench_interleaved(cells, args.cell_seconds, warmup=0, reps=1 if args.quick else 3)
    a, b = outputs["mechscope generate"], outputs["transformers generate (sdpa)"]
    if len(a) != new or len(b) != new:
        raise RuntimeError(f"expected {new} new tokens, got {len(a)} (ours) and {len(b)} (transformers)")
    same = next((i for i, (p, q) in enumerate(zip(a, b, strict=True)) if p != q), new)
    rows = {}
    for label, full, one in (
        ("mechscope", "mechscope generate", "mechscope prefill+1"),
        ("transformers (sdpa)", "transformers generate (sdpa)", "transformers prefill+1"),
    ):
        total, first = timings[full].median_ms, timings[one].median_ms
        rows[label] = {
            "total_ms": total,
            "ms_per_token": total / new,
            "prefill_plus_1_ms": first,
            "decode_ms_per_token": (total - first) / (new - 1),
            "repeats": len(timings[full].samples),
        }
    return {"prompt_tokens": prompt.shape[1], "new_tokens": new, "identical_prefix": same, "rows": rows}


def report(
    results: dict[int, dict[str, Any]],
    gen: dict[str, Any] | None,
    hooks: dict[str, Any],
    info: dict[str, Any],
) -> dict[str, Any]:
    lengths = list(results)
    names = list(next(iter(results.values()))["timings"])
    print("\nms per forward (median; batch 1, fp32)")
    rows = [[name, *(f"{results[n]['timings'][name]['median_ms']:.1f}" for n in lengths)] for name in names]
    rows.append(
        ["rounds (each implementation once)", *(str(results[n]["timings"][OURS]["repeats"]) for n in lengths)]
    )
    rows.append(
        [
            "spread of ours: (max - min) / median",
            *(
                f"{(t['max_ms'] - t['min_ms']) / t['median_ms']:.0%}"
                for t in (results[n]["timings"][OURS] for n in lengths)
            ),
        ]
    )
    rows.append(["GFLOP per forward", *(f"{results[n]['gflop']:.1f}" for n in lengths)])
    rows.append(
        [
            "mechscope GFLOP/s",
            *(f"{results[n]['gflop'] / results[n]['timings'][OURS]['median_ms'] * 1e3:.1f}" for n in lengths),
        ]
    )
    print(table(rows, ["implementation", *(f"{n} tok" for n in lengths)]))

    print("\nratios (lower is faster for mechscope)")
    ratios: dict[str, dict[int, float]] = {}
    rows = []
    for num, den, target, label in RATIOS:
        vals = {
            n: results[n]["timings"][num]["median_ms"] / results[n]["timings"][den]["median_ms"]
            for n in lengths
        }
        ratios[label] = vals
        verdict = ""
        if target is not None:
            verdict = "met" if all(v <= target for v in vals.values()) else "NOT met"
        rows.append(
            [label, *(f"{vals[n]:.2f}x" for n in lengths), f"<= {target:.2f}x" if target else "-", verdict]
        )
    print(table(rows, ["ratio", *(f"{n} tok" for n in lengths), "target", ""]))

    print("\nlogits: max |difference| from mechscope's forward")
    rows = [
        [name, *(f"{results[n]['max_abs_logit_diff_vs_ours'][name]:.1e}" for n in lengths), tol]
        for name, tol in ((HF_EAGER, "1e-3"), (HF_SDPA, "1e-3"), (BARE, "1e-4"), (CACHE, "1e-4"))
    ]
    print(table(rows, ["vs", *(f"{n} tok" for n in lengths), "tolerance"]))

    print(
        f"\nhook points: {hooks['hook_points']} ({hooks['calls_per_forward']} passed through per forward); "
        f"an idle one costs {hooks['ns_per_idle_call']:.0f} ns, so the machinery's minimum cost is "
        f"{hooks['min_overhead_ms']:.3f} ms per forward"
    )
    if gen is not None:
        print(
            f"\ngreedy generation: {gen['new_tokens']} tokens after a {gen['prompt_tokens']}-token prompt "
            f"(KV cache; identical tokens for the first {gen['identical_prefix']} of {gen['new_tokens']})"
        )
        rows = [
            [
                k,
                f"{v['total_ms']:.0f}",
                f"{v['ms_per_token']:.1f}",
                f"{v['prefill_plus_1_ms']:.1f}",
                f"{v['decode_ms_per_token']:.1f}",
            ]
            for k, v in gen["rows"].items()
        ]
        r = gen["rows"]
        rows.append(
            [
                "ratio mechscope / transformers",
                "",
                f"{r['mechscope']['ms_per_token'] / r['transformers (sdpa)']['ms_per_token']:.2f}x",
                "",
                f"{r['mechscope']['decode_ms_per_token'] / r['transformers (sdpa)']['decode_ms_per_token']:.2f}x",
            ]
        )
        print(table(rows, ["implementation", "total ms", "ms/token", "prefill+1 ms", "decode ms/token"]))
    return {**info, "forward": results, "ratios": ratios, "hooks": hooks, "generation": gen}


def profile_ops(model: HookedDecoder, bare: BareLlama, x: torch.Tensor, rows: int = 14) -> None:
    """torch.profiler's costliest aten ops per forward, ours beside the bare baseline."""
    from torch.profiler import ProfilerActivity, profile

    n = 10
    for name, fn in ((OURS, model), (BARE, bare)):
        for _ in range(3):
            fn(x)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(n):
                fn(x)
        events = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)
        total = sum(e.self_cpu_time_total for e in events) / n / 1e3
        calls = sum(e.count for e in events) / n
        print(f"\nprofile, {name}, {x.shape[1]} tokens: {calls:.0f} ops, {total:.1f} ms self CPU per forward")
        print(
            table(
                [
                    [e.key, f"{e.count / n:.0f}", f"{e.self_cpu_time_total / n / 1e3:.2f}"]
                    for e in events[:rows]
                ],
                ["op", "calls/forward", "self ms/forward"],
            )
        )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    t_start = time.perf_counter()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.system_malloc:
        os.environ["MECHSCOPE_KEEP_FREED_MEMORY"] = "0"
    import transformers

    transformers.logging.set_verbosity_error()
    model, source = load_model_under_test(args.random_weights)
    check_llama_like(model.cfg)
    if any(hp.live for hp in model.hook_points.values()):
        raise SystemExit("bench: the model has hooks attached; the 'no hooks' numbers would be wrong")
    hf_eager, hf_sdpa, bare = hf_llama(model, "eager"), hf_llama(model, "sdpa"), BareLlama(model)
    info: dict[str, Any] = {
        "machine": machine(),
        "weights": source,
        "quick": args.quick,
        "keep_freed_memory": is_keeping_freed_memory(),
    }
    m = info["machine"]
    print(f"mechscope forward benchmark: {source}")
    print(
        f"{m['cpu']}, {m['cores']} cores, torch {m['torch']} ({m['torch_threads']} threads), "
        f"transformers {m['transformers']}"
        + (", glibc keeps freed memory" if is_keeping_freed_memory() else ", glibc malloc defaults")
    )
    probe = contention_probe()
    info["contention_probe_start"] = probe
    if warning := busy_warning(probe):
        print(warning)
    fns: dict[str, Callable[[torch.Tensor], Any]] = {
        HF_EAGER: lambda x: hf_eager(input_ids=x, use_cache=False).logits,
        HF_SDPA: lambda x: hf_sdpa(input_ids=x, use_cache=False).logits,
        OURS: lambda x: model(x),
        LAST: lambda x: model(x, logits_from=-1),
        CACHE: lambda x: model.run_with_cache(x)[0],
        BARE: lambda x: bare(x),
        FLOOR: lambda x: bare.matmul_floor(x),
    }
    ids = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, model.cfg.d_vocab, (1, max([*args.lengths, 16])), generator=ids)
    with torch.inference_mode():
        results, failures = forward_bench(model, fns, tokens, args)
        hooks = hook_dispatch(model, tokens[:, :16])
        gen = None
        if not args.no_generate:
            gen = generation_bench(model, hf_sdpa, tokens[:, :16], args.gen_tokens, args)
        if args.profile:
            profile_ops(model, bare, tokens[:, : args.lengths[0]])
    info["contention_probe_end"] = contention_probe()
    data = report(results, gen, hooks, info)
    data["total_seconds"] = time.perf_counter() - t_start
    print(f"\ntotal {data['total_seconds']:.0f} s")
    busy = [busy_warning(info["contention_probe_end"])]
    busy += [busy_warning(r["contention_probe"]) for r in results.values()]
    if any(busy):
        print("\nWARNING: the machine was busy during this run (see the probes above); do not quote it.")
    write_json(args.json, data)
    for f in failures:
        print(f"CHECK FAILED: {f}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
