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


def _client(root: Path | None):  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    return TestClient(
        create_app(tiny_model("llama"), datasets=DatasetSource(root)),
        raise_server_exceptions=False,
        base_url="http://localhost",
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


def _direct_pairs(model, ids: list[int], layer: int, head: int):  # type: ignore[no-untyped-def]
    """The head's pattern and pair writes straight from the hooks and W_O (not through the Gram)."""
    import torch

    cfg = model.cfg
    b = f"blocks.{layer}.attn"
    with torch.no_grad():
        _, cache = model.run_with_cache(torch.tensor([ids]), names=[f"{b}.pattern", f"{b}.v"])
        p = cache[f"{b}.pattern"][0, head].float()  # (pos, kv_pos)
        v = cache[f"{b}.v"][0, :, head // (cfg.n_heads // cfg.n_kv_heads)].float()  # (kv_pos, d_head)
        w_o = (
            model.block(layer).attn.o_proj.weight.float().view(cfg.d_model, cfg.n_heads, cfg.d_head)[:, head]
        )
        return p, p * (v @ w_o.T).norm(dim=-1)[None, :]


def test_head_pattern_on_a_window_matches_the_hooks(collated: Path) -> None:
    from mechscope.data.store import Dataset
    from mechscope.engine.lens import node_tokens
    from mechscope.engine.nodes import Node

    with _client(collated) as c, Dataset(collated) as ds:
        model = c.app.state.mechscope.model  # type: ignore[attr-defined]
        top = ds.top_examples("attn_head", 1, 3, 1)[0]
        ids = ds.windows([top["window_id"]])[top["window_id"]]["token_ids"]
        r = c.post(
            "/api/dataset/pattern", json={"layer": 1, "head": 3, "window_id": top["window_id"], "k": 4}
        )
        assert r.status_code == 200, r.text
        body = r.json()
        p, write = _direct_pairs(model, ids, 1, 3)
        n = len(ids)
        assert body["tokens"] == list(top["tokens"]) and len(body["pattern"]) == n
        for q in range(n):
            assert len(body["pattern"][q]) == q + 1 and len(body["write"][q]) == q + 1
            assert sum(body["pattern"][q]) == pytest.approx(1.0, abs=1e-5)
            assert body["pattern"][q] == pytest.approx(p[q, : q + 1].tolist(), abs=1e-6)
            assert body["write"][q] == pytest.approx(write[q, : q + 1].tolist(), rel=1e-4, abs=1e-6)
        # Without a query the head's peak is marked, and its strongest key is the one collation recorded.
        assert body["query"] == top["position"] and body["key"] == top["key_position"]
        assert body["activation"][top["position"]] == pytest.approx(top["activation"], rel=1e-3)
        node = Node(kind="attn_head", layer=1, index=3, token=top["position"])
        expected = node_tokens(model, node, [ids], 4)
        assert [t["id"] for t in body["output"]["promoted"]] == [t.id for t in expected.promoted]
        # Another query: its row's strongest key by pair write.
        other = c.post(
            "/api/dataset/pattern", json={"layer": 1, "head": 3, "window_id": top["window_id"], "query": 5}
        )
        assert other.json()["query"] == 5 and other.json()["key"] == int(write[5, :6].argmax())


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"layer": 2, "head": 0, "window_id": 0}, "layer"),
        ({"layer": -1, "head": 0, "window_id": 0}, "layer"),
        ({"layer": 0, "head": 4, "window_id": 0}, "head"),
        ({"layer": 0, "head": 0, "window_id": 10_000}, "window_id"),
        ({"layer": 0, "head": 0, "window_id": 0, "query": 16}, "query"),
        ({"layer": 0, "head": 0, "window_id": 0, "k": 500}, "k"),
        ({"layer": 0, "head": 0, "path": "/etc/passwd"}, "window_id"),
    ],
)
def test_head_pattern_refuses_bad_input_naming_the_field(
    collated: Path, body: dict[str, object], field: str
) -> None:
    with _client(collated) as c:
        r = c.post("/api/dataset/pattern", json=body)
        assert r.status_code == 422 and r.json()["field"] == field, r.text


def test_head_pattern_refuses_windows_over_the_prompt_limit_and_needs_a_dataset(collated: Path) -> None:
    from fastapi.testclient import TestClient

    from mechscope.server.settings import Limits, Settings

    app = create_app(
        tiny_model("llama"), Settings(limits=Limits(max_prompt_tokens=8)), datasets=DatasetSource(collated)
    )
    with TestClient(app, raise_server_exceptions=False, base_url="http://localhost") as c:
        r = c.post("/api/dataset/pattern", json={"layer": 0, "head": 0, "window_id": 0})
        assert r.status_code == 422 and r.json()["field"] == "window_id" and "16 tokens" in r.json()["error"]
    with _client(None) as c:
        r = c.post("/api/dataset/pattern", json={"layer": 0, "head": 0, "window_id": 0})
        assert r.status_code == 422 and r.json()["field"] == "dataset"


def test_node_pages_read_previews_while_collating_then_the_dataset(tmp_path: Path) -> None:
    from mechscope.data.collate import begin, checkpoint, collate_range

    model = tiny_model("llama")
    windows = small_windows(model, tmp_path, window=16, n_docs=40)
    cfg = CollateConfig(window=16, top_k=5, batch=4, shard=8)
    ws = Workspace(tmp_path / "dataset")
    state = begin(model, windows, ws, cfg)
    assert state is not None
    ask = {"kind": "mlp_neuron", "layer": 1, "index": 3, "n": 5}
    with _client(ws.root) as c:
        body = c.post("/api/dataset/node", json=ask).json()
        assert body["status"]["status"] == "running" and body["top"] == []  # nothing to show yet
        collate_range(
            model,
            windows,
            cfg,
            stop=16,
            state=state,
            checkpoint=lambda s: checkpoint(s, model, windows, ws, cfg, True, "tiny", "credit line"),
        )
        st = c.get("/api/dataset").json()
        assert st["status"] == "running" and st["preview_tokens"] == 16 * 15 and st["tokens_done"] == 16 * 15
        assert (
            st["corpus"] == "tiny" and st["attribution"] == "credit line"
        )  # the credit shows with a preview
        body = c.post("/api/dataset/node", json=ask).json()
        assert body["status"]["preview_tokens"] == 16 * 15
        assert body["top"] and all(e["window_id"] < 16 for e in body["top"])
        collate(model, windows, ws, cfg, preview=True)  # the rest: the finished dataset replaces the preview
        st = c.get("/api/dataset").json()
        assert st["status"] == "done" and st["preview_tokens"] is None
        body = c.post("/api/dataset/node", json=ask).json()  # not the preview's cached answer
        assert body["status"]["status"] == "done" and any(e["window_id"] >= 16 for e in body["top"])


def test_a_lone_surrogate_token_is_a_422(collated: Path) -> None:
    """Issue 12 item 6: it reached the database and a 500."""
    with _client(collated) as c:
        r = c.post(
            "/api/dataset/token", content='{"token": "\\ud800"}', headers={"content-type": "application/json"}
        )
        assert r.status_code == 422 and r.json()["field"] == "token", r.text
