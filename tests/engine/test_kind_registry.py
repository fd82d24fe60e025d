"""A new node kind is one file plus one registry line: the toy kind of toy_kind.py shows up in
attribution, the node table, /api/model, interventions and collation with no other edit."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from fastapi.testclient import TestClient

from mechscope.data.collate import CollateConfig, collate
from mechscope.data.store import Dataset, Workspace
from mechscope.engine.attribution import attribute
from mechscope.engine.directions import LogitDiff
from mechscope.engine.interventions import Intervention, intervention_hooks
from mechscope.engine.kinds import get_kind, kinds_of, register, unregister
from mechscope.engine.nodes import Node
from mechscope.engine.verify import ablation_effects
from mechscope.errors import InputError
from mechscope.server.app import create_app
from tests.conftest import tiny_model
from tests.data._helpers import small_windows
from tests.engine.toy_kind import TOY

PROMPT = "ab cab abc"
TARGETS = LogitDiff(targets=["a"], distractors=["b"])


@pytest.fixture
def toy() -> Iterator[None]:
    register(TOY)  # the one registry line
    try:
        yield
    finally:
        unregister(TOY.name)


def test_unregistered_kind_is_refused_by_name() -> None:
    with pytest.raises(InputError, match="unknown node kind 'resid_dim'; allowed: mlp_neuron"):
        attribute(tiny_model("llama"), PROMPT, TARGETS, kinds=["resid_dim"])


@pytest.mark.usefixtures("toy")
def test_toy_kind_is_scored_listed_and_ablatable() -> None:
    model = tiny_model("llama")
    assert [k.name for k in kinds_of(model)][-1] == "resid_dim"
    attr = attribute(model, PROMPT, TARGETS)
    assert "resid_dim" in attr.metrics  # a default kind: scored without being named
    last = model.cfg.n_layers - 1
    # The last residual stream's coordinates carry the whole (linear) logit difference.
    de = attr.metrics["resid_dim"].direct_effect[last].sum()
    assert float(de) == pytest.approx(attr.value, abs=1e-4)
    rows = attr.top_nodes(k=5, kinds=["resid_dim"])
    assert rows and all(r.node.kind == "resid_dim" for r in rows)
    assert any(r.node.kind == "resid_dim" for r in attr.summary(k=20).nodes)  # the node table

    # Ablating a coordinate: the generic node target edits exactly it, as a hand-written hook does.
    node = max(rows, key=lambda r: abs(r.total_effect)).node
    assert Node.parse(str(node)) == node
    effect = float(ablation_effects(attr, [node])[0])
    idx, tok = node.index, node.token

    def zero(x: torch.Tensor, _hp: object) -> torch.Tensor:
        x = x.clone()
        x[:, tok, idx] = 0
        return x

    with model.hooks(fwd=[(f"blocks.{node.layer}.resid_post", zero)]):
        by_hand = attr.value - float(attribute(model, PROMPT, TARGETS, kinds=["embedding"]).value)
    assert effect == pytest.approx(by_hand, abs=1e-5) and abs(effect) > 0
    hooks = intervention_hooks(model, [Intervention.on_node(node)], len(attr.token_ids))
    assert hooks[0][0] == f"blocks.{node.layer}.resid_post"


@pytest.mark.usefixtures("toy")
def test_toy_kind_in_the_api() -> None:
    client = TestClient(create_app(tiny_model("llama")), base_url="http://localhost")
    kinds = {k["name"]: k for k in client.get("/api/model").json()["kinds"]}
    assert kinds["resid_dim"]["group"] == "coordinates" and kinds["resid_dim"]["size"] == 32
    assert kinds["resid_dim"]["collated"] and kinds["resid_dim"]["through"] == []
    r = client.post("/api/debug", json={"prompt": PROMPT, "targets": ["a"], "distractors": ["b"], "k": 5})
    assert r.status_code == 200, r.text
    assert any(row["node"]["kind"] == "resid_dim" for row in r.json()["left"]["nodes"])
    node = {"kind": "resid_dim", "layer": 1, "index": 3, "positions": [2]}
    ablate = {"target": node, "op": {"kind": "zero"}}
    r = client.post("/api/debug", json={"prompt": PROMPT, "targets": ["a"], "interventions": [ablate]})
    assert r.status_code == 200, r.text
    assert r.json()["right"] is not None


@pytest.mark.usefixtures("toy")
def test_toy_kind_is_collated(tmp_path: Path) -> None:
    model = tiny_model("llama")
    windows = small_windows(model, tmp_path)
    cfg = CollateConfig(window=16, top_k=4, random_samples=3, batch=8, shard=16)
    ds = Dataset(collate(model, windows, Workspace(tmp_path / "ws"), cfg))
    assert ds.units()["resid_dim"] == (model.cfg.n_layers, model.cfg.d_model)
    # The top example of a coordinate is the window where it peaks, with the peak's value.
    _, cache = model.run_with_cache(windows.tokens, names=["blocks.1.resid_post"])
    x = cache["blocks.1.resid_post"][:, 1:, 7]  # stream tokens only, as collation
    top = ds.top_examples("resid_dim", 1, 7, n=1)[0]
    assert top["activation"] == pytest.approx(float(x.max()), rel=1e-5)
    assert top["window_id"] == int(x.amax(1).argmax())
    assert get_kind("resid_dim").collation is not None
