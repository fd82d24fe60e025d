"""Hypothesis property tests (issue 12): tokenisation round-trips, intervention specs and arbitrary
Unicode prompts; whatever comes in, the answer is a 200 or a 4xx JSON body naming the field."""

from __future__ import annotations

import json
import string
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mechscope.server.settings import Limits, Settings
from tests.conftest import tiny_model
from tests.server.conftest import make_client

FAST = settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
LIMITS = Limits(max_prompt_tokens=24)
# Any code point, lone surrogates included (JSON can carry them escaped; no encoding can).
any_text = st.text(alphabet=st.characters(exclude_categories=()), max_size=40)


@pytest.fixture(scope="module")
def api() -> Iterator[TestClient]:
    with make_client(Settings(limits=LIMITS)) as c:
        yield c


def _post(c: TestClient, path: str, body: object) -> object:
    return c.post(path, content=json.dumps(body), headers={"content-type": "application/json"})


def _ok_or_named_4xx(r: object) -> None:
    status = r.status_code  # type: ignore[attr-defined]
    assert status == 200 or 400 <= status < 500, (status, r.text)  # type: ignore[attr-defined]
    if status != 200:
        body = r.json()  # type: ignore[attr-defined]
        assert set(body) == {"error", "field"} and body["error"], body


@FAST
@given(st.text(alphabet=string.printable, max_size=60))
def test_tokenisation_round_trips(text: str) -> None:
    # (The test tokenizer has no decoder, so decode() spaces its pieces; token strings are exact.)
    tok = tiny_model("llama").tokenizer
    assert tok is not None
    ids = tok.encode(text, add_bos=False)
    assert "".join(tok.token_strs(ids)) == text  # the pieces the editors show add up to the text
    assert tok.encode(text, add_bos=True) == [tok.bos_id, *ids]


@FAST
@given(any_text)
def test_any_unicode_prompt_is_answered_or_refused_by_name(api: TestClient, text: str) -> None:
    r = _post(api, "/api/tokenize", {"text": text})
    _ok_or_named_4xx(r)
    if r.status_code == 200:  # type: ignore[attr-defined]
        assert len(r.json()["tokens"]) == len(text) + 1  # type: ignore[attr-defined]  # chars + BOS
    r = _post(api, "/api/debug", {"prompt": text, "targets": ["a"]})
    _ok_or_named_4xx(r)
    _ok_or_named_4xx(_post(api, "/api/debug", {"prompt": "ab", "targets": [text or "a"]}))
    _ok_or_named_4xx(r)
    if r.status_code == 422:  # type: ignore[attr-defined]
        assert r.json()["field"] in {"prompt", None}, r.json()  # type: ignore[attr-defined]


ints = st.one_of(st.integers(-3, 70), st.booleans(), st.just(2**70))
numbers = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-5, 5))
targets = st.one_of(
    st.fixed_dictionaries(
        {"kind": st.just("mlp_neuron"), "layer": ints, "index": st.one_of(ints, st.lists(ints, max_size=3))}
    ),
    st.fixed_dictionaries(
        {"kind": st.just("attn_head"), "layer": ints, "head": ints},
        optional={"key": ints, "positions": st.lists(ints, max_size=3)},
    ),
    st.fixed_dictionaries(
        {"kind": st.sampled_from(["residual", "attn_out", "mlp_out", "embedding", "neuron"]), "layer": ints}
    ),
)
ops = st.one_of(
    st.fixed_dictionaries({"kind": st.just("zero")}),
    st.fixed_dictionaries({"kind": st.just("scale"), "factor": numbers}),
    st.fixed_dictionaries(
        {"kind": st.sampled_from(["set", "add"]), "value": st.one_of(numbers, st.lists(numbers, max_size=40))}
    ),
    st.fixed_dictionaries({"kind": st.just("mean"), "reference": st.lists(any_text, max_size=3)}),
    st.fixed_dictionaries({"kind": st.just("resample"), "prompt": any_text}),
)


@FAST
@given(st.lists(st.fixed_dictionaries({"target": targets, "op": ops}), min_size=1, max_size=3))
def test_any_intervention_spec_is_applied_or_refused_by_name(api: TestClient, ivs: list[dict]) -> None:
    r = _post(api, "/api/debug", {"prompt": "the cat sat", "targets": ["a"], "interventions": ivs, "k": 3})
    _ok_or_named_4xx(r)
    if r.status_code == 422:  # type: ignore[attr-defined]
        assert str(r.json()["field"]).startswith("interventions"), r.json()  # type: ignore[attr-defined]
