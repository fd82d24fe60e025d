"""Attribution graphs on tiny models with a random transcoder at every layer: the replacement
model is exact, every edge equals a finite difference in the frozen model (computed here with
the clean run's patterns, scales, latents and errors written back, no autograd), pruning keeps
what it promises, and the export has Neuronpedia's fields."""

from __future__ import annotations

import json

import pytest
import torch

from mechscope.engine.graphs import build_graph, to_neuronpedia
from mechscope.engine.graphs.influence import influence, normalized
from mechscope.engine.kinds.latent import attach
from mechscope.errors import InputError
from mechscope.models.decoder import HookedDecoder
from mechscope.models.dictionaries import DictionaryConfig, SparseCoder, init_random
from tests.conftest import tiny_model

PROMPT = "The cat sat"


def transcoder(model: HookedDecoder, layer: int, kind: str) -> SparseCoder:
    d = model.cfg.d_model
    cfg = DictionaryConfig(d_in=d, n_latents=40, hook=f"blocks.{layer}.ln2.out", out_hook=f"blocks.{layer}.mlp_out",
                           d_out=d, kind=kind, activation="topk", k=5, apply_b_dec_to_input=False)  # fmt: skip
    c = init_random(SparseCoder(cfg), 10 + layer)
    g = torch.Generator().manual_seed(layer)
    with torch.no_grad():
        c.b_enc.copy_(torch.randn(40, generator=g) * 0.1)
        c.b_dec.copy_(torch.randn(d, generator=g) * 0.1)
        if c.W_skip is not None:
            c.W_skip.copy_(torch.randn(d, d, generator=g) * 0.05)
        c.scale_in.fill_(1.3)
        c.scale_out.fill_(0.7)
    return c.eval()


def with_transcoders(family: str, kind: str = "skip_transcoder") -> HookedDecoder:
    model = tiny_model(family)
    for layer in range(model.cfg.n_layers):
        attach(model, transcoder(model, layer, kind), f"tc{layer}")
    return model


@pytest.fixture(params=["llama", "gpt2", "neox", "gemma3"])
def family(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def ids(model: HookedDecoder) -> list[int]:
    tokens, _ = model.to_tokens(PROMPT)
    return tokens[0].tolist()


def test_replacement_model_is_exact(family: str) -> None:
    bare = tiny_model(family)
    model = with_transcoders(family)
    t = torch.tensor([ids(model)])
    torch.testing.assert_close(model(t), bare(t), rtol=1e-5, atol=1e-5)


class Frozen:
    """The frozen model by hand: one clean run records every pattern, norm scale, latent and
    error; a run with those written back (one source removed) is linear in the sources."""

    def __init__(self, model: HookedDecoder, tokens: list[int]) -> None:
        self.model, self.t = model, torch.tensor([tokens])
        self.names = [n for n in model.hook_points if n.endswith((".scale", "attn.pattern"))]
        self.names += [n for n in model.hook_points if n.endswith((".acts", ".error"))]
        self.clean: dict[str, torch.Tensor] = {}
        with model.hooks(fwd=[(n, self._keep) for n in self.names]):
            model(self.t)

    def _keep(self, x: torch.Tensor, hp: object) -> torch.Tensor:
        self.clean[hp.name] = x.clone()  # type: ignore[attr-defined]
        return x

    def run(self, edit: tuple[str, tuple[int, ...]] | None) -> dict[str, torch.Tensor]:
        """Every layer's transcoder input and the final norm's output, with the clean values
        written back and ``edit`` = (point, index) zeroed."""
        out: dict[str, torch.Tensor] = {}

        def put(x: torch.Tensor, hp: object) -> torch.Tensor:
            name = hp.name  # type: ignore[attr-defined]
            v = self.clean[name].clone() if name in self.clean else x.clone()
            if edit is not None and edit[0] == name:
                v[(0, *edit[1])] = 0
            return v

        def read(x: torch.Tensor, hp: object) -> torch.Tensor:
            out[hp.name] = x  # type: ignore[attr-defined]
            return x

        hooks = [(n, put) for n in [*self.names, "blocks.0.resid_pre"]]
        hooks += [(f"blocks.{i}.ln2.out", read) for i in range(self.model.cfg.n_layers)] + [
            ("ln_final.out", read)
        ]
        with torch.no_grad(), self.model.hooks(fwd=hooks):
            self.model(self.t)
        return out


def test_edges_equal_finite_differences_in_the_frozen_model(family: str) -> None:
    model = with_transcoders(family)
    tokens = ids(model)
    g = build_graph(model, tokens, batch=7)  # batches of 7: several passes, mixed layers
    fz = Frozen(model, tokens)
    base = fz.run(None)
    f, n_err, t = g.n_features, g.n_errors, g.n_pos
    w_u = model.W_U.float()
    mean = w_u.mean(0)
    coders = [m for _, _, m in model.splices() if isinstance(m, SparseCoder)]

    def targets(values: dict[str, torch.Tensor]) -> torch.Tensor:
        rows = []
        for i in range(f):
            layer, pos, idx = int(g.feature_layer[i]), int(g.feature_pos[i]), int(g.feature_index[i])
            c = coders[layer]
            x = values[f"blocks.{layer}.ln2.out"][0, pos].float()
            rows.append((x / c.scale_in) @ c.W_enc[:, idx] + c.b_enc[idx])
        for tok in g.logit_tokens:
            rows.append(values["ln_final.out"][0, -1].float() @ (w_u[tok] - mean))
        return torch.stack(rows)

    clean = targets(base)
    rows = torch.cat([torch.arange(f), torch.arange(g.n_nodes - g.n_logits, g.n_nodes)])
    # Every source, removed in turn: the targets move by minus its column of the adjacency.
    checked = 0
    for s in range(f + n_err + t):
        if s < f:
            layer, pos, idx = int(g.feature_layer[s]), int(g.feature_pos[s]), int(g.feature_index[s])
            edit = (f"blocks.{layer}.mlp_out.tc{layer}.acts", (pos, idx))
        elif s < f + n_err:
            layer, pos = divmod(s - f, t)
            edit = (f"blocks.{layer}.mlp_out.tc{layer}.error", (pos,))
        else:
            edit = ("blocks.0.resid_pre", (s - f - n_err,))
        delta = clean - targets(fz.run(edit))
        torch.testing.assert_close(delta, g.adjacency[rows, s], rtol=1e-3, atol=1e-4)
        checked += 1
    assert checked == f + n_err + t and f > 0
    assert g.adjacency[:f, :f].abs().sum() > 0  # latents feed later latents


def test_influence_ordering_visits_the_most_influential_latents() -> None:
    model = with_transcoders("llama")
    tokens = ids(model)
    full = build_graph(model, tokens)
    part = build_graph(model, tokens, max_features=6, batch=2, rerank_every=1)
    assert part.n_features == 6 and part.active_features == full.active_features
    norm = normalized(full.adjacency)
    inf = influence(norm, full.logit_weights())[: full.n_features]
    key = {
        (int(a), int(b), int(c))
        for a, b, c in zip(part.feature_layer, part.feature_pos, part.feature_index, strict=True)
    }
    order = inf.argsort(descending=True)
    top = {
        (int(full.feature_layer[i]), int(full.feature_pos[i]), int(full.feature_index[i])) for i in order[:3]
    }
    assert top <= key  # the three most influential of the full graph are among the six visited


def test_pruning_keeps_what_it_promises() -> None:
    g = build_graph(with_transcoders("llama"), ids(with_transcoders("llama")))
    for node_t, edge_t in ((0.8, 0.98), (0.5, 0.9), (1.0, 1.0)):
        p = g.pruned(node_t, edge_t)
        assert p.kept_node_influence >= node_t - 1e-6
        assert p.kept_edge_influence >= edge_t - 1e-6
        assert p.node_mask[-(g.n_pos + g.n_logits) :].all()  # tokens and logits always stay
        # Every kept edge joins kept nodes.
        src_ok = p.node_mask[None, :].expand_as(p.edge_mask)[p.edge_mask]
        dst_ok = p.node_mask[:, None].expand_as(p.edge_mask)[p.edge_mask]
        assert src_ok.all() and dst_ok.all()
    with pytest.raises(InputError, match="node_threshold"):
        g.pruned(0.0)


def test_scores_bounds_and_subgraphs() -> None:
    model = with_transcoders("llama")
    g = build_graph(model, ids(model))
    assert g.scores is not None
    assert 0 <= g.scores.replacement <= 1 and 0 <= g.scores.completeness <= 1
    everything = g.subgraph_scores(torch.ones(g.n_features, dtype=torch.bool))
    assert everything.replacement == pytest.approx(g.scores.replacement, abs=1e-6)
    assert everything.completeness == pytest.approx(g.scores.completeness, abs=1e-6)
    # With no latent kept, every latent's outgoing edges belong to its error node: the tokens'
    # influence is what reaches the logits without passing through any latent.
    nothing = g.subgraph_scores(torch.zeros(g.n_features, dtype=torch.bool))
    assert 0 <= nothing.replacement <= 1 and 0 <= nothing.completeness <= 1
    assert nothing.replacement != pytest.approx(everything.replacement, abs=1e-9)


def test_plain_transcoders_and_targets() -> None:
    model = with_transcoders("gpt2", kind="transcoder")
    tokens = ids(model)
    g = build_graph(model, tokens, targets=[5, 9])
    assert g.logit_tokens == [5, 9] and g.n_logits == 2
    with pytest.raises(InputError, match="out of range"):
        build_graph(model, tokens, targets=[10**6])


def test_missing_transcoders_are_named() -> None:
    model = tiny_model("llama")
    attach(model, transcoder(model, 0, "transcoder"), "tc0")
    with pytest.raises(InputError, match=r"missing 1\b"):
        build_graph(model, ids(model))


def test_neuronpedia_export_fields() -> None:
    model = with_transcoders("llama")
    g = build_graph(model, ids(model))
    doc = to_neuronpedia(g, slug="cat", prompt=PROMPT, scan="tiny")
    json.dumps(doc)
    assert set(doc) == {"metadata", "qParams", "nodes", "links"}
    assert {"slug", "scan", "transcoder_list", "prompt_tokens", "prompt", "node_threshold"} <= set(
        doc["metadata"]
    )
    assert {"pinnedIds", "supernodes", "linkType", "clickedId", "sg_pos"} <= set(doc["qParams"])
    ids_ = {n["node_id"] for n in doc["nodes"]}
    types = {n["feature_type"] for n in doc["nodes"]}
    assert {"embedding", "logit"} <= types
    for n in doc["nodes"]:
        assert {"node_id", "feature", "layer", "ctx_idx", "feature_type", "jsNodeId", "clerp"} <= set(n)
        if n["feature_type"] == "embedding":
            assert n["node_id"].startswith("E_") and n["layer"] == "E"
        if n["feature_type"] == "logit":
            assert n["layer"] == str(model.cfg.n_layers + 1) and n["ctx_idx"] == g.n_pos - 1
    assert sum(n["is_target_logit"] for n in doc["nodes"]) == 1
    for link in doc["links"]:
        assert link["source"] in ids_ and link["target"] in ids_ and isinstance(link["weight"], float)


def test_attention_edge_shares_add_up_on_one_hop() -> None:
    """Two layers: a latent of layer 0 reaches a latent of layer 1 at a later position only
    through layer 1's heads, each path through exactly one head and one (query, key) entry."""
    from mechscope.engine.graphs.heads import explain_edge

    model = with_transcoders("llama")
    g = build_graph(model, ids(model))
    f = g.n_features
    pairs = [(s, t) for t in range(f) for s in range(f)
             if g.feature_layer[s] == 0 and g.feature_layer[t] == 1 and g.feature_pos[s] < g.feature_pos[t]
             and abs(float(g.adjacency[t, s])) > 1e-4]  # fmt: skip
    s, t = max(pairs, key=lambda p: abs(float(g.adjacency[p[1], p[0]])))
    e = explain_edge(model, g, s, t, top=2)
    assert e.weight == pytest.approx(float(g.adjacency[t, s]), rel=1e-4, abs=1e-6)
    assert e.through_attention == pytest.approx(e.weight, rel=1e-4, abs=1e-6)
    assert all(h.layer == 1 for h in e.heads)
    top = e.heads[0]
    assert top.pairs[0].query == int(g.feature_pos[t]) and top.pairs[0].key == int(g.feature_pos[s])
    assert top.pairs[0].share == pytest.approx(top.share, rel=1e-4, abs=1e-6)
    assert top.pairs[0].trace == f"L1.attn_head.{top.head}@{int(g.feature_pos[t])}<-{int(g.feature_pos[s])}"


def test_predicted_effects_solve_the_graph_linear_system() -> None:
    from mechscope.engine.graphs.check import causal_check, predicted_effects, top_nodes, unit_matrix

    model = with_transcoders("llama")
    g = build_graph(model, ids(model))
    m = unit_matrix(g)
    f = g.n_features
    nodes = top_nodes(g, 5)
    assert nodes and all(n < f for n in nodes)
    pred = predicted_effects(g, nodes, 0.0)
    # Independently: the latents' changes solve (I - M_ff) d = d0 (a nilpotent system).
    for j, n in enumerate(nodes):
        d0 = torch.zeros(g.n_nodes)
        d0[n] = -float(g.activation[n])
        mff = m[:f, :f].clone()
        mff[n] = 0  # an ablated latent stays at zero
        d_f = torch.linalg.solve(torch.eye(f) - mff, d0[:f] + (m[:f, f:] @ d0[f:]) * 0)
        d = torch.cat([d_f, d0[f:]])
        assert float(pred[j]) == pytest.approx(float(m[g.n_nodes - g.n_logits] @ d), rel=1e-4, abs=1e-5)
    c = causal_check(model, g, nodes, factor=1.0)  # scaling by 1 changes nothing, predicted or measured
    assert all(abs(r.predicted) < 1e-6 and abs(r.measured) < 1e-4 for r in c.rows)
    c = causal_check(model, g, nodes, factor=0.0)
    assert len(c.rows) == len(nodes) and c.pearson is not None
    with pytest.raises(InputError, match="not latents or errors"):
        causal_check(model, g, [g.n_nodes - 1])


def test_head_shares_equal_removing_the_head_across_two_hops() -> None:
    """A token's edge to the logit crosses up to two layers of heads: a head's share (the sum of
    its pattern entries' parts) equals the edge minus the edge with that head's pattern zeroed."""
    from mechscope.engine.graphs.heads import _endpoints, _masked_edges, clean_state, explain_edge

    model = with_transcoders("llama")
    g = build_graph(model, ids(model))
    source, target = g.n_features + g.n_errors + 2, g.n_nodes - g.n_logits
    e = explain_edge(model, g, source, target, top=4)
    _, _, row = _endpoints(model, g, source, target)
    clean = clean_state(model, g.tokens)
    for h in e.heads:
        masks = {h.layer: torch.ones(2, model.cfg.n_heads, 1, 1)}
        masks[h.layer][1, h.head] = 0
        edges = _masked_edges(model, g, source, row, masks, clean)
        assert float(edges[0] - edges[1]) == pytest.approx(h.share, rel=1e-3, abs=1e-6)


def test_a_graph_from_circuit_tracer_files_equals_the_attached_one(tmp_path: object) -> None:
    from pathlib import Path

    from mechscope.engine.dictionaries import attach_all
    from mechscope.models.loading.dictionary_formats import save_circuit_tracer

    model = with_transcoders("llama")
    folder = Path(str(tmp_path)) / "ct"
    for _, _, m in model.splices():
        if isinstance(m, SparseCoder):
            save_circuit_tracer(m, folder)
    loaded = tiny_model("llama")
    assert len(attach_all(loaded, [str(folder)])) == loaded.cfg.n_layers
    a, b = build_graph(model, ids(model)), build_graph(loaded, ids(loaded))
    assert a.logit_tokens == b.logit_tokens and torch.equal(a.feature_index, b.feature_index)
    torch.testing.assert_close(a.adjacency, b.adjacency, rtol=1e-4, atol=1e-5)
