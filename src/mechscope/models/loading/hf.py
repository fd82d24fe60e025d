"""Hugging Face checkpoint folders: ``config.json``, safetensors (sharded or not) or, only through
``torch.load(weights_only=True)``, ``pytorch_model.bin``; tokenizer from ``tokenizer.json``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from mechscope.errors import ModelLoadError
from mechscope.models.tokenizer import Tokenizer


def read_json_object(path: Path) -> dict[str, Any]:
    """A JSON file that must hold an object (a config), or a ModelLoadError saying what it holds."""
    if not path.is_file():
        raise ModelLoadError(f"{path}: no such file")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ModelLoadError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(data, dict):
        raise ModelLoadError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def read_hf_config(folder: Path) -> dict[str, Any]:
    if not (folder / "config.json").is_file():
        raise ModelLoadError(f"{folder}: no config.json; a Hugging Face checkpoint folder needs one")
    return read_json_object(folder / "config.json")


def read_hf_weights(folder: Path) -> dict[str, torch.Tensor]:
    """All tensors of the checkpoint, by their HF names."""
    index = folder / "model.safetensors.index.json"
    single = folder / "model.safetensors"
    if index.is_file():
        try:
            shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        except (json.JSONDecodeError, KeyError) as e:
            raise ModelLoadError(f"{index}: not a safetensors index (needs a weight_map): {e}") from e
        out: dict[str, torch.Tensor] = {}
        for shard in shards:
            out.update(_read_safetensors(_inside(folder, shard)))
        return out
    if single.is_file():
        return _read_safetensors(single)
    bins = sorted(folder.glob("pytorch_model*.bin"))
    if bins:
        out = {}
        for b in bins:
            try:
                # weights_only: a checkpoint is data, never code to run.
                out.update(torch.load(b, map_location="cpu", weights_only=True))
            except Exception as e:
                raise ModelLoadError(f"{b}: cannot be read as a weights-only PyTorch file ({e})") from e
        return out
    raise ModelLoadError(
        f"{folder}: no model.safetensors, model.safetensors.index.json or pytorch_model*.bin"
    )


def _inside(folder: Path, name: str) -> Path:
    path = (folder / name).resolve()
    if folder.resolve() not in path.parents:
        raise ModelLoadError(f"{folder}: shard name {name!r} points outside the checkpoint folder")
    if not path.is_file():
        raise ModelLoadError(f"{folder}: shard {name} named in the index is missing")
    return path


def _read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(path)
    except (SafetensorError, OSError, ValueError) as e:
        raise ModelLoadError(f"{path}: corrupted or truncated safetensors file ({e})") from e


def read_hf_tokenizer(folder: Path, hf_config: dict[str, Any]) -> Tokenizer | None:
    """The tokenizer of the folder, or None when it has no tokenizer.json."""
    from tokenizers import Tokenizer as HFTokenizer

    path = folder / "tokenizer.json"
    if not path.is_file():
        return None
    try:
        backend = HFTokenizer.from_file(str(path))
    except Exception as e:
        raise ModelLoadError(f"{path}: cannot be read by the tokenizers library ({e})") from e
    tcfg: dict[str, Any] = {}
    tcfg_path = folder / "tokenizer_config.json"
    if tcfg_path.is_file():
        tcfg = json.loads(tcfg_path.read_text(encoding="utf-8"))

    def token_id(key: str) -> int | None:
        tok = tcfg.get(key)
        if isinstance(tok, dict):
            tok = tok.get("content")
        tid = backend.token_to_id(tok) if isinstance(tok, str) else None
        return tid if tid is not None else hf_config.get(key + "_id")

    eos = hf_config.get("eos_token_id")
    eos_ids = tuple(eos) if isinstance(eos, list) else (eos,) if isinstance(eos, int) else ()
    if not eos_ids and token_id("eos_token") is not None:
        eos_ids = (int(token_id("eos_token")),)  # type: ignore[arg-type]
    # BOS is added when tokenizer_config says so; the backend's own post-processor is bypassed
    # (encode(add_special_tokens=False)) so that there is one place deciding it.
    add_bos = bool(tcfg.get("add_bos_token", False))
    return Tokenizer(
        backend=backend,
        bos_id=token_id("bos_token"),
        eos_ids=eos_ids,
        pad_id=token_id("pad_token"),
        add_bos=add_bos,
        chat_template=tcfg.get("chat_template"),
    )
