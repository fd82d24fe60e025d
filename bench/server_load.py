"""Load test on loopback: concurrent Debugger requests with distinct prompts against `mechscope serve`.

    python bench/server_load.py                        # 8 clients, at most 240 requests or 120 s
    python bench/server_load.py --clients 12 --requests 400 --seconds 180 --json load.json

A real server process on SmolLM2 (the embedded GGUF); each client thread sends /api/debug requests
whose prompts all differ (so none is served from the cache), honours Retry-After on a 503, and
retries that request. Reported: latency p50/p95 of the answered requests, every status seen, how
honest Retry-After was (did the retry after waiting it get in?), and the server's RSS over time.
The run fails (exit 1) on any answer other than 200 or a 503 with Retry-After.
"""

from __future__ import annotations

import argparse
import itertools
import subprocess
import sys
import threading
import time
from collections import Counter

import httpx
import psutil
from _common import free_port, machine, percentile, table, wait_for_link, write_json

NAMES = ["Mary", "John", "Anna", "Tom", "Sarah", "Peter", "Emma", "David", "Lucy", "James", "Kate", "Paul"]
PLACES = ["store", "park", "station", "library", "market", "beach", "museum", "office", "garden", "school"]
GIFTS = ["a drink", "a book", "an apple", "a letter", "a coin", "a ticket", "a flower", "a key"]


def prompts() -> itertools.product[tuple[str, str, str, str]]:
    """Distinct IOI-style prompts (12 x 11 x 10 x 8 = 10,560 of them): no two requests share a cache key."""
    return itertools.product(NAMES, NAMES, PLACES, GIFTS)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--requests", type=int, default=240, help="stop after this many answered requests")
    ap.add_argument("--seconds", type=float, default=120, help="stop sending after this long")
    ap.add_argument("--model", default=None, help="model reference (default: the embedded SmolLM2)")
    ap.add_argument("--json")
    args = ap.parse_args()

    port = free_port()
    cmd = [sys.executable, "-m", "mechscope", "serve", "--port", str(port)]
    server = subprocess.Popen(
        [*cmd, *(["--model", args.model] if args.model else [])], stdout=subprocess.PIPE, text=True
    )
    wait_for_link(server)
    proc = psutil.Process(server.pid)
    url = f"http://127.0.0.1:{port}/api/debug"
    work = (
        {
            "prompt": f"When {a} and {b} went to the {p}, {b} gave {g} to",
            "targets": [f" {a}"],
            "distractors": [f" {b}"],
        }
        for a, b, p, g in prompts()
        if a != b
    )
    lock = threading.Lock()
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    bad: list[str] = []
    retries = {"total": 0, "got_in": 0, "waited_s": 0.0}
    rss: list[tuple[float, float]] = []
    t0 = time.perf_counter()
    stop = threading.Event()

    def sample_rss() -> None:
        while not stop.is_set():
            rss.append((time.perf_counter() - t0, proc.memory_info().rss / 2**20))
            stop.wait(1.0)

    def client() -> None:
        with httpx.Client(timeout=300) as http:
            while not stop.is_set():
                with lock:
                    if len(latencies) >= args.requests or time.perf_counter() - t0 > args.seconds:
                        return
                    body = next(work)
                start, after_503 = time.perf_counter(), False
                while True:
                    r = http.post(url, json=body)
                    with lock:
                        statuses[r.status_code] += 1
                        if after_503:
                            retries["got_in"] += r.status_code == 200
                    if r.status_code == 503 and r.headers.get("retry-after", "").isdigit():
                        wait = int(r.headers["retry-after"])
                        with lock:
                            retries["total"] += 1
                            retries["waited_s"] += wait
                        after_503 = True
                        time.sleep(wait)
                        continue
                    break
                with lock:
                    if r.status_code == 200:
                        latencies.append((time.perf_counter() - start) * 1000)
                    else:
                        bad.append(f"{r.status_code} {r.headers.get('retry-after')} {r.text[:200]}")

    sampler = threading.Thread(target=sample_rss, daemon=True)
    sampler.start()
    threads = [threading.Thread(target=client) for _ in range(args.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stop.set()
    sampler.join()
    elapsed = time.perf_counter() - t0
    server.terminate()
    server.wait(20)

    m = machine()
    print(f"load test: {args.clients} clients, /api/debug with distinct prompts on loopback, {elapsed:.0f} s")
    print(f"{m['cpu']}, {m['cores']} cores, torch {m['torch']}")
    print(
        table(
            [
                [
                    str(len(latencies)),
                    f"{percentile(latencies, 50):.0f}",
                    f"{percentile(latencies, 95):.0f}",
                    f"{len(latencies) / elapsed:.2f}",
                ]
            ],
            ["answered", "p50 ms", "p95 ms", "req/s"],
        )
    )
    print("statuses:", dict(sorted(statuses.items())))
    if retries["total"]:
        print(
            f"503s honoured: {retries['total']}, retries that then got in: {retries['got_in']} "
            f"(mean Retry-After {retries['waited_s'] / retries['total']:.1f} s)"
        )
    step = max(1, len(rss) // 12)
    print("server RSS (MB) over time:", ", ".join(f"{t:.0f}s {mb:.0f}" for t, mb in rss[::step]))
    print(f"RSS min {min(mb for _, mb in rss):.0f} MB, max {max(mb for _, mb in rss):.0f} MB")
    write_json(
        args.json,
        {
            "machine": m,
            "latency_ms": latencies,
            "statuses": dict(statuses),
            "retries": retries,
            "rss_mb": rss,
            "bad": bad,
        },
    )
    if bad:
        print("answers other than 200 or 503 + Retry-After:", *bad[:5], sep="\n  ")
        raise SystemExit(1)


if __name__ == "__main__":
    main()
