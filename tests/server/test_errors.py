"""Bad input gets a 4xx JSON body naming the field; a full queue a 503; a crash no stack trace."""

from __future__ import annotations

import asyncio
import threading

import pytest
from fastapi.testclient import TestClient

from mechscope.server.routes import debugger
from mechscope.server.worker import ModelWorker, QueueFull
from tests.server.conftest import make_client

DEBUG = {"prompt": "the cat sat on", "targets": [" "], "distractors": ["a"]}


@pytest.mark.parametrize(
    ("path", "body", "field", "words"),
    [
        ("/api/debug", {**DEBUG, "prompt": ""}, "prompt", "at least 1 character"),
        ("/api/debug", {**DEBUG, "prompt": "x" * 60}, "prompt", "limit is 40"),
        ("/api/debug", {**DEBUG, "prompt2": "y" * 60}, "prompt2", "limit is 40"),
        ("/api/debug", {**DEBUG, "targets": [999]}, "targets[0]", "out of range"),
        ("/api/debug", {**DEBUG, "targets": []}, "targets", "at least one target"),
        ("/api/debug", {**DEBUG, "k": 0}, "k", "greater than or equal to 1"),
        ("/api/debug", {**DEBUG, "k": 500}, "k", "limit is 20"),
        ("/api/debug", {**DEBUG, "k": "ten"}, "k", "valid integer"),
        ("/api/debug", {**DEBUG, "kinds": ["neurons"]}, "kinds.0", "mlp_neuron"),
        ("/api/debug", {**DEBUG, "position": 99}, None, "out of range"),
        ("/api/debug", {**DEBUG, "colour": "red"}, "colour", "Extra inputs"),
        (
            "/api/debug",
            {**DEBUG, "interventions": [{"target": {"kind": "neuron", "layer": 0}, "op": {"kind": "zero"}}]},
            "interventions[0].target.kind",
            "unknown node kind 'neuron'; allowed: mlp_neuron",
        ),
        (
            "/api/debug",
            {
                **DEBUG,
                "interventions": [
                    {"target": {"kind": "mlp_neuron", "layer": 7, "index": 1}, "op": {"kind": "zero"}}
                ],
            },
            "interventions[0]",
            "layer 7 out of range",
        ),
        (
            "/api/debug",
            {"prompt": "ab", "trace": {"node": {"kind": "attn_head", "layer": 0, "token": 1}}},
            "trace.node",
            "'index' is required",
        ),
        ("/api/debug", {**DEBUG, "trace": {"node": {"kind": "embedding", "token": 1}}}, "trace", "not both"),
        ("/api/verify", {**DEBUG, "top_n": 11}, "top_n", "limit is 10"),
        (
            "/api/node",
            {"prompt": "ab", "node": {"kind": "mlp_neuron", "layer": 0, "index": 1, "token": 9}},
            None,
            "token 9 out of range",
        ),
        ("/api/lens", {"prompt": "ab", "k": 21}, "k", "limit is 20"),
        ("/api/patch", {"clean": "ab", "corrupted": "abc", "targets": ["a"]}, None, "same number of tokens"),
        (
            "/api/patch",
            {"clean": "ab", "corrupted": "ac", "targets": ["a"], "site": "everywhere"},
            "site",
            "resid_pre",
        ),
        ("/api/generate", {"prompt": "ab", "max_new_tokens": 17}, "max_new_tokens", "limit is 16"),
        ("/api/generate", {"prompt": "ab", "temperature": -1}, "temperature", "greater than or equal to 0"),
        ("/api/tokenize", {"txt": "ab"}, "text", "Field required"),
    ],
)
def test_bad_input_is_a_422_naming_the_field(
    client: TestClient, path: str, body: dict, field: str | None, words: str
) -> None:
    r = client.post(path, json=body)
    assert r.status_code == 422, r.text
    got = r.json()
    assert set(got) == {"error", "field"}
    assert words in got["error"], got
    if field is not None:
        assert got["field"] is not None and got["field"].startswith(field), got


def test_malformed_json_and_unknown_routes(client: TestClient) -> None:
    r = client.post("/api/debug", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422 and "error" in r.json()
    r = client.get("/api/nothing-here")
    assert r.status_code == 404 and r.json()["error"].startswith("no API route")
    assert client.get("/api/debug").status_code == 405


def test_a_crash_is_a_500_without_a_trace_and_the_server_lives_on(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(*_a: object) -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(debugger, "debug_result", boom)
    r = client.post("/api/debug", json=DEBUG)
    assert r.status_code == 500
    assert (
        "secret" not in r.text
        and "Traceback" not in r.text
        and r.json()["error"].startswith("internal error")
    )
    assert client.get("/api/model").status_code == 200


def test_a_full_queue_answers_503_with_retry_after(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def full(*_a: object, **_k: object) -> None:
        raise QueueFull(7)

    monkeypatch.setattr(client.app.state.mechscope.worker, "run", full)  # type: ignore[attr-defined]
    r = client.post("/api/debug", json=DEBUG)
    assert r.status_code == 503 and r.headers["retry-after"] == "7" and "busy" in r.json()["error"]


def test_the_worker_bounds_its_queue_runs_one_job_at_a_time_and_shares_identical_ones() -> None:
    async def scenario() -> None:
        worker = ModelWorker(queue_size=2, cache_size=4)
        gate = threading.Event()
        running: list[int] = []
        peak = [0]

        def job(v: int) -> int:
            running.append(v)
            peak[0] = max(peak[0], len(running))
            gate.wait(5)
            running.remove(v)
            return v

        first = asyncio.ensure_future(worker.run("a", lambda: job(1)))
        same = asyncio.ensure_future(worker.run("a", lambda: job(99)))  # shares the first
        second = asyncio.ensure_future(worker.run("b", lambda: job(2)))
        await asyncio.sleep(0.1)
        with pytest.raises(QueueFull):
            await worker.run("c", lambda: job(3))
        gate.set()
        assert await first == (1, False)
        assert await same == (1, True)
        assert await second == (2, False)
        assert peak[0] == 1  # never two model jobs at once
        assert await worker.run("a", lambda: job(5)) == (1, True)  # cached
        worker.close()

    asyncio.run(scenario())


def test_cors_is_off_by_default_and_on_when_asked() -> None:
    from mechscope.server.settings import Settings

    headers = {"Origin": "http://elsewhere.example", "Access-Control-Request-Method": "POST"}
    with make_client() as c:
        assert "access-control-allow-origin" not in c.options("/api/debug", headers=headers).headers
    with make_client(Settings(cors_origins=["http://elsewhere.example"])) as c:
        r = c.options("/api/debug", headers=headers)
        assert r.headers["access-control-allow-origin"] == "http://elsewhere.example"
