"""Training checkpoints: one file written atomically (temporary file, fsync, rename, fsync of the
folder), so a run killed at any instant finds either the previous checkpoint or the new one."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from mechscope.durable import fsync_path
from mechscope.errors import InputError, ModelLoadError

NAME = "checkpoint.pt"


def save_checkpoint(out: Path, config: dict[str, Any], next_chunk: int, states: dict[str, Any]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / (NAME + ".tmp")
    payload = {"config": json.dumps(config, sort_keys=True), "next_chunk": next_chunk, "states": states}
    with open(tmp, "wb") as f:
        torch.save(payload, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, out / NAME)
    fsync_path(out)


def load_checkpoint(out: Path, config: dict[str, Any]) -> tuple[int, dict[str, Any]] | None:
    """``(next chunk, per-hook states)`` from ``out``, or None when there is no checkpoint; an
    InputError when the checkpoint was written with another configuration."""
    path = out / NAME
    if not path.is_file():
        return None
    try:
        payload = torch.load(path, weights_only=True)  # plain tensors and containers, no pickle code
    except Exception as e:  # a truncated or foreign file
        raise ModelLoadError(f"{path}: not a readable checkpoint ({e})") from None
    if payload.get("config") != json.dumps(config, sort_keys=True):
        raise InputError(
            f"{path} was written by a run with another configuration; use another --out or delete it"
        )
    return int(payload["next_chunk"]), payload["states"]
