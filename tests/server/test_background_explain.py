"""The demo's background baseline explanations: written once the collation is done, resumed after a
restart, waiting (without writing) while the dataset is not done, read by the API meanwhile."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from mechscope.data.store import Dataset
from mechscope.explain.jobs import select_nodes
from mechscope.explain.prompts import PROMPT_VERSION
from mechscope.explain.store import DATABASE, ExplanationStore
from mechscope.server.app import create_app
from mechscope.server.background_explain import BackgroundExplainer
from mechscope.server.datasets import DatasetSource
from tests.explain._helpers import DIGIT_NODE, collated, digit_model
from tests.explain.fake_llm import RuleFake


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
    source.explainer = bg
    assert bg.working and source.working()  # requests run on one thread meanwhile (worker.py)
    bg.close()
    assert bg.finished.wait(5) and bg.done == 0
    assert not bg.working and not source.working()
    assert not (tmp_path / "not-collated-yet" / DATABASE).exists()


def test_a_local_llm_pass_follows_the_baseline_and_resumes(digit_root: Path, tmp_path: Path) -> None:
    """With an LLM the thread explains every unit a second time after the baseline pass, with the
    LLM as explainer and the embedding score only; a restart does neither pass again."""
    root = Path(shutil.copytree(digit_root, tmp_path / "ds"))
    with Dataset(root) as ds:
        nodes = set(select_nodes(ds))
    loaded: list[RuleFake] = []

    def llm() -> RuleFake:
        loaded.append(RuleFake(explanation="digits"))
        return loaded[-1]

    for expect in (len(nodes), 0):
        source = DatasetSource(root)
        bg = BackgroundExplainer(source, digit_model(), poll_s=0.05, llm=llm)  # type: ignore[arg-type]
        bg.start()
        assert bg.finished.wait(120), "the background explainer did not finish"
        assert bg.llm_done == expect and bg.done == expect * (2 if expect else 1)
        source.close()
    assert len(loaded) == 2 and loaded[0].calls["explain"] == len(nodes) and loaded[1].calls["explain"] == 0
    with ExplanationStore(root, read_only=True) as store:
        assert store.done("fake", "rule-fake-prompt", PROMPT_VERSION, None, None) == nodes
        assert store.done("baseline", "-", "baseline1", None, None) == nodes
        row = store.latest(*DIGIT_NODE)
    assert row is not None and row["scores"]["simulation"]["value"] is None  # no simulator in the background


def test_the_llm_pass_stops_promptly(digit_root: Path, tmp_path: Path) -> None:
    root = Path(shutil.copytree(digit_root, tmp_path / "ds"))
    slow = RuleFake(explanation="digits", delay=0.2)
    source = DatasetSource(root)
    bg = BackgroundExplainer(source, digit_model(), poll_s=0.05, llm=lambda: slow)  # type: ignore[arg-type,return-value]
    bg.start()
    deadline = time.monotonic() + 120
    while bg.llm_done < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert bg.llm_done >= 2, "the LLM pass did not start"
    t0 = time.monotonic()
    bg.close(timeout=5)
    assert bg.finished.is_set() and time.monotonic() - t0 < 2  # between two nodes, not after all of them
    assert bg.llm_done < len(select_nodes(source.dataset()))  # type: ignore[arg-type]
    source.close()
