"""Building an attribution graph: the whole linear path from the input tokens to a prediction.

1. The frozen forward (:mod:`.replacement`) gives the sources: active latents, error terms and
   token embeddings.
2. The logit targets: the top logits of the last position up to 95% cumulative probability (at
   most 10), or the tokens asked for. Their rows come first.
3. Latent rows are read in batches of backward passes. When there are more active latents than
   ``max_features``, they are visited in order of their influence on the logits through the rows
   read so far, re-ranked after every few batches (circuit-tracer's order); unvisited latents are
   left out of the graph.
4. The square adjacency over [visited latents, errors, tokens, logits] is returned as a
   :class:`Graph`, with its scores; pruning is a view of it (:meth:`Graph.pruned`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import torch

from mechscope.engine.graphs.influence import (
    Pruned,
    Scores,
    graph_scores,
    merged_into_errors,
    normalized,
    prune,
)
from mechscope.engine.graphs.replacement import Linearized, Target, linearize
from mechscope.errors import InputError
from mechscope.models.decoder import HookedDecoder

MAX_FEATURES = 4096
"""Latents visited by default (circuit-tracer's CLI: 7,500 on a GPU)."""
BATCH = 32
"""Targets per backward pass: each copy of the prompt carries one."""


@dataclass(frozen=True)
class NodeAt:
    """What graph node number ``number`` is."""

    number: int
    type: Literal["latent", "error", "token", "logit"]
    layer: int | None  # a latent's or an error's block
    pos: int
    index: int | None  # a latent's index; a token's or a logit's token id
    k: int = 0  # a logit's rank among the graph's logits (0: the target)


@dataclass
class Graph:
    """An attribution graph. Node order: [features, errors (layer-major, then position), tokens,
    logits]; ``adjacency[t, s]`` is the direct effect of source s on target t in the frozen model
    (a latent's pre-activation or a logit minus the mean logit)."""

    tokens: list[int]
    token_strs: list[str]
    n_layers: int
    kinds: list[str]  # the node kind of each layer's latents
    feature_layer: torch.Tensor  # (F,)
    feature_pos: torch.Tensor
    feature_index: torch.Tensor
    activation: torch.Tensor  # (F,)
    logit_tokens: list[int]
    logit_strs: list[str]
    logit_probs: torch.Tensor  # (K,): their probability in the model
    adjacency: torch.Tensor  # (N, N)
    active_features: int  # active latents on the prompt (visited or not)
    timings: dict[str, float] = field(default_factory=dict)
    scores: Scores | None = None

    @property
    def n_features(self) -> int:
        return int(self.feature_layer.numel())

    @property
    def n_pos(self) -> int:
        return len(self.tokens)

    @property
    def n_errors(self) -> int:
        return self.n_layers * self.n_pos

    @property
    def n_logits(self) -> int:
        return len(self.logit_tokens)

    @property
    def n_nodes(self) -> int:
        return self.n_features + self.n_errors + self.n_pos + self.n_logits

    def locate(self, i: int) -> NodeAt:
        """Node number ``i`` decoded from the node order [latents, errors, tokens, logits]."""
        f, e, t = self.n_features, self.n_errors, self.n_pos
        if not 0 <= i < self.n_nodes:
            raise InputError(f"node {i} is not in this graph (0..{self.n_nodes - 1})")
        if i < f:
            layer, pos = int(self.feature_layer[i]), int(self.feature_pos[i])
            return NodeAt(i, "latent", layer, pos, int(self.feature_index[i]))
        if i < f + e:
            layer, pos = divmod(i - f, t)
            return NodeAt(i, "error", layer, pos, None)
        if i < f + e + t:
            pos = i - f - e
            return NodeAt(i, "token", None, pos, self.tokens[pos])
        k = i - f - e - t
        return NodeAt(i, "logit", None, t - 1, self.logit_tokens[k], k)

    def logit_weights(self) -> torch.Tensor:
        w = torch.zeros(self.n_nodes)
        w[-self.n_logits :] = self.logit_probs / self.logit_probs.sum().clamp(min=1e-12)
        return w

    def pruned(self, node_threshold: float = 0.8, edge_threshold: float = 0.98) -> Pruned:
        for name, v in (("node_threshold", node_threshold), ("edge_threshold", edge_threshold)):
            if not 0 < v <= 1:
                raise InputError(f"{name} must be in (0, 1], got {v}")
        return prune(self.adjacency, self.logit_weights(), self.n_features, self.n_pos, self.n_logits,
                     node_threshold, edge_threshold)  # fmt: skip

    def subgraph_scores(self, keep: torch.Tensor) -> Scores:
        """The scores of the graph of the features ``keep`` (bool over features), the others
        counted as error (circuit-tracer PR #42's subgraph score)."""
        a = merged_into_errors(self.adjacency, keep, self.feature_layer, self.feature_pos,
                               self.n_features, self.n_pos)  # fmt: skip
        return graph_scores(a, self.logit_weights(), self.n_features, self.n_errors, self.n_pos)


def salient_logits(
    logits: torch.Tensor, targets: list[int] | None, max_logits: int = 10, probability: float = 0.95
) -> tuple[list[int], torch.Tensor]:
    """Token ids and their probabilities: ``targets`` when given, else the top logits until their
    cumulative probability reaches ``probability`` (at most ``max_logits``)."""
    probs = torch.softmax(logits.float(), -1)
    if targets:
        ids = list(dict.fromkeys(targets))
        bad = [i for i in ids if not 0 <= i < len(probs)]
        if bad:
            raise InputError(f"target token ids {bad} out of range 0..{len(probs) - 1}")
        return ids, probs[ids]
    p, idx = probs.sort(descending=True)
    n = int(torch.searchsorted(p.cumsum(0), torch.tensor(probability))) + 1
    n = max(1, min(n, max_logits))
    return idx[:n].tolist(), p[:n]


def build_graph(
    model: HookedDecoder,
    tokens: list[int],
    targets: list[int] | None = None,
    max_features: int = MAX_FEATURES,
    batch: int = BATCH,
    rerank_every: int = 4,
    check: Callable[[], None] | None = None,
) -> Graph:
    """The attribution graph of ``model`` (transcoders attached at every layer) on ``tokens``.
    ``check`` is called between backward passes (a server's stop flag raises there)."""
    if len(tokens) < 2:
        raise InputError(
            "an attribution graph needs a prompt of at least 2 tokens (the start token and one more)"
        )
    if max_features < 0 or batch < 1:
        raise InputError(f"max_features must be >= 0 and batch >= 1, got {max_features} and {batch}")
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    lin = linearize(model, torch.tensor(tokens), batch)
    lin.check = check
    timings["forward"] = time.perf_counter() - t0
    logit_ids, probs = salient_logits(lin.logits, targets)
    w_u = model.W_U.detach().float()
    mean_row = w_u.mean(0)
    last = len(tokens) - 1
    t1 = time.perf_counter()
    logit_rows = lin.rows([Target(None, last, w_u[i] - mean_row) for i in logit_ids])
    timings["logit_rows"] = time.perf_counter() - t1
    t2 = time.perf_counter()
    visited, feature_rows = _visit_features(lin, logit_rows, probs, max_features, batch, rerank_every)
    timings["feature_rows"] = time.perf_counter() - t2
    g = _assemble(model, lin, visited, feature_rows, logit_ids, probs, logit_rows)
    t3 = time.perf_counter()
    g.scores = graph_scores(g.adjacency, g.logit_weights(), g.n_features, g.n_errors, g.n_pos)
    timings["scores"] = time.perf_counter() - t3
    timings["total"] = time.perf_counter() - t0
    g.timings = timings
    return g


def _feature_targets(lin: Linearized, which: torch.Tensor) -> list[Target]:
    src = lin.sources
    out = []
    for f in which.tolist():
        layer = int(src.layer[f])
        tc = lin.layers[layer]
        out.append(Target(layer, int(src.pos[f]), tc.encoder_columns(src.index[f : f + 1])[0]))
    return out


def _visit_features(
    lin: Linearized, logit_rows: torch.Tensor, probs: torch.Tensor, max_features: int, batch: int,
    rerank_every: int,
) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """The latents whose rows are read (indices into the sources) and their rows."""
    src = lin.sources
    n = src.n_features
    if n <= max_features:
        order = torch.argsort(src.layer * src.n_positions + src.pos, stable=True)  # shallow first
        return order, lin.rows(_feature_targets(lin, order)) if n else torch.zeros(0, src.n_sources)
    weights = probs / probs.sum()
    from_logits = weights @ normalized(logit_rows)[:, :n]
    rows: list[torch.Tensor] = []
    blocks: list[tuple[torch.Tensor, torch.Tensor]] = []  # (visited latents, their normalised rows)
    seen = torch.zeros(n, dtype=torch.bool)
    while int(seen.sum()) < max_features:
        inf = _partial_influence(from_logits, blocks)
        inf[seen] = -1
        take = min(batch * rerank_every, max_features - int(seen.sum()))
        pick = torch.topk(inf, take).indices
        pick = pick[inf[pick] >= 0]
        if not len(pick):
            break
        pick = pick[torch.argsort(src.layer[pick] * src.n_positions + src.pos[pick], stable=True)]
        block = lin.rows(_feature_targets(lin, pick))
        rows.append(block)
        blocks.append((pick, normalized(block)[:, :n]))  # normalised once, not again every round
        seen[pick] = True
    return torch.cat([p for p, _ in blocks]), torch.cat(rows)


def _partial_influence(
    from_logits: torch.Tensor, blocks: list[tuple[torch.Tensor, torch.Tensor]]
) -> torch.Tensor:
    """Every latent's influence on the logits through the rows read so far: ``from_logits`` is the
    logits' direct share of each latent, ``blocks`` the visited latents' normalised rows."""
    current, total = from_logits, from_logits.clone()
    for _ in range(10_000):
        if not blocks:
            break
        nxt = torch.zeros_like(current)
        for visited, block in blocks:
            nxt += current[visited] @ block
        current = nxt
        if not bool(current.any()):
            break
        total += current
    return total


def _assemble(
    model: HookedDecoder, lin: Linearized, visited: torch.Tensor, feature_rows: torch.Tensor,
    logit_ids: list[int], probs: torch.Tensor, logit_rows: torch.Tensor,
) -> Graph:  # fmt: skip
    src = lin.sources
    f, t = len(visited), src.n_positions
    n_err = src.n_errors
    n = f + n_err + t + len(logit_ids)
    adjacency = torch.zeros(n, n)
    keep_cols = torch.cat([visited, torch.arange(src.n_features, src.n_sources)])
    adjacency[:f, : f + n_err + t] = feature_rows[:, keep_cols]
    adjacency[f + n_err + t :, : f + n_err + t] = logit_rows[:, keep_cols]
    tok = model.tokenizer
    token_strs = [tok.decode([i]) if tok else str(i) for i in lin.tokens.tolist()]
    logit_strs = [tok.decode([i]) if tok else str(i) for i in logit_ids]
    return Graph(
        tokens=lin.tokens.tolist(), token_strs=token_strs, n_layers=len(lin.layers),
        kinds=[tc.name for tc in lin.layers], feature_layer=src.layer[visited],
        feature_pos=src.pos[visited], feature_index=src.index[visited],
        activation=src.activation[visited], logit_tokens=logit_ids, logit_strs=logit_strs,
        logit_probs=probs.float(), adjacency=adjacency, active_features=src.n_features,
    )  # fmt: skip
