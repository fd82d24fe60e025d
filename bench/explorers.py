"""Each explorer page's data endpoint on SmolLM2 for a 30-token prompt, through the HTTP API
(in-process, the server's result cache off), against a bare forward of the same prompt.

    python bench/explorers.py                   # the embedded SmolLM2
    python bench/explorers.py --dataset DIR     # also the maps' GETs on a collated dataset
    python bench/explorers.py --json out.json

The target (issue 16) is under 1 s for each page's data request. Exact activation patching is
reported separately: it runs one forward per heatmap cell, so its cost grows with layers x
positions and is priced against ``max_request_tokens`` before it runs (the page shows the
attribution estimate, one forward and one backward, first).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import bench_interleaved, busy_warning, contention_probe, machine, table, write_json

from mechscope.models.loading import load_model
from mechscope.server.app import create_app
from mechscope.server.settings import Settings

# 30 tokens on SmolLM2 (no BOS is added: the text is all there is)
PROMPT = (
    "When Mary and John went to the store on a rainy Tuesday afternoon with their two small children "
    "and the old brown dog, John gave a cold drink to"
)
IOI_CLEAN = "When Mary and John went to the store, John gave a drink to"
IOI_CORRUPT = "When Mary and John went to the store, Mary gave a drink to"
TARGET_MS = 1000.0


def requests(model_kinds: list[dict[str, Any]]) -> dict[str, tuple[str, str, dict[str, Any] | None]]:
    """The page -> (method, path, body) of each page's data request; kinds from GET /api/model."""
    unit_kind = next(k["name"] for k in model_kinds if k["layered"] and k["unit"] and not k["pairs"])
    ioi = {"targets": [" Mary"], "distractors": [" John"]}
    return {
        "prompt explorer grid": ("POST", "/api/prompt/grid", {"prompt": PROMPT, "kind": unit_kind, "k": 3}),
        "attention (layer 15, all heads)": ("POST", "/api/attention", {"prompt": PROMPT, "layer": 15}),
        "head detectors (8 x 2x25 repeated)": (
            "POST",
            "/api/heads/detect",
            {"source": "repeated", "length": 25, "n": 8, "seed": 0},
        ),
        "head detectors (the prompt)": ("POST", "/api/heads/detect", {"source": "prompt", "prompt": PROMPT}),
        "lens grid, residual": ("POST", "/api/lens/grid", {"prompt": PROMPT, "stream": "resid", "k": 3}),
        "lens grid, MLP writes": ("POST", "/api/lens/grid", {"prompt": PROMPT, "stream": "mlp", "k": 3}),
        "patching, attribution (resid)": (
            "POST",
            "/api/patch",
            {
                "clean": PROMPT,
                "corrupted": PROMPT.replace("John gave", "Mary gave"),
                **ioi,
                "site": "resid_pre",
                "method": "attribution",
            },
        ),
        "debugger + 2 interventions": (
            "POST",
            "/api/debug",
            {
                "prompt": PROMPT,
                **ioi,
                "k": 10,
                "interventions": [
                    {
                        "target": {"kind": unit_kind, "layer": 3, "index": 7},
                        "op": {"kind": "scale", "factor": 0.5},
                    },
                    {
                        "target": {"kind": "residual", "layer": 10},
                        "op": {
                            "kind": "steer",
                            "coefficient": 2.0,
                            "direction": {
                                "kind": "node_write",
                                "node": {"kind": unit_kind, "layer": 5, "index": 1, "token": 0},
                            },
                        },
                    },
                ],
            },
        ),
    }


def exact_patching() -> dict[str, tuple[str, str, dict[str, Any] | None]]:
    ioi = {"targets": [" Mary"], "distractors": [" John"]}
    return {
        f"exact patching, IOI 14 tokens, {site}": (
            "POST",
            "/api/patch",
            {"clean": IOI_CLEAN, "corrupted": IOI_CORRUPT, **ioi, "site": site, "method": "activation"},
        )
        for site in ("resid_pre", "heads")
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", type=Path, default=None, help="a collated dataset with maps, for /api/maps")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()

    from fastapi.testclient import TestClient

    model = load_model(None)
    settings = Settings(cache_size=0, dataset=args.dataset)
    settings.limits.max_request_tokens = 1 << 20  # the exact sweeps below are measured, not refused
    settings.limits.max_job_seconds = 600
    client = TestClient(create_app(model, settings), base_url="http://localhost")
    client.__enter__()
    kinds = client.get("/api/model").json()["kinds"]
    n_tokens = len(model.to_tokens(PROMPT)[0][0])

    def call(method: str, path: str, body: dict[str, Any] | None) -> Callable[[], Any]:
        def run() -> Any:
            r = client.request(method, path, json=body)
            if r.status_code != 200:
                raise SystemExit(f"{path}: {r.status_code} {r.text[:300]}")
            return len(r.content)

        return run

    ids = model.to_tokens(PROMPT)[0]

    def forward() -> None:
        with torch.inference_mode():
            model(ids)

    probe = contention_probe()
    fns: dict[str, Callable[[], Any]] = {"bare forward (baseline)": forward}
    fns |= {name: call(*spec) for name, spec in requests(kinds).items()}
    if args.dataset is not None:
        fns["maps: units"] = call("GET", "/api/maps/units", None)
        fns["maps: prompts"] = call("GET", "/api/maps/prompts", None)
    timings, sizes = bench_interleaved(fns, cell_s=5, reps=args.rounds)
    slow, slow_sizes = bench_interleaved({n: call(*s) for n, s in exact_patching().items()}, cell_s=5, reps=1)
    base = timings["bare forward (baseline)"].median_ms

    rows, results = [], {}
    for name, t in {**timings, **slow}.items():
        met = "" if name.startswith(("bare", "exact")) else ("met" if t.median_ms < TARGET_MS else "NOT met")
        size = (sizes | slow_sizes).get(name)
        rows.append([
            name, f"{t.median_ms:.0f}", f"{t.min_ms:.0f}-{max(t.samples) * 1e3:.0f}",
            f"{t.median_ms / base:.1f}x", f"{size / 1e3:.0f} kB" if isinstance(size, int) else "", met,
        ])  # fmt: skip
        results[name] = {**t.to_json(), "bytes": size, "target_met": met == "met" if met else None}
    print(f"SmolLM2, a {n_tokens}-token prompt; {len(timings['bare forward (baseline)'].samples)} rounds")
    if warning := busy_warning(probe):
        print(warning)
    print(table(rows, ["request", "median ms", "min-max", "vs forward", "response", "< 1 s"]))
    write_json(args.json, {"machine": machine(), "probe": probe, "tokens": n_tokens, "results": results})


if __name__ == "__main__":
    main()
