"""``python -m bench``: every workload against every installed peer, then docs/benchmarks.md.

    python -m bench                       # the full run (~12 min on 2 idle cores, under 20)
    python -m bench --quick               # 16 and 128 tokens, fewer rounds (~5 min)
    python -m bench --only forward,debugger
    python -m bench --random-weights      # SmolLM2's shape, no GGUF needed
    python -m bench --second-run earlier.json   # show the spread against an earlier run
    python -m bench --render docs/benchmarks.json  # rewrite the doc and chart from a saved run

Each workload runs in worker processes (``python -m bench.worker``) that this module plans:

- "same process, mechscope's settings": mechscope and every peer in one process, interleaved
  round by round, with the glibc malloc tuning that ``ms.load_model()`` applies process-wide.
  The most precise comparison (drift hits everyone alike, ratios are paired per round); the
  tuning helps the peers too, so it can only flatter them. Target verdicts use this view.
- "same process, malloc defaults": the same with ``MECHSCOPE_KEEP_FREED_MEMORY=0``, the
  allocator every peer gets on its own (and mechscope without its tuning: issue 18, part 4).
- "own process": one implementation per process, each with its own settings, for peak RSS
  (the debugger and cache-everything workloads) and fresh-process loads.

"As shipped" ratios (mechscope from the first view, a peer from the second) come from two
processes and are not paired.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench import machine, report
from bench.catalog import WORKLOADS
from bench.peers import IMPL_PEER, PEERS, split_available

REPO = Path(__file__).resolve().parent.parent
LENGTHS = [16, 128, 512]
QUICK_LENGTHS = [16, 128]
CACHE_LENGTH = 512  # "cache everything at 512 tokens"; also the debugger's peak-RSS length

# Seconds each workload takes on the project's 2-core VM (real SmolLM2, idle machine): derived
# from per-call times measured there, (default, --quick); printed before the run as its budget.
# A busy neighbour stretches them several-fold (a --quick run at load average 3-4: 8.5 min).
ESTIMATE_S = {
    "forward": (100, 50),
    "actgrad": (125, 40),
    "debugger": (100, 20),
    "generation": (50, 25),
    "cache": (135, 70),
    "load": (75, 30),
    "sae": (90, 40),
}


@dataclass
class Proc:
    """One worker process: which implementations share it and under which allocator settings."""

    role: str  # "tuned", "defaults" or "own" (one implementation, for RSS / load)
    impls: list[str]
    tuned: bool  # mechscope's malloc tuning (True) or glibc's defaults (MECHSCOPE_KEEP_FREED_MEMORY=0)
    lengths: list[int]
    rss: bool = False
    result: dict[str, Any] | None = None
    error: str | None = None
    wall_s: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        where = "own process" if self.role == "own" else "same process"
        settings = "mechscope's malloc settings" if self.tuned else "malloc defaults"
        return f"{where}, {settings}: {', '.join(self.impls)}"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--quick", action="store_true", help="16 and 128 tokens, fewer rounds, fewer processes")
    p.add_argument("--only", help=f"comma-separated workloads (default all: {','.join(WORKLOADS)})")
    p.add_argument("--random-weights", action="store_true", help="SmolLM2's shape with random weights")
    p.add_argument("--tiny", action="store_true", help="a 2-layer random Llama: the harness's smoke test")
    p.add_argument(
        "--peers",
        help=f"comma-separated peers to run (default every installed one: {','.join(PEERS)}; 'none')",
    )
    p.add_argument("--lengths", type=int, nargs="+", help="prompt lengths of forward, actgrad and debugger")
    p.add_argument(
        "--cell-seconds", type=float, help="seconds spent timing each length (default 2.5; 0.8 quick)"
    )
    p.add_argument(
        "--json", default="docs/benchmarks.json", help="the results (default docs/benchmarks.json)"
    )
    p.add_argument("--out-doc", default=str(REPO / "docs" / "benchmarks.md"), help="the report (markdown)")
    p.add_argument(
        "--chart", default=str(REPO / "docs" / "images" / "benchmarks.png"), help="the ratio chart"
    )
    p.add_argument("--second-run", metavar="JSON", help="an earlier run's results: shown beside this run's")
    p.add_argument("--render", metavar="JSON", help="only rewrite the doc and chart from saved results")
    p.add_argument("--worker-timeout", type=float, default=900, help="seconds before a worker is abandoned")
    args = p.parse_args(argv)
    if args.random_weights and args.tiny:
        p.error("--random-weights and --tiny exclude each other")
    args.mode = "tiny" if args.tiny else "random" if args.random_weights else "real"
    chosen = args.only.split(",") if args.only else list(WORKLOADS)
    unknown = [w for w in chosen if w not in WORKLOADS]
    if unknown:
        p.error(f"unknown workload(s) {unknown}; choose from {list(WORKLOADS)}")
    args.workloads = chosen
    args.peers = (
        list(PEERS) if args.peers is None else [x for x in args.peers.split(",") if x and x != "none"]
    )
    if unknown := [x for x in args.peers if x not in PEERS]:
        p.error(f"unknown peer(s) {unknown}; choose from {list(PEERS)}")
    args.lengths = args.lengths or (QUICK_LENGTHS if args.quick else LENGTHS)
    args.cell_seconds = args.cell_seconds or (0.8 if args.quick else 2.5)
    return args


# ----- planning -----------------------------------------------------------------------------------
def plan(workload: str, impls: list[str], args: argparse.Namespace) -> list[Proc]:
    """The processes one workload runs in (see the module docstring)."""
    lengths = args.lengths
    both = not args.quick  # --quick keeps the same-process comparison with mechscope's settings only
    peers = [i for i in impls if i not in ("mechscope", "bare", "floor")]
    if workload in ("forward", "actgrad", "generation"):
        procs = [Proc("tuned", impls, True, lengths)]
        if peers:  # the peers with the allocator they get on their own (and mechscope without its tuning)
            procs.append(Proc("defaults", [i for i in impls if i not in ("bare", "floor")], False, lengths))
        return procs
    if workload == "debugger":
        procs = [Proc("tuned", impls, True, lengths)]
        if both and "hf-sdpa" in impls:
            procs.append(Proc("defaults", impls, False, lengths))
        procs += [
            Proc("own", [i], True, [max(CACHE_LENGTH, max(lengths))], rss=True) for i in ("mechscope", "bare")
        ]
        return procs
    if workload == "cache":
        procs = [Proc("tuned", impls, True, [CACHE_LENGTH])] if both else []
        procs.append(Proc("own", ["mechscope"], True, [CACHE_LENGTH], rss=True))
        procs.append(
            Proc("own", ["mechscope"], False, [CACHE_LENGTH], rss=True)
        )  # part 4: without the tuning
        procs += [Proc("own", [i], False, [CACHE_LENGTH], rss=True) for i in peers]
        return procs
    if workload == "sae":
        procs = [Proc("tuned", impls, True, [4096])]
        if both and "sae-lens" in impls:
            procs.append(Proc("defaults", impls, False, [4096]))
        return procs
    raise ValueError(workload)


def worker_env(tuned: bool) -> dict[str, str]:
    env = dict(os.environ)
    env["MECHSCOPE_KEEP_FREED_MEMORY"] = "1" if tuned else "0"
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), *filter(None, [env.get("PYTHONPATH")])])
    for key in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):  # never reach for the Hub
        env.setdefault(key, "1")
    env.setdefault("TQDM_DISABLE", "1")
    env.setdefault("PYTHONWARNINGS", "ignore")
    return env


def run_worker(
    argv: list[str], tuned: bool, timeout: float
) -> tuple[dict[str, Any] | None, str | None, float]:
    """Run ``python -m bench.worker argv`` and return its JSON, or the error, and its wall time."""
    with tempfile.TemporaryDirectory(prefix="mechscope-bench-") as tmp:
        out = Path(tmp) / "out.json"
        cmd = [sys.executable, "-m", "bench.worker", *argv, "--json", str(out)]
        t0 = time.perf_counter()
        try:
            proc = subprocess.run(
                cmd, cwd=REPO, env=worker_env(tuned), timeout=timeout, stderr=subprocess.PIPE, text=True
            )
        except subprocess.TimeoutExpired:
            return None, f"timed out after {timeout:.0f} s", time.perf_counter() - t0
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            return None, (proc.stderr or "").strip()[-2000:] or f"exit status {proc.returncode}", wall
        return json.loads(out.read_text()), None, wall


def run_proc(workload: str, proc: Proc, args: argparse.Namespace) -> None:
    print(f"- {workload}: {proc.label}", flush=True)
    argv = [
        workload,
        "--impls",
        ",".join(proc.impls),
        "--model",
        args.mode,
        "--lengths",
        *map(str, proc.lengths),
    ]
    argv += ["--cell-seconds", str(args.cell_seconds)]
    argv += ["--quick"] if args.quick else []
    argv += ["--rss"] if proc.rss else []
    proc.result, proc.error, proc.wall_s = run_worker(argv, proc.tuned, args.worker_timeout)
    if proc.error:
        print(f"  FAILED: {proc.error.splitlines()[-1] if proc.error else ''}", flush=True)


def run_load(impls: list[str], args: argparse.Namespace) -> list[Proc]:
    """Warm loads: one untimed round (page cache, mechscope's cache), then rounds of one fresh
    process per implementation, alternating implementations."""
    procs: list[Proc] = []
    with tempfile.TemporaryDirectory(prefix="mechscope-bench-folder-") as folder:
        print("- load: writing the Hugging Face checkpoint folder every loader reads", flush=True)
        _, error, _ = run_worker(
            ["save-folder", "--model", args.mode, "--folder", folder], True, args.worker_timeout
        )
        if error:
            print(f"  FAILED: {error.splitlines()[-1]}", flush=True)
            return [Proc("own", impls, True, [], error=error)]
        rounds = 1 if args.quick else 3
        for r in range(rounds + 1):
            for impl in impls:
                proc = Proc("own", [impl], impl.startswith("mechscope"), [], extra={"warm_up": r == 0})
                argv = ["load", "--impls", impl, "--folder", folder]
                proc.result, proc.error, proc.wall_s = run_worker(argv, proc.tuned, args.worker_timeout)
                if proc.error:
                    print(f"  FAILED {impl}: {proc.error.splitlines()[-1]}", flush=True)
                procs.append(proc)
            print(f"  load round {r}{' (warm-up, not counted)' if r == 0 else ''} done", flush=True)
    return procs


def impls_for(workload: str, args: argparse.Namespace, skipped: dict[str, str]) -> list[str]:
    impls = [i for i in WORKLOADS[workload].impls if IMPL_PEER.get(i.split(":")[0]) in (None, *args.peers)]
    if workload == "load" and args.mode != "real":
        impls.remove("mechscope")  # the embedded GGUF: only the real model has it
    keep, gone = split_available(impls)
    for impl, why in gone.items():
        if impl not in skipped:
            print(f"skipping {impl}: {why}", flush=True)
        skipped[impl] = why
    return keep


def run_all(args: argparse.Namespace) -> dict[str, Any]:
    t_start = time.perf_counter()
    results: dict[str, Any] = {
        "schema": 1,
        "command": " ".join(["python -m bench", *sys.argv[1:]]),
        "mode": args.mode,
        "quick": args.quick,
        "lengths": args.lengths,
        "machine": machine.describe(),
        "skipped": {},
        "workloads": {},
    }
    m = results["machine"]
    print(f"mechscope benchmarks: {m['cpu']}, {m['cores']} cores, load average {m['load_average'][0]:.2f}")
    budget = sum(ESTIMATE_S[w][1 if args.quick else 0] for w in args.workloads)
    print(f"estimated time (2-core VM, real model): {budget / 60:.0f} min for {', '.join(args.workloads)}")
    print("measuring the machine's matmul and read-bandwidth limits...", flush=True)
    t0 = time.perf_counter()
    results["roofline"] = machine.roofline(args.quick or args.mode == "tiny")
    r = results["roofline"]
    print(
        f"  sgemm 2048: {r['sgemm_2048_gflops']['median']:.0f} GFLOP/s, (16x576)x(576x1536): "
        f"{r['sgemm_16x576x1536_gflops']['median']:.0f} GFLOP/s, read {r['read_gb_s']['median']:.1f} GB/s "
        f"({time.perf_counter() - t0:.0f} s)",
        flush=True,
    )
    for workload in args.workloads:
        t0 = time.perf_counter()
        impls = impls_for(workload, args, results["skipped"])
        estimate = ESTIMATE_S[workload][1 if args.quick else 0]
        print(f"\n== {workload}: {WORKLOADS[workload].title} (estimate ~{estimate} s)", flush=True)
        if workload == "load":
            procs = run_load(impls, args)
        else:
            procs = plan(workload, impls, args)
            for proc in procs:
                run_proc(workload, proc, args)
        elapsed = time.perf_counter() - t0
        results["workloads"][workload] = {"elapsed_s": elapsed, "processes": [asdict(p) for p in procs]}
        print(f"== {workload} took {elapsed:.0f} s", flush=True)
        # Saved as it goes: an interrupted run keeps what it measured (`--render` draws it).
        Path(args.json).write_text(json.dumps(results, indent=1) + "\n")
    results["machine"]["load_average_end"] = list(os.getloadavg())
    results["elapsed_s"] = time.perf_counter() - t_start
    return results


def write_outputs(results: dict[str, Any], args: argparse.Namespace) -> None:
    if args.second_run:
        results["second_run"] = json.loads(Path(args.second_run).read_text())
    targets = report.targets(results)
    results["targets"] = [t.to_json() for t in targets]
    if not args.render:
        Path(args.json).write_text(
            json.dumps({k: v for k, v in results.items() if k != "second_run"}, indent=1) + "\n"
        )
        print(f"\nwrote {args.json}")
    chart_path = Path(args.chart)
    drawn = report.draw_chart(results, chart_path)
    if drawn:
        print(f"wrote {chart_path}")
    doc = Path(args.out_doc)
    doc.parent.mkdir(parents=True, exist_ok=True)
    image = os.path.relpath(chart_path, doc.parent) if drawn else None
    doc.write_text(report.markdown(results, image))
    print(f"wrote {doc}")
    print("\n" + report.console(results))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    results = json.loads(Path(args.render).read_text()) if args.render else run_all(args)
    write_outputs(results, args)
    failed = [p for w in results["workloads"].values() for p in w["processes"] if p.get("error")]
    checks = [
        c
        for w in results["workloads"].values()
        for p in w["processes"]
        for c in (p.get("result") or {}).get("checks", [])
        if not c["ok"]
    ]
    return 1 if failed or checks else 0
