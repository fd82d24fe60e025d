"""The server's start-up pass (Settings.warm_up): one short debugger pass on the model thread
before the first request, which then finds the packed weights built; it never takes the server
down."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import pytest

from mechscope.models import few_rows, packed_weights
from mechscope.server import app as app_module
from mechscope.server.settings import Settings
from mechscope.server.warm_up import warm_up
from tests.conftest import tiny_model
from tests.server.conftest import make_client

DEBUG = {"prompt": "the cat sat on the mat", "targets": ["a"], "distractors": ["b"]}


def _debug(warm: bool, monkeypatch: pytest.MonkeyPatch) -> tuple[dict[str, Any], list[str]]:
    threads: list[str] = []

    def recorded(model: Any) -> None:
        threads.append(threading.current_thread().name)
        warm_up(model)

    monkeypatch.setattr(app_module, "warm_up", recorded)
    with make_client(Settings(warm_up=warm)) as client:
        state = client.app.state.mechscope  # type: ignore[attr-defined]
        if warm:
            deadline = time.monotonic() + 60
            while not state.warm_up.done() and time.monotonic() < deadline:
                time.sleep(0.01)
            assert state.warm_up.done() and state.warm_up.exception() is None
        else:
            assert state.warm_up is None
        r = client.post("/api/debug", json=DEBUG)
        assert r.status_code == 200, r.text
        return r.json(), threads


def test_the_pass_runs_on_the_model_thread_and_changes_no_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    warm, threads = _debug(True, monkeypatch)
    assert len(threads) == 1 and threads[0].startswith("mechscope-model")
    cold, threads = _debug(False, monkeypatch)
    assert threads == []
    warm.pop("elapsed_ms"), cold.pop("elapsed_ms")
    assert warm == cold


def test_the_pass_builds_the_packed_weights_of_short_prompts(monkeypatch: pytest.MonkeyPatch) -> None:
    if not packed_weights._available() or packed_weights.budget_bytes() == 0:
        pytest.skip("MKL's packed GEMM is not usable in this torch, or packing is turned off")
    monkeypatch.setattr(few_rows, "mkl_single_core_products", lambda: False)  # an Intel CPU: no split
    model = tiny_model("llama")
    packed_weights.clear()
    warm_up(model)
    assert packed_weights.packed_nbytes() > 0


def test_a_failing_pass_is_logged_not_raised(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*_: Any, **__: Any) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr("mechscope.server.warm_up.attribute", broken)
    with caplog.at_level(logging.WARNING, logger="mechscope.server.warm_up"):
        warm_up(tiny_model("llama"))
    assert "warm-up pass failed" in caplog.text
