"""Latency of the Debugger's request through HTTP on the embedded SmolLM2: cold and cached.

    python bench/server.py                 # 12 cold + 50 cached requests on a 20-token prompt
    python bench/server.py --cold 20 --json server.json
    python bench/server.py --beside-collation   # `mechscope demo` while it collates (~1.5 min)

The server is a real `mechscope serve` process on a loopback port; requests go through httpx.
"cold" requests are all different (each target/distractor pair is a new cache key) and so are
computed; "cached" repeats one request. The baseline is the same computation called in-process
(`attribute` + `summary`), so the ratio is what HTTP, JSON and the queue add.

``--beside-collation``: a `mechscope demo` process (its own empty ``MECHSCOPE_HOME``, so it starts
collating at once) gets cold requests while its collation runs (2 s apart), then requests while
the collation is suspended (SIGSTOP; still on one thread, as the collation lives),
then requests once it is stopped, on every thread: the baseline, the same server idle. The server
runs its jobs on one thread while the collation runs (server/worker.py); on two threads beside it
the same kind of request took 0.5-4.7 s, where idle it takes about 0.2 s.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

import httpx
import psutil
from _common import (
    busy_warning,
    contention_probe,
    free_port,
    machine,
    percentile,
    table,
    wait_for_link,
    write_json,
)

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


BESIDE_TARGET = 2.0  # a request beside the demo's collation / the same request alone, at p50


def beside_collation(n: int, json_path: str | None) -> None:
    """Cold requests to `mechscope demo` while its collation runs, then while it is suspended, then
    once it is stopped (see the module's docstring)."""
    pairs = [(a, b) for a in NAMES for b in NAMES if a != b]
    if 3 * n + 1 > len(pairs):
        raise SystemExit(f"at most {(len(pairs) - 1) // 3} requests of each kind")
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "MECHSCOPE_HOME": home}
        # A returning user's start: the model comes from the converted cache (mapped from its file,
        # as in the collation process), which is where the requests stalled, not from a fresh
        # conversion (0.3 s a request on two threads beside the collation then).
        subprocess.run(
            [sys.executable, "-c", "import mechscope; mechscope.load_model()"], env=env, check=True
        )
        port = free_port()
        cmd = [
            sys.executable,
            "-m",
            "mechscope",
            "demo",
            "--no-browser",
            "--no-background-llm",
            "--port",
            str(port),
        ]
        server = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env)
        collation: psutil.Process | None = None
        try:
            wait_for_link(server)
            deadline = time.monotonic() + 60
            while collation is None and time.monotonic() < deadline:
                kids = psutil.Process(server.pid).children(recursive=True)
                collation = next((k for k in kids if "collate" in k.cmdline()), None)
                time.sleep(0.2)
            if collation is None:
                raise SystemExit("the demo started no collation")
            # In a new home the collation first reads and tokenizes the corpus (one core, no torch);
            # the contention is with its forwards, which begin once it has collated any token.
            status = f"http://127.0.0.1:{port}/api/dataset"
            deadline = time.monotonic() + 300
            waited = time.monotonic()
            while not httpx.get(status, timeout=30).json().get("tokens_done"):
                if time.monotonic() > deadline or not collation.is_running():
                    raise SystemExit("the collation ran no forward in 5 minutes")
                time.sleep(1.0)
            print(f"the collation's first tokens came {time.monotonic() - waited:.0f} s after the server")
            url = f"http://127.0.0.1:{port}/api/debug"
            beside: list[float] = []
            idle: list[float] = []
            with httpx.Client(timeout=300) as client:

                def request(pair: tuple[str, str]) -> float:
                    t = time.perf_counter()
                    body = {"prompt": PROMPT, "targets": [pair[0]], "distractors": [pair[1]], "k": 10}
                    client.post(url, json=body).raise_for_status()
                    return (time.perf_counter() - t) * 1000

                request(pairs[-1])  # waits for the start's warm-up pass
                for i in range(n):  # spaced as a person's clicks, the collation in its stride
                    if not collation.is_running():
                        break
                    beside.append(request(pairs[i]))
                    time.sleep(2.0)
                collation.suspend()
                try:
                    time.sleep(0.5)  # its threads off the cores
                    alone = [request(pairs[n + i]) for i in range(n)]
                finally:
                    collation.resume()
                collation.kill()  # the server's jobs go back to every thread
                collation.wait(30)
                time.sleep(0.5)
                idle = [request(pairs[2 * n + i]) for i in range(n)]
        finally:
            if collation is not None and collation.is_running():
                collation.resume()
                collation.kill()
            server.terminate()
            server.wait(30)
    if len(beside) < 3:
        raise SystemExit("the collation ended before the requests; ask for fewer (--cold)")
    m = machine()
    ratio = percentile(beside, 50) / percentile(idle, 50)
    print("debugger request to `mechscope demo` while it collates, and with the collation suspended")
    print(f"{m['cpu']}, {m['cores']} cores, torch {m['torch']}; {PROMPT!r}, k=10, every request distinct")
    rows = [
        [label, str(len(xs)), f"{percentile(xs, 50):.0f}", f"{percentile(xs, 95):.0f}", f"{max(xs):.0f}"]
        for label, xs in (
            ("beside the collation (one thread)", beside),
            ("collation suspended (one thread)", alone),
            ("collation stopped (every thread)", idle),
        )
    ]
    print(table(rows, ["request", "n", "p50 ms", "p95 ms", "max ms"]))
    verdict = "met" if ratio <= BESIDE_TARGET else "NOT met"
    print(f"beside the collation / stopped at p50: {ratio:.2f}x (target <= {BESIDE_TARGET:.1f}x: {verdict})")
    write_json(
        json_path,
        {"machine": m, "beside_ms": beside, "suspended_ms": alone, "stopped_ms": idle, "ratio_p50": ratio},
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cold", type=int, default=12)
    ap.add_argument("--cached", type=int, default=50)
    ap.add_argument("--beside-collation", action="store_true", help="see the module's docstring")
    ap.add_argument("--json")
    args = ap.parse_args()
    if args.beside_collation:
        beside_collation(args.cold, args.json)
        return
    model = ms.load_model()
    assert model.tokenizer is not None
    n_tokens = len(model.tokenizer.encode(PROMPT))
    pairs = [(a, b) for a in NAMES for b in NAMES if a != b][: args.cold]
    if len(pairs) < args.cold:
        raise SystemExit(f"at most {len(NAMES) * (len(NAMES) - 1)} cold requests")

    port = free_port()
    started = time.perf_counter()
    server = subprocess.Popen(
        [sys.executable, "-m", "mechscope", "serve", "--port", str(port)], stdout=subprocess.PIPE, text=True
    )
    try:
        wait_for_link(server)
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
        ["cold (computed)", str(len(cold)), f"{percentile(cold, 50):.1f}", f"{percentile(cold, 95):.1f}"],
        [
            "cached (same request)",
            str(len(cached)),
            f"{percentile(cached, 50):.1f}",
            f"{percentile(cached, 95):.1f}",
        ],
        [
            "in-process attribute+summary",
            str(len(lib)),
            f"{percentile(lib, 50):.1f}",
            f"{percentile(lib, 95):.1f}",
        ],
    ]
    print(table(rows, ["request", "n", "p50 ms", "p95 ms"]))
    print(
        f"HTTP + JSON + queue overhead at p50: {percentile(cold, 50) / percentile(lib, 50):.2f}x the in-process call"
    )
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
