"""The API over HTTP on a tiny random model: results agree with the library, and caching works."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from mechscope.engine.attribution import attribute
from mechscope.engine.directions import LogitDiff

PROMPT = "the cat sat on"  # 15 tokens with BOS (character tokenizer)
DEBUG = {"prompt": PROMPT, "targets": [" "], "distractors": ["a"], "k": 5}
ABLATE = {"target": {"kind": "attn_head", "layer": 1, "head": 2, "positions": [14]}, "op": {"kind": "zero"}}


def test_model_info_reports_sizes_and_limits(client: TestClient) -> None:
    info = client.get("/api/model").json()
    assert info["n_layers"] == 2 and info["n_heads"] == 4 and info["architecture"] == "llama"
    assert info["limits"]["max_prompt_tokens"] == 40
    kinds = {k["name"]: k for k in info["kinds"]}
    assert list(kinds) == ["mlp_neuron", "attn_head", "embedding", "attn_out", "mlp_out"]
    head = kinds["attn_head"]
    assert head["size"] == 4 and head["unit"] == "head" and head["pairs"] and head["pair_group"] == "pairs"
    assert [c["through"] for c in head["pair_through"]] == ["query", "key", "query_key"]
    assert kinds["mlp_neuron"]["weight_tokens"] and not head["weight_tokens"] and head["prompt_tokens"]
    assert kinds["embedding"]["through"] == [] and not kinds["embedding"]["layered"]


def test_tokenize_gives_ids_and_strings(client: TestClient) -> None:
    toks = client.post("/api/tokenize", json={"text": "ab", "add_bos": True}).json()["tokens"]
    assert [t["token"] for t in toks] == ["<bos>", "a", "b"]
    assert (
        client.post("/api/tokenize", json={"text": "ab", "add_bos": False}).json()["tokens"][0]["token"]
        == "a"
    )


def test_debug_matches_the_library_and_is_cached(client: TestClient) -> None:
    r = client.post("/api/debug", json=DEBUG)
    assert r.status_code == 200, r.text
    body = r.json()
    model = client.app.state.mechscope.model  # type: ignore[attr-defined]
    expected = attribute(model, PROMPT, LogitDiff(targets=[" "], distractors=["a"]))
    assert body["left"]["value"] == pytest.approx(expected.value, abs=1e-5)
    assert body["right"] is None and not body["cached"]
    assert [n["label"] for n in body["left"]["nodes"]] == [n.label for n in expected.top_nodes(5)]
    assert {c["token"] for c in body["left"]["candidates"]} >= {" ", "a"}
    again = client.post("/api/debug", json=DEBUG).json()
    assert again["cached"] and again["left"] == body["left"]


def test_an_intervention_opens_the_right_pane(client: TestClient) -> None:
    body = client.post("/api/debug", json={**DEBUG, "interventions": [ABLATE]}).json()
    assert body["right"] is not None
    assert body["value_diff"] == pytest.approx(body["right"]["value"] - body["left"]["value"])
    assert body["value_diff"] != 0
    assert body["nodes"] and body["candidates"] and body["alignment"][0] == [0, 0]


def test_a_second_prompt_is_aligned_on_the_last_token(client: TestClient) -> None:
    body = client.post("/api/debug", json={**DEBUG, "prompt2": "so the cat sat on"}).json()
    assert len(body["right"]["tokens"]) == 18 and body["alignment"][-1] == [14, 17]


def test_trace_verify_node_lens_patch(client: TestClient) -> None:
    trace = {"prompt": PROMPT, "trace": {"node": {"kind": "mlp_neuron", "layer": 1, "index": 3, "token": 14}}}
    r = client.post("/api/debug", json=trace)
    assert r.status_code == 200, r.text
    assert "L1.mlp_neuron.3@14" in r.json()["left"]["direction"]
    v = client.post("/api/verify", json={**DEBUG, "top_n": 5}).json()
    assert len(v["nodes"]) == 5 and v["pearson"] is not None
    node = {"kind": "attn_head", "layer": 0, "index": 1, "token": 6}
    d = client.post("/api/node", json={"prompt": PROMPT, "node": node, "k": 3}).json()
    assert len(d["activations"]["values"]) == 15 and len(d["activations"]["pattern"]) == 7
    assert len(d["tokens"]["promoted"]) == 3
    lens = client.post("/api/lens", json={"prompt": PROMPT, "k": 2}).json()
    assert lens["layers"] == ["L0", "L1", "final"] and len(lens["top"][0]) == 15
    p = client.post(
        "/api/patch", json={"clean": "the cat", "corrupted": "the dog", "targets": [" "], "site": "resid_pre"}
    )
    assert p.status_code == 200, p.text
    assert p.json()["method"] == "attribution" and len(p.json()["values"]) == 2


def test_generate_with_an_intervention_changes_the_text(client: TestClient) -> None:
    req = {"prompt": PROMPT, "max_new_tokens": 8}
    plain = client.post("/api/generate", json=req).json()
    steer = {
        "target": {"kind": "residual", "layer": 1, "point": "resid_pre"},
        "op": {"kind": "scale", "factor": -3.0},
    }
    steered = client.post("/api/generate", json={**req, "interventions": [steer]}).json()
    assert len(plain["tokens"]) <= 8 and plain["text"] != steered["text"]


def test_a_neurons_tokens_need_no_prompt(client: TestClient) -> None:
    from mechscope.engine.lens import node_tokens
    from mechscope.engine.nodes import Node

    r = client.post("/api/node/tokens", json={"kind": "mlp_neuron", "layer": 1, "index": 3, "k": 4})
    assert r.status_code == 200, r.text
    body = r.json()
    model = client.app.state.mechscope.model  # type: ignore[attr-defined]
    expected = node_tokens(model, Node(kind="mlp_neuron", layer=1, index=3, token=0), None, 4)
    for part in ("promoted", "suppressed", "drivers"):
        assert [t["id"] for t in body[part]] == [t.id for t in getattr(expected, part)]
        assert [t["value"] for t in body[part]] == pytest.approx([t.value for t in getattr(expected, part)])
    assert body["promoted"][0]["value"] > body["suppressed"][0]["value"]
    # The same lists as on a prompt: a neuron's write direction is in its weights.
    node = {"kind": "mlp_neuron", "layer": 1, "index": 3, "token": 2}
    on_prompt = client.post("/api/node", json={"prompt": PROMPT, "node": node, "k": 4}).json()["tokens"]
    assert on_prompt == body


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "attn_head", "layer": 0, "index": 1}, "kind"),
        ({"kind": "mlp_neuron", "layer": 2, "index": 0}, "layer"),
        ({"kind": "mlp_neuron", "layer": 0, "index": 10_000}, "index"),
        ({"kind": "mlp_neuron", "layer": 0, "index": 0, "k": 21}, "k"),
        ({"kind": "attn_out", "layer": 0, "index": 0}, "kind"),
    ],
)
def test_prompt_free_tokens_refuse_bad_input_naming_the_field(
    client: TestClient, body: dict[str, object], field: str
) -> None:
    r = client.post("/api/node/tokens", json=body)
    assert r.status_code == 422 and r.json()["field"] == field, r.text
