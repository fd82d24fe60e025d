"""The tables of a collated dataset (documented in docs/datasets.md), built from a finished state.

Arrow tables here, SQL in :mod:`mechscope.data.store`. Per-token activations are stored as
``acts``: little-endian IEEE float16, one value per window position (position 0 is the start
token), ``window`` values in all; :func:`decode_acts` reads them.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import torch

from mechscope.data import stats

if TYPE_CHECKING:
    from mechscope.data.collate import CollationState, KindState
    from mechscope.data.corpora import Windows
    from mechscope.models.decoder import HookedDecoder
    from mechscope.models.tokenizer import Tokenizer

QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999)
"""Quantiles of a unit's window peaks at which samples are taken (one window per bin hit)."""

SCHEMA_VERSION = 1


def decode_acts(blob: bytes) -> list[float]:
    return np.frombuffer(blob, dtype="<f2").astype(np.float32).tolist()


def _blobs(acts: np.ndarray) -> pa.Array:
    """(rows, window) float16 -> fixed-size binary column."""
    flat = np.ascontiguousarray(acts.astype("<f2"))
    width = flat.shape[1] * 2
    return pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(width), flat.shape[0], [None, pa.py_buffer(flat.tobytes())]
    )


def _unit_index(ks: KindState, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    layer = np.broadcast_to(np.arange(ks.layers)[:, None, None], shape)
    unit = np.broadcast_to(np.arange(ks.units)[None, :, None], shape)
    return layer, unit


def _examples(ks: KindState, windows: Windows) -> pa.Table:
    a = ks.a
    order = a["top_key"].argsort(dim=-1, descending=True)  # (layer, unit, k): rank order
    keys = a["top_key"].gather(-1, order)
    values, win = stats.decode_top(keys)
    pos = a["top_pos"].gather(-1, order).long()
    key_pos = a["top_key_pos"].gather(-1, order)
    acts = a["top_acts"].gather(2, order[..., None].expand(a["top_acts"].shape))
    layer, unit = _unit_index(ks, tuple(keys.shape))
    rank = np.broadcast_to(np.arange(keys.shape[-1]), keys.shape)
    ok = (win >= 0).numpy()
    token = windows.tokens[win.clamp(min=0), pos]
    return pa.table(
        {
            "kind": pa.array([ks.kind] * int(ok.sum()), pa.string()).dictionary_encode(),
            "layer": pa.array(layer[ok], pa.int16()),
            "unit": pa.array(unit[ok], pa.int32()),
            "rank": pa.array(rank[ok], pa.int16()),
            "window_id": pa.array(win.numpy()[ok], pa.int32()),
            "activation": pa.array(values.numpy()[ok], pa.float32()),
            "position": pa.array(pos.numpy()[ok], pa.int16()),
            "token_id": pa.array(token.numpy()[ok], pa.int32()),
            "key_position": pa.array(
                key_pos.numpy()[ok], pa.int16(), mask=np.full(int(ok.sum()), not ks.pairs)
            ),
            "acts": _blobs(acts.numpy()[ok]),
        }
    )


def _random_samples(ks: KindState, windows: Windows) -> dict[str, Any]:
    a = ks.a
    order = a["rand_key"].argsort(dim=-1)
    win = stats.sample_windows(a["rand_key"].gather(-1, order))
    ok = (win >= 0).numpy()
    layer, unit = _unit_index(ks, tuple(win.shape))
    pos = a["rand_pos"].gather(-1, order).long()
    acts = a["rand_acts"].gather(2, order[..., None].expand(a["rand_acts"].shape))
    n = int(ok.sum())
    return {
        "layer": layer[ok], "unit": unit[ok], "sample": ["random"] * n,
        "rank": np.broadcast_to(np.arange(win.shape[-1]), win.shape)[ok],
        "window_id": win.numpy()[ok], "activation": a["rand_val"].gather(-1, order).numpy()[ok],
        "position": pos.numpy()[ok], "token_id": windows.tokens[win.clamp(min=0), pos].numpy()[ok],
        "quantile_lo": np.full(n, np.nan), "quantile_hi": np.full(n, np.nan),
        "acts": acts.numpy()[ok],
    }  # fmt: skip


def _quantile_samples(ks: KindState, windows: Windows) -> dict[str, Any]:
    """For each quantile of a unit's window peaks, the random window kept for the bin holding it."""
    a = ks.a
    counts = a["bin_count"].transpose(1, 2).double()  # (layer, unit, bin)
    cdf = counts.cumsum(-1)
    total = cdf[..., -1:]
    targets = torch.tensor(QUANTILES, dtype=torch.float64) * total  # (layer, unit, q)
    hit = torch.searchsorted(cdf.contiguous(), targets.contiguous(), right=True).clamp(max=stats.N_BINS - 1)
    layer, unit = _unit_index(ks, tuple(hit.shape))
    triples = np.unique(np.stack([layer.ravel(), unit.ravel(), hit.numpy().ravel()], 1), axis=0)
    triples = triples[(total.numpy()[triples[:, 0], triples[:, 1], 0] > 0)]
    l_, u_, b_ = (torch.from_numpy(triples[:, i].copy()) for i in range(3))
    win = stats.sample_windows(a["bin_key"][l_, b_, u_])
    pos = a["bin_pos"][l_, b_, u_].long()
    hi = cdf[l_, u_, b_] / total[l_, u_, 0]
    lo = hi - counts[l_, u_, b_] / total[l_, u_, 0]
    rank = np.zeros(len(triples), dtype=np.int64)  # order within a unit: ascending activation
    if len(triples):
        starts = np.r_[0, np.flatnonzero(np.diff(triples[:, 0] * ks.units + triples[:, 1])) + 1]
        rank = np.arange(len(triples)) - np.repeat(starts, np.diff(np.r_[starts, len(triples)]))
    return {
        "layer": triples[:, 0], "unit": triples[:, 1], "sample": ["quantile"] * len(triples), "rank": rank,
        "window_id": win.numpy(), "activation": a["bin_val"][l_, b_, u_].numpy(), "position": pos.numpy(),
        "token_id": windows.tokens[win.clamp(min=0), pos].numpy(),
        "quantile_lo": lo.numpy(), "quantile_hi": hi.numpy(), "acts": None,
    }  # fmt: skip


def _samples(ks: KindState, windows: Windows) -> pa.Table:
    r, q = _random_samples(ks, windows), _quantile_samples(ks, windows)
    n_r, n_q = len(r["window_id"]), len(q["window_id"])
    cols: dict[str, Any] = {"kind": pa.array([ks.kind] * (n_r + n_q), pa.string()).dictionary_encode()}
    types = {"layer": pa.int16(), "unit": pa.int32(), "sample": pa.string(), "rank": pa.int16(),
             "window_id": pa.int32(), "activation": pa.float32(), "position": pa.int16(), "token_id": pa.int32(),
             "quantile_lo": pa.float64(), "quantile_hi": pa.float64()}  # fmt: skip
    for name, t in types.items():
        cols[name] = pa.array(np.concatenate([np.asarray(r[name]), np.asarray(q[name])]), t)
    cols["sample"] = cols["sample"].dictionary_encode()
    width = windows.length * 2
    cols["acts"] = pa.concat_arrays([_blobs(r["acts"]), pa.nulls(n_q, pa.binary(width))])
    return pa.table(cols)


def _nodes(ks: KindState) -> pa.Table:
    moments = [m.summary() for m in ks.moments]
    col = {
        k: torch.stack([m[k] for m in moments]).numpy().ravel() for k in ("mean", "var", "skew", "kurtosis")
    }
    n = np.repeat([m.n for m in ks.moments], ks.units)
    top, _ = stats.decode_top(ks.a["top_key"].max(-1).values)
    hist = ks.a["hist"].transpose(1, 2).reshape(-1, stats.N_BINS).numpy()
    layer = np.repeat(np.arange(ks.layers), ks.units)
    with np.errstate(all="ignore"):
        density = ks.a["active"].numpy().ravel() / n
    return pa.table(
        {
            "kind": pa.array([ks.kind] * len(layer), pa.string()).dictionary_encode(),
            "layer": pa.array(layer, pa.int16()),
            "unit": pa.array(np.tile(np.arange(ks.units), ks.layers), pa.int32()),
            "count": pa.array(n.astype(np.int64), pa.int64()),
            **{k: pa.array(v, pa.float64(), from_pandas=True) for k, v in col.items()},
            "density": pa.array(density, pa.float64()),
            "max_activation": pa.array(top.numpy().ravel(), pa.float32()),
            "hist": pa.FixedSizeListArray.from_arrays(pa.array(hist.ravel(), pa.int64()), stats.N_BINS),
        }
    )


def build_tables(
    state: CollationState, windows: Windows, model: HookedDecoder, meta: dict[str, Any]
) -> dict[str, pa.Table]:
    """Every table of the dataset, from a finished collation."""
    assert model.tokenizer is not None
    for ks in state.kinds.values():
        ks.fold()
    edges = stats.bin_edges()
    tables = {
        "nodes": pa.concat_tables([_nodes(ks) for ks in state.kinds.values()]),
        "examples": pa.concat_tables([_examples(ks, windows) for ks in state.kinds.values()]),
        "samples": pa.concat_tables([_samples(ks, windows) for ks in state.kinds.values()]),
        **text_tables(windows, model.tokenizer),
        "bins": pa.table(
            {
                "bin": pa.array(range(len(edges)), pa.int16()),
                "lo": pa.array([e[0] for e in edges], pa.float64()),
                "hi": pa.array([e[1] for e in edges], pa.float64()),
            }
        ),
        "meta": pa.table(
            {
                "key": pa.array([*meta, "schema_version", "quantiles", "density_rule"], pa.string()),
                "value": pa.array(
                    [json.dumps(v) for v in meta.values()]
                    + [
                        json.dumps(SCHEMA_VERSION),
                        json.dumps(QUANTILES),
                        json.dumps({ks.kind: ks.density for ks in state.kinds.values()}),
                    ],
                    pa.string(),
                ),
            }
        ),
    }
    return tables


def text_tables(windows: Windows, tok: Tokenizer) -> dict[str, pa.Table]:
    """The ``windows`` (token ids, token texts and the shown text of each) and ``documents`` tables."""
    ids = windows.tokens.numpy()
    token_strs = [tok.token_strs(row) for row in ids.tolist()]
    texts = ["".join(strs[1:]) for strs in token_strs]  # what the UI shows, token by token
    docs = windows.documents
    return {
        "windows": pa.table(
            {
                "window_id": pa.array(np.arange(windows.n), pa.int32()),
                "doc": pa.array(windows.doc, pa.int32()),
                "token_offset": pa.array(windows.token_offset, pa.int32()),
                "char_offset": pa.array(windows.char_offset, pa.int32()),
                "token_ids": pa.FixedSizeListArray.from_arrays(
                    pa.array(ids.ravel(), pa.int32()), windows.length
                ),
                "tokens": pa.array(token_strs, pa.list_(pa.string())),
                "text": pa.array(texts, pa.string()),
            }
        ),
        "documents": pa.table(
            {
                "doc": pa.array([d.doc for d in docs], pa.int32()),
                "title": pa.array([d.title for d in docs], pa.string()),
                "source": pa.array([d.source for d in docs], pa.string()),
                "stream_start": pa.array([d.stream_start for d in docs], pa.int64()),
                "n_tokens": pa.array([d.n_tokens for d in docs], pa.int32()),
                "text": pa.array([d.text for d in docs], pa.string()),
            }
        ),
    }
