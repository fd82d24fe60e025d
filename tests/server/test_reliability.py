"""Issue 12: no single request takes the server down; every refusal is a 4xx JSON body naming why.

Each test names the item of the issue it covers; each failed on the code before its fix.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from mechscope.server.app import create_app
from mechscope.server.datasets import DatasetSource
from mechscope.server.routes import debugger
from mechscope.server.settings import Limits, Settings
from mechscope.server.worker import JobStopped, ModelWorker, QueueFull
from tests.conftest import tiny_model
from tests.server.conftest import make_client

DEBUG = {"prompt": "the cat sat on", "targets": [" "], "distractors": ["a"]}


def _post(c: TestClient, path: str, body: object) -> object:
    # json.dumps escapes a lone surrogate as \ud800, as a hostile client would send it.
    return c.post(path, content=json.dumps(body), headers={"content-type": "application/json"})


def _json_error(r: object, status: int | None = None) -> dict[str, object]:
    assert 400 <= r.status_code < 500, (r.status_code, r.text)  # type: ignore[attr-defined]
    if status is not None:
        assert r.status_code == status, r.text  # type: ignore[attr-defined]
    body = r.json()  # type: ignore[attr-defined]
    assert set(body) == {"error", "field"} and body["error"], body
    return dict(body)


@contextmanager
def live(app: FastAPI) -> Iterator[int]:
    """``app`` on a loopback port of a real uvicorn server (keep-alive and disconnects are real)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="critical"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(10)


# Item 1: the cost of a request is counted before it is queued.


def test_multi_token_targets_count_against_the_gradient_budget(client: TestClient) -> None:
    body = {"prompt": "the cat", "targets": [f"{'ab' * 30}{i}" for i in range(16)]}  # 16 rows x 68 tokens
    err = _json_error(client.post("/api/debug", json=body), 422)
    assert err["field"] == "targets" and "max_grad_tokens" in str(err["error"])


def test_a_patching_sweep_over_the_token_budget_is_refused_before_it_runs() -> None:
    # 31 tokens: heads_by_pos is 2 layers x (4 heads x 31) cells x 31 tokens = 7,688; resid_pre 1,922
    clean, corrupted = "the cat sat on the mat and a log", "the cat sat on the mat and a rug"
    client = make_client(Settings(limits=Limits(max_request_tokens=4000)))
    body = {
        "clean": clean,
        "corrupted": corrupted,
        "targets": ["a"],
        "site": "heads_by_pos",
        "method": "activation",
    }
    err = _json_error(client.post("/api/patch", json=body), 422)
    assert err["field"] == "site" and "max_request_tokens" in str(err["error"])
    small = {**body, "site": "resid_pre"}
    assert client.post("/api/patch", json=small).status_code == 200


# Item 2: jobs stop at their time limit and when their client goes away.


def test_a_job_past_its_time_limit_stops_at_its_next_check() -> None:
    async def scenario() -> None:
        worker = ModelWorker(queue_size=2, cache_size=0, max_job_seconds=0.2)
        checks = [0]

        def sweep() -> None:
            for _ in range(1000):
                time.sleep(0.01)
                worker.check_stop()
                checks[0] += 1

        with pytest.raises(JobStopped, match="max_job_seconds"):
            await worker.run(None, sweep)
        assert checks[0] < 100
        worker.close()

    asyncio.run(scenario())


def test_a_sweep_stops_when_its_client_disconnects(monkeypatch: pytest.MonkeyPatch) -> None:
    from mechscope.engine import patching

    evaluate = patching.evaluate
    chunks = [0]

    def slow(*a: object, **k: object) -> object:
        chunks[0] += 1
        time.sleep(0.05)
        return evaluate(*a, **k)  # type: ignore[arg-type]

    monkeypatch.setattr(patching, "evaluate", slow)
    monkeypatch.setattr(patching, "MAX_TOKENS_PER_FORWARD", 8)  # one cell a chunk: ~100 chunks
    app = create_app(tiny_model("llama"), Settings(limits=Limits(max_request_tokens=10**6)))
    body = json.dumps(
        {
            "clean": "the cat sat on a mat",
            "corrupted": "the dog sat on a mat",
            "targets": ["a"],
            "site": "heads_by_pos",
            "method": "activation",
        }
    )
    with live(app) as port:
        conn = socket.create_connection(("127.0.0.1", port))
        conn.sendall(
            f"POST /api/patch HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n{body}".encode()
        )
        time.sleep(0.5)
        conn.close()  # the client gives up
        worker = app.state.mechscope.worker
        deadline = time.monotonic() + 5
        while worker.pending and time.monotonic() < deadline:
            time.sleep(0.05)
        assert worker.pending == 0, "the sweep kept the model thread after its client left"
        stopped_at = chunks[0]
        time.sleep(0.3)
        assert chunks[0] == stopped_at and stopped_at < 60


# Item 5: a 500 does not cost the kept-alive connection.


def test_after_a_500_the_kept_alive_connection_serves_the_next_request(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def boom(*_a: object) -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(debugger, "debug_result", boom)
    with live(create_app(tiny_model("llama"))) as port:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("POST", "/api/debug", json.dumps(DEBUG), {"Content-Type": "application/json"})
        r = conn.getresponse()
        assert r.status == 500 and "secret" not in (text := r.read().decode()) and json.loads(text)["error"]
        conn.request("GET", "/api/model")  # same connection
        r = conn.getresponse()
        assert r.status == 200 and json.loads(r.read())["n_layers"] == 2
        conn.close()


# Item 6: the seven inputs that reached a 500.


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"prompt": "ab", "temperature": 1.0, "top_p": 1e-300, "max_new_tokens": 3}, "top_p"),
        ({"prompt": "ab", "temperature": 1e-300, "max_new_tokens": 3}, "temperature"),
        ({"prompt": "ab", "temperature": 1.0, "seed": 2**64, "max_new_tokens": 3}, "seed"),
    ],
)
def test_generate_sampling_extremes_are_4xx(client: TestClient, body: dict, field: str) -> None:
    assert _json_error(_post(client, "/api/generate", body), 422)["field"] == field


def test_the_smallest_allowed_sampling_settings_generate(client: TestClient) -> None:
    body = {"prompt": "ab", "temperature": 0.01, "top_p": 0.001, "seed": 2**63 - 1, "max_new_tokens": 3}
    assert client.post("/api/generate", json=body).status_code == 200


def test_a_lone_surrogate_in_a_target_is_a_4xx(client: TestClient) -> None:
    err = _json_error(_post(client, "/api/debug", {**DEBUG, "targets": ["\ud800"]}), 422)
    assert err["field"] == "targets[0]" and "surrogate" in str(err["error"])


def test_nul_and_overlong_paths_are_4xx(tmp_path: Path) -> None:
    static = tmp_path / "static"
    static.mkdir()
    (static / "index.html").write_text("<html>app</html>")
    with make_client(static_dir=static) as c:
        for path in ("/%00", "/a%00b", "/" + "a" * 5000):
            _json_error(c.get(path), 404)


# Item 7: Host check and access token.


def test_a_host_header_of_another_name_is_refused() -> None:
    app = create_app(tiny_model("llama"))
    with TestClient(app, base_url="http://rebind.attacker.example:8000") as c:
        err = _json_error(c.get("/api/model"), 400)
        assert err["field"] == "Host"
    for host in ("http://localhost:8000", "http://127.0.0.1:8000", "http://[::1]:8000", "http://10.1.2.3"):
        with TestClient(app, base_url=host) as c:
            assert c.get("/api/model").status_code == 200, host
    named = create_app(tiny_model("llama"), Settings(allowed_hosts=["box.lan"]))
    with TestClient(named, base_url="http://box.lan:8000") as c:
        assert c.get("/api/model").status_code == 200


def test_a_token_server_answers_only_with_its_token() -> None:
    app = create_app(tiny_model("llama"), Settings(host="0.0.0.0", token="s3cret-token"))
    with TestClient(app, base_url="http://localhost") as c:
        assert _json_error(c.get("/api/model"), 401)["field"] == "Authorization"
        assert c.get("/api/model", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert c.get("/api/model", headers={"Authorization": "Bearer s3cret-token"}).status_code == 200
        assert c.get("/").status_code == 200  # the page itself holds no data
        r = c.get("/?token=s3cret-token")  # the printed link: sets the cookie the web app then sends
        assert "mechscope_token=s3cret-token" in r.headers["set-cookie"]
        assert "HttpOnly" in r.headers["set-cookie"] and "SameSite=Strict" in r.headers["set-cookie"]
        assert c.get("/api/model").status_code == 200


def test_a_non_loopback_bind_warns_and_gets_a_token(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from mechscope.server.run import access_token

    monkeypatch.delenv("MECHSCOPE_TOKEN", raising=False)
    assert access_token("127.0.0.1") is None and access_token("localhost") is None
    assert capsys.readouterr().err == ""
    token = access_token("0.0.0.0")
    assert token and len(token) >= 24 and "warning" in capsys.readouterr().err
    monkeypatch.setenv("MECHSCOPE_TOKEN", "from-the-environment")
    assert access_token("192.168.1.5") == "from-the-environment"


# Item 10: NaN and Infinity.


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_non_finite_numbers_are_refused_naming_the_field(client: TestClient, value: str) -> None:
    iv = '{"target": {"kind": "mlp_neuron", "layer": 0, "index": 1}, "op": {"kind": "scale", "factor": %s}}'
    body = '{"prompt": "ab", "targets": ["a"], "interventions": [%s]}' % (iv % value)
    r = client.post("/api/debug", content=body, headers={"content-type": "application/json"})
    err = _json_error(r, 422)
    assert err["field"] == "interventions[0].op.factor" and "finite" in str(err["error"])


# Item 11: the body size limit.


def test_a_body_over_the_limit_is_413_before_it_is_read() -> None:
    settings = Settings(limits=Limits(max_body_bytes=10_000))
    with make_client(settings) as c:  # by its Content-Length
        big = c.post("/api/debug", content=b"x" * 20_000, headers={"content-type": "application/json"})
        assert "max_body_bytes" in str(_json_error(big, 413)["error"])
        assert c.post("/api/debug", json=DEBUG).status_code == 200
    with live(create_app(tiny_model("llama"), settings)) as port:  # chunked: no length to check
        conn = socket.create_connection(("127.0.0.1", port))
        conn.sendall(
            b"POST /api/debug HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        conn.settimeout(0.2)
        sent, answer = 0, b""
        chunk = b"10000\r\n" + b" " * 65536 + b"\r\n"
        while sent < 8_000_000 and not answer:  # 8 MB if all of it were read
            try:
                conn.sendall(chunk)
                sent += 65536
                answer = conn.recv(4096)
            except (TimeoutError, BlockingIOError):
                continue
            except OSError:
                break
        conn.close()
        assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
        assert sent < 2_000_000, f"{sent:,} bytes were sent before the 413 for a 10 kB limit"


# Item 12: schema conformance.


def test_405_says_which_methods_are_allowed(client: TestClient) -> None:
    for method, path, allowed in (
        ("GET", "/api/debug", "POST"),
        ("PUT", "/api/debug", "POST"),
        ("POST", "/api/model", "GET"),
    ):
        r = client.request(method, path)
        _json_error(r, 405)
        assert allowed in r.headers.get("allow", ""), (method, path, dict(r.headers))


def test_false_is_not_an_integer(client: TestClient) -> None:
    for body in (
        {**DEBUG, "k": False},
        {**DEBUG, "k": True},
        {**DEBUG, "targets": [True]},
        {**DEBUG, "k": "3"},
    ):
        _json_error(client.post("/api/debug", json=body), 422)


def test_the_schema_lists_every_error_status_and_the_servers_limits(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    responses = schema["paths"]["/api/debug"]["post"]["responses"]
    assert {"400", "413", "422", "500", "503"} <= set(responses)
    debug = schema["components"]["schemas"]["DebugRequest"]["properties"]
    assert debug["k"]["maximum"] == 20  # this server's max_k, not a default
    assert schema["components"]["schemas"]["VerifyRequest"]["properties"]["top_n"]["maximum"] == 10
    assert schema["components"]["schemas"]["GenerateRequest"]["properties"]["max_new_tokens"]["maximum"] == 16


# Item 13: offline docs and fair back-pressure.


def test_docs_load_their_scripts_from_this_server(client: TestClient) -> None:
    for page in ("/docs", "/redoc"):
        html = client.get(page).text
        assert "cdn." not in html and "https://" not in html.replace("https://fastapi", ""), page
        for src in [part.split('"')[0] for part in html.split('src="')[1:]]:
            r = client.get(src)
            assert r.status_code == 200 and len(r.content) > 100_000, src


def test_a_client_that_floods_the_queue_cannot_starve_one_that_waits() -> None:
    async def scenario() -> None:
        worker = ModelWorker(queue_size=8, cache_size=0)
        gate = threading.Event()
        flood = [
            asyncio.ensure_future(worker.run(None, lambda: gate.wait(5), client="flood")) for _ in range(6)
        ]
        await asyncio.sleep(0.05)
        with pytest.raises(QueueFull) as refused:
            await worker.run(None, lambda: None, client="flood")
        assert refused.value.retry_after >= 1
        polite = asyncio.ensure_future(worker.run(None, lambda: "served", client="polite"))
        await asyncio.sleep(0.05)
        gate.set()
        assert (await polite) == ("served", False)
        await asyncio.gather(*flood)
        worker.close()

    asyncio.run(scenario())


def test_retry_after_follows_the_measured_job_time() -> None:
    async def scenario() -> None:
        worker = ModelWorker(queue_size=1, cache_size=0)
        for _ in range(8):
            await worker.run(None, lambda: time.sleep(0.3))
        gate = threading.Event()
        job = asyncio.ensure_future(worker.run(None, lambda: gate.wait(5)))
        await asyncio.sleep(0.05)
        with pytest.raises(QueueFull) as full:
            await worker.run(None, lambda: None, client="other")
        assert full.value.retry_after == 1  # 0.3 s a job, one ahead
        gate.set()
        await job
        worker.close()

    asyncio.run(scenario())


# While the server's own background work runs, jobs run on one thread (worker.py says why).


def test_jobs_run_on_one_thread_while_background_work_runs_and_the_count_comes_back() -> None:
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(2)  # so that one thread differs from the count, on any machine
    busy = [True]

    def fail() -> None:
        raise ValueError("the job failed")

    async def scenario() -> list[int]:
        worker = ModelWorker(queue_size=2, cache_size=0, contended=lambda: busy[0])
        seen = [(await worker.run(None, torch.get_num_threads))[0]]
        with pytest.raises(ValueError):
            await worker.run(None, fail)
        busy[0] = False
        seen.append((await worker.run(None, torch.get_num_threads))[0])
        worker.close()
        return seen

    try:
        assert asyncio.run(scenario()) == [1, 2]  # the failed job gave its threads back too
    finally:
        torch.set_num_threads(before)


def test_the_apps_worker_sees_the_collation_the_explanations_and_the_maps(tmp_path: Path) -> None:
    import subprocess
    import sys
    from types import SimpleNamespace

    from mechscope.server.background_maps import MapsJob

    source = DatasetSource(tmp_path / "ds")
    app = create_app(tiny_model("llama"), datasets=source)
    worker = app.state.mechscope.worker
    assert not worker.contended()
    source.process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert worker.contended()  # the collation process runs
    finally:
        source.process.kill()
        source.process.wait()
    assert not worker.contended()  # it has ended
    job = MapsJob()  # the maps route keeps its job here, made at its first request
    app.state.mechscope_maps = SimpleNamespace(job=job)
    job.status = "computing"
    assert worker.contended()
    job.status = "done"
    assert not worker.contended()
