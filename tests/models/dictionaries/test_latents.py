"""A dictionary's latents as nodes: scored by attribute(), in the node table, ablatable through
the generic node target, verified, and collated (top examples) with no engine change."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from mechscope.data.collate import CollateConfig, collate
from mechscope.data.store import Dataset, Workspace
from mechscope.engine.attribution import attribute
from mechscope.engine.directions import LogitDiff
from mechscope.engine.interventions import Intervention, intervention_hooks
from mechscope.engine.kinds import get_kind
from mechscope.engine.kinds.latent import attach, residual_rows
from mechscope.engine.nodes import Node
from mechscope.engine.recorder import record
from mechscope.engine.verify import verify
from mechscope.models.decoder import HookedDecoder
from mechscope.models.weights import layer_weights
from tests.conftest import tiny_model
from tests.data._helpers import small_windows
from tests.models.dictionaries._helpers import random_coder

PROMPT = "ab cab abc"
TARGETS = LogitDiff(targets=["a"], distractors=["b"])


def test_latents_are_scored_listed_and_their_write_is_mapped(model: HookedDecoder) -> None:
    last = model.cfg.n_layers - 1
    name = attach(model, random_coder(model, f"blocks.{last}.resid_pre"), "sae_last")
    mlp = attach(model, random_coder(model, "blocks.0.mlp.post", n=40))
    assert mlp == "sae_l0_mlp_post"
    attr = attribute(model, PROMPT, TARGETS)
    m = attr.metrics[name]
    assert m.total_effect.shape == (len(attr.token_ids), 64)
    assert float(m.total_effect.abs().sum()) > 0 and float(m.direct_effect.abs().sum()) > 0
    rows = attr.top_nodes(k=5, kinds=[name, mlp])
    assert {r.node.kind for r in rows} == {name, mlp}
    assert any(r.node.kind == name for r in attr.summary(k=30).nodes)
    # An MLP-activation dictionary writes through the down projection (post-norm gain folded).
    coder = model.hook_point("blocks.0.mlp.post")._modules[mlp]
    expected = (coder.W_dec * coder.scale_out) @ layer_weights(model)[0].down.T
    torch.testing.assert_close(residual_rows(coder, model, "blocks.0.mlp.post"), expected)
    kind = get_kind(mlp, model)
    assert kind.write is not None and not kind.layered and kind.unit == "latent"
    torch.testing.assert_close(kind.write(model, Node(kind=mlp, index=3, token=0), None), expected[3])


def test_direct_effect_is_the_mapped_write_dot_the_start_gradient() -> None:
    model = tiny_model("llama")
    point = "blocks.1.resid_mid"
    name = attach(model, random_coder(model, point), "sae_mid")
    attr = attribute(model, PROMPT, TARGETS)
    m = attr.metrics[name]
    rec = record(model, attr.objective, [f"{point}.{name}.acts"], [])
    g = rec.grads[attr.objective.start]  # (pos, d_model) at blocks.1.resid_post
    coder = model.hook_point(point)._modules[name]
    expected = rec.acts[f"{point}.{name}.acts"] * (g @ (coder.W_dec * coder.scale_out).T)
    assert float(expected.abs().sum()) > 0
    torch.testing.assert_close(m.direct_effect, expected, atol=1e-5, rtol=1e-4)


def test_a_latent_is_ablated_by_the_node_target_and_verified() -> None:
    model = tiny_model("llama")
    point = "blocks.1.resid_mid"
    name = attach(model, random_coder(model, point), "sae_mid")
    attr = attribute(model, PROMPT, TARGETS)
    top = attr.top_nodes(k=3, kinds=[name], by=("total_effect",))[0].node
    assert top.kind == name and top.layer is None and str(top).startswith("sae_mid.")
    iv = Intervention.on_node(top)
    assert iv.target.kind == name
    hooks = intervention_hooks(model, [iv], len(attr.token_ids))
    assert hooks[0][0] == f"{point}.{name}.acts"

    def by_hand(x: torch.Tensor, _hp: object) -> torch.Tensor:
        x = x.clone()
        x[:, top.token, top.index] = 0
        return x

    ids = torch.tensor([attr.token_ids])
    with torch.no_grad():
        torch.testing.assert_close(
            model.run_with_hooks(ids, fwd=hooks), model.run_with_hooks(ids, fwd=[(hooks[0][0], by_hand)])
        )
    ver = verify(attr, top_n=5)  # latents are verified by default
    assert {n.node.kind for n in ver.nodes} >= {name}
    assert all(abs(n.actual) > 0 or abs(n.estimated) < 1e-6 for n in ver.nodes if n.node.kind == name)


def test_latents_are_collated(tmp_path: Path) -> None:
    model = tiny_model("llama")
    point = "blocks.0.resid_post"
    name = attach(model, random_coder(model, point), "sae_l0")
    windows = small_windows(model, tmp_path)
    cfg = CollateConfig(window=16, top_k=4, random_samples=3, batch=8, shard=16)
    ds = Dataset(collate(model, windows, Workspace(tmp_path / "ws"), cfg))
    assert ds.units()[name][1] == 64
    _, cache = model.run_with_cache(windows.tokens, names=[f"{point}.{name}.acts"])
    x = cache[f"{point}.{name}.acts"][:, 1:]  # stream tokens only, as collation
    latent = int(x.amax((0, 1)).argmax())
    top = ds.top_examples(name, 0, latent, n=1)[0]
    assert top["activation"] == pytest.approx(float(x[..., latent].max()), rel=1e-3)
    assert top["window_id"] == int(x[..., latent].amax(1).argmax())


@pytest.mark.parametrize("point", ["blocks.1.resid_mid", "blocks.0.mlp.post"])
def test_a_latent_is_traced_to_the_residual_stream_its_dictionary_reads(point: str) -> None:
    """Tracing a latent scores the upstream nodes for its activation: the value is the latent's
    activation, the backward enters where the dictionary reads the residual stream, and an
    upstream node's estimated total effect is its activation times the gradient of that value."""
    from mechscope.engine.directions import NodeDirection

    model = tiny_model("llama")
    name = attach(model, random_coder(model, point, n=48, k=8), "sae_traced")
    plain = attribute(model, PROMPT, TARGETS, kinds=[name])
    m = plain.metrics[name].activation
    token, index = (int(v) for v in torch.nonzero(m[1:] > 0)[0])  # an active latent past position 0
    token += 1
    node = Node(kind=name, index=index, token=token)
    attr = attribute(model, PROMPT, NodeDirection(node=node), kinds=["embedding"], freeze_norm_scale=False)
    reads = "blocks.1.resid_mid" if point.endswith("resid_mid") else "blocks.0.resid_mid"
    assert attr.objective.start == reads and not attr.objective.linear
    assert attr.value == pytest.approx(float(m[token, index]), rel=1e-5)
    # By hand: the latent's activation differentiated with respect to the token embeddings.
    ids = torch.tensor([attr.token_ids])
    seen: dict[str, torch.Tensor] = {}

    def leaf(x: torch.Tensor, _hp: object) -> torch.Tensor:
        seen["embed"] = x.detach().requires_grad_(True)
        return seen["embed"]

    def keep(x: torch.Tensor, _hp: object) -> None:
        seen["acts"] = x

    with torch.enable_grad(), model.hooks(fwd=[("embed", leaf), (f"{point}.{name}.acts", keep)]):
        model(ids)
    emb, acts = seen["embed"], seen["acts"]
    (grad,) = torch.autograd.grad(acts[0, token, index], emb)
    by_hand = (emb * grad)[0].sum(-1).detach()
    total = attr.metrics["embedding"].total_effect.reshape(len(attr.token_ids), -1).sum(-1)
    torch.testing.assert_close(total, by_hand, atol=1e-5, rtol=1e-4)
    assert float(by_hand[token + 1 :].abs().sum()) == 0 and float(by_hand[token].abs()) > 0
