"""POST /api/attention and POST /api/heads/detect on a tiny model: answers, bounds and 422s."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from fastapi.testclient import TestClient

from mechscope.data.store import Dataset
from mechscope.engine.attention import detect_heads, repeated_tokens
from mechscope.server.app import create_app
from mechscope.server.datasets import DatasetSource
from mechscope.server.settings import Limits, Settings
from tests.conftest import tiny_model


def test_a_heads_pattern_on_a_prompt(client: TestClient) -> None:
    body = client.post("/api/attention", json={"prompt": "hello", "layer": 1, "head": 2}).json()
    assert body["kind"] == "attn_head" and body["heads"] == [2] and body["layer"] == 1
    assert body["tokens"] == ["<bos>", "h", "e", "l", "l", "o"] and body["text"] == "hello"
    (p,) = body["patterns"]
    assert [len(r) for r in p] == [1, 2, 3, 4, 5, 6] and all(abs(sum(r) - 1) < 1e-4 for r in p)
    every = client.post("/api/attention", json={"prompt": "hello", "layer": 0}).json()
    assert every["heads"] == [0, 1, 2, 3] and len(every["patterns"]) == 4


def test_a_repeated_sequence_is_the_detectors_first(client: TestClient) -> None:
    body = client.post("/api/attention", json={"repeated": {"length": 5, "seed": 4}, "layer": 0}).json()
    model = tiny_model("llama")
    assert body["ids"] == repeated_tokens(model, 5, n=8, seed=4)[0]
    det = client.post("/api/heads/detect", json={"length": 5, "seed": 4}).json()
    assert det["tokens"] == body["tokens"] and det["rows"] == 8 and det["length"] == 11


def test_detect_on_repeated_sequences_matches_the_engine(client: TestClient) -> None:
    det = client.post("/api/heads/detect", json={"source": "repeated", "length": 6, "n": 3, "seed": 1}).json()
    want = detect_heads(tiny_model("llama"), repeated_tokens(tiny_model("llama"), 6, 3, 1))
    assert det["n_layers"] == 2 and det["n_heads"] == 4 and det["window_id"] is None
    names = [d["name"] for d in det["detectors"]]
    assert names == ["previous_token", "duplicate_token", "induction", "attention_sink"]
    for got, exp in zip(det["detectors"], want.detectors, strict=True):
        assert torch.tensor(got["scores"]) == pytest.approx(torch.tensor(exp.scores), abs=1e-6)
        assert all(0 <= v <= 1 for row in got["scores"] for v in row)


def test_detect_on_a_prompt(client: TestClient) -> None:
    det = client.post("/api/heads/detect", json={"source": "prompt", "prompt": "abcabc"}).json()
    assert det["rows"] == 1 and det["length"] == 7
    assert {d["name"]: d["queries"] for d in det["detectors"]}["induction"] == 3


@pytest.mark.parametrize(
    ("path", "body", "field", "words"),
    [
        ("/api/attention", {"prompt": "hi", "layer": 2}, "layer", "layers 0..1"),
        ("/api/attention", {"prompt": "hi", "layer": 0, "head": 4}, "head", "heads 0..3"),
        ("/api/attention", {"prompt": "hi", "layer": -1}, "layer", "greater than or equal"),
        ("/api/attention", {"layer": 0}, "prompt", "exactly one"),
        ("/api/attention", {"prompt": "hi", "repeated": {}, "layer": 0}, "prompt", "exactly one"),
        ("/api/attention", {"prompt": "x" * 60, "layer": 0}, "prompt", "max_prompt_tokens"),
        ("/api/attention", {"repeated": {"length": 20}, "layer": 0}, "repeated.length", "max_prompt_tokens"),
        ("/api/attention", {"window_id": 0, "layer": 0}, "source", "no collated dataset"),
        ("/api/heads/detect", {"source": "dataset"}, "source", "no collated dataset"),
        ("/api/heads/detect", {"source": "words"}, "source", "repeated"),
        ("/api/heads/detect", {"source": "prompt"}, "prompt", "source 'prompt'"),
        ("/api/heads/detect", {"prompt": "hi"}, "prompt", "source 'prompt'"),
        ("/api/heads/detect", {"length": 20}, "length", "max_prompt_tokens"),
        ("/api/heads/detect", {"length": 19, "n": 300}, "n", "max_request_tokens"),
        ("/api/heads/detect", {"length": 0}, "length", "greater than or equal"),
        ("/api/heads/detect", {"source": "prompt", "prompt": "x" * 60}, "prompt", "max_prompt_tokens"),
    ],
)
def test_bad_requests_are_422_naming_the_field(
    client: TestClient, path: str, body: dict[str, object], field: str, words: str
) -> None:
    r = client.post(path, json=body)
    assert r.status_code == 422, r.text
    assert r.json()["field"] == field and words in r.json()["error"], r.json()


def test_dataset_windows(collated: Path) -> None:
    app = create_app(
        tiny_model("llama"), Settings(limits=Limits(max_request_tokens=64)), datasets=DatasetSource(collated)
    )
    with (
        TestClient(app, raise_server_exceptions=False, base_url="http://localhost") as c,
        Dataset(collated) as ds,
    ):
        det = c.post("/api/heads/detect", json={"source": "dataset", "n": 3}).json()
        rows = [w["token_ids"] for w in ds.windows([0, 1, 2]).values()]
        assert det["rows"] == 3 and det["length"] == 16 and det["window_id"] == 0
        want = detect_heads(tiny_model("llama"), rows)
        assert torch.tensor(det["detectors"][0]["scores"]) == pytest.approx(
            torch.tensor(want.detectors[0].scores)
        )
        r = c.post("/api/heads/detect", json={"source": "dataset", "n": 5})  # 5 x 16 > 64
        assert r.status_code == 422 and r.json()["field"] == "n"
        pat = c.post("/api/attention", json={"window_id": 1, "layer": 1, "head": 0}).json()
        assert pat["ids"] == ds.windows([1])[1]["token_ids"]
        r = c.post("/api/attention", json={"window_id": 10**6, "layer": 1})
        assert r.status_code == 422 and r.json()["field"] == "window_id"
