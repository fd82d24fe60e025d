"""Influence, pruning and the two graph scores, on an adjacency matrix (rows: targets, columns:
sources) whose nodes are ordered [features, errors, tokens, logits].

The definitions are circuit-tracer's (docs/graphs.md cites them): edge weights are made
non-negative and each row is normalised to sum 1; a node's influence is the total weight of
all paths from it to the logits, each logit weighted by its probability (the Neumann series of
the normalised matrix, which ends because the graph is acyclic).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


def normalized(adjacency: torch.Tensor) -> torch.Tensor:
    """|A| with every row scaled to sum 1 (rows of zeros stay zero)."""
    a = adjacency.abs()
    return a / a.sum(dim=1, keepdim=True).clamp(min=1e-10)


def influence(norm: torch.Tensor, weights: torch.Tensor, max_steps: int = 10_000) -> torch.Tensor:
    """Total influence of every node on ``weights`` (a vector over rows), paths of length >= 1."""
    total = torch.zeros_like(weights)
    current = weights @ norm
    for _ in range(max_steps):
        if not bool(current.any()):
            break
        total += current
        current = current @ norm
    return total


def threshold_for(scores: torch.Tensor, fraction: float) -> float:
    """The smallest score that keeps ``fraction`` of the total when scores are kept largest first."""
    s = scores.flatten().sort(descending=True).values
    total = float(s.sum())
    if total <= 0:
        return float("inf")
    cum = s.cumsum(0) / total
    i = int(torch.searchsorted(cum, torch.tensor(fraction, dtype=cum.dtype)))
    return float(s[min(i, len(s) - 1)])


@dataclass
class Pruned:
    node_mask: torch.Tensor  # (N,) bool
    edge_mask: torch.Tensor  # (N, N) bool
    node_influence: torch.Tensor  # (N,): influence plus the logits' own weights
    kept_node_influence: float  # fraction of the features' and errors' influence kept
    kept_edge_influence: float  # fraction of the edge scores kept


def prune(
    adjacency: torch.Tensor, logit_weights: torch.Tensor, n_features: int, n_tokens: int, n_logits: int,
    node_threshold: float = 0.8, edge_threshold: float = 0.98,
) -> Pruned:  # fmt: skip
    """Keep the nodes that carry ``node_threshold`` of the influence on the logits (tokens and
    logits always stay), then the edges that carry ``edge_threshold`` of the edge influence in
    the graph of those nodes; features and errors left with no outgoing edge (features: or no
    incoming one) go too, repeatedly."""
    inner = adjacency.shape[0] - n_tokens - n_logits  # features and errors
    norm = normalized(adjacency)
    node_inf = influence(norm, logit_weights) + logit_weights
    cut = threshold_for(node_inf[:inner], node_threshold) if inner else float("inf")
    node_mask = node_inf >= cut
    node_mask[inner:] = True
    kept_node = _fraction(node_inf[:inner], node_mask[:inner])
    a = adjacency.clone()
    a[~node_mask] = 0
    a[:, ~node_mask] = 0
    pnorm = normalized(a)
    edge_scores = pnorm * (influence(pnorm, logit_weights) + logit_weights)[:, None]
    edge_mask = edge_scores >= threshold_for(edge_scores, edge_threshold)
    edge_mask &= edge_scores > 0
    kept_edge = _fraction(edge_scores, edge_mask)
    while True:
        before = node_mask.clone()
        node_mask[:inner] &= edge_mask[:, :inner].any(0)  # something downstream
        node_mask[:n_features] &= edge_mask[:n_features].any(1)  # something upstream
        edge_mask &= node_mask[:, None] & node_mask[None, :]
        if torch.equal(before, node_mask):
            break
    return Pruned(node_mask, edge_mask, node_inf, kept_node, kept_edge)


def _fraction(scores: torch.Tensor, mask: torch.Tensor) -> float:
    total = float(scores.sum())
    return float(scores[mask].sum()) / total if total > 0 else 1.0


@dataclass(frozen=True)
class Scores:
    replacement: float
    """Of the influence reaching the logits from tokens and errors (the graph's roots), the
    fraction from tokens: 1 when every path starts at a token."""
    completeness: float
    """Influence-weighted mean, over nodes, of the fraction of their inputs not from errors."""


def graph_scores(
    adjacency: torch.Tensor, logit_weights: torch.Tensor, n_features: int, n_errors: int, n_tokens: int
) -> Scores:
    """circuit-tracer's replacement and completeness scores of a graph."""
    norm = normalized(adjacency)
    inf = influence(norm, logit_weights)
    e0, e1 = n_features, n_features + n_errors
    token_inf = float(inf[e1 : e1 + n_tokens].sum())
    error_inf = float(inf[e0:e1].sum())
    replacement = token_inf / (token_inf + error_inf) if token_inf + error_inf > 0 else 0.0
    non_error = 1 - norm[:, e0:e1].sum(dim=-1)
    out = inf + logit_weights
    completeness = float((non_error * out).sum() / out.sum()) if float(out.sum()) > 0 else 0.0
    return Scores(replacement, completeness)


def merged_into_errors(
    adjacency: torch.Tensor, keep: torch.Tensor, feature_layer: torch.Tensor, feature_pos: torch.Tensor,
    n_features: int, n_positions: int,
) -> torch.Tensor:  # fmt: skip
    """The adjacency of the subgraph of features ``keep`` (bool over features), the others folded
    into their layer's and position's error node (their inputs dropped, their outputs added to
    the error's): the graph a pruned or pinned subgraph stands for, for its scores."""
    a = adjacency.clone()
    drop = (~keep).nonzero().flatten()
    if len(drop):
        err_cols = n_features + feature_layer[drop] * n_positions + feature_pos[drop]
        a.index_add_(1, err_cols, a[:, drop])
        a[:, drop] = 0
        a[drop] = 0
    return a
