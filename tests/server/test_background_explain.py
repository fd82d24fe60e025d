"""The demo's background baseline explanations: written once the collation is done, resumed after a
restart, waiting (without writing) while the dataset is not done, read by the API meanwhile."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from mechscope.data.store import Dataset
from mechscope.explain.jobs import select_nodes
from mechscope.explain.store import DATABASE, ExplanationStore
from mechscope.server.app import create_app
from mechscope.server.background_explain import BackgroundExplainer
from mechscope.server.datasets import DatasetSource
from tests.explain._helpers import DIGIT_NODE, collated, digit_model


@pytest.fixture(scope="module")
def digit_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return collated(tmp_path_factory.mktemp("bg-explain"), digit_model())


def run(source: DatasetSource, timeout: float = 120.0) -> BackgroundExplainer:
    bg = BackgroundExplainer(source, digit_model(), poll_s=0.05)
    bg.start()
    assert bg.finished.wait(timeout), "the background explainer did not finish"
    return bg


def test_every_unit_gets_a_baseline_and_a_restart_resumes(digit_root: Path, tmp_path: Path) -> None:
    root = Path(shutil.copytree(digit_root, tmp_path / "ds"))
    with Dataset(root) as ds:
        nodes = set(select_nodes(ds))
    source = DatasetSource(root)
    bg = run(source)
    assert bg.done == len(nodes)
    with ExplanationStore(root, read_only=True) as store:
        assert store.done("baseline", "-", "baseline1", None, None) == nodes
        row = store.latest(*DIGIT_NODE)
    assert row is not None and row["explanation"].startswith("fires on")
    assert row["scores"]["simulation"]["value"] is None  # no LLM in the background
    # The API reads them (the node table's lookup).
    app = create_app(digit_model(), datasets=source)
    with TestClient(app, raise_server_exceptions=False, base_url="http://localhost") as c:
        kind, layer, unit = DIGIT_NODE
        r = c.post("/api/explanations/nodes", json={"nodes": [{"kind": kind, "layer": layer, "index": unit}]})
        assert r.status_code == 200 and r.json()["explanations"][0]["explanation"] == row["explanation"]
    assert run(DatasetSource(root)).done == 0  # nothing twice
    source.close()


def test_it_waits_for_the_collation_and_stops_without_writing(tmp_path: Path) -> None:
    source = DatasetSource(tmp_path / "not-collated-yet")
    bg = BackgroundExplainer(source, digit_model(), poll_s=0.05)
    bg.start()
    assert not bg.finished.wait(0.5)  # status "missing": still waiting
    bg.close()
    assert bg.finished.wait(5) and bg.done == 0
    assert not (tmp_path / "not-collated-yet" / DATABASE).exists()
