"""The causal check of a graph: do its predictions hold in the real model?

For each chosen node (a latent or an error term), the graph predicts how scaling it by
``factor`` (0: ablation) moves the target logit (minus the mean logit, the graph's own output
node): the change travels along every path of the graph, the latents downstream responding
linearly (an active latent passes its pre-activation's change on) and everything else frozen.
The measurement runs the *real* model with the transcoders spliced in: attention, norms, the
other latents and the true MLPs (recon + error) recompute, so the comparison tests both the
graph's edges and the linearisation. One batched forward measures every node, plus the whole
set at once. Pearson and Spearman over the nodes are reported as the Debugger's verify does.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from mechscope.engine.graphs.build import Graph
from mechscope.engine.graphs.replacement import node_site, transcoders
from mechscope.engine.verify import _pearson, _ranks
from mechscope.errors import InputError
from mechscope.models.decoder import HookedDecoder
from mechscope.models.hooks import HookFn


@dataclass(frozen=True)
class CheckRow:
    node: int  # index into the graph's nodes
    predicted: float
    measured: float


@dataclass(frozen=True)
class Check:
    factor: float
    rows: list[CheckRow]
    together_predicted: float  # every node scaled at once
    together_measured: float
    pearson: float | None
    spearman: float | None


def unit_matrix(g: Graph) -> torch.Tensor:
    """The adjacency per unit of each source: a latent's columns divided by its activation (its
    edges are activation x effect per unit); errors and tokens enter with weight 1."""
    m = g.adjacency.clone()
    f = g.n_features
    if f:
        m[:, :f] /= g.activation.clamp(min=1e-12)[None, :]
    return m


def predicted_effects(
    g: Graph, nodes: list[int], factor: float, unit: torch.Tensor | None = None
) -> torch.Tensor:
    """(len(nodes) + 1,): the graph's change of the target logit when each node (then all of
    them together) is scaled by ``factor``."""
    m = unit_matrix(g) if unit is None else unit
    f, target = g.n_features, g.n_nodes - g.n_logits
    values = torch.cat([g.activation, torch.ones(g.n_nodes - f)])
    starts = torch.zeros(len(nodes) + 1, g.n_nodes)
    respond = torch.ones(len(nodes) + 1, f)  # a scaled latent passes on only ``factor`` of its input's change
    for j, n in enumerate(nodes):
        starts[j, n] = (factor - 1) * values[n]
        if n < f:
            respond[j, n] = respond[-1, n] = factor
    starts[-1] = starts[:-1].sum(0)
    delta = starts.clone()
    ff = m[:f, :]  # latents respond; errors, tokens and logits do not feed back
    for _ in range(g.n_layers + 2):
        nxt = starts.clone()
        nxt[:, :f] += respond * (delta @ ff.T)
        if torch.equal(nxt, delta):
            break
        delta = nxt
    return delta @ m[target]


def measured_effects(model: HookedDecoder, g: Graph, nodes: list[int], factor: float) -> torch.Tensor:
    """(len(nodes) + 1,): the real model's change of the target logit (minus the mean logit)
    with each node, then all of them, scaled by ``factor``; one batched forward."""
    layers = transcoders(model)
    b = len(nodes) + 2  # row 0: clean; the last: everything at once
    edits: dict[str, list[tuple[int, tuple[int, ...]]]] = {}
    for j, n in enumerate(nodes, 1):
        at = g.locate(n)
        if at.type not in ("latent", "error"):
            raise InputError(f"node {n} is a {at.type}; the causal check scales latents and errors")
        key, index = node_site(layers, at)
        edits.setdefault(key, []).extend([(j, index), (b - 1, index)])

    def scale(where: list[tuple[int, tuple[int, ...]]]) -> HookFn:
        def fn(x: torch.Tensor, _hp: object) -> torch.Tensor:
            x = x.clone()
            for row, index in where:
                x[(row, *index)] *= factor
            return x

        return fn

    tokens = torch.tensor([g.tokens], device=model.device).expand(b, g.n_pos)
    with torch.no_grad(), model.hooks(fwd=[(k, scale(v)) for k, v in edits.items()]):
        logits = model(tokens, logits_from=-1)[:, -1].float()
    tok = g.logit_tokens[0]
    value = logits[:, tok] - logits.mean(-1)
    return (value[1:] - value[0]).cpu()


def causal_check(model: HookedDecoder, g: Graph, nodes: list[int], factor: float = 0.0) -> Check:
    """Predicted against measured effects of scaling each of ``nodes`` (graph node numbers:
    latents or errors) by ``factor`` on the graph's first logit."""
    if not nodes:
        raise InputError("choose at least one node to check")
    if len(set(nodes)) != len(nodes):
        raise InputError("nodes: each node once")
    bad = [n for n in nodes if not 0 <= n < g.n_features + g.n_errors]
    if bad:
        raise InputError(
            f"nodes {bad} are not latents or errors of this graph (0..{g.n_features + g.n_errors - 1})"
        )
    pred = predicted_effects(g, nodes, factor)
    meas = measured_effects(model, g, nodes, factor)
    rows = [CheckRow(n, float(p), float(m)) for n, p, m in zip(nodes, pred[:-1], meas[:-1], strict=True)]
    xs, ys = [r.predicted for r in rows], [r.measured for r in rows]
    return Check(
        factor, rows, float(pred[-1]), float(meas[-1]), _pearson(xs, ys), _pearson(_ranks(xs), _ranks(ys))
    )


def top_nodes(g: Graph, n: int = 20, node_threshold: float = 0.8, edge_threshold: float = 0.98) -> list[int]:
    """The ``n`` latents of the pruned graph with the most influence."""
    p = g.pruned(node_threshold, edge_threshold)
    inf = p.node_influence[: g.n_features].clone()
    inf[~p.node_mask[: g.n_features]] = -1
    order = inf.argsort(descending=True)[:n]
    return [int(i) for i in order if inf[i] >= 0]
