"""Node-page data over HTTP: a collated dataset on a tiny model, its progress, examples and searches."""

from __future__ import annotations

from pathlib import Path

import pytest

from mechscope.data.collate import CollateConfig, collate
from mechscope.data.store import Workspace
from mechscope.server.app import create_app
from mechscope.server.datasets import DatasetSource
from tests.conftest import tiny_model
from tests.data._helpers import small_windows


@pytest.fixture(scope="module")
def collated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("ds")
    model = tiny_model("llama")
    windows = small_windows(model, tmp, window=16)
    return collate(
        model,
        windows,
        Workspace(tmp / "dataset"),
        CollateConfig(window=16, top_k=5, batch=4),
        "tiny",
        "credit line",
    )


def _client(root: Path | None):  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    return TestClient(
        create_app(tiny_model("llama"), datasets=DatasetSource(root)), raise_server_exceptions=False
    )


def test_without_a_dataset_node_pages_get_the_status_only(tmp_path: Path) -> None:
    with _client(None) as c:
        assert c.get("/api/dataset").json()["status"] == "none"
        body = c.post("/api/dataset/node", json={"kind": "mlp_neuron", "layer": 0, "index": 1}).json()
        assert body["status"]["status"] == "none" and body["top"] == [] and body["stats"] is None
        r = c.post("/api/dataset/search", json={"text": "a"})
        assert r.status_code == 422 and r.json()["field"] == "dataset"
    with _client(tmp_path / "not-started") as c:
        assert c.get("/api/dataset").json()["status"] == "missing"


def test_node_examples_match_the_dataset_and_the_model(collated: Path) -> None:
    from mechscope.data.store import Dataset

    with _client(collated) as c:
        st = c.get("/api/dataset").json()
        assert st["status"] == "done" and st["fraction"] == 1.0 and st["attribution"] == "credit line"
        body = c.post("/api/dataset/node", json={"kind": "mlp_neuron", "layer": 1, "index": 3, "n": 4}).json()
        with Dataset(collated) as ds:
            top = ds.top_examples("mlp_neuron", 1, 3, 4)
        assert [e["window_id"] for e in body["top"]] == [e["window_id"] for e in top]
        assert body["top"][0]["activation"] == pytest.approx(max(body["top"][0]["acts"]), abs=1e-2)
        assert body["stats"]["count"] > 0 and len(body["stats"]["hist"]) == len(body["stats"]["hist_lo"])
        # Quantile samples are stored without per-token values; the server recomputes them.
        q = body["quantile"]
        assert q and all(e["acts"] is not None and len(e["acts"]) == len(e["tokens"]) for e in q)
        for e in q:
            assert e["acts"][e["position"]] == pytest.approx(e["activation"], abs=1e-3)
        head = c.post("/api/dataset/node", json={"kind": "attn_head", "layer": 0, "index": 2}).json()
        assert head["top"] and head["top"][0]["key_position"] is not None
        bad = c.post("/api/dataset/node", json={"kind": "mlp_neuron", "layer": 9, "index": 0})
        assert bad.status_code == 422 and "does not exist" in bad.json()["error"]
        token = body["top"][0]["tokens"][body["top"][0]["position"]]
        hits = c.post("/api/dataset/token", json={"token": token}).json()
        assert any(h["kind"] == "mlp_neuron" and h["layer"] == 1 and h["unit"] == 3 for h in hits)
        found = c.post("/api/dataset/search", json={"text": token.strip() or "a", "n": 3}).json()
        assert found and all(token.strip().lower() in f["text"].lower() for f in found)
