"""An OpenAI-compatible chat-completions endpoint as an :class:`~mechscope.explain.llm.LLM`:
OpenAI itself, vLLM, llama.cpp's ``llama-server``, Ollama (``http://localhost:11434/v1``).

One ``POST {base_url}/chat/completions`` per call, through ``httpx``, with
- the key from the environment only (``api_key_env``, default ``OPENAI_API_KEY``); without it no
  ``Authorization`` header is sent, which is what local servers expect. The key is never logged;
- retries (``tenacity``: exponential backoff with full jitter) on connect errors, timeouts, 429
  (its ``Retry-After`` honoured, up to ``max_retry_after``) and 5xx; never on another 4xx. After
  the last try an :class:`LLMError` names the URL, the status and the body's error message;
- a semaphore: however many threads call, at most ``concurrency`` requests are in flight;
- a persistent :class:`LLMCache` keyed by the URL and the whole request body (failures are not cached).

An answer that is not what the format promises (not JSON, no ``choices``, no message) is an
:class:`LLMError`, never an empty string; a truncated one keeps ``finish_reason="length"``.
Importing this module without httpx or tenacity raises :class:`BackendUnavailable` saying how to
install them (``import mechscope`` never imports it).
"""

from __future__ import annotations

import email.utils
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from mechscope.errors import InputError
from mechscope.explain.llm import (
    BackendUnavailable,
    Completion,
    LLMError,
    Message,
    TokenLogprobs,
    check_request,
)
from mechscope.explain.llm_cache import LLMCache, completion_from_json, completion_to_json, request_key

EXPLAIN_INSTALL = 'pip install "mechscope[explain]"'

try:
    import httpx
    import tenacity
except ImportError as e:  # pragma: no cover - exercised by a subprocess test
    raise BackendUnavailable(
        f"the HTTP LLM backend needs httpx and tenacity ({e.name} is not installed); install them with: "
        f"{EXPLAIN_INSTALL}"
    ) from e

log = logging.getLogger(__name__)
T = TypeVar("T")
R = TypeVar("R")


class _Retryable(Exception):
    """One failed attempt that may succeed on a later one."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class OpenAICompatible:
    """Chat completions from ``{base_url}/chat/completions`` (``base_url`` ends in ``/v1`` for most
    servers). Thread-safe: share one object between the threads of a batch job, or use :meth:`map`.

    ``timeout`` is per attempt, in seconds; ``max_retries`` counts the tries after the first;
    ``backoff`` and ``max_backoff`` bound the jittered waits between them. ``extra_body`` is merged
    into every request (e.g. ``{"seed": 0}``) and is part of the cache key. ``structured_output``
    False leaves ``response_format`` out for servers that reject it.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key_env: str = "OPENAI_API_KEY",
        timeout: float = 60.0,
        max_retries: int = 4,
        concurrency: int = 4,
        cache: LLMCache | None = None,
        backoff: float = 1.0,
        max_backoff: float = 30.0,
        max_retry_after: float = 60.0,
        structured_output: bool = True,
        extra_body: dict[str, Any] | None = None,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise InputError(f"base_url must start with http:// or https://, got {base_url!r}")
        if not model:
            raise InputError("model is empty; give the model's name as the endpoint knows it")
        if concurrency < 1 or max_retries < 0 or timeout <= 0:
            raise InputError(
                f"need concurrency >= 1, max_retries >= 0 and timeout > 0; got {concurrency}, "
                f"{max_retries} and {timeout}"
            )
        self.name = base_url.rstrip("/")
        self.model = model
        self.url = f"{self.name}/chat/completions"
        self.api_key_env = api_key_env
        self._api_key = os.environ.get(api_key_env) or None  # only ever put in a header
        self.timeout, self.max_retries, self.concurrency = timeout, max_retries, concurrency
        self.backoff, self.max_backoff, self.max_retry_after = backoff, max_backoff, max_retry_after
        self.structured_output = structured_output
        self.extra_body = dict(extra_body or {})
        self.cache = cache
        self._slots = threading.BoundedSemaphore(concurrency)
        # The semaphore, not the pool, bounds requests in flight: a caller waiting for a pool
        # connection would see its wait count against `timeout` (httpx.PoolTimeout) and retry.
        self._client = httpx.Client(
            timeout=httpx.Timeout(timeout),
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=concurrency),
        )
        self._jitter = tenacity.wait_random_exponential(multiplier=backoff, max=max_backoff)
        self.attempts = 0  # HTTP requests sent (retries included), for reports and tests

    def __repr__(self) -> str:
        key = f"key from ${self.api_key_env}" if self._api_key else "no key"
        return f"OpenAICompatible({self.name!r}, {self.model!r}, {key})"

    # ----- the LLM protocol ------------------------------------------------------------------
    def complete(
        self,
        messages: list[Message],
        *,
        max_tokens: int,
        temperature: float = 0.0,
        top_logprobs: int = 0,
        json_schema: dict[str, object] | None = None,
    ) -> Completion:
        check_request(messages, max_tokens, temperature, top_logprobs)
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "max_tokens": max_tokens,
            "temperature": temperature,
        }
        if top_logprobs > 0:
            body["logprobs"] = True
            body["top_logprobs"] = top_logprobs
        if json_schema is not None and self.structured_output:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "answer", "schema": json_schema},
            }
        body.update(self.extra_body)
        key = request_key({"url": self.url, "body": body})
        if self.cache is not None and (hit := self.cache.get(key)) is not None:
            return completion_from_json(hit)
        completion = parse_completion(self._post(body), self.url)
        if self.cache is not None:
            self.cache.put(key, completion_to_json(completion))
        return completion

    def prompt_logprobs(
        self,
        messages: list[Message],
        assistant_prefix: str,
        *,
        top_logprobs: int,
        always: Sequence[str] = (),
    ) -> list[TokenLogprobs] | None:
        """None: chat-completions endpoints do not return logprobs of prompt tokens."""
        return None

    # ----- concurrency -----------------------------------------------------------------------
    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> list[R | LLMError]:
        """``fn(item)`` for each item on ``concurrency`` threads, in input order; a call that
        raised :class:`LLMError` gives that error in its place (other exceptions propagate)."""
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            futures = [pool.submit(fn, item) for item in items]
            out: list[R | LLMError] = []
            for f in futures:
                try:
                    out.append(f.result())
                except LLMError as e:
                    out.append(e)
        return out

    def close(self) -> None:
        self._client.close()

    # ----- one request, with retries ---------------------------------------------------------
    def _post(self, body: dict[str, Any]) -> Any:
        """The decoded JSON answer to ``body``; retries what may pass on a later try."""
        tries = 0

        def attempt() -> httpx.Response:
            nonlocal tries
            tries += 1
            with self._slots:
                self.attempts += 1
                try:
                    r = self._client.post(self.url, json=body, headers=self._headers())
                except httpx.TimeoutException as e:
                    raise _Retryable(f"no answer within {self.timeout:g} s ({type(e).__name__})") from e
                except httpx.TransportError as e:
                    raise _Retryable(f"{type(e).__name__}: {e}") from e
            if r.status_code == 429 or r.status_code >= 500:
                raise _Retryable(f"HTTP {r.status_code}: {error_message(r)}", retry_after(r))
            if r.status_code >= 400:
                raise LLMError(
                    f"POST {self.url}: HTTP {r.status_code}: {error_message(r)} (a client error: not retried)"
                )
            return r

        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.max_retries + 1),
            wait=self._wait,
            retry=tenacity.retry_if_exception_type(_Retryable),
            before_sleep=lambda s: log.info("POST %s failed (%s); retrying", self.url, _outcome(s)),
            reraise=True,
        )
        try:
            response = retrying(attempt)
        except _Retryable as e:
            raise LLMError(f"POST {self.url}: {e} (gave up after {tries} attempts)") from e
        try:
            return response.json()
        except ValueError as e:
            raise LLMError(
                f"POST {self.url}: HTTP {response.status_code} but the body is not JSON: {_snippet(response.text)!r}"
            ) from e

    def _wait(self, state: tenacity.RetryCallState) -> float:
        """Seconds before the next try: the server's Retry-After when it gave one, else jittered backoff."""
        exc = state.outcome.exception() if state.outcome is not None else None
        if isinstance(exc, _Retryable) and exc.retry_after is not None:
            return min(exc.retry_after, self.max_retry_after)
        return float(self._jitter(state))

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}


# ----- reading answers -----------------------------------------------------------------------------
def parse_completion(data: Any, url: str) -> Completion:
    """A :class:`Completion` from a chat-completions answer; :class:`LLMError` when the answer
    lacks what the format promises."""
    choices = data.get("choices") if isinstance(data, dict) else None
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise LLMError(f"POST {url}: the answer has no choices: {_snippet(json.dumps(data))!r}")
    choice = choices[0]
    finish = choice.get("finish_reason")
    message = choice.get("message")
    content = message.get("content") if isinstance(message, dict) else None
    if content is None and finish == "length":
        content = ""  # cut off before any answer text (a reasoning model, say): still "length"
    if not isinstance(content, str):
        raise LLMError(f"POST {url}: choices[0] has no message content: {_snippet(json.dumps(choice))!r}")
    try:
        logprobs = parse_logprobs(choice.get("logprobs"))
    except (KeyError, TypeError, ValueError) as e:
        raise LLMError(f"POST {url}: malformed logprobs in the answer ({type(e).__name__}: {e})") from e
    if logprobs == [] and content:
        logprobs = None  # the server sent the field but no values
    # "stop" or "length" as the protocol names them; anything else (content_filter, ...) verbatim,
    # and a server that says nothing gets "unknown" rather than an invented "stop".
    return Completion(content, "unknown" if finish is None else str(finish), logprobs)


def parse_logprobs(value: Any) -> list[TokenLogprobs] | None:
    """Per-token logprobs from ``choices[0].logprobs``: the chat shape (OpenAI, vLLM, llama.cpp's
    server since ggml-org/llama.cpp#10783, Ollama: ``content[i].{token, logprob, top_logprobs}``)
    or the legacy completions shape (``tokens``, ``token_logprobs``, ``top_logprobs`` as dicts)
    that some servers (older vLLM) return on the chat route. None when there are none."""
    if not isinstance(value, dict):
        return None
    content = value.get("content")
    if isinstance(content, list):
        out = []
        for entry in content:
            token, logprob = str(entry["token"]), float(entry["logprob"])
            top: dict[str, float] = {}
            for alt in entry.get("top_logprobs") or []:
                top.setdefault(str(alt["token"]), float(alt["logprob"]))
            top.setdefault(token, logprob)
            out.append(TokenLogprobs(token, logprob, top))
        return out
    tokens, values = value.get("tokens"), value.get("token_logprobs")
    if isinstance(tokens, list) and isinstance(values, list) and len(tokens) == len(values):
        tops = value.get("top_logprobs") or [None] * len(tokens)
        out = []
        for token, logprob, alts in zip(tokens, values, tops, strict=True):
            top = {str(k): float(v) for k, v in (alts or {}).items()}
            top.setdefault(str(token), float(logprob))
            out.append(TokenLogprobs(str(token), float(logprob), top))
        return out
    return None


def error_message(r: httpx.Response) -> str:
    """The error message in an error answer (OpenAI, vLLM, llama.cpp: ``error.message``;
    Ollama: ``error`` as a string), else the start of the body."""
    try:
        data = r.json()
    except ValueError:
        return _snippet(r.text) or "(empty body)"
    err = data.get("error", data) if isinstance(data, dict) else None
    if isinstance(err, dict):
        err = err.get("message") or err.get("detail")
    return _snippet(str(err)) if err else _snippet(r.text)


def retry_after(r: httpx.Response) -> float | None:
    """The seconds a 429 or 503 asks us to wait (``Retry-After``: seconds or an HTTP date)."""
    value = r.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _outcome(state: tenacity.RetryCallState) -> str:
    exc = state.outcome.exception() if state.outcome is not None else None
    return str(exc) if exc is not None else "?"


def _snippet(text: str, n: int = 300) -> str:
    return text if len(text) <= n else text[:n] + "..."
