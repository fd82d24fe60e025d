"""POST /api/prompt/grid on a tiny model: the decoded grid equals the engine's, the lens equals
logit_lens, the refusals name what was wrong; and corpus search by document title."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from fastapi.testclient import TestClient

from mechscope.data.collate import CollateConfig, collate
from mechscope.data.store import Workspace
from mechscope.engine.lens import logit_lens
from mechscope.engine.unit_grid import decode_codes, dequantize, unit_grid
from mechscope.server.app import create_app
from mechscope.server.datasets import DatasetSource
from mechscope.server.settings import Limits, Settings
from tests.conftest import tiny_model
from tests.data._helpers import small_windows

PROMPT = "The cat sat on the mat"


def _client(limits: Limits | None = None, dataset: Path | None = None) -> TestClient:
    app = create_app(
        tiny_model("llama"), Settings(limits=limits or Limits()), datasets=DatasetSource(dataset)
    )
    return TestClient(app, raise_server_exceptions=False, base_url="http://localhost")


@pytest.mark.parametrize("kind", ["mlp_neuron", "attn_head"])
def test_grid_decodes_to_the_engine_values_and_the_lens(kind: str) -> None:
    with _client() as c:
        r = c.post("/api/prompt/grid", json={"prompt": PROMPT, "kind": kind, "k": 3})
    assert r.status_code == 200, r.text
    body = r.json()
    model = tiny_model("llama")
    grid = unit_grid(model, PROMPT, kind)
    n_pos = len(grid.ids)
    assert body["kind"] == kind and body["units"] == grid.values.shape[-1] and len(body["tokens"]) == n_pos
    assert [layer["layer"] for layer in body["layers"]] == [0, 1]
    for row, layer in enumerate(body["layers"]):
        scales = torch.tensor(layer["scales"])
        codes = decode_codes(layer["codes"], (n_pos, body["units"]))
        err = (dequantize(scales, codes) - grid.values[row]).abs()
        assert bool((err <= scales.unsqueeze(-1) / 2 + 1e-6).all())
    lens = logit_lens(model, PROMPT, 3)
    assert body["lens"]["layers"] == lens.layers
    assert body["lens"]["ids"] == [[[t.id for t in p] for p in row] for row in lens.top]
    assert body["lens"]["probs"][-1][0][0] == pytest.approx(lens.top[-1][0][0].value, abs=1e-4)
    assert all(body["lens"]["vocab"][str(t.id)] == t.token for row in lens.top for p in row for t in p)


def test_refusals_name_the_field_and_the_limit() -> None:
    with _client(Limits(max_prompt_tokens=30, max_k=5, max_grid_values=2 * 48 * 8)) as c:

        def refused(body: dict[str, object]) -> dict[str, str]:
            r = c.post("/api/prompt/grid", json=body)
            assert r.status_code == 422, r.text
            return r.json()  # type: ignore[no-any-return]

        e = refused({"prompt": "x" * 40, "kind": "mlp_neuron"})
        assert e["field"] == "prompt" and "max_prompt_tokens" in e["error"]
        e = refused({"prompt": PROMPT, "kind": "mlp_neuron"})  # 23 tokens x 2 layers x 48 neurons
        assert (
            e["field"] == "prompt"
            and "max_grid_values" in e["error"]
            and "shorten the prompt to 8" in e["error"]
        )
        assert c.post("/api/prompt/grid", json={"prompt": "The cat", "kind": "mlp_neuron"}).status_code == 200
        e = refused({"prompt": PROMPT, "kind": "attn_out"})
        assert e["field"] == "kind" and "kinds with units: mlp_neuron, attn_head" in e["error"]
        e = refused({"prompt": PROMPT, "kind": "no_such_kind"})
        assert e["field"] == "kind"
        e = refused({"prompt": "The cat", "kind": "mlp_neuron", "k": 6})
        assert e["field"] == "k" and "max_k" in e["error"]
        for bad in ({"prompt": "", "kind": "mlp_neuron"}, {"prompt": "a", "kind": "Bad-Kind"},
                    {"prompt": "a", "kind": "mlp_neuron", "k": 0}, {"prompt": "a"},
                    {"prompt": "a", "kind": "mlp_neuron", "extra": 1}):  # fmt: skip
            assert refused(bad)["field"] is not None


def test_a_kind_too_big_for_one_token_is_named() -> None:
    with _client(Limits(max_grid_values=47)) as c:  # less than one token's 2 x 48 neurons
        r = c.post("/api/prompt/grid", json={"prompt": "a", "kind": "mlp_neuron"})
        assert r.status_code == 422 and r.json()["field"] == "kind" and "fewer units" in r.json()["error"]
        assert c.post("/api/prompt/grid", json={"prompt": "a", "kind": "attn_head"}).status_code == 200


def test_search_finds_windows_by_document_title(tmp_path: Path) -> None:
    model = tiny_model("llama")
    root = collate(model, small_windows(model, tmp_path, window=16), Workspace(tmp_path / "ds"),
                   CollateConfig(window=16, top_k=5, batch=4), "tiny", "credit line")  # fmt: skip
    with _client(dataset=root) as c:
        hits = c.post("/api/dataset/search", json={"text": "DOC 7", "n": 50}).json()
    # "doc 7" is in no window's text (titles are "doc i", texts are words and "i."): only titles match
    assert hits and all(h["title"] == "doc 7" for h in hits)
