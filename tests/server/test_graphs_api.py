"""The attribution graph endpoints on a tiny model with a transcoder at every layer: a pruned
graph with its scores, the causal check, an edge's heads, the Neuronpedia export, and the
4xx answers (no transcoders, prompt too long, unknown node ids)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from mechscope.server.app import create_app
from mechscope.server.settings import Limits, Settings
from tests.conftest import tiny_model
from tests.engine.test_graphs import with_transcoders

BODY = {"prompt": "The cat sat on"}


def client(model: object, **limits: int) -> TestClient:
    settings = Settings(limits=Limits(**limits))
    return TestClient(create_app(model, settings), raise_server_exceptions=False, base_url="http://localhost")  # type: ignore[arg-type]


def test_graph_check_edge_and_export() -> None:
    with client(with_transcoders("llama")) as c:
        r = c.post("/api/graph", json=BODY)
        assert r.status_code == 200, r.text
        g = r.json()
        types = {n["type"] for n in g["nodes"]}
        assert {"latent", "token", "logit"} <= types and g["links"]
        assert 0 <= g["scores"]["replacement"] <= 1 and g["kept_node_influence"] >= 0.8 - 1e-6
        ids = {n["id"] for n in g["nodes"]}
        assert len(ids) == len(g["nodes"])  # unique: errors are err_L_pos, not Neuronpedia's 0_L_pos
        assert all(link["source"] in ids and link["target"] in ids for link in g["links"])
        latents = [n for n in g["nodes"] if n["type"] == "latent"]
        assert all(n["kind"] and n["kind"].startswith("tc") for n in latents)
        assert c.post("/api/graph", json=BODY).json()["cached"] is True

        r = c.post("/api/graph/check", json={**BODY, "nodes": [latents[0]["id"]], "factor": 0})
        assert r.status_code == 200, r.text
        assert [row["id"] for row in r.json()["rows"]] == [latents[0]["id"]]
        r = c.post("/api/graph/check", json=BODY)  # the default: the most influential latents
        assert r.status_code == 200 and len(r.json()["rows"]) >= 1

        by_id = {n["id"]: n for n in g["nodes"]}
        cross = [link for link in g["links"] if by_id[link["source"]]["type"] == "latent"
                 and by_id[link["target"]]["type"] == "latent"
                 and by_id[link["source"]]["pos"] < by_id[link["target"]]["pos"]]  # fmt: skip
        link = cross[0] if cross else g["links"][0]
        r = c.post("/api/graph/edge", json={**BODY, "source": link["source"], "sink": link["target"]})
        assert r.status_code == 200, r.text
        assert abs(r.json()["weight"] - link["weight"]) < 1e-4 * max(1.0, abs(link["weight"]))

        errors = [n for n in g["nodes"] if n["type"] == "error"]
        pinned = [latents[0]["id"], errors[0]["id"]]
        body = {**BODY, "pinned": pinned, "supernodes": [["group", *pinned]], "slug": "cat"}
        r = c.post("/api/graph/neuronpedia", json=body)
        assert r.status_code == 200, r.text
        doc = r.json()
        np_error = f"0_{errors[0]['layer']}_{errors[0]['pos']}"  # the export speaks Neuronpedia's ids
        assert (
            doc["qParams"]["pinnedIds"] == [latents[0]["id"], np_error] and doc["metadata"]["slug"] == "cat"
        )
        assert doc["qParams"]["supernodes"] == [["group", latents[0]["id"], np_error]]

        for path, extra, field in (
            ("/api/graph/check", {"nodes": ["9_9_9"]}, "nodes.0"),
            ("/api/graph/edge", {"source": "nope", "sink": "x"}, "source"),
            ("/api/graph/neuronpedia", {"pinned": ["nope"]}, "pinned.0"),
        ):
            r = c.post(path, json={**BODY, **extra})
            assert r.status_code == 422 and field in r.text, (path, r.text)


def test_graph_requests_are_refused_before_any_work() -> None:
    with client(tiny_model("llama")) as c:
        r = c.post("/api/graph", json=BODY)
        assert r.status_code == 422 and "transcoder at every layer" in r.text
    with client(with_transcoders("llama"), max_graph_tokens=4, max_graph_features=10) as c:
        r = c.post("/api/graph", json=BODY)
        assert r.status_code == 422 and "max_graph_tokens" in r.text
        r = c.post("/api/graph", json={"prompt": "ab", "max_features": 11})
        assert r.status_code == 422 and "max_graph_features" in r.text
        r = c.post("/api/graph", json={"prompt": "ab", "target": 10**6})
        assert r.status_code == 422 and "target" in r.text
        r = c.post("/api/graph", json={"prompt": "ab", "node_threshold": 0})
        assert r.status_code == 422
