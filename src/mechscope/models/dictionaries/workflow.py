"""Train, evaluate and save dictionaries in one call: what ``mechscope train-sae`` runs.

The last ``eval_windows`` windows are held out of training and used for the evaluation stored
with each dictionary (``out/<hook>/dictionary.json``); checkpoints live in ``out/`` and a rerun
of the same command resumes from them.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from mechscope.errors import InputError
from mechscope.models.decoder import HookedDecoder
from mechscope.models.dictionaries.eval import Evaluation, evaluate
from mechscope.models.dictionaries.training import Progress, TrainConfig, train
from mechscope.models.loading.dictionary_formats import save_dictionary


def progress_line(cfg: TrainConfig) -> Progress:
    """A one-line live progress report on stderr: chunk, then L0, FVU and dead % per hook, tok/s."""
    total = max(1, -(-cfg.tokens // cfg.chunk_tokens))

    def show(chunk: int, metrics: dict[str, dict[str, float]], tok_s: float) -> None:
        parts = [f"{h} L0 {m.get('l0', 0):.1f} FVU {m.get('fvu', 0):.3f} dead {100 * m.get('dead', 0):.1f}%"
                 for h, m in metrics.items()]  # fmt: skip
        sys.stderr.write(f"\rchunk {chunk + 1}/~{total}  " + "  ".join(parts) + f"  {tok_s:,.0f} tok/s ")
        sys.stderr.flush()

    return show


def hook_folder(out: Path, hook: str) -> Path:
    return out / hook.replace("/", "_")


def train_to_folder(
    model: HookedDecoder,
    windows: torch.Tensor,
    cfg: TrainConfig,
    out: Path,
    eval_windows: int = 64,
    progress: Progress | None = None,
) -> dict[str, Evaluation]:
    """Train one dictionary per hook point on all but the last ``eval_windows`` windows, evaluate
    each on those, and save it with its evaluation under ``out/<hook>/``."""
    if windows.shape[0] <= eval_windows:
        raise InputError(f"{windows.shape[0]} windows leave none to train on after {eval_windows} held out")
    held_out = windows[-eval_windows:]
    coders = train(model, windows[:-eval_windows], cfg, out=out, progress=progress)
    results = {}
    for hook, coder in coders.items():
        ev = evaluate(model, coder, held_out)
        save_dictionary(coder, hook_folder(out, hook), {**ev.to_dict(), "train": cfg.to_dict()})
        results[hook] = ev
    return results
