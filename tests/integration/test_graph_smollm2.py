"""Attribution graphs on the real SmolLM2, with random skip-transcoders at all 30 layers (trained
ones are not in CI; docs/graphs.md has the graphs of the trained preset): the replacement model's
logits are the model's, a 16-token graph's edges into the top logit add up to that logit's
linear part, and the causal check and an edge's heads run."""

from __future__ import annotations

import pytest
import torch

import mechscope as ms
from mechscope.engine.graphs import build_graph
from mechscope.engine.graphs.check import causal_check, top_nodes
from mechscope.engine.graphs.heads import explain_edge
from mechscope.engine.kinds.latent import attach
from mechscope.models.decoder import HookedDecoder
from mechscope.models.dictionaries import DictionaryConfig, SparseCoder, init_random

pytestmark = pytest.mark.slow
PROMPT = "The capital of France is"


@pytest.fixture(scope="module")
def model() -> HookedDecoder:
    m = ms.load_model()
    d = m.cfg.d_model
    for layer in range(m.cfg.n_layers):
        cfg = DictionaryConfig(d_in=d, n_latents=256, hook=f"blocks.{layer}.ln2.out", out_hook=f"blocks.{layer}.mlp_out",
                               d_out=d, kind="skip_transcoder", k=8, apply_b_dec_to_input=False)  # fmt: skip
        attach(m, init_random(SparseCoder(cfg), layer), f"tc{layer}")
    return m


def test_replacement_logits_and_a_graph(model: HookedDecoder) -> None:
    tokens = model.to_tokens(PROMPT)[0]
    bare = ms.load_model()
    torch.testing.assert_close(model(tokens), bare(tokens), rtol=1e-4, atol=1e-3)
    g = build_graph(model, tokens[0].tolist(), max_features=512)
    assert g.logit_strs[0] == " Paris"
    assert g.n_features == min(512, g.active_features) and g.timings["total"] < 120
    assert g.scores is not None and 0 < g.scores.completeness <= 1
    p = g.pruned()
    assert p.kept_node_influence >= 0.8 - 1e-6
    nodes = top_nodes(g, 10, node_threshold=1.0, edge_threshold=1.0)  # random latents: nothing survives 0.8
    c = causal_check(model, g, nodes)
    assert len(c.rows) == len(nodes)
    # An edge between positions is carried by heads: their shares add up to the edge.
    f, n_err = g.n_features, g.n_errors
    token = f + n_err + 1  # the first prompt token after the start token
    target = g.n_nodes - g.n_logits
    e = explain_edge(model, g, token, target, top=1)
    assert e.heads and abs(e.weight - float(g.adjacency[target, token])) < 1e-3 * max(1.0, abs(e.weight))
