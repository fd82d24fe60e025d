"""The converted-weights cache: hits, damaged entries, keys, atomic and concurrent writes."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import pytest
import torch
from tokenizers import Tokenizer as HFTokenizer
from tokenizers import models, pre_tokenizers

from mechscope.errors import ModelLoadError
from mechscope.models.config import ModelConfig
from mechscope.models.loading import cache
from mechscope.models.loading.cache import cached_convert
from mechscope.models.tokenizer import Tokenizer

Converted = tuple[ModelConfig, dict[str, torch.Tensor], Tokenizer]


class Converter:
    """A convert() that counts its calls and builds a tiny model with two kinds of tie."""

    def __init__(self, seed: int = 0) -> None:
        self.calls = 0
        self.seed = seed

    def __call__(self) -> Converted:
        self.calls += 1
        g = torch.Generator().manual_seed(self.seed)
        embed = torch.randn(50, 8, generator=g)
        state = {
            "embed.W_E": embed,
            "blocks.0.attn.W_Q": torch.randn(2, 8, 4, generator=g),
            "blocks.0.ln1.w": torch.randn(8, generator=g).to(torch.bfloat16),
            "unembed.W_U": embed.T,  # tied, as a transposed view
            "unembed.W_U_again": embed,  # tied, as the same view
        }
        config = ModelConfig(
            architecture="llama", d_model=8, n_layers=1, n_heads=2, d_head=4, d_mlp=16, d_vocab=50, n_ctx=32,
            eos_token_ids=(2,), note="dequantized 4-bit weights (GGUF Q4_1)",
        )  # fmt: skip
        backend = HFTokenizer(models.WordLevel({"<unk>": 0, "hello": 1, "world": 2}, unk_token="<unk>"))
        backend.pre_tokenizer = pre_tokenizers.Whitespace()
        tokenizer = Tokenizer(
            backend, bos_id=1, eos_ids=(2, 0), pad_id=0, add_bos=True, chat_template="{{ x }}"
        )
        return config, state, tokenizer


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "model.gguf"
    path.write_bytes(b"GGUF" + bytes(range(256)) * 64)
    return path


def assert_same(a: Converted, b: Converted) -> None:
    assert a[0] == b[0]
    assert list(a[1]) == list(b[1])
    for name in a[1]:
        assert a[1][name].dtype == b[1][name].dtype and torch.equal(a[1][name], b[1][name]), name
    assert a[2].encode("hello world") == b[2].encode("hello world")
    fields = ("bos_id", "eos_ids", "pad_id", "add_bos", "chat_template")
    assert [getattr(a[2], f) for f in fields] == [getattr(b[2], f) for f in fields]


def entries(root: Path) -> list[Path]:
    return sorted(root.iterdir())


def test_second_call_is_a_hit(source: Path, tmp_path: Path) -> None:
    convert = Converter()
    first = cached_convert(source, "float32-v1", convert, cache_dir=tmp_path / "c")
    second = cached_convert(source, "float32-v1", convert, cache_dir=tmp_path / "c")
    assert convert.calls == 1
    assert_same(first, second)
    state = second[1]
    assert state["unembed.W_U_again"].data_ptr() == state["embed.W_E"].data_ptr()  # stored once
    assert torch.equal(state["unembed.W_U"], state["embed.W_E"].T)
    assert state["unembed.W_U"].data_ptr() == state["embed.W_E"].data_ptr()
    [entry] = entries(tmp_path / "c")
    assert entry.name.startswith("model-")
    assert {p.name for p in entry.iterdir()} == {
        "model.safetensors", "config.json", "tokenizer.json", "tokenizer_meta.json", "manifest.json"
    }  # fmt: skip


@pytest.mark.parametrize("damage", ["truncate", "flip", "manifest", "tokenizer", "config"])
def test_damaged_entry_is_rebuilt_with_a_warning(
    source: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture, damage: str
) -> None:
    convert = Converter()
    root = tmp_path / "c"
    cached_convert(source, "k", convert, cache_dir=root)
    [entry] = entries(root)
    weights = entry / "model.safetensors"
    data = bytearray(weights.read_bytes())
    if damage == "truncate":
        weights.write_bytes(data[: len(data) // 2])
    elif damage == "flip":
        data[-100] ^= 0xFF  # inside a tensor: sizes, names and shapes all still look right
        weights.write_bytes(bytes(data))
    elif damage == "manifest":
        (entry / "manifest.json").unlink()  # what an interrupted writer without rename would leave
    elif damage == "tokenizer":
        (entry / "tokenizer.json").write_text("{")
    else:
        (entry / "config.json").write_text('{"architecture": "llama"}')
    with caplog.at_level(logging.WARNING, logger="mechscope.models.loading.cache"):
        rebuilt = cached_convert(source, "k", convert, cache_dir=root)
    assert convert.calls == 2
    assert "is damaged" in caplog.text and str(source) in caplog.text
    assert_same(rebuilt, Converter()())
    assert_same(cached_convert(source, "k", convert, cache_dir=root), rebuilt)  # repaired: a hit again
    assert convert.calls == 2
    assert len(entries(root)) == 1


def test_key_extra_and_content_make_the_key(source: Path, tmp_path: Path) -> None:
    convert = Converter()
    root = tmp_path / "c"
    cached_convert(source, "float32-v1", convert, cache_dir=root)
    cached_convert(source, "bfloat16-v1", convert, cache_dir=root)
    assert convert.calls == 2 and len(entries(root)) == 2
    source.write_bytes(source.read_bytes() + b"!")  # same path, new content: a new entry
    cached_convert(source, "float32-v1", convert, cache_dir=root)
    assert convert.calls == 3 and len(entries(root)) == 3


def test_default_root_is_under_mechscope_home(
    source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MECHSCOPE_HOME", str(tmp_path / "home"))
    cached_convert(source, "k", Converter())
    assert len(entries(tmp_path / "home" / "converted")) == 1


def test_failed_write_leaves_nothing(source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "c"

    def broken_save(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(cache, "save_file", broken_save)
    convert = Converter()
    result = cached_convert(source, "k", convert, cache_dir=root)  # the load itself still succeeds
    assert_same(result, Converter()())
    assert entries(root) == []  # no entry and no temp folder


def test_losing_a_write_race_keeps_the_winner(source: Path, tmp_path: Path) -> None:
    root = tmp_path / "c"
    cached_convert(source, "k", Converter(), cache_dir=root)
    [entry] = entries(root)
    before = (entry / "manifest.json").read_text()
    cache._store(entry, cache.source_sha256(source), "k", Converter(seed=1)())  # a late second writer
    assert entries(root) == [entry] and (entry / "manifest.json").read_text() == before


def test_concurrent_writers(source: Path, tmp_path: Path) -> None:
    root = tmp_path / "c"
    results: list[Converted] = []
    errors: list[BaseException] = []

    def load() -> None:
        try:
            results.append(cached_convert(source, "k", Converter(), cache_dir=root))
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=load) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(results) == 6
    for result in results:
        assert_same(result, Converter()())
    assert len(entries(root)) == 1  # one entry, no leftover temp folders
    assert_same(cached_convert(source, "k", Converter(), cache_dir=root), results[0])


def test_source_problems_are_model_load_errors(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match=r"missing\.gguf: model file or folder not found"):
        cached_convert(tmp_path / "missing.gguf", "k", Converter(), cache_dir=tmp_path / "c")

    def corrupt() -> Converted:
        raise ModelLoadError("bad.gguf: not a GGUF file")

    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"nope")
    with pytest.raises(ModelLoadError, match="not a GGUF"):
        cached_convert(bad, "k", corrupt, cache_dir=tmp_path / "c")
    assert not (tmp_path / "c").exists() or entries(tmp_path / "c") == []


def test_folder_source(tmp_path: Path) -> None:
    folder = tmp_path / "hf"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "model.safetensors").write_bytes(b"x" * 10)
    digest = cache.source_sha256(folder)
    (folder / "config.json").write_text('{"a": 1}')
    assert cache.source_sha256(folder) != digest


def test_loaded_tensors_do_not_write_back(source: Path, tmp_path: Path) -> None:
    convert = Converter()
    cached_convert(source, "k", convert, cache_dir=tmp_path / "c")
    _, state, _ = cached_convert(source, "k", convert, cache_dir=tmp_path / "c")
    state["blocks.0.attn.W_Q"].add_(1.0)  # a caller editing weights in place must not alter the entry
    _, again, _ = cached_convert(source, "k", convert, cache_dir=tmp_path / "c")
    assert convert.calls == 1  # still a hit: the file was not written through the memory map
    assert torch.equal(again["blocks.0.attn.W_Q"], Converter()()[1]["blocks.0.attn.W_Q"])
