"""Collation throughput vs a bare forward over the same tokens, in one run.

    python bench/collate.py                  # 4,032 tokens of the default corpus, 3 rounds
    python bench/collate.py --tokens 8064 --rounds 5
    python bench/collate.py --demo           # also: the demo's default (100k tokens) end to end
    python bench/collate.py --ray 2          # also: mechscope collate vs the same on 2 local Ray workers
    python bench/collate.py --json out.json
    python bench/collate.py --queries DIR    # only: the read API's latency on a finished dataset
    python bench/collate.py --queries DIR --full-corpus-text   # ... with the whole default
                                             # corpus's windows and documents, which search scans

"collate" is :func:`mechscope.data.collate.collate_range` over the windows (every neuron's and
head's top-k, samples, moments, histogram and density; no checkpoint writes). The baselines,
interleaved with it round by round, run the same windows in the same batches:

- "bare forward": ``model(tokens)`` under ``torch.inference_mode()``, no hooks (logits included);
- "bare blocks": the same without the final norm and unembedding, which collation does not need
  (the stricter baseline, as bench/engine.py's: the cheapest plain pass over what is used).

Target: collate throughput >= 0.8x the bare forward's. ``--demo`` times ``mechscope collate``'s
library path (windows, collation with checkpoints, DuckDB + Parquet) for the default 100k tokens.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from _common import busy_warning, contention_probe, load_model_under_test, machine, table, write_json

from mechscope.data.collate import CollateConfig, _run_blocks, collate, collate_range
from mechscope.data.corpora import Windows, make_windows, open_corpus
from mechscope.data.store import Dataset, Workspace

TARGET = 0.8


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tokens", type=int, default=4032, help="corpus tokens per timed run")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--demo", action="store_true", help="also time the demo's default slice end to end")
    ap.add_argument(
        "--ray", type=int, metavar="N", help="also time collate vs collate on N local Ray workers"
    )
    ap.add_argument("--queries", metavar="DIR", help="only time the Dataset queries on this dataset")
    ap.add_argument(
        "--full-corpus-text",
        action="store_true",
        help="with --queries: time a copy whose windows and documents tables hold the whole default corpus",
    )
    ap.add_argument("--json", help="also write the numbers here")
    args = ap.parse_args()
    if args.queries:
        if args.full_corpus_text:
            with tempfile.TemporaryDirectory() as tmp:
                write_json(args.json, queries(with_full_corpus_text(args.queries, tmp)))
        else:
            write_json(args.json, queries(args.queries))
        return
    model, label = load_model_under_test(False)
    assert model.tokenizer is not None
    cfg = CollateConfig(batch=args.batch)
    windows = make_windows(open_corpus(None), model.tokenizer, cfg.window, args.tokens)
    n_tok = windows.n * (cfg.window - 1)
    batches = [windows.tokens[i : i + cfg.batch] for i in range(0, windows.n, cfg.batch)]
    m = machine()
    print(
        f"collation benchmark: {label}\n{m['cpu']}, {m['cores']} cores, torch {m['torch']} ({m['torch_threads']} threads)"
    )
    print(f"{windows.n} windows x {cfg.window} tokens ({n_tok:,} corpus tokens), batch {cfg.batch}")

    def bare() -> None:
        with torch.inference_mode():
            for b in batches:
                model(b)

    def blocks() -> None:
        with torch.inference_mode():
            for b in batches:
                _run_blocks(model, b)

    def run_collate() -> None:
        collate_range(model, windows, cfg)

    fns = {"bare forward": bare, "bare blocks": blocks, "collate": run_collate}
    probe = contention_probe()
    bare()  # warm-up
    run_collate()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(args.rounds):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    best = {k: sorted(v)[len(v) // 2] for k, v in times.items()}  # medians
    rate = {k: n_tok / v for k, v in best.items()}
    rows = [[k, f"{best[k]:.2f}", f"{rate[k]:,.0f}", f"{rate[k] / rate['bare forward']:.2f}x"] for k in fns]
    print(table(rows, ["implementation", "median s", "tokens/s", "vs bare forward"]))
    ratio = rate["collate"] / rate["bare forward"]
    strict = rate["collate"] / rate["bare blocks"]
    print(
        f"\ncollate / bare forward throughput: {ratio:.2f}x (target >= {TARGET:.2f}x: "
        f"{'met' if ratio >= TARGET else 'NOT met'}); collate / bare blocks: {strict:.2f}x"
    )
    warning = busy_warning(probe)
    if warning:
        print(warning)
    result = {"machine": m, "model": label, "tokens": n_tok, "seconds": best, "tokens_per_s": rate,
              "ratio": ratio, "ratio_blocks": strict, "busy": warning}  # fmt: skip
    if args.ray:
        result["ray"] = ray_vs_single(model, windows, cfg, args.ray)
    if args.demo:
        result["demo"] = demo(model)
    write_json(args.json, result)


def ray_vs_single(
    model: torch.nn.Module, windows: Windows, cfg: CollateConfig, workers: int
) -> dict[str, float]:
    """Wall time of the whole library call (checkpoints and database included): one process vs a
    local Ray cluster of ``workers`` (its start and the model's shipping included, and apart)."""
    import ray

    from mechscope.data.distributed import collate_on_ray
    from mechscope.models.decoder import HookedDecoder

    assert isinstance(model, HookedDecoder)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        collate(model, windows, Workspace(Path(tmp) / "single"), cfg)
        single = time.perf_counter() - t0
        t0 = time.perf_counter()
        ray.init(num_cpus=workers, include_dashboard=False, logging_level="WARNING")
        start = time.perf_counter() - t0
        try:
            collate_on_ray(model, windows, Workspace(Path(tmp) / "ray"), cfg, workers=workers)
        finally:
            ray.shutdown()
        on_ray = time.perf_counter() - t0
    n_tok = windows.n * (cfg.window - 1)
    print(
        f"\ncollate, one process: {single:.1f} s ({n_tok / single:,.0f} tok/s); on {workers} local Ray workers: "
        f"{on_ray:.1f} s ({n_tok / on_ray:,.0f} tok/s, {start:.1f} s of it starting Ray): {single / on_ray:.2f}x"
    )
    return {"single_s": single, "ray_s": on_ray, "ray_start_s": start, "workers": workers}


def demo(model: torch.nn.Module) -> dict[str, float]:
    """The demo's default: 100k tokens of the default corpus, collated and written to DuckDB."""
    from mechscope.models.decoder import HookedDecoder

    assert isinstance(model, HookedDecoder) and model.tokenizer is not None
    t0 = time.perf_counter()
    corpus = open_corpus(None)
    windows = make_windows(corpus, model.tokenizer, 64, 100_000)
    t_windows = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        collate(model, windows, Workspace(tmp), CollateConfig(), corpus.name, corpus.attribution)
        total = time.perf_counter() - t0
        with Dataset(tmp) as ds:
            sizes = ds.query("SELECT count(*) AS n FROM examples")[0]["n"]
    print(
        f"\ndemo slice: {windows.n * 63:,} tokens, windows {t_windows:.1f} s, total {total:.1f} s ({sizes:,} examples)"
    )
    return {"windows_s": t_windows, "total_s": total}


def with_full_corpus_text(root: str, tmp: str) -> str:
    """A copy of the dataset at ``root`` whose ``windows`` and ``documents`` tables hold the whole
    default corpus (~1.06M tokens). Only full-text search reads them in bulk; every other table is
    sized by the nodes (top-k and samples per node), not by the corpus."""
    import shutil

    import duckdb

    from mechscope.data.schema import text_tables
    from mechscope.data.store import DATABASE, MANIFEST
    from mechscope.models.loading import load_model

    shutil.copy(Path(root) / DATABASE, Path(tmp) / DATABASE)
    shutil.copy(Path(root) / MANIFEST, Path(tmp) / MANIFEST)
    tok = load_model(None).tokenizer
    assert tok is not None
    tables = text_tables(make_windows(open_corpus(None), tok, 64, None), tok)
    con = duckdb.connect(str(Path(tmp) / DATABASE))
    try:
        for name, table in tables.items():
            con.register("incoming", table)
            con.execute(f"DELETE FROM {name}")
            con.execute(f"INSERT INTO {name} SELECT * FROM incoming")
            con.unregister("incoming")
        n = con.execute("SELECT count(*), sum(length(text)) FROM windows").fetchone()
    finally:
        con.close()
    assert n is not None
    print(f"windows replaced by the whole default corpus: {n[0]:,} windows, {n[1]:,} characters")
    return tmp


def queries(root: str, repeats: int = 20) -> dict[str, float]:
    """Median and worst latency (ms) of each read the UI makes, over varied nodes and texts."""
    import random
    import statistics

    rng = random.Random(0)
    calls: dict[str, object] = {}
    with Dataset(root) as ds:
        n_layers, d_mlp, n_heads = ds.meta()["model_shape"]
        ds.top_examples("mlp_neuron", 0, 0)  # opens the database
        calls = {
            "top_examples(neuron, n=20)": lambda: ds.top_examples(
                "mlp_neuron", rng.randrange(n_layers), rng.randrange(d_mlp), 20
            ),
            "top_examples(head, n=20)": lambda: ds.top_examples(
                "attn_head", rng.randrange(n_layers), rng.randrange(n_heads), 20
            ),
            "stats(neuron)": lambda: ds.stats("mlp_neuron", rng.randrange(n_layers), rng.randrange(d_mlp)),
            "samples(neuron, quantile)": lambda: ds.samples(
                "mlp_neuron", rng.randrange(n_layers), rng.randrange(d_mlp), "quantile"
            ),
            "samples(neuron, random)": lambda: ds.samples(
                "mlp_neuron", rng.randrange(n_layers), rng.randrange(d_mlp), "random"
            ),
            "nodes_for_token(id)": lambda: ds.nodes_for_token(
                rng.choice([264, 278, 281, 1345, 2683, 12200]), 20
            ),
            "nodes_for_token(text)": lambda: ds.nodes_for_token(
                rng.choice([" the", " Paris", " war", ".", " of", " king"]), 20
            ),
            "search(text)": lambda: ds.search(
                rng.choice(["photosynthesis", "the united states", "river", "XYZXYZ"]), 20
            ),
            "progress()": ds.progress,
        }
        out: dict[str, float] = {}
        rows = []
        for name, fn in calls.items():
            samples = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                fn()  # type: ignore[operator]
                samples.append((time.perf_counter() - t0) * 1e3)
            out[name] = statistics.median(samples)
            rows.append([name, f"{statistics.median(samples):.1f}", f"{max(samples):.1f}"])
    print(table(rows, ["query", "median ms", "max ms"]))
    return out


if __name__ == "__main__":
    main()
