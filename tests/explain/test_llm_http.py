"""The OpenAI-compatible backend against a real HTTP server on loopback (tests/explain/fake_openai.py)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from mechscope.errors import InputError
from mechscope.explain.llm import LLMError, Message
from mechscope.explain.llm_cache import LLMCache, request_key
from mechscope.explain.llm_http import OpenAICompatible, parse_logprobs
from tests.explain.fake_openai import FakeOpenAI, Reply, answer, error, running

KEY_ENV = "MECHSCOPE_TEST_LLM_KEY"
HI = [Message("system", "Be brief."), Message("user", "hi")]


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    yield from running()


@pytest.fixture
def client(server: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., OpenAICompatible]]:
    monkeypatch.delenv(KEY_ENV, raising=False)
    made: list[OpenAICompatible] = []

    def make(**kw: Any) -> OpenAICompatible:
        opts: dict[str, Any] = dict(
            api_key_env=KEY_ENV, timeout=0.5, max_retries=2, backoff=0.01, max_backoff=0.05
        )
        opts.update(kw)
        llm = OpenAICompatible(server.base_url, "test-model", **opts)
        made.append(llm)
        return llm

    yield make
    for llm in made:
        llm.close()


def test_request_body_follows_the_chat_completions_format(
    server: FakeOpenAI, client: Callable[..., OpenAICompatible]
) -> None:
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}}
    out = client().complete(HI, max_tokens=7, temperature=0.5, top_logprobs=3, json_schema=schema)
    assert (out.text, out.finish_reason, out.logprobs) == ("hello", "stop", None)
    (req,) = server.requests
    assert req["path"] == "/v1/chat/completions"
    assert req["body"] == {
        "model": "test-model",
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}],
        "max_tokens": 7,
        "temperature": 0.5,
        "logprobs": True,
        "top_logprobs": 3,
        "response_format": {"type": "json_schema", "json_schema": {"name": "answer", "schema": schema}},
    }


def test_no_logprobs_or_schema_fields_unless_asked(
    server: FakeOpenAI, client: Callable[..., OpenAICompatible]
) -> None:
    client(structured_output=False).complete(HI, max_tokens=5, json_schema={"type": "object"})
    assert set(server.requests[0]["body"]) == {"model", "messages", "max_tokens", "temperature"}


def test_a_slow_answer_times_out_and_the_retry_succeeds(
    server: FakeOpenAI, client: Callable[..., OpenAICompatible]
) -> None:
    server.script = [Reply(body=answer("late"), delay=1.5), Reply(body=answer("on time"))]
    out = client(timeout=0.3).complete(HI, max_tokens=5)
    assert out.text == "on time"
    assert server.attempts == 2


def test_429_waits_for_retry_after(server: FakeOpenAI, client: Callable[..., OpenAICompatible]) -> None:
    server.script = [
        Reply(429, error("slow down", "rate_limit"), {"Retry-After": "1"}),
        Reply(body=answer("ok")),
    ]
    t0 = time.perf_counter()
    assert client().complete(HI, max_tokens=5).text == "ok"
    assert time.perf_counter() - t0 >= 1.0  # the jittered backoff alone is under 0.05 s here
    assert server.attempts == 2


def test_500_then_success(server: FakeOpenAI, client: Callable[..., OpenAICompatible]) -> None:
    server.script = [Reply(500, error("boom")), Reply(503, "<html>busy</html>"), Reply(body=answer("ok"))]
    assert client().complete(HI, max_tokens=5).text == "ok"
    assert server.attempts == 3


def test_500_forever_fails_naming_url_status_and_message(
    server: FakeOpenAI, client: Callable[..., OpenAICompatible]
) -> None:
    server.default = Reply(500, error("the GPU caught fire"))
    llm = client(max_retries=3)
    with pytest.raises(LLMError) as e:
        llm.complete(HI, max_tokens=5)
    assert server.attempts == 4
    msg = str(e.value)
    assert f"{server.base_url}/chat/completions" in msg
    assert "HTTP 500" in msg and "the GPU caught fire" in msg and "4 attempts" in msg


def test_401_is_not_retried(server: FakeOpenAI, client: Callable[..., OpenAICompatible]) -> None:
    server.default = Reply(401, error("Incorrect API key provided", "invalid_request_error"))
    with pytest.raises(LLMError, match=r"HTTP 401: Incorrect API key provided"):
        client().complete(HI, max_tokens=5)
    assert server.attempts == 1


def test_ollama_style_error_string_is_reported(
    server: FakeOpenAI, client: Callable[..., OpenAICompatible]
) -> None:
    server.default = Reply(404, {"error": "model 'x' not found"})
    with pytest.raises(LLMError, match="model 'x' not found"):
        client().complete(HI, max_tokens=5)


def test_connection_refused_is_retried_then_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.delenv(KEY_ENV, raising=False)
    llm = OpenAICompatible(
        f"http://127.0.0.1:{port}/v1", "m", api_key_env=KEY_ENV, max_retries=2, backoff=0.01
    )
    with pytest.raises(LLMError, match=rf"127\.0\.0\.1:{port}/v1/chat/completions: ConnectError.*3 attempts"):
        llm.complete(HI, max_tokens=5)
    assert llm.attempts == 3


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ("{not json", "not JSON"),
        ({"id": "x", "object": "chat.completion"}, "no choices"),
        ({"choices": []}, "no choices"),
        ({"choices": [{"index": 0, "finish_reason": "stop"}]}, "no message content"),
        (
            {
                "choices": [
                    {
                        "message": {"content": "x"},
                        "finish_reason": "stop",
                        "logprobs": {"content": [{"token": "x"}]},
                    }
                ]
            },
            "malformed logprobs",
        ),
    ],
)
def test_malformed_answers_are_errors_not_empty_text(
    server: FakeOpenAI, client: Callable[..., OpenAICompatible], body: Any, match: str
) -> None:
    server.default = Reply(200, body)
    with pytest.raises(LLMError, match=match):
        client().complete(HI, max_tokens=5, top_logprobs=2)
    assert server.attempts == 1


def test_truncated_output_keeps_finish_reason_length(
    server: FakeOpenAI, client: Callable[..., OpenAICompatible]
) -> None:
    server.default = Reply(body=answer('{"explanation": "the wor', finish="length"))
    out = client().complete(HI, max_tokens=5)
    assert (out.text, out.finish_reason) == ('{"explanation": "the wor', "length")


def test_missing_finish_reason_is_not_invented(
    server: FakeOpenAI, client: Callable[..., OpenAICompatible]
) -> None:
    server.default = Reply(body=answer("x", finish=None))
    assert client().complete(HI, max_tokens=5).finish_reason == "unknown"


def test_logprobs_present(server: FakeOpenAI, client: Callable[..., OpenAICompatible]) -> None:
    content = [
        {
            "token": "7",
            "logprob": -0.1,
            "bytes": [55],
            "top_logprobs": [{"token": "7", "logprob": -0.1}, {"token": "8", "logprob": -2.5}],
        },
        {"token": "!", "logprob": -3.0, "top_logprobs": [{"token": ".", "logprob": -0.2}]},
    ]
    server.default = Reply(body=answer("7!", logprobs=content))
    out = client().complete(HI, max_tokens=5, top_logprobs=2)
    assert out.logprobs is not None
    assert [(t.token, t.logprob) for t in out.logprobs] == [("7", -0.1), ("!", -3.0)]
    assert out.logprobs[0].top == {"7": -0.1, "8": -2.5}
    assert out.logprobs[1].top == {".": -0.2, "!": -3.0}  # the chosen token is always among them


def test_logprobs_absent_is_none(server: FakeOpenAI, client: Callable[..., OpenAICompatible]) -> None:
    server.default = Reply(body=answer("7"))  # a server that ignores logprobs
    assert client().complete(HI, max_tokens=5, top_logprobs=5).logprobs is None
    server.default = Reply(
        body={"choices": [{"message": {"content": "7"}, "finish_reason": "stop", "logprobs": None}]}
    )
    assert client().complete(HI, max_tokens=5, top_logprobs=5).logprobs is None


def test_legacy_logprobs_shape() -> None:
    legacy = {
        "tokens": ["1", "0"],
        "token_logprobs": [-0.5, -1.0],
        "top_logprobs": [{"1": -0.5, "2": -1.5}, None],
    }
    got = parse_logprobs(legacy)
    assert got is not None
    assert [(t.token, t.logprob, t.top) for t in got] == [
        ("1", -0.5, {"1": -0.5, "2": -1.5}),
        ("0", -1.0, {"0": -1.0}),
    ]


def test_key_header_only_when_the_env_var_is_set(
    server: FakeOpenAI, client: Callable[..., OpenAICompatible], monkeypatch: pytest.MonkeyPatch
) -> None:
    client().complete(HI, max_tokens=5)
    assert "authorization" not in {k.lower() for k in server.requests[0]["headers"]}
    monkeypatch.setenv(KEY_ENV, "sk-sekrit")
    llm = client()
    llm.complete(HI, max_tokens=5)
    headers = {k.lower(): v for k, v in server.requests[1]["headers"].items()}
    assert headers["authorization"] == "Bearer sk-sekrit"
    assert "sk-sekrit" not in repr(llm) and KEY_ENV in repr(llm)


def test_concurrency_never_exceeds_the_limit(
    server: FakeOpenAI, client: Callable[..., OpenAICompatible]
) -> None:
    server.default = Reply(body=answer("ok"), delay=0.2)
    llm = client(concurrency=2, timeout=0.5)
    with ThreadPoolExecutor(max_workers=8) as pool:  # more callers than slots
        results = list(pool.map(lambda i: llm.complete([Message("user", str(i))], max_tokens=5), range(8)))
    assert [r.text for r in results] == ["ok"] * 8
    assert server.max_in_flight == 2
    # The last callers waited 0.6 s for a slot, longer than the timeout: waiting is not a timeout.
    assert server.attempts == 8


def test_map_keeps_order_and_puts_errors_in_place(
    server: FakeOpenAI, client: Callable[..., OpenAICompatible]
) -> None:
    llm = client(concurrency=3, max_retries=0)

    def call(i: int) -> str:
        if i == 2:
            raise LLMError("node 2 failed")
        return llm.complete([Message("user", str(i))], max_tokens=5).text

    out = llm.map(call, range(5))
    assert [type(o).__name__ for o in out] == ["str", "str", "LLMError", "str", "str"]


def test_cache_hit_sends_no_request_and_failures_are_not_cached(
    server: FakeOpenAI, client: Callable[..., OpenAICompatible], tmp_path: Path
) -> None:
    cache = LLMCache(tmp_path / "cache.sqlite")
    server.script = [Reply(401, error("bad key")), Reply(body=answer("first"))]
    llm = client(cache=cache)
    with pytest.raises(LLMError):
        llm.complete(HI, max_tokens=5)
    assert len(cache) == 0
    assert llm.complete(HI, max_tokens=5).text == "first"  # the failure was not replayed
    server.default = Reply(body=answer("second"))
    assert llm.complete(HI, max_tokens=5).text == "first"  # a hit: no request
    assert server.attempts == 2
    assert llm.complete(HI, max_tokens=6).text == "second"  # another parameter, another key
    assert server.attempts == 3
    again = client(cache=LLMCache(tmp_path / "cache.sqlite"))  # a new process would see the same file
    assert again.complete(HI, max_tokens=5).text == "first"
    assert server.attempts == 3


def test_request_key_ignores_field_order() -> None:
    assert request_key({"a": 1, "b": [1, 2]}) == request_key({"b": [1, 2], "a": 1})
    assert request_key({"a": 1}) != request_key({"a": 2})


def test_bad_arguments_are_input_errors(client: Callable[..., OpenAICompatible]) -> None:
    with pytest.raises(InputError, match="http"):
        OpenAICompatible("localhost:8000/v1", "m")
    llm = client()
    with pytest.raises(InputError, match="max_tokens"):
        llm.complete(HI, max_tokens=0)
    with pytest.raises(InputError, match="role"):
        llm.complete([Message("robot", "x")], max_tokens=3)


def test_without_httpx_the_import_fails_with_a_typed_error_saying_how_to_install() -> None:
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'httpx' or name.startswith('httpx.'):\n"
        "            raise ImportError('blocked', name=name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "import mechscope\n"
        "from mechscope.explain.llm import BackendUnavailable\n"
        "try:\n"
        "    import mechscope.explain.llm_http\n"
        "except BackendUnavailable as e:\n"
        "    print('typed:', e)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "typed:" in out.stdout and 'pip install "mechscope[explain]"' in out.stdout
