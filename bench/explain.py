"""Explanations without an LLM: time per node and the size of the prompts an LLM would get.

    python bench/explain.py --dataset DIR                 # 20 sampled neurons of a SmolLM2 dataset
    python bench/explain.py --dataset DIR --nodes 50 --model path/to/model.gguf

Per node: loading its records (dataset reads plus one forward of the quantile samples and the
24 extra random windows), the baseline explanation (with its promoted tokens), and the scores
with no simulator or judge (so only the bookkeeping: every score comes back absent). The ratio
column divides each step by the records step, the part that needs the subject model.
Then the token counts, by the dataset model's tokenizer (message texts only, no chat template),
of the explainer prompt for a node's train records, the all-at-once simulator prompt for one
record (one window), and one detection prompt (5 records).
"""

from __future__ import annotations

import argparse
import statistics
import time

from mechscope.data.store import Dataset
from mechscope.explain import prompts
from mechscope.explain.explainer import _messages, explain_baseline, promoted_tokens
from mechscope.explain.jobs import select_nodes
from mechscope.explain.records import load_records
from mechscope.explain.scoring import score_all
from mechscope.models.loading import load_model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--model", default=None, help="the dataset's model (default: SmolLM2)")
    ap.add_argument("--nodes", type=int, default=20)
    ap.add_argument("--kind", default="mlp_neuron")
    args = ap.parse_args()

    model = load_model(args.model)
    assert model.tokenizer is not None
    tok = model.tokenizer
    steps: dict[str, list[float]] = {"records": [], "baseline": [], "scores (no LLM)": []}
    sizes: dict[str, list[int]] = {
        "explainer (train records)": [],
        "simulator (1 record)": [],
        "detection (5 records)": [],
    }
    with Dataset(args.dataset) as ds:
        nodes = select_nodes(ds, [args.kind], None, args.nodes, seed=0)
        for kind, layer, unit in nodes:
            t0 = time.perf_counter()
            recs = load_records(ds, kind, layer, unit, model)
            t1 = time.perf_counter()
            explain_baseline(recs, promoted_tokens(model, kind, layer, unit))
            t2 = time.perf_counter()
            score_all("a phrase", recs, None, None, None)
            t3 = time.perf_counter()
            for name, dt in zip(steps, (t1 - t0, t2 - t1, t3 - t2), strict=True):
                steps[name].append(dt)

            def count(msgs: list[prompts.Message], extra: str = "") -> int:
                return sum(len(tok.encode(m.content, add_bos=False)) for m in msgs) + len(
                    tok.encode(extra, add_bos=False)
                )

            sizes["explainer (train records)"].append(count(_messages(recs, recs.train)))
            if recs.test:
                r = recs.test[0]
                listing = prompts.listing(r.tokens, [prompts.UNKNOWN] * len(r.tokens))
                sizes["simulator (1 record)"].append(
                    count(prompts.simulate_messages("a phrase of ten tokens or so", None), listing)
                )
                texts = [prompts.marked_text(x.tokens, set()) for x in recs.test[:5]]
                sizes["detection (5 records)"].append(
                    count(prompts.judge_messages(prompts.DETECT_SYSTEM, "a phrase", texts))
                )
    base = statistics.median(steps["records"])
    print(f"{len(nodes)} {args.kind} nodes of {args.dataset}")
    print(f"{'step':<18} {'median ms':>10} {'max ms':>8} {'ratio':>6}")
    for name, v in steps.items():
        print(
            f"{name:<18} {1000 * statistics.median(v):>10.1f} {1000 * max(v):>8.1f} {statistics.median(v) / base:>6.2f}"
        )
    total = [sum(x) for x in zip(*steps.values(), strict=True)]
    print(f"{'per node':<18} {1000 * statistics.median(total):>10.1f} {1000 * max(total):>8.1f}")
    print(f"\n{'prompt':<28} {'median tokens':>13} {'max':>6}")
    for name, n in sizes.items():
        if n:
            print(f"{name:<28} {statistics.median(n):>13.0f} {max(n):>6}")


if __name__ == "__main__":
    main()
