"""The dataset maps over HTTP: 422s without a finished dataset, the background computation and its
status, and the points with their metadata (a window's title and text, a unit's explanation)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from mechscope.data.collate import CollateConfig, collate
from mechscope.data.store import Dataset, Workspace
from mechscope.explain.store import ExplanationStore, StoredExplanation
from mechscope.server.app import create_app
from mechscope.server.datasets import DatasetSource
from tests.conftest import tiny_model
from tests.data._helpers import small_windows


@pytest.fixture(scope="module")
def collated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("maps-api")
    model = tiny_model("llama")
    root = collate(model, small_windows(model, tmp, window=16, n_docs=40), Workspace(tmp / "dataset"),
                   CollateConfig(window=16, top_k=4, random_samples=3, batch=8), "tiny", "")  # fmt: skip
    with ExplanationStore(root) as store:
        store.add(StoredExplanation(
            kind="mlp_neuron", layer=1, unit=3, backend="baseline", model="", prompt_version="1", explainer="x",
            explanation="the word fox", failure=None, scorer=None, scorer_model=None, dataset="d",
            train_windows=[], test_windows=[], scores={"embedding": {"value": 0.625}},
        ))  # fmt: skip
    return root


def _client(root: Path | None) -> TestClient:
    return TestClient(
        create_app(tiny_model("llama"), datasets=DatasetSource(root)),
        raise_server_exceptions=False,
        base_url="http://localhost",
    )


def _wait(c: TestClient, what: str) -> dict:  # type: ignore[type-arg]
    for _ in range(600):
        body = c.get(f"/api/maps/{what}").json()
        if body["status"] != "computing":
            return body  # type: ignore[no-any-return]
        time.sleep(0.1)
    raise AssertionError("the maps did not finish")


def test_without_a_finished_dataset_maps_are_refused(tmp_path: Path) -> None:
    with _client(None) as c:
        for r in (c.get("/api/maps/prompts"), c.get("/api/maps/units"), c.post("/api/maps/compute", json={})):
            assert r.status_code == 422 and r.json()["field"] == "dataset"
            assert "no dataset: start it with --dataset" in r.json()["error"]
    with _client(tmp_path / "not-started") as c:
        r = c.post("/api/maps/compute", json={})
        assert r.status_code == 422 and "not ready for maps (collation missing" in r.json()["error"]


def test_bad_compute_requests_are_422s(collated: Path) -> None:
    with _client(collated) as c:
        for body, field in [({"what": "words"}, "what"), ({"perplexity": 0}, "perplexity"),
                            ({"seed": -1}, "seed"), ({"seed": "1"}, "seed"), ({"extra": 1}, "extra")]:  # fmt: skip
            r = c.post("/api/maps/compute", json=body)
            assert r.status_code == 422 and r.json()["field"] == field, (body, r.json())


def test_compute_in_the_background_then_read_the_points(collated: Path) -> None:
    with _client(collated) as c:
        before = c.get("/api/maps/units").json()
        assert before["status"] == "missing" and before["x"] == [] and before["job"]["status"] == "idle"
        job = c.post("/api/maps/compute", json={"seed": 2}).json()
        assert job["status"] in ("computing", "done") and job["what"] == ["prompts", "units"]
        again = c.post("/api/maps/compute", json={"seed": 2}).json()  # no second job while one runs
        assert again["status"] in ("computing", "done")
        prompts, units = _wait(c, "prompts"), _wait(c, "units")
        assert prompts["status"] == units["status"] == "ready" and units["job"]["status"] == "done"
        with Dataset(collated) as ds:
            windows = ds.query(
                "SELECT w.window_id, w.text, d.title FROM windows w JOIN documents d USING (doc) ORDER BY 1"
            )
            n_units = sum(a * b for a, b in ds.units().values())
        assert prompts["window_id"] == [w["window_id"] for w in windows]
        assert prompts["text"] == [w["text"] for w in windows] and prompts["title"][0] == windows[0]["title"]
        assert len(prompts["x"]) == len(prompts["y"]) == len(windows) and prompts["info"]["seed"] == 2
        assert len(units["x"]) == len(units["index"]) == len(units["explanation"]) == n_units
        assert units["kinds"] == ["attn_head", "mlp_neuron"] and units["info"]["rows"] == n_units
        i = next(j for j in range(n_units) if units["kinds"][units["kind"][j]] == "mlp_neuron"
                 and units["layer"][j] == 1 and units["index"][j] == 3)  # fmt: skip
        assert units["explanation"][i] == "the word fox" and units["score"][i] == 0.625
        assert sum(e is not None for e in units["explanation"]) == 1
        # Up to date: a second job keeps the files (the same answer, created at the same time).
        c.post("/api/maps/compute", json={"seed": 2, "what": "prompts"})
        assert _wait(c, "prompts")["info"]["created"] == prompts["info"]["created"]
