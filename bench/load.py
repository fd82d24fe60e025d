"""Load time of the embedded default model, each load in a fresh Python process.

    python bench/load.py              # 1 cold + 3 cache-hit loads, `mechscope info`, ~1 min
    python bench/load.py --quick      # 1 cold + 1 cache-hit load, no profile (< 40 s)
    python bench/load.py --profile    # also profile a cache-hit load (automatic when over target)
    python bench/load.py --json out.json

``MECHSCOPE_HOME`` points at a fresh temporary folder, so the first load converts the GGUF
and fills the converted-weights cache and the later ones hit it. The baseline measured in
the same run is a process that only imports torch: no load can finish before that.
The operating system's page cache is not dropped, so "cold" means an empty mechscope
cache, not a cold disk.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import machine, table, write_json

TARGET_S = 3.0

CHILD = r"""
import json, time
t0 = time.perf_counter()
import mechscope as ms
t1 = time.perf_counter()
import torch
t2 = time.perf_counter()
model = ms.load_model()
t3 = time.perf_counter()
print("RESULT" + json.dumps({"import_mechscope": t1 - t0, "import_torch": t2 - t1,
                             "load_model": t3 - t2, "load_seconds": model.load_seconds}))
"""

BASELINE = "import time; t0 = time.perf_counter(); import torch; print(f'RESULT{time.perf_counter() - t0}')"

PROFILE = r"""
import cProfile, pstats
import mechscope as ms, torch
prof = cProfile.Profile()
prof.enable()
ms.load_model()
prof.disable()
stats = pstats.Stats(prof).stats  # func -> (calls, ncalls, tottime, cumtime, {caller: (.., cumtime)})
callees = {}
for func, (*_, callers) in stats.items():
    for caller, info in callers.items():
        callees.setdefault(caller, []).append((info[3], func))
root = next(f for f in stats if f[2] == "load_model" and "loading" in f[0])
total = stats[root][3]
print(f"load_model: {total:.2f} s (profiled); calls taking >= 3% of it:")

def show(func, depth, seen):
    for cum, callee in sorted(callees.get(func, []), reverse=True):
        if cum < 0.03 * total or callee in seen:
            continue
        path = "/".join(callee[0].split("/")[-2:])
        print(f"{'  ' * depth}{cum:6.2f} s  {callee[2]}  ({path}:{callee[1]})")
        if depth < 5 and not callee[0].startswith("<frozen"):  # imports: their own tree, not ours
            show(callee, depth + 1, seen | {callee})

show(root, 1, {root})
# torch._disable_dynamo wrappers import torch._dynamo (sympy and all) on their first call.
lazy = [v[3] for f, v in stats.items() if f[2] == "inner" and f[0].endswith("torch/_compile.py")]
if lazy:
    print(f"torch._dynamo was imported during the load, by a torch._disable_dynamo wrapper: {max(lazy):.2f} s")
"""


def run_child(code: str, home: Path) -> tuple[float, str]:
    """Wall seconds of ``python -c code`` (interpreter start included) and its stdout."""
    env = {**os.environ, "MECHSCOPE_HOME": str(home)}
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode:
        raise SystemExit(f"bench: child process failed:\n{proc.stderr[-3000:]}")
    return wall, proc.stdout


def result_of(stdout: str) -> Any:
    line = next(line for line in stdout.splitlines() if line.startswith("RESULT"))
    return json.loads(line.removeprefix("RESULT"))


def timed_load(home: Path) -> dict[str, float]:
    wall, out = run_child(CHILD, home)
    return {**result_of(out), "process_wall": wall}


def cli_info(home: Path) -> float | None:
    """Wall seconds of ``mechscope info`` (the command a user types first), or None if absent."""
    exe = Path(sys.executable).with_name("mechscope")
    cmd = [str(exe), "info"] if exe.exists() else [sys.executable, "-m", "mechscope", "info"]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env={**os.environ, "MECHSCOPE_HOME": str(home)}, capture_output=True)
    return time.perf_counter() - t0 if proc.returncode == 0 else None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="one cache-hit load, no `mechscope info`")
    p.add_argument("--repeats", type=int, help="cache-hit loads (default 3, 1 with --quick)")
    p.add_argument("--profile", action="store_true", help="profile a cache-hit load even when on target")
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = p.parse_args(argv)
    repeats = args.repeats or (1 if args.quick else 3)
    m = machine()
    print(f"mechscope load benchmark: {m['cpu']}, {m['cores']} cores, torch {m['torch']}")
    print(f"load average before: {os.getloadavg()[0]:.2f} (above ~0.5 the numbers are noisy)")
    home = Path(tempfile.mkdtemp(prefix="mechscope-bench-home-"))
    try:
        baseline = [float(result_of(run_child(BASELINE, home)[1])) for _ in range(1 if args.quick else 2)]
        cold = timed_load(home)
        hits = [timed_load(home) for _ in range(repeats)]
        info_s = None if args.quick else cli_info(home)
        cache_mb = sum(f.stat().st_size for f in home.rglob("*") if f.is_file()) / 2**20

        def med(key: str) -> float:
            return statistics.median(h[key] for h in hits)

        rows = [
            ["import torch alone (baseline)", "", f"{min(baseline):.2f}", ""],
            [
                "first load (empty cache)",
                f"{cold['load_model']:.2f}",
                f"{cold['import_torch']:.2f}",
                f"{cold['process_wall']:.2f}",
            ],
            [
                f"cache-hit load (median of {repeats})",
                f"{med('load_model'):.2f}",
                f"{med('import_torch'):.2f}",
                f"{med('process_wall'):.2f}",
            ],
        ]
        if info_s is not None:
            rows.append(["`mechscope info` (cache hit)", "", "", f"{info_s:.2f}"])
        print()
        print(table(rows, ["seconds", "load_model()", "import torch", "whole process"]))
        hit = med("load_model")
        verdict = "met" if hit <= TARGET_S else "NOT met"
        print(f"\ntarget: cache-hit load_model() <= {TARGET_S:.0f} s: {hit:.2f} s, {verdict}")
        print(f"first load / cache hit: {cold['load_model'] / hit:.1f}x; converted cache: {cache_mb:.0f} MiB")
        print(f"import mechscope (lazy, before torch): {med('import_mechscope') * 1e3:.0f} ms")
        if hit > TARGET_S and args.quick and not args.profile:
            print("over target: rerun without --quick (or with --profile) to see where the time goes")
        if args.profile or (hit > TARGET_S and not args.quick):
            print("\nprofile of one cache-hit load_model() (cProfile; import torch excluded):")
            print(run_child(PROFILE, home)[1])
        write_json(
            args.json,
            {
                "machine": m,
                "target_s": TARGET_S,
                "import_torch_baseline_s": baseline,
                "cold": cold,
                "cache_hits": hits,
                "mechscope_info_s": info_s,
                "cache_mib": cache_mb,
            },
        )
    finally:
        shutil.rmtree(home, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
