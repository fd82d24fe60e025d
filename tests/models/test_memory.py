"""The malloc settings that keep freed activations for reuse: applied once, opt-out respected."""

from __future__ import annotations

import os
import platform

import pytest

from mechscope.models import memory


@pytest.fixture(autouse=True)
def fresh_state(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory, "_applied", None)
    for key in [k for k in os.environ if k.startswith("MALLOC_") or k == "GLIBC_TUNABLES"]:
        monkeypatch.delenv(key)


@pytest.mark.parametrize("value", ["0", "false", "off"])
def test_environment_opts_out(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("MECHSCOPE_KEEP_FREED_MEMORY", value)
    assert memory.keep_freed_memory_by_default() is False
    assert memory.is_keeping_freed_memory() is False


def test_users_own_malloc_tuning_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "0")
    assert memory.keep_freed_memory_by_default() is False


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_applies_once_on_glibc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MECHSCOPE_KEEP_FREED_MEMORY", raising=False)
    assert memory.keep_freed_memory_by_default() is True
    assert memory.is_keeping_freed_memory() is True
    calls = []
    monkeypatch.setattr(memory, "_apply", lambda: calls.append(1) or True)
    assert memory.keep_freed_memory() is True and calls == []  # idempotent: not applied twice
