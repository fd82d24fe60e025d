"""/api/debug with a log-prob or probe direction, and every intervention op over HTTP (422s too)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from mechscope.data.store import Dataset
from mechscope.engine.attribution import attribute
from mechscope.engine.directions import LogProb, ResidualDirection
from mechscope.engine.lens import write_direction
from mechscope.engine.nodes import Node
from mechscope.server.app import create_app
from mechscope.server.datasets import DatasetSource
from tests.conftest import tiny_model

PROMPT = "the cat sat on"  # 15 tokens with BOS (character tokenizer)
D_MODEL = 32
NEURON = {"kind": "mlp_neuron", "layer": 0, "index": 3, "token": 2}


def _model(client: TestClient):  # type: ignore[no-untyped-def]
    return client.app.state.mechscope.model  # type: ignore[attr-defined]


def test_log_prob_direction_matches_the_library(client: TestClient) -> None:
    r = client.post(
        "/api/debug",
        json={"prompt": PROMPT, "direction": {"kind": "logprob", "continuation": " mat"}, "k": 3},
    )
    assert r.status_code == 200, r.text
    expected = attribute(_model(client), PROMPT, LogProb(continuation=" mat"))
    assert r.json()["left"]["value"] == pytest.approx(expected.value, abs=1e-4)
    assert r.json()["left"]["direction"].startswith("logprob of")


def test_probe_from_a_vector_or_a_nodes_write(client: TestClient) -> None:
    vec = [0.01 * i for i in range(D_MODEL)]
    probe = {"kind": "probe", "vector": vec, "layer": 1, "point": "resid_mid"}
    r = client.post("/api/debug", json={"prompt": PROMPT, "direction": probe, "position": 5, "k": 3})
    assert r.status_code == 200, r.text
    expected = attribute(
        _model(client), PROMPT, ResidualDirection(vector=vec, layer=1, point="resid_mid", position=5)
    )
    assert r.json()["left"]["value"] == pytest.approx(expected.value, abs=1e-4)
    by_node = {"kind": "probe", "node": NEURON, "layer": 1}
    r = client.post("/api/debug", json={"prompt": PROMPT, "direction": by_node, "k": 3})
    assert r.status_code == 200, r.text
    write = write_direction(_model(client), Node(**NEURON)).tolist()
    expected = attribute(_model(client), PROMPT, ResidualDirection(vector=write, layer=1))
    assert r.json()["left"]["value"] == pytest.approx(expected.value, abs=1e-4)
    # With interventions the probe explains both panes.
    iv = {"target": {"kind": "mlp_neuron", "layer": 0, "index": 3}, "op": {"kind": "scale", "factor": 0.5}}
    r = client.post(
        "/api/debug", json={"prompt": PROMPT, "direction": by_node, "interventions": [iv], "k": 3}
    )
    assert r.status_code == 200, r.text
    assert r.json()["right"] is not None and r.json()["value_diff"] != 0


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        (
            {"direction": {"kind": "probe", "vector": [1.0] * 5, "layer": 0}},
            "direction.vector",
            "5 entries; expected d_model = 32",
        ),
        (
            {"direction": {"kind": "probe", "vector": [1.0] * 5000, "layer": 0}},
            "direction.vector",
            "5000 entries",
        ),
        ({"direction": {"kind": "probe", "layer": 0}}, "direction.probe", "exactly one of vector or node"),
        (
            {"direction": {"kind": "probe", "vector": [1.0] * 32, "layer": 7}},
            "direction.layer",
            "out of range 0..1",
        ),
        (
            {
                "direction": {
                    "kind": "probe",
                    "node": {"kind": "attn_out", "layer": 0, "token": 1},
                    "layer": 0,
                }
            },
            "direction.node",
            "output tokens are defined",
        ),
        ({"direction": {"kind": "logprob", "continuation": 99999}}, "direction.continuation", "out of range"),
        ({"direction": {"kind": "logprob", "continuation": "x"}, "targets": ["a"]}, "direction", "not both"),
        ({"direction": {"kind": "entropy"}}, "direction", "logprob"),
    ],
)
def test_bad_directions_are_422s_naming_the_field(
    client: TestClient, body: dict, field: str, message: str
) -> None:
    r = client.post("/api/debug", json={"prompt": PROMPT, **body})
    assert r.status_code == 422, r.text
    assert r.json()["field"].startswith(field) and message in r.json()["error"]


def test_every_op_runs_over_http(client: TestClient) -> None:
    base = {"prompt": PROMPT, "targets": [" "], "k": 3}
    target = {"kind": "mlp_neuron", "layer": 1, "index": 4, "positions": [-1]}
    ops = [
        {"kind": "mean", "reference": ["a dog", "the end"]},
        {"kind": "resample", "prompt": "a dog sat on"},
        {"kind": "set", "value": 2.0},
        {"kind": "scale", "factor": 3.0},
        {"kind": "add", "value": -1.0},
    ]
    for op in ops:
        r = client.post("/api/debug", json={**base, "interventions": [{"target": target, "op": op}]})
        assert r.status_code == 200, (op, r.text)
        assert r.json()["value_diff"] != 0
    steer = {"kind": "steer", "coefficient": 4.0, "direction": {"kind": "node_write", "node": NEURON}}
    r = client.post(
        "/api/debug",
        json={**base, "interventions": [{"target": {"kind": "residual", "layer": 1}, "op": steer}]},
    )
    assert r.status_code == 200, r.text
    assert r.json()["value_diff"] != 0


@pytest.mark.parametrize(
    ("iv", "field", "message"),
    [
        (
            {
                "target": {"kind": "residual", "layer": 1},
                "op": {
                    "kind": "steer",
                    "coefficient": 1,
                    "direction": {"kind": "vector", "vector": [1.0] * 3},
                },
            },
            "interventions[0].op.direction.vector",
            "3 entries; expected d_model = 32",
        ),
        (
            {
                "target": {"kind": "mlp_neuron", "layer": 1, "index": 4},
                "op": {
                    "kind": "steer",
                    "coefficient": 1,
                    "direction": {"kind": "vector", "vector": [1.0] * 32},
                },
            },
            "interventions[0]",
            "this target's value has 1 entries",
        ),
        (
            {
                "target": {"kind": "residual", "layer": 1},
                "op": {
                    "kind": "steer",
                    "coefficient": 1,
                    "direction": {"kind": "node_write", "node": NEURON, "prompt": "x" * 60},
                },
            },
            "interventions[0].op.direction.prompt",
            "the limit is 40",
        ),
        (
            {"target": {"kind": "mlp_neuron", "layer": 1, "index": 4}, "op": {"kind": "dataset_mean"}},
            "interventions[0].op",
            "needs a collated dataset, and none is loaded",
        ),
    ],
)
def test_bad_interventions_are_422s(client: TestClient, iv: dict, field: str, message: str) -> None:
    for path, body in (
        ("/api/debug", {"prompt": PROMPT, "targets": [" "]}),
        ("/api/generate", {"prompt": PROMPT, "max_new_tokens": 4}),
    ):
        r = client.post(path, json={**body, "interventions": [iv]})
        assert r.status_code == 422, r.text
        assert r.json()["field"] == field and message in r.json()["error"], r.json()


def test_steered_generation_differs_and_is_greedy(client: TestClient) -> None:
    req = {"prompt": PROMPT, "max_new_tokens": 6}
    plain = client.post("/api/generate", json=req).json()
    steer = {"kind": "steer", "coefficient": 50.0, "direction": {"kind": "node_write", "node": NEURON}}
    iv = {"target": {"kind": "residual", "layer": 1, "point": "resid_post"}, "op": steer}
    steered = client.post("/api/generate", json={**req, "interventions": [iv]}).json()
    assert plain == {**client.post("/api/generate", json=req).json(), "elapsed_ms": plain["elapsed_ms"]}
    assert [t["id"] for t in plain["tokens"]] != [t["id"] for t in steered["tokens"]]


def test_dataset_mean_reads_the_served_dataset(collated: Path) -> None:
    app = create_app(tiny_model("llama"), datasets=DatasetSource(collated))
    with TestClient(app, raise_server_exceptions=False, base_url="http://localhost") as c:
        mean = Dataset(collated).stats("mlp_neuron", 1, 4)["mean"]
        target = {"kind": "mlp_neuron", "layer": 1, "index": 4, "positions": [-1]}
        base = {"prompt": PROMPT, "targets": [" "], "k": 3}
        by_dataset = c.post(
            "/api/debug", json={**base, "interventions": [{"target": target, "op": {"kind": "dataset_mean"}}]}
        )
        by_set = c.post(
            "/api/debug",
            json={**base, "interventions": [{"target": target, "op": {"kind": "set", "value": mean}}]},
        )
        assert by_dataset.status_code == 200, by_dataset.text
        assert by_dataset.json()["right"]["value"] == pytest.approx(by_set.json()["right"]["value"], abs=1e-5)
        head = {"target": {"kind": "attn_head", "layer": 0, "index": 1}, "op": {"kind": "dataset_mean"}}
        r = c.post("/api/debug", json={**base, "interventions": [head]})
        assert r.status_code == 422 and r.json()["field"] == "interventions[0].op"
        assert "not defined for kind attn_head" in r.json()["error"]
        g = c.post(
            "/api/generate",
            json={
                "prompt": PROMPT,
                "max_new_tokens": 3,
                "interventions": [{"target": target, "op": {"kind": "dataset_mean"}}],
            },
        )
        assert g.status_code == 200, g.text


def test_model_info_says_which_kinds_take_a_dataset_mean(client: TestClient) -> None:
    """The editor offers "mean over the dataset" from this flag: neurons (one scalar per unit, read
    where the site edits) yes; heads (a d_head vector per unit) and layer outputs no."""
    kinds = {k["name"]: k["dataset_mean"] for k in client.get("/api/model").json()["kinds"]}
    assert kinds["mlp_neuron"] is True
    assert kinds["attn_head"] is False
    assert kinds["mlp_out"] is False
