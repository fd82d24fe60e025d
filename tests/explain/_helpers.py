"""A tiny model with a synthetic digit neuron, and a small corpus collated for the explain tests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from mechscope.data.collate import CollateConfig, collate
from mechscope.data.corpora import make_windows, open_corpus
from mechscope.data.store import Workspace
from mechscope.models.decoder import HookedDecoder
from tests.conftest import CHARS, tiny_model

WORDS = [
    "the",
    "quick",
    "brown",
    "fox",
    "jumps",
    "over",
    "a",
    "lazy",
    "dog",
    "while",
    "wizards",
    "hex",
    "blue",
]
DIGIT_NODE = ("mlp_neuron", 0, 0)  # fires on digits, 3.0 at each, 0 elsewhere
WINDOW = 16


def write_corpus(path: Path, n_docs: int = 60, seed: int = 0) -> Path:
    """Documents of words, every other one with numbers among them: windows with and without digits."""
    rng = np.random.default_rng(seed)
    lines = []
    for i in range(n_docs):
        words = [str(w) for w in rng.choice(WORDS, size=int(rng.integers(8, 30)))]
        if i % 2:
            for _ in range(int(rng.integers(1, 4))):
                words.insert(int(rng.integers(0, len(words))), str(int(rng.integers(1, 2000))))
        lines.append(json.dumps({"title": f"doc {i}", "text": " ".join(words) + "."}))
    path.write_text("\n".join(lines) + "\n")
    return path


def digit_model() -> HookedDecoder:
    """The tiny llama with neuron 0 of layer 0 replaced by a digit detector: 3.0 on a digit token,
    0 elsewhere. The embedding hook marks digit positions (rows of the embedding are unique), the
    MLP hook writes the neuron; both stay attached, so collation and recomputation see the same."""
    model = tiny_model("llama")
    digit_rows = model.embed_tokens.weight[[CHARS.index(c) for c in "0123456789"]].clone()
    marks: dict[str, torch.Tensor] = {}

    def on_embed(x: torch.Tensor, hook: object) -> None:
        marks["digit"] = (x[..., None, :] == digit_rows.to(x.dtype)).all(-1).any(-1)  # (batch, pos)

    def on_post(x: torch.Tensor, hook: object) -> torch.Tensor:
        x = x.clone()
        x[..., 0] = marks["digit"].to(x.dtype) * 3.0
        return x

    model.add_hook("embed", on_embed)
    model.add_hook("blocks.0.mlp.post", on_post)
    return model


def collated(tmp_path: Path, model: HookedDecoder, n_docs: int = 60, top_k: int = 8) -> Path:
    assert model.tokenizer is not None
    windows = make_windows(
        open_corpus(write_corpus(tmp_path / "corpus.jsonl", n_docs)), model.tokenizer, WINDOW
    )
    root = tmp_path / "ds"
    collate(
        model,
        windows,
        Workspace(root),
        CollateConfig(window=WINDOW, top_k=top_k, random_samples=4, batch=8, shard=64),
    )
    return root
