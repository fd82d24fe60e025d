"""What models this machine has: the embedded GGUF files and the converted-model cache.

Read-only: nothing is joined, converted or downloaded to answer (``mechscope models``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from mechscope.errors import ModelLoadError
from mechscope.models.loading import assets


@dataclass(frozen=True)
class ModelEntry:
    """One model on disk (or one that is missing, with how to install it)."""

    name: str
    """What to pass to ``load_model`` / ``-m``: a short name or a path."""
    kind: str
    """``embedded``, ``test model`` or ``converted cache``."""
    description: str
    size_bytes: int
    """Bytes on disk; 0 when not installed."""
    path: str
    """Where it is, or the install command when missing."""
    installed: bool


def list_models() -> list[ModelEntry]:
    return [_smollm2(), _gemma3(), *_converted()]


def _smollm2() -> ModelEntry:
    desc = "SmolLM2-135M-Instruct, GGUF Q4_1 (the default model)"
    try:
        path = assets.smollm2_gguf_path()
    except ModelLoadError:
        return ModelEntry("smollm2", "embedded", desc, 0, assets.SMOLLM2_INSTALL, False)
    return ModelEntry("smollm2", "embedded", desc, path.stat().st_size, str(path), True)


def _gemma3() -> ModelEntry:
    desc = "Gemma 3 270M, GGUF Q4_K_M (test model; Gemma terms of use apply)"
    joined = assets.mechscope_home() / "assets" / assets.GEMMA3_FILE
    if joined.is_file():
        return ModelEntry("gemma3-270m", "test model", desc, joined.stat().st_size, str(joined), True)
    try:
        parts = assets.gemma3_part_paths()
    except ModelLoadError:
        return ModelEntry("gemma3-270m", "test model", desc, 0, assets.GEMMA3_INSTALL, False)
    size = sum(p.stat().st_size for p in parts)
    return ModelEntry(
        "gemma3-270m", "test model", f"{desc}; joined on first use", size, str(parts[0].parent), True
    )


def _converted() -> list[ModelEntry]:
    """Entries of the converted-GGUF cache (``$MECHSCOPE_HOME/converted``), newest first."""
    root = assets.mechscope_home() / "converted"
    if not root.is_dir():
        return []
    out = []
    for entry in sorted(root.iterdir(), key=lambda p: p.stat().st_mtime, reverse=True):
        if not (entry / "manifest.json").is_file():
            continue  # a conversion in progress, or not ours
        try:
            config = json.loads((entry / "config.json").read_text())
            desc = f"{config.get('architecture', '?')}: {config.get('name', '')} ({config.get('note', '')})"
        except (OSError, ValueError):
            desc = "unreadable entry (it is rebuilt on next load)"
        size = sum(f.stat().st_size for f in entry.iterdir() if f.is_file())
        out.append(ModelEntry(entry.name, "converted cache", desc, size, str(entry), True))
    return out


def human_size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n} B"


ADD_A_MODEL = (
    "Add a model: pass a Hugging Face checkpoint folder (config.json + *.safetensors + tokenizer.json) "
    "or a .gguf file to any command, e.g. `mechscope info ./Qwen3-0.6B` or `mechscope info model.gguf`; "
    "a GGUF is converted once into the cache above. Supported: see docs/models.md."
)
