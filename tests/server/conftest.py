"""An app around a tiny random model, for HTTP tests that need no weights."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from mechscope.data.collate import CollateConfig, collate
from mechscope.data.store import Workspace
from mechscope.server.app import create_app
from mechscope.server.settings import Limits, Settings
from tests.conftest import tiny_model
from tests.data._helpers import small_windows


def make_client(settings: Settings | None = None, static_dir: Path | None = None) -> TestClient:
    app = create_app(tiny_model("llama"), settings or Settings(), static_dir=static_dir)
    return TestClient(app, raise_server_exceptions=False, base_url="http://localhost")


@pytest.fixture
def client() -> Iterator[TestClient]:
    with make_client(
        Settings(limits=Limits(max_prompt_tokens=40, max_k=20, max_verify=10, max_new_tokens=16))
    ) as c:
        yield c


@pytest.fixture(scope="module")
def collated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A dataset collated from the tiny llama, one per test module (for the dataset routes)."""
    tmp = tmp_path_factory.mktemp("ds")
    model = tiny_model("llama")
    windows = small_windows(model, tmp, window=16)
    return collate(
        model,
        windows,
        Workspace(tmp / "dataset"),
        CollateConfig(window=16, top_k=5, batch=4),
        "tiny",
        "credit line",
    )
