"""Latency of the Debugger's request through HTTP on the embedded SmolLM2: cold and cached.

    python bench/server.py                 # 12 cold + 50 cached requests on a 20-token prompt
    python bench/server.py --cold 20 --json server.json

The server is a real `mechscope serve` process on a loopback port; requests go through httpx.
"cold" requests are all different (each target/distractor pair is a new cache key) and so are
computed; "cached" repeats one request. The baseline is the same computation called in-process
(`attribute` + `summary`), so the ratio is what HTTP, JSON and the queue add.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import time

import httpx
from _common import busy_warning, contention_probe, machine, table, write_json

import mechscope as ms
from mechscope.engine.attribution import attribute
from mechscope.engine.directions import LogitDiff

PROMPT = "Yesterday afternoon, when Mary and John went to the big store together, John gave a drink to"  # 20 tokens
NAMES = [
    " Mary",
    " John",
    " Anna",
    " Tom",
    " Sarah",
    " Peter",
    " Emma",
    " David",
    " Lucy",
    " James",
    " Kate",
    " Paul",
]


def _pct(xs: list[float], q: float) -> float:
    return statistics.quantiles(xs, n=100, method="inclusive")[int(q) - 1] if len(xs) > 1 else xs[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cold", type=int, default=12)
    ap.add_argument("--cached", type=int, default=50)
    ap.add_argument("--json")
    args = ap.parse_args()
    model = ms.load_model()
    assert model.tokenizer is not None
    n_tokens = len(model.tokenizer.encode(PROMPT))
    pairs = [(a, b) for a in NAMES for b in NAMES if a != b][: args.cold]
    if len(pairs) < args.cold:
        raise SystemExit(f"at most {len(NAMES) * (len(NAMES) - 1)} cold requests")

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    started = time.perf_counter()
    server = subprocess.Popen(
        [sys.executable, "-m", "mechscope", "serve", "--port", str(port)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        while "open http" not in (line := server.stdout.readline()):
            if not line and server.poll() is not None:
                raise SystemExit("the server did not start")
        start_s = time.perf_counter() - started
        url = f"http://127.0.0.1:{port}/api/debug"
        probe = contention_probe()
        with httpx.Client(timeout=120) as client:

            def request(a: str, b: str) -> float:
                t = time.perf_counter()
                r = client.post(url, json={"prompt": PROMPT, "targets": [a], "distractors": [b], "k": 10})
                r.raise_for_status()
                return (time.perf_counter() - t) * 1000

            request(" Lucy", " Paul")  # warm-up: weight statistics, first allocations (not a listed pair)
            cold = [request(a, b) for a, b in pairs]
            cached = [request(*pairs[0]) for _ in range(args.cached)]
        lib = []
        for a, b in pairs:
            t = time.perf_counter()
            attribute(model, PROMPT, LogitDiff(targets=[a], distractors=[b])).summary(k=10)
            lib.append((time.perf_counter() - t) * 1000)
    finally:
        server.terminate()
        server.wait(20)

    m = machine()
    print(f"debugger request over HTTP: SmolLM2, {n_tokens}-token prompt, every node kind, k=10")
    print(f"{m['cpu']}, {m['cores']} cores, torch {m['torch']}; server ready {start_s:.1f} s after launch")
    rows = [
        ["cold (computed)", str(len(cold)), f"{_pct(cold, 50):.1f}", f"{_pct(cold, 95):.1f}"],
        ["cached (same request)", str(len(cached)), f"{_pct(cached, 50):.1f}", f"{_pct(cached, 95):.1f}"],
        ["in-process attribute+summary", str(len(lib)), f"{_pct(lib, 50):.1f}", f"{_pct(lib, 95):.1f}"],
    ]
    print(table(rows, ["request", "n", "p50 ms", "p95 ms"]))
    print(f"HTTP + JSON + queue overhead at p50: {_pct(cold, 50) / _pct(lib, 50):.2f}x the in-process call")
    warning = busy_warning(probe)
    if warning:
        print(warning)
    write_json(
        args.json,
        {
            "machine": m,
            "tokens": n_tokens,
            "server_start_s": start_s,
            "cold_ms": cold,
            "cached_ms": cached,
            "library_ms": lib,
        },
    )


if __name__ == "__main__":
    main()
