"""A disk cache of converted models, so only the first load pays for dequantizing.

An entry is keyed by the sha256 of the source file's content (never its path or mtime: a
replaced file must not hit a stale entry) plus ``key_extra`` (dtype, converter version). It is
a folder written beside its final place and renamed into it, so readers see a whole entry or
none, and of two concurrent writers one wins and the other discards its copy::

    <cache_dir>/<source stem>-<key>/
        model.safetensors     the converted state dict; tied tensors stored once
        config.json           ModelConfig.to_json()
        tokenizer.json        the tokenizers backend
        tokenizer_meta.json   bos/eos/pad ids, add_bos, chat template
        manifest.json         written last: sizes and sha256 of the files above, tensor list

A damaged entry is reported with a warning and rebuilt from the source; the user loses nothing.
Measured on SmolLM2-135M (540 MB of float32): hashing the 98 MB source takes 0.1 s and
verifying the entry's checksums 0.5 s, so a cache hit stays well under the 3 s budget.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from tokenizers import Tokenizer as HFTokenizer

from mechscope.durable import fsync_path
from mechscope.errors import ModelLoadError
from mechscope.models.config import ModelConfig
from mechscope.models.loading.assets import mechscope_home
from mechscope.models.tokenizer import Tokenizer

logger = logging.getLogger(__name__)

CACHE_VERSION = 1
"""Bump when the entry layout changes; older entries are then simply not found."""

_WEIGHTS, _CONFIG, _TOKENIZER, _TOKENIZER_META, _MANIFEST = (
    "model.safetensors",
    "config.json",
    "tokenizer.json",
    "tokenizer_meta.json",
    "manifest.json",
)
_CHUNK = 4 << 20

Converted = tuple[ModelConfig, dict[str, torch.Tensor], Tokenizer]


class _BadEntry(Exception):
    """A cache entry that is incomplete, truncated or altered."""


def cached_convert(
    source: Path,
    key_extra: str,
    convert: Callable[[], Converted],
    cache_dir: Path | None = None,
) -> Converted:
    """``convert()``'s result for ``source``, from the cache when an intact entry exists.

    ``key_extra`` must change whenever the conversion would (dtype, converter version).
    ``cache_dir`` defaults to ``$MECHSCOPE_HOME/converted``.
    """
    source = Path(source)
    root = Path(cache_dir) if cache_dir is not None else mechscope_home() / "converted"
    digest = source_sha256(source)
    entry = root / _entry_name(source, digest, key_extra)
    if entry.is_dir():
        try:
            return _load(entry)
        except _BadEntry as e:
            logger.warning("cache entry %s is damaged (%s); rebuilding it from %s", entry, e, source)
            _discard(entry)
    result = convert()
    try:
        _store(entry, digest, key_extra, result)
    except OSError as e:  # a full or read-only disk costs speed next time, not this load
        logger.warning("could not write cache entry %s (%s); continuing without it", entry, e)
    return result


def source_sha256(source: Path) -> str:
    """Content hash of a file, or of every file under a folder (names included)."""
    if source.is_file():
        return _file_sha256(source)
    if not source.is_dir():
        raise ModelLoadError(f"{source}: model file or folder not found")
    h = hashlib.sha256()
    for path in sorted(p for p in source.rglob("*") if p.is_file()):
        h.update(f"{path.relative_to(source).as_posix()}\0{_file_sha256(path)}\n".encode())
    return h.hexdigest()


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    buf = bytearray(_CHUNK)
    view = memoryview(buf)
    with path.open("rb", buffering=0) as f:
        while n := f.readinto(view):
            h.update(view[:n])
    return h.hexdigest()


def _entry_name(source: Path, digest: str, key_extra: str) -> str:
    key = hashlib.sha256(f"v{CACHE_VERSION}\n{digest}\n{key_extra}".encode()).hexdigest()[:32]
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", source.stem)[:48]  # readable, and safe as a folder name
    return f"{stem}-{key}"


def _store(entry: Path, digest: str, key_extra: str, result: Converted) -> None:
    config, state, tokenizer = result
    entry.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{entry.name}.", suffix=".tmp", dir=entry.parent))
    try:
        stored, aliases = _untie(state)
        save_file(stored, str(tmp / _WEIGHTS))
        (tmp / _CONFIG).write_text(config.to_json())
        (tmp / _TOKENIZER).write_text(tokenizer.backend.to_str())
        meta = {
            "bos_id": tokenizer.bos_id,
            "eos_ids": list(tokenizer.eos_ids),
            "pad_id": tokenizer.pad_id,
            "add_bos": tokenizer.add_bos,
            "chat_template": tokenizer.chat_template,
        }
        (tmp / _TOKENIZER_META).write_text(json.dumps(meta))
        files = {}
        for name in (_WEIGHTS, _CONFIG, _TOKENIZER, _TOKENIZER_META):
            fsync_path(tmp / name)
            files[name] = {"size": (tmp / name).stat().st_size, "sha256": _file_sha256(tmp / name)}
        manifest = {
            "version": CACHE_VERSION,
            "source_sha256": digest,
            "key_extra": key_extra,
            "files": files,
            "order": list(state),
            "tensors": {n: {"dtype": str(t.dtype), "shape": list(t.shape)} for n, t in stored.items()},
            "aliases": aliases,
        }
        (tmp / _MANIFEST).write_text(json.dumps(manifest, indent=1))
        fsync_path(tmp / _MANIFEST)
        fsync_path(tmp)
        try:
            os.rename(tmp, entry)  # atomic; refuses to replace a non-empty folder
        except OSError:
            if not (entry / _MANIFEST).is_file():
                raise
            logger.debug("another process wrote %s first; keeping its entry", entry)
        else:
            fsync_path(entry.parent)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _untie(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, dict[str, Any]]]:
    """Tensors to save, each storage once, and the names that alias a saved tensor.

    safetensors refuses tensors that share memory. An exact duplicate view (a tied unembedding)
    or its 2-D transpose is recorded as an alias and restored as a view; any other overlap is
    saved as its own copy.
    """
    stored: dict[str, torch.Tensor] = {}
    aliases: dict[str, dict[str, Any]] = {}
    views: dict[tuple[Any, ...], str] = {}
    storages: set[int] = set()
    for name, tensor in state.items():
        tensor = tensor.detach().cpu()
        ptr = tensor.untyped_storage().data_ptr()
        key = (ptr, tensor.storage_offset(), tuple(tensor.shape), tuple(tensor.stride()), tensor.dtype)
        if key in views:
            aliases[name] = {"of": views[key], "transpose": False}
            continue
        if tensor.dim() == 2:
            flipped = (ptr, tensor.storage_offset(), tuple(tensor.shape[::-1]), tuple(tensor.stride()[::-1]))
            original = views.get((*flipped, tensor.dtype))
            if original is not None:
                aliases[name] = {"of": original, "transpose": True}
                continue
        if ptr in storages or not tensor.is_contiguous():
            tensor = tensor.contiguous().clone()  # break sharing with an already saved tensor
        views[key] = name
        storages.add(tensor.untyped_storage().data_ptr())
        stored[name] = tensor
    return stored, aliases


def _load(entry: Path) -> Converted:
    try:
        manifest = json.loads((entry / _MANIFEST).read_text())
    except (OSError, ValueError) as e:
        raise _BadEntry(f"unreadable {_MANIFEST}: {e}") from e
    if manifest.get("version") != CACHE_VERSION:
        raise _BadEntry(f"format version {manifest.get('version')}, expected {CACHE_VERSION}")
    try:
        for name, expected in manifest["files"].items():
            size = (entry / name).stat().st_size
            if size != expected["size"]:
                raise _BadEntry(f"{name} has {size} bytes, expected {expected['size']}")
            if _file_sha256(entry / name) != expected["sha256"]:
                raise _BadEntry(f"{name} does not match its checksum")
        stored = load_file(str(entry / _WEIGHTS))  # memory-mapped
        state = _retie(stored, manifest)
        config = ModelConfig.from_json((entry / _CONFIG).read_text())
        meta = json.loads((entry / _TOKENIZER_META).read_text())
        tokenizer = Tokenizer(
            backend=HFTokenizer.from_str((entry / _TOKENIZER).read_text()),
            bos_id=meta["bos_id"],
            eos_ids=tuple(meta["eos_ids"]),
            pad_id=meta["pad_id"],
            add_bos=meta["add_bos"],
            chat_template=meta["chat_template"],
        )
    except _BadEntry:
        raise
    except Exception as e:  # whatever is wrong with an entry, the cure is to rebuild it
        raise _BadEntry(f"{type(e).__name__}: {e}") from e
    return config, state, tokenizer


def _retie(stored: dict[str, torch.Tensor], manifest: dict[str, Any]) -> dict[str, torch.Tensor]:
    expected = manifest["tensors"]
    if set(stored) != set(expected):
        raise _BadEntry(f"tensor names differ from the manifest ({len(stored)} vs {len(expected)})")
    for name, info in expected.items():
        tensor = stored[name]
        if str(tensor.dtype) != info["dtype"] or list(tensor.shape) != info["shape"]:
            raise _BadEntry(f"tensor {name!r} is {tensor.dtype} {list(tensor.shape)}, expected {info}")
    state = {}
    for name in manifest["order"]:
        alias = manifest["aliases"].get(name)
        if alias is None:
            state[name] = stored[name]
        else:
            target = stored[alias["of"]]
            state[name] = target.t() if alias["transpose"] else target
    return state


def _discard(entry: Path) -> None:
    """Move a bad entry aside first (atomic), so no reader sees it half deleted."""
    trash = entry.with_name(f".{entry.name}.{os.getpid()}.trash")
    try:
        os.rename(entry, trash)
    except OSError:
        return  # another process already moved it
    shutil.rmtree(trash, ignore_errors=True)
