from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mechscope.data.store import Dataset
from mechscope.models.decoder import HookedDecoder
from tests.explain._helpers import collated, digit_model


@pytest.fixture(scope="module")
def digit() -> HookedDecoder:
    return digit_model()


@pytest.fixture(scope="module")
def digit_root(tmp_path_factory: pytest.TempPathFactory, digit: HookedDecoder) -> Path:
    return collated(tmp_path_factory.mktemp("explain"), digit)


@pytest.fixture
def digit_ds(digit_root: Path) -> Iterator[Dataset]:
    with Dataset(digit_root) as ds:
        yield ds
