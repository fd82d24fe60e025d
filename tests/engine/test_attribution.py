"""Attribution on tiny random models, against answers known analytically."""

from __future__ import annotations

import pytest
import torch

from mechscope.engine.attribution import attribute
from mechscope.engine.directions import LogitDiff, NodeDirection, ResidualDirection
from mechscope.engine.nodes import Node
from mechscope.engine.verify import ablation_effects, verify
from mechscope.errors import InputError
from mechscope.models.decoder import HookedDecoder
from tests.conftest import tiny_model

PROMPT = "the cat sat on"
TARGETS = LogitDiff(targets=[" "], distractors=["a", "b"])


def final_bias_term(model: HookedDecoder, targets: list[int], distractors: list[int]) -> float:
    """The part of the logit difference that no write explains: the final norm's bias."""
    bias = model.ln_final.bias
    if bias is None:
        return 0.0
    wu = model.W_U.float() @ bias.float()
    return float(wu[targets].mean() - wu[distractors].mean())


@pytest.mark.parametrize("family", ["llama", "gpt2", "neox"])
def test_direct_effects_sum_to_the_logit_difference(family: str) -> None:
    model = tiny_model(family)
    attr = attribute(model, PROMPT, TARGETS)
    assert attr.objective.linear
    m = attr.metrics
    total = sum(float(m[k].direct_effect.sum()) for k in ("embedding", "attn_out", "mlp_out"))
    ids = model.tokenizer.encode  # type: ignore[union-attr]
    bias = final_bias_term(model, ids(" ", False), ids("a", False) + ids("b", False))
    assert total + bias == pytest.approx(attr.value, abs=1e-4)


@pytest.mark.parametrize("family", ["llama", "gpt2", "neox", "gemma3"])
def test_heads_and_neurons_decompose_their_layer(family: str) -> None:
    model = tiny_model(family)
    attr = attribute(model, PROMPT, TARGETS)
    m = attr.metrics
    for i, block in enumerate(model.blocks):
        # A layer's write is the sum of its heads (neurons) plus its output bias, if any.
        heads = m["attn_head"].direct_effect[i].sum(0)
        neurons = m["mlp_neuron"].direct_effect[i].sum(-1)
        if block.attn.o_proj.bias is None:
            torch.testing.assert_close(heads, m["attn_out"].direct_effect[i], atol=1e-5, rtol=1e-4)
        if block.mlp.down_proj.bias is None:
            torch.testing.assert_close(neurons, m["mlp_out"].direct_effect[i], atol=1e-5, rtol=1e-4)
        # Pairs sum to their head at each query token, for every metric that is additive.
        pairs = m["attn_head"].pairs
        assert pairs is not None
        torch.testing.assert_close(pairs.direct_effect[i].sum(-1), m["attn_head"].direct_effect[i])
        torch.testing.assert_close(pairs.total_effect[i].sum(-1), m["attn_head"].total_effect[i])


@pytest.mark.parametrize("family", ["llama", "gpt2", "neox", "gemma3"])
@pytest.mark.parametrize("part", ["mlp", "attn"])
def test_act_times_grad_is_exact_on_a_linear_path(family: str, part: str) -> None:
    # A residual direction read right after the last layer's MLP (or attention): that part's
    # neurons (heads) reach it linearly, so the estimate is the true zero-ablation effect.
    model = tiny_model(family)
    if model.cfg.sandwich_norms:
        pytest.skip("Gemma's post-norms make a layer's write nonlinear in its heads and neurons")
    last = model.cfg.n_layers - 1
    point = "resid_mid" if part == "attn" and not model.cfg.parallel_residual else "resid_post"
    vec = torch.randn(model.cfg.d_model, generator=torch.Generator().manual_seed(1)).tolist()
    attr = attribute(model, PROMPT, ResidualDirection(vector=vec, layer=last, point=point))  # type: ignore[arg-type]
    t = len(attr.token_ids) - 1
    if part == "mlp":
        nodes = [Node(kind="mlp_neuron", layer=last, index=i, token=t) for i in range(0, model.cfg.d_mlp, 7)]
        nodes.append(Node(kind="mlp_out", layer=last, token=t))
    else:
        nodes = [Node(kind="attn_head", layer=last, index=h, token=t) for h in range(model.cfg.n_heads)]
        nodes += [Node(kind="attn_head", layer=last, index=1, token=t, key=k) for k in range(t + 1)]
        nodes.append(Node(kind="attn_out", layer=last, token=t))
    estimated = torch.tensor([attr.node_metrics(n).total_effect for n in nodes])
    actual = ablation_effects(attr, nodes)
    torch.testing.assert_close(actual, estimated, atol=1e-4, rtol=1e-4)
    # And the direct effect is the whole effect there: nothing lies downstream.
    direct = torch.tensor([attr.node_metrics(n).direct_effect for n in nodes])
    torch.testing.assert_close(direct, estimated, atol=1e-4, rtol=1e-4)


def test_unfreezing_the_final_norm_changes_the_gradient() -> None:
    model = tiny_model("llama")
    frozen = attribute(model, PROMPT, TARGETS)
    live = attribute(model, PROMPT, TARGETS, freeze_norm_scale=False)
    assert frozen.value == pytest.approx(live.value)
    assert not live.objective.linear
    diff = (frozen.metrics["mlp_neuron"].total_effect - live.metrics["mlp_neuron"].total_effect).abs().max()
    assert diff > 1e-4


def test_tracing_a_neuron_pre_activation_is_linear_in_upstream_writes() -> None:
    model = tiny_model("llama")  # no biases: the pre-activation is the sum of upstream direct effects
    node = Node(kind="mlp_neuron", layer=1, index=5, token=3)
    attr = attribute(model, PROMPT, NodeDirection(node=node))
    assert attr.objective.start == "blocks.1.resid_mid" and attr.objective.linear
    m = attr.metrics
    total = float(
        m["embedding"].direct_effect.sum()
        + m["attn_out"].direct_effect.sum()
        + m["mlp_out"].direct_effect.sum()
    )
    assert total == pytest.approx(attr.value, abs=1e-4)
    assert float(m["mlp_out"].direct_effect[1].abs().sum()) == 0.0  # its own layer's MLP is downstream
    assert float(m["mlp_neuron"].total_effect[1].abs().sum()) == 0.0
    assert attr.logits is None  # the forward stopped at the traced node
    _, cache = model.run_with_cache(PROMPT, names="blocks.1.mlp.pre")
    assert attr.value == pytest.approx(float(cache["blocks.1.mlp.pre"][0, 3, 5]), abs=1e-5)


@pytest.mark.parametrize("through", ["query", "key"])
def test_tracing_a_score_through_one_side(through: str) -> None:
    model = tiny_model("llama")
    node = Node(kind="attn_head", layer=1, index=2, token=6, key=2)
    attr = attribute(model, PROMPT, NodeDirection(node=node, through=through))
    m = attr.metrics
    de_by_pos = m["embedding"].direct_effect + m["attn_out"].direct_effect[0] + m["mlp_out"].direct_effect[0]
    assert float(de_by_pos.sum()) == pytest.approx(attr.value, abs=1e-4)
    side = 6 if through == "query" else 2
    others = [p for p in range(len(attr.token_ids)) if p != side]
    assert float(de_by_pos[others].abs().max()) < 1e-6  # only the traced side carries gradient


def test_value_tracing_projects_on_a_downstream_neuron() -> None:
    model = tiny_model("llama")
    head = Node(kind="attn_head", layer=0, index=1, token=5)
    down = Node(kind="mlp_neuron", layer=1, index=3, token=5)
    attr = attribute(model, PROMPT, NodeDirection(node=head, through="value", downstream=down))
    assert attr.objective.linear and attr.objective.start == "blocks.0.resid_pre"
    assert float(attr.metrics["embedding"].direct_effect.sum()) == pytest.approx(attr.value, abs=1e-4)
    with pytest.raises(InputError, match="needs a key position"):
        attribute(model, PROMPT, NodeDirection(node=head, through="query"))
    with pytest.raises(InputError, match=r"downstream unit that reads the residual \(mlp_neuron\)"):
        attribute(model, PROMPT, NodeDirection(node=head, through="value", downstream=head))


def test_top_nodes_and_summary() -> None:
    model = tiny_model("gpt2")
    attr = attribute(model, PROMPT, TARGETS)
    rows = attr.top_nodes(k=3)
    effects = [abs(r.total_effect) for r in rows]
    assert effects == sorted(effects, reverse=True)
    kinds = {r.node.kind for r in rows}
    assert kinds == {"mlp_neuron", "attn_head", "embedding", "attn_out", "mlp_out"}
    assert all(r.node.key is None or r.node.key <= r.node.token for r in rows)
    best = max(float(attr.metrics["mlp_neuron"].total_effect.max()), 0.0)
    assert any(r.total_effect == pytest.approx(best) for r in rows if r.node.kind == "mlp_neuron")
    s = attr.summary(k=3)
    assert s.tokens[0] == "<bos>" and len(s.tokens) == len(PROMPT) + 1
    assert [c.token for c in s.candidates[-2:]] == ["a", "b"] or {"a", "b", " "} & {
        c.token for c in s.candidates
    }
    assert s.token_effects is not None
    rows = {r.name: r for r in s.token_effects.rows}
    assert list(rows) == ["mlp", "attn_from", "attn_to", "embedding"]
    assert len(rows["mlp"].total) == len(s.tokens)
    assert sum(rows["attn_from"].total) == pytest.approx(sum(rows["attn_to"].total), abs=1e-4)
    assert s.model_dump_json()  # JSON-ready


def test_only_asked_kinds_are_computed() -> None:
    attr = attribute(tiny_model("llama"), PROMPT, TARGETS, kinds=["mlp_neuron"])
    assert set(attr.metrics) == {"mlp_neuron"}
    effects = attr.token_effects()
    assert effects is not None and [r.name for r in effects.rows] == ["mlp"]  # only the kinds asked for
    with pytest.raises(InputError, match="unknown node kind 'neuron'; allowed: mlp_neuron, attn_head"):
        attribute(tiny_model("llama"), PROMPT, TARGETS, kinds=["neuron"])


def test_verify_correlates_estimates_with_ablations() -> None:
    attr = attribute(tiny_model("llama"), PROMPT, TARGETS)
    v = verify(attr, top_n=10)
    assert len(v.nodes) == 10
    assert v.pearson is not None and v.pearson > 0.5
    single = ablation_effects(attr, [v.nodes[0].node])
    assert float(single[0]) == pytest.approx(v.nodes[0].actual, abs=1e-5)


@pytest.mark.parametrize("family", ["llama", "gpt2"])
def test_write_norms_match_writes_formed_explicitly(family: str) -> None:
    model = tiny_model(family)
    attr = attribute(model, PROMPT, TARGETS)
    m = attr.metrics
    cfg = model.cfg
    _, cache = model.run_with_cache(
        PROMPT, names=["blocks.*.attn.result", "blocks.*.attn.v", "blocks.*.mlp.post"]
    )
    for i, block in enumerate(model.blocks):
        result = cache[f"blocks.{i}.attn.result"][0]  # (pos, head, d_model): each head's write
        torch.testing.assert_close(m["attn_head"].write_norm[i], result.norm(dim=-1).T, atol=1e-5, rtol=1e-4)
        w_o = block.attn.o_proj.weight.view(cfg.d_model, cfg.n_heads, cfg.d_head)
        v = cache[f"blocks.{i}.attn.v"][0].repeat_interleave(cfg.n_heads // cfg.n_kv_heads, dim=1)
        pair_writes = torch.einsum("khe,dhe->hkd", v, w_o).norm(dim=-1)  # (head, kv_pos)
        pairs = m["attn_head"].pairs
        assert pairs is not None and pairs.activation is not None
        p = pairs.activation[i]
        torch.testing.assert_close(pairs.write_norm[i], p * pair_writes[:, None, :], atol=1e-5, rtol=1e-4)
        a = cache[f"blocks.{i}.mlp.post"][0]
        neuron_writes = a.abs() * block.mlp.down_proj.weight.norm(dim=0)
        torch.testing.assert_close(m["mlp_neuron"].write_norm[i], neuron_writes, atol=1e-5, rtol=1e-4)


def test_editing_weights_in_place_refreshes_the_cached_weight_statistics() -> None:
    model = tiny_model("llama")
    before = attribute(model, PROMPT, TARGETS).metrics["mlp_neuron"].write_norm[1].clone()
    with torch.no_grad():
        model.blocks[1].mlp.down_proj.weight.mul_(2)
    after = attribute(model, PROMPT, TARGETS).metrics["mlp_neuron"].write_norm[1]
    torch.testing.assert_close(after, 2 * before)


def test_value_tracing_projects_on_a_downstream_latent() -> None:
    """A head's value onto a residual SAE's latent: the projection on the latent's encoder
    direction (a residual point has no norm in between), linear, and equal to the same trace onto
    an explicit residual direction built by hand from the encoder column."""
    from mechscope.engine.kinds.latent import attach
    from mechscope.models.weights import head_write
    from tests.models.dictionaries._helpers import random_coder

    model = tiny_model("llama")
    coder = random_coder(model, "blocks.1.resid_pre", n=16)
    name = attach(model, coder)
    head = Node(kind="attn_head", layer=0, index=1, token=5)
    down = Node(kind=name, layer=1, index=3, token=5)
    attr = attribute(model, PROMPT, NodeDirection(node=head, through="value", downstream=down))
    assert attr.objective.linear
    assert float(attr.metrics["embedding"].direct_effect.sum()) == pytest.approx(attr.value, abs=1e-4)
    # By hand: head 0.1's write at position 5, projected on W_enc[:, 3] / scale_in.
    _, cache = model.run_with_cache(torch.tensor([attr.token_ids]), names=["blocks.0.attn.z"])
    z = cache["blocks.0.attn.z"][0, 5, 1]
    u = coder.W_enc[:, 3] / coder.scale_in
    want = float(head_write(model, 0, 1, z) @ u)
    assert attr.value == pytest.approx(want, rel=1e-4, abs=1e-5)


def test_candidates_read_their_logit_probability_and_rank() -> None:
    attr = attribute(tiny_model("llama"), PROMPT, TARGETS)
    assert attr.logits is not None
    row, probs = attr.logits, attr.logits.softmax(-1)
    cands = attr.candidates(5)
    assert [c.id for c in cands[:5]] == row.topk(5).indices.tolist()
    assert len(cands) >= 5  # then the pinned target and distractor tokens not already listed
    for c in cands:
        assert c.logit == pytest.approx(float(row[c.id]))
        assert c.prob == pytest.approx(float(probs[c.id]), rel=1e-5)
        assert c.rank == int((row > row[c.id]).sum())
    assert [c.rank for c in cands[:5]] == [0, 1, 2, 3, 4]
