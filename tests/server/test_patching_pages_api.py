"""The Patching and Lens pages' routes: prompt pairs, both patching methods side by side, the
lens grid of each stream, and their 422s."""

from __future__ import annotations

import pytest
import torch
from fastapi.testclient import TestClient

from mechscope.engine.directions import LogitDiff
from mechscope.engine.lens import lens_grid
from mechscope.engine.patch_compare import pearson
from mechscope.engine.patching import patch
from mechscope.server.app import create_app
from mechscope.server.settings import Limits, Settings
from tests.conftest import tiny_model
from tests.engine.test_pairs import word_model

CLEAN, CORRUPT = "abcdefgh", "abcXefgh"


def client(model: object, **limits: int) -> TestClient:
    app = create_app(model, Settings(limits=Limits(max_prompt_tokens=40, **limits)))  # type: ignore[arg-type]
    return TestClient(app, raise_server_exceptions=False, base_url="http://localhost")


def test_pairs_and_their_errors() -> None:
    with client(word_model()) as c:
        r = c.post("/api/patch/pair", json={"io": "Mary", "subject": "John"})
        assert r.status_code == 200, r.text
        pair = r.json()
        assert pair["corrupted"].endswith(", Mary gave a drink to") and pair["targets"] == [" Mary"]
        assert len(pair["clean_tokens"]) == len(pair["corrupted_tokens"]) and pair["changed"] == [10]
        r = c.post("/api/patch/pair", json={"kind": "repeat", "length": 4, "seed": 1})
        assert r.status_code == 200, r.text and r.json()["distractors"] == []
        assert set(c.get("/api/patch/templates").json()) >= {"store", "park"}
        bad = [
            ({"io": "Mary2"}, "io", "' Mary2' is 2 tokens"),
            ({"others": ["Alice", "Bob9"], "corruption": "abc"}, "others[1]", "' Bob9' is 2 tokens"),
            ({"template": "{A} {B}"}, "template", "{S} appears 0 times"),
            ({"corruption": "rot13"}, "corruption", "swap"),
            ({"kind": "repeat", "length": 30}, "length", "max_prompt_tokens"),
            ({"kind": "repeat", "length": 1}, "length", "greater than or equal to 2"),
        ]
        for body, field, message in bad:
            r = c.post("/api/patch/pair", json=body)
            assert r.status_code == 422, (body, r.text)
            assert r.json()["field"] == field and message in r.json()["error"], r.json()


def test_compare_returns_both_grids_and_their_correlation() -> None:
    model = tiny_model("llama")
    d = LogitDiff(targets=["i"], distractors=["j"])
    with client(model) as c:
        for site, kind in [("resid_pre", None), ("heads", "attn_head"), ("mlp_out", "mlp_out")]:
            body = {
                "clean": CLEAN,
                "corrupted": CORRUPT,
                "targets": ["i"],
                "distractors": ["j"],
                "site": site,
            }
            r = c.post("/api/patch/compare", json=body)
            assert r.status_code == 200, r.text
            res = r.json()
            act = patch(model, CLEAN, CORRUPT, d, site=site, method="activation")  # type: ignore[arg-type]
            est = patch(model, CLEAN, CORRUPT, d, site=site, method="attribution")  # type: ignore[arg-type]
            close = torch.testing.assert_close
            close(torch.tensor(res["activation"]["values"]), torch.tensor(act.values), atol=1e-6, rtol=1e-5)
            close(torch.tensor(res["attribution"]["values"]), torch.tensor(est.values), atol=1e-6, rtol=1e-5)
            expected = pearson(torch.tensor(act.values), torch.tensor(est.values))
            assert res["correlation"] == pytest.approx(expected) and res["kind"] == kind


def test_compare_refusals() -> None:
    with client(tiny_model("llama"), max_request_tokens=500) as c:
        body = {"clean": CLEAN, "corrupted": CORRUPT, "targets": ["i"], "distractors": ["j"]}
        # An activation sweep over budget is skipped, saying why; the estimate comes back alone.
        r = c.post("/api/patch/compare", json={**body, "site": "heads_by_pos"})
        assert r.status_code == 200, r.text
        res = r.json()
        assert res["activation"] is None and res["correlation"] is None
        assert len(res["attribution"]["values"]) == 8 and "max_request_tokens" in res["skipped"]
        assert c.post("/api/patch/compare", json={**body, "site": "heads"}).json()["skipped"] is None
        r = c.post("/api/patch/compare", json={**body, "corrupted": CLEAN + "x"})
        assert r.status_code == 422 and "same number of tokens" in r.json()["error"]
        r = c.post("/api/patch/compare", json={**body, "clean": "a" * 41, "corrupted": "b" * 41})
        assert r.status_code == 422 and r.json()["field"] == "clean"
        r = c.post("/api/patch/compare", json={**body, "site": "resid_post"})
        assert r.status_code == 422 and r.json()["field"] == "site"
        r = c.post("/api/patch/compare", json={**body, "targets": []})
        assert r.status_code == 422 and r.json()["field"] == "targets"
    with client(tiny_model("llama"), max_grad_tokens=5) as c:  # the estimate itself over budget
        r = c.post("/api/patch/compare", json=body)
        assert r.status_code == 422 and "max_grad_tokens" in r.json()["error"]


def test_lens_grid_route() -> None:
    model = tiny_model("llama")
    with client(model, max_k=10) as c:
        r = c.post("/api/lens/grid", json={"prompt": "hello", "stream": "mlp", "k": 3, "target": "e"})
        assert r.status_code == 200, r.text
        assert r.json() == lens_grid(model, "hello", "mlp", 3, "e").model_dump()
        assert r.json()["layers"] == ["L0", "L1"] and len(r.json()["target"]["ranks"][0]) == 6
        assert c.post("/api/lens/grid", json={"prompt": "hello"}).json()["layers"][-1] == "final"
        for body, field in [
            ({"prompt": "hello", "stream": "embed"}, "stream"),
            ({"prompt": "hello", "k": 11}, "k"),
            ({"prompt": "hello", "target": "ab"}, "target"),
            ({"prompt": "hello", "target": 10_000}, "target"),
            ({"prompt": "x" * 41}, "prompt"),
        ]:
            r = c.post("/api/lens/grid", json=body)
            assert r.status_code == 422 and r.json()["field"] == field, (body, r.text)
