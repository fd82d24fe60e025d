"""``mechscope graph``: an attribution graph in a terminal, its causal check, and the
Neuronpedia JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from mechscope.cli_common import MODEL_HELP, friendly_errors


@click.command("graph")
@click.argument("prompt")
@click.option("--transcoders", "tc_ref", required=True,
              help="A folder of per-layer transcoders (train-sae output, circuit-tracer layer files), "
                   "or 'transcoders': SmolLM2's preset (trained first if absent, ~16 min on 2 cores).")  # fmt: skip
@click.option(
    "--target", default=None, help="The output token to explain (default: the top logits up to 95%)."
)
@click.option("--model", "-m", "model_ref", default=None, help=MODEL_HELP)
@click.option("--max-features", default=4096, show_default=True, type=click.IntRange(0),
              help="Latents whose inputs are computed, most influential first.")  # fmt: skip
@click.option("--node-threshold", default=0.8, show_default=True, type=click.FloatRange(0, 1, min_open=True),
              help="Node influence kept by pruning.")  # fmt: skip
@click.option("--edge-threshold", default=0.98, show_default=True, type=click.FloatRange(0, 1, min_open=True),
              help="Edge influence kept by pruning.")  # fmt: skip
@click.option("--check", "check_n", default=20, show_default=True, type=click.IntRange(0),
              help="Ablate this many of the most influential latents in the real model: predicted vs measured.")  # fmt: skip
@click.option("--top", default=15, show_default=True, type=click.IntRange(0), help="Latents listed.")
@click.option(
    "--json", "json_out", default=None, help="Write the pruned graph as Neuronpedia's graph JSON here."
)
@friendly_errors
def graph(
    prompt: str, tc_ref: str, target: str | None, model_ref: str | None, max_features: int,
    node_threshold: float, edge_threshold: float, check_n: int, top: int, json_out: str | None,
) -> None:  # fmt: skip
    """The attribution graph of PROMPT's next token through per-layer transcoders: every latent,
    error term and token on the path to the output, pruned by influence, with its replacement
    and completeness scores (docs/graphs.md)."""
    from mechscope.engine.dictionaries import attach_all, demo_refs, dictionary_folders, is_preset
    from mechscope.engine.graphs import build_graph, to_neuronpedia
    from mechscope.engine.graphs.check import causal_check, top_nodes
    from mechscope.engine.graphs.replacement import transcoders
    from mechscope.errors import InputError
    from mechscope.models.loading import load_model

    if not is_preset(tc_ref):
        dictionary_folders(tc_ref)  # a wrong path fails before the model loads
    model = load_model(model_ref)
    attach_all(model, demo_refs(model, [tc_ref], click.echo))
    try:
        transcoders(model)
    except InputError as e:
        raise InputError(f"--transcoders {tc_ref}: {e}") from None
    tokens = model.to_tokens(prompt)[0][0].tolist()
    targets = None
    if target is not None:
        ids = model.tokenizer.encode(target, add_bos=False) if model.tokenizer else []
        if not ids:
            raise InputError(f"--target {target!r} has no tokens")
        targets = ids[:1]
    g = build_graph(model, tokens, targets, max_features)
    p = g.pruned(node_threshold, edge_threshold)
    sub = g.subgraph_scores(p.node_mask[: g.n_features])
    assert g.scores is not None
    out = click.echo
    out(f"prompt: {' '.join(repr(t) for t in g.token_strs)}")
    out(
        "logits: "
        + ", ".join(f"{s!r} p={float(q):.3f}" for s, q in zip(g.logit_strs, g.logit_probs, strict=True))
    )
    out(f"latents: {g.active_features:,} active, {g.n_features:,} visited; pruned graph: "
        f"{int(p.node_mask[: g.n_features].sum())} latents, {int(p.edge_mask.sum()):,} edges "
        f"({p.kept_node_influence:.0%} of node influence, {p.kept_edge_influence:.0%} of edge influence)")  # fmt: skip
    out(f"scores: replacement {g.scores.replacement:.3f}, completeness {g.scores.completeness:.3f}; "
        f"pruned: {sub.replacement:.3f}, {sub.completeness:.3f}")  # fmt: skip
    out("time: " + ", ".join(f"{k} {v:.1f} s" for k, v in g.timings.items()))
    order = p.node_influence[: g.n_features].argsort(descending=True)[:top].tolist()
    if order:
        out(f"\n{'influence':>9}  {'latent':<28} {'token':<14} {'act':>7}")
    for i in order:
        layer, pos, idx = int(g.feature_layer[i]), int(g.feature_pos[i]), int(g.feature_index[i])
        out(f"{float(p.node_influence[i]):9.4f}  {g.kinds[layer] + '.' + str(idx):<28} "
            f"{pos:>3} {g.token_strs[pos]!r:<10} {float(g.activation[i]):7.2f}")  # fmt: skip
    check: dict[str, Any] | None = None
    nodes = top_nodes(g, check_n, node_threshold, edge_threshold) if check_n else []
    if nodes:
        c = causal_check(model, g, nodes)
        pr, sp = (f"{v:.3f}" if v is not None else "n/a" for v in (c.pearson, c.spearman))
        out(f"\ncausal check ({len(nodes)} latents ablated one at a time in the real model, "
            f"logit {g.logit_strs[0]!r} minus the mean): Pearson {pr}, Spearman {sp}; all together: "
            f"predicted {c.together_predicted:+.3f}, measured {c.together_measured:+.3f}")  # fmt: skip
        check = {"pearson": c.pearson, "spearman": c.spearman}
    elif check_n:
        out("\ncausal check: no latent is left in the pruned graph (raise --node-threshold to keep some)")
    if json_out:
        doc = to_neuronpedia(g, Path(json_out).stem or "graph", prompt, f"mechscope:{model.cfg.name}", pruned=p,
                             node_threshold=node_threshold, edge_threshold=edge_threshold)  # fmt: skip
        doc["metadata"]["mechscope"] = {"scores": vars(g.scores), "pruned_scores": vars(sub), "check": check,
                                        "timings": g.timings}  # fmt: skip
        _write_json(Path(json_out), doc)
        out(f"wrote {json_out} ({len(doc['nodes'])} nodes, {len(doc['links'])} links)")


def _write_json(path: Path, doc: dict[str, Any]) -> None:
    """Atomically: a killed run leaves the old file or the new one, never half of one."""
    from mechscope.durable import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(doc))


def register(group: click.Group) -> None:
    group.add_command(graph)
