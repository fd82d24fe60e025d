"""Attribution graph time and peak memory on SmolLM2, against a bare forward+backward run alongside.

    python bench/graph.py                          # 16 and 64 tokens, the transcoders preset
    python bench/graph.py --lengths 16 --json g.json
    python bench/graph.py --transcoders DIR        # any folder with a transcoder at every layer

Each length runs in its own process (peak RSS is per process): load the model and the
transcoders, time a bare forward+backward of the model on the same prompt (the baseline; the
median of 3), then build the graph and report its phases (the frozen forward, the logit rows, the
latent rows in backward passes of ``--batch`` targets, the scores), pruning, the causal check of
the top 20 latents, and the peak RSS over the process's RSS before the graph. Without the
preset (``mechscope train-sae --preset transcoders``) it uses random transcoders of the same
shape and says so: the time is the same, the scores mean nothing.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, table, write_json

TEXT = (
    "The capital of France is Paris, and the capital of Germany is Berlin. Rome is the capital of Italy, "
    "while Madrid is the capital of Spain. Many tourists visit these cities every year to see their museums, "
    "churches and old streets, and to eat in their restaurants. The rivers that cross them"
)


def child(length: int, folder: str | None, max_features: int, batch: int) -> dict[str, Any]:
    import torch

    from mechscope.engine.dictionaries import attach_all
    from mechscope.engine.graphs import build_graph
    from mechscope.engine.graphs.check import causal_check, top_nodes
    from mechscope.engine.kinds.latent import attach
    from mechscope.models.dictionaries import DictionaryConfig, SparseCoder, init_random
    from mechscope.models.dictionaries.presets import TRANSCODERS, is_trained, preset_folder
    from mechscope.models.loading import load_model

    model = load_model("smollm2")
    folder = folder or str(preset_folder(model, TRANSCODERS))
    trained = is_trained(Path(folder), TRANSCODERS) or (
        Path(folder).is_dir() and folder != str(preset_folder(model, TRANSCODERS))
    )
    if trained:
        attach_all(model, [folder])
    else:
        d = model.cfg.d_model
        for layer in range(model.cfg.n_layers):
            cfg = DictionaryConfig(d_in=d, n_latents=2048, hook=f"blocks.{layer}.ln2.out", out_hook=f"blocks.{layer}.mlp_out",
                                   d_out=d, kind="skip_transcoder", k=16, apply_b_dec_to_input=False)  # fmt: skip
            attach(model, init_random(SparseCoder(cfg), layer), f"tc{layer}")
    tokens = model.to_tokens(TEXT)[0][0][:length]
    # Baseline: the model's own forward + backward (one scalar) on the same tokens.
    bare = []

    def leaf(v: torch.Tensor, _hp: object) -> torch.Tensor:
        return v.detach().requires_grad_(True)  # the weights are frozen: give the backward a leaf

    for _ in range(3):
        t0 = time.perf_counter()
        with torch.enable_grad(), model.hooks(fwd=[("blocks.0.resid_pre", leaf)]):
            out = model(tokens[None], logits_from=-1)
        out[0, -1].max().backward()
        bare.append(time.perf_counter() - t0)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    g = build_graph(model, tokens.tolist(), None, max_features, batch)
    p = g.pruned()
    t_prune = time.perf_counter() - t0 - g.timings["total"]
    t1 = time.perf_counter()
    nodes = top_nodes(g, 20)
    c = causal_check(model, g, nodes)
    t_check = time.perf_counter() - t1
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    sub = g.subgraph_scores(p.node_mask[: g.n_features])
    assert g.scores is not None
    return {
        "tokens": length, "trained": trained, "active": g.active_features, "visited": g.n_features,
        "backward_passes": -(-(g.n_features + g.n_logits) // batch), "timings": g.timings,
        "prune_s": t_prune, "check_s": t_check, "bare_fwd_bwd_s": sorted(bare)[1],
        "rss_before_mb": rss0 / 1024, "peak_rss_mb": peak / 1024,
        "kept_nodes": int(p.node_mask[: g.n_features].sum()), "kept_edges": int(p.edge_mask.sum()),
        "replacement": g.scores.replacement, "completeness": g.scores.completeness,
        "pruned_replacement": sub.replacement, "pruned_completeness": sub.completeness,
        "check_pearson": c.pearson, "check_spearman": c.spearman, "top_logit": g.logit_strs[0],
    }  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lengths", type=int, nargs="+", default=[16, 64])
    ap.add_argument("--transcoders", default=None)
    ap.add_argument("--max-features", type=int, default=4096)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--json", default=None)
    ap.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child is not None:
        print(json.dumps(child(a.child, a.transcoders, a.max_features, a.batch)))
        return
    results = []
    for n in a.lengths:
        cmd = [
            sys.executable,
            __file__,
            "--child",
            str(n),
            "--max-features",
            str(a.max_features),
            "--batch",
            str(a.batch),
        ]
        if a.transcoders:
            cmd += ["--transcoders", a.transcoders]
        r = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if r.returncode != 0:
            sys.exit(f"length {n} failed:\n{r.stderr[-3000:]}")
        results.append(json.loads(r.stdout.strip().splitlines()[-1]))
    if not all(r["trained"] for r in results):
        print(
            "note: no trained transcoders (mechscope train-sae --preset transcoders): random ones of the same shape"
        )
    rows = []
    for r in results:
        t = r["timings"]
        rows.append([
            str(r["tokens"]), f"{r['active']:,}", f"{r['visited']:,}", str(r["backward_passes"]),
            f"{t['total']:.1f}", f"{t['forward']:.1f}", f"{t['logit_rows']:.1f}", f"{t['feature_rows']:.1f}",
            f"{t['scores'] + r['prune_s']:.1f}", f"{r['check_s']:.1f}",
            f"{t['total'] / r['bare_fwd_bwd_s']:.0f}x", f"{r['peak_rss_mb'] - r['rss_before_mb']:,.0f}",
            f"{r['peak_rss_mb']:,.0f}",
        ])  # fmt: skip
    print(table(rows, ["tokens", "active", "visited", "bwd passes", "graph s", "fwd s", "logit rows s",
                       "latent rows s", "scores+prune s", "check s", "vs bare fwd+bwd", "+RSS MB", "peak RSS MB"]))  # fmt: skip
    for r in results:
        print(f"{r['tokens']} tokens: top logit {r['top_logit']!r}; replacement {r['replacement']:.3f}, completeness "
              f"{r['completeness']:.3f}; pruned ({r['kept_nodes']} latents, {r['kept_edges']:,} edges) "
              f"{r['pruned_replacement']:.3f} / {r['pruned_completeness']:.3f}; causal check Pearson "
              f"{r['check_pearson']}, Spearman {r['check_spearman']}")  # fmt: skip
    write_json(a.json, {"machine": machine(), "results": results})


if __name__ == "__main__":
    main()
