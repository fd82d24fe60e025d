"""Small corpora and a brute-force reference for the collation tests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from mechscope.data.collate import CollationState
from mechscope.data.corpora import Windows, make_windows, open_corpus
from mechscope.data.store import DATABASE
from mechscope.models.decoder import HookedDecoder
from mechscope.models.weights import layer_weights

WORDS = [
    *[
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
        "seven",
        "wizards",
        "quietly",
        "hex",
        "jolly",
        "blue",
        "zebras",
    ]
]


def write_jsonl(path: Path, n_docs: int = 30, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    lines = []
    for i in range(n_docs):
        words = rng.choice(WORDS, size=int(rng.integers(5, 40)))
        lines.append(json.dumps({"title": f"doc {i}", "text": " ".join(words) + f" {i}."}))
    path.write_text("\n".join(lines) + "\n")
    return path


def small_windows(model: HookedDecoder, tmp_path: Path, window: int = 16, n_docs: int = 30) -> Windows:
    assert model.tokenizer is not None
    return make_windows(open_corpus(write_jsonl(tmp_path / "c.jsonl", n_docs)), model.tokenizer, window)


def brute_force(model: HookedDecoder, windows: Windows) -> dict[str, np.ndarray]:
    """Every activation of every window with run_with_cache: neuron and head activations
    (window, pos, layer, unit), each head's strongest key at each query (window, pos, layer, head),
    and the head attention to the start token (window, layer, head, pos)."""
    cfg = model.cfg
    names = [
        f"blocks.{i}.{p}"
        for i in range(cfg.n_layers)
        for p in ("mlp.post", "attn.z", "attn.pattern", "attn.v")
    ]
    _, cache = model.run_with_cache(windows.tokens, names=names)
    grams = [lw.gram for lw in layer_weights(model)]
    group = cfg.n_heads // cfg.n_kv_heads
    neurons, heads, keys, to_start = [], [], [], []
    for i in range(cfg.n_layers):
        neurons.append(cache[f"blocks.{i}.mlp.post"])
        heads.append(cache[f"blocks.{i}.attn.z"].norm(dim=-1))
        p = cache[f"blocks.{i}.attn.pattern"]  # (window, head, pos, kv_pos)
        v = cache[f"blocks.{i}.attn.v"].repeat_interleave(group, dim=2)  # (window, kv_pos, head, d_head)
        w = (
            torch.stack(
                [
                    (v[:, :, h] @ (grams[i][h] @ v[:, :, h].transpose(1, 2))).diagonal(dim1=1, dim2=2)
                    for h in range(cfg.n_heads)
                ],
                1,
            )
            .clamp(min=0)
            .sqrt()
        )  # (window, head, kv_pos)
        keys.append((p * w[:, :, None, :]).argmax(-1).transpose(1, 2))
        to_start.append(p[..., 0])
    return {
        "mlp_neuron": torch.stack(neurons, 2).numpy(),
        "attn_head": torch.stack(heads, 2).numpy(),
        "key": torch.stack(keys, 2).numpy(),
        "to_start": torch.stack(to_start, 1).numpy(),
    }


def top_k_reference(acts: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per (layer, unit): the k windows with the highest peak over positions 1.., ties by window;
    returns windows, peaks and peak positions, each (layer, unit, k)."""
    content = acts[:, 1:]  # (window, pos - 1, layer, unit)
    peak = content.max(1)  # (window, layer, unit)
    pos = content.argmax(1) + 1
    order = np.lexsort((np.arange(len(peak))[:, None, None] + 0 * peak, -peak), axis=0)[:k]
    take = np.take_along_axis
    return (
        order.transpose(1, 2, 0),
        take(peak, order, 0).transpose(1, 2, 0),
        take(pos, order, 0).transpose(1, 2, 0),
    )


def sorted_state_arrays(state: CollationState) -> dict[str, torch.Tensor]:
    """Everything a dataset is built from (``state.arrays()``), with each top-k and random slot
    buffer ordered by its keys: slots are unordered, so two equal states may fill them differently."""
    arrays = {name: torch.from_numpy(value) for name, value in state.arrays().items()}
    out = dict(arrays)
    for name, t in arrays.items():
        kind, field = name.split(".") if "." in name else ("", name)
        if field.startswith(("top_", "rand_")):
            order = arrays[f"{kind}.{field.split('_')[0]}_key"].argsort(-1)
            out[name] = t.gather(2, order[..., None].expand(t.shape) if t.dim() == 4 else order)
    return out


def dump_tables(root: Path) -> dict[str, str]:
    """Every table of a dataset's database, rows sorted, as text: equal dumps, identical databases."""
    import duckdb

    con = duckdb.connect(str(root / DATABASE), read_only=True)
    try:
        names = [
            r[0]
            for r in con.execute("SELECT table_name FROM information_schema.tables ORDER BY 1").fetchall()
        ]
        return {n: repr(con.execute(f"SELECT * FROM {n} ORDER BY ALL").fetchall()) for n in names}
    finally:
        con.close()
