"""An app around a tiny random model, for HTTP tests that need no weights."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from mechscope.server.app import create_app
from mechscope.server.settings import Limits, Settings
from tests.conftest import tiny_model


def make_client(settings: Settings | None = None, static_dir: Path | None = None) -> TestClient:
    app = create_app(tiny_model("llama"), settings or Settings(), static_dir=static_dir)
    return TestClient(app, raise_server_exceptions=False, base_url="http://localhost")


@pytest.fixture
def client() -> Iterator[TestClient]:
    with make_client(
        Settings(limits=Limits(max_prompt_tokens=40, max_k=20, max_verify=10, max_new_tokens=16))
    ) as c:
        yield c
