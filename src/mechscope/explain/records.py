"""Token-activation records of one node, split into what the explainer sees and what scores it.

A record is one dataset window of the node: its tokens and the node's activation at each, the
start token (position 0) left out, since it has the same value in every window (docs/datasets.md).

Records come from the collated dataset (docs/explanations.md, "Records"):

- TRAIN, shown to the explainer: the top examples at even ranks (0, 2, 4, ...), as TDB shows the
  strongest windows;
- TEST, never shown: the top examples at odd ranks, the samples by quantile and the random ones
  (delphi's "top + quantile + random"), plus ``extra_random`` more uniformly random windows whose
  activations one forward of the model recomputes (a collation keeps only 8 random windows per
  node: too few non-activating examples for detection). They are drawn per layer, so that one
  forward serves every node of the layer (:class:`LayerWindows`); a node's own windows among them
  are left out.

The split is by window id: a window never lands in both sets, even when it is a top example and
a random sample at once. Quantile samples are stored without per-token values; they are
recomputed with the model, or left out when none is given.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from mechscope.data.store import Dataset
    from mechscope.models.decoder import HookedDecoder

SCALE_MAX = 10  # activations are shown and simulated as integers 0..10 (TDB's convention)


@dataclass(frozen=True)
class Record:
    window_id: int
    tokens: list[str]  # the window's tokens, start token left out
    acts: list[float]  # the node's raw activation at each of them
    source: str  # "top", "quantile", "random" or "extra" (recomputed random window)
    key: int | None = None  # heads: the strongest key of the peak query (an index into tokens)

    @property
    def peak(self) -> int:
        return int(np.argmax(self.acts)) if self.acts else 0

    @property
    def max_act(self) -> float:
        return max(self.acts, default=0.0)


@dataclass(frozen=True)
class RecordConfig:
    """How many records of each source to draw (docs/explanations.md)."""

    train_top: int = 10
    """Top examples shown to the explainer: ranks 0, 2, 4, ... (the odd ranks go to the test set)."""
    extra_random: int = 24
    """Random windows added to the test set, their activations recomputed (needs the model)."""
    seed: int = 0
    """Seed of the extra random windows' choice (mixed with the node's address)."""


@dataclass(frozen=True)
class NodeRecords:
    kind: str
    layer: int
    unit: int
    train: list[Record]
    test: list[Record]
    pairs: bool  # head-style records: each top example has a (query, key) pair
    notes: list[str] = field(default_factory=list)  # what was left out, and why

    @property
    def scale(self) -> float:
        """The activation shown as 10: the largest over the train set (TDB's convention)."""
        return max((r.max_act for r in self.train), default=0.0)


def scaled(acts: list[float] | np.ndarray, scale: float) -> np.ndarray:
    """Integers 0..10: ``floor(10 * max(a, 0) / scale)``, capped at 10 (test windows may exceed
    the train max). Negatives are clipped: a GELU or SiLU neuron's negative values are small
    (SiLU's minimum is -0.28 x its input's scale) and mean "not firing"; an explanation is about
    what makes the node fire. Heads' |z| and ReLU latents are never negative anyway."""
    a = np.clip(np.asarray(acts, dtype=np.float64), 0.0, None)
    if scale <= 0 or not math.isfinite(scale):
        return np.zeros(a.shape, dtype=np.int64)
    return np.minimum(np.floor(SCALE_MAX * a / scale), SCALE_MAX).astype(np.int64)


def load_records(
    ds: Dataset,
    kind: str,
    layer: int,
    unit: int,
    model: HookedDecoder | None = None,
    cfg: RecordConfig | None = None,
    extra: LayerWindows | None = None,
) -> NodeRecords:
    """The node's train and test records (see the module docstring). Without ``model``, quantile
    samples (stored without per-token values) and extra random windows are left out. ``extra``:
    the layer's extra windows when the caller has them already (default: computed here)."""
    cfg = cfg or RecordConfig()
    top = sorted(ds.top_examples(kind, layer, unit, n=1_000_000), key=lambda r: int(r["rank"]))
    quantile = ds.samples(kind, layer, unit, "quantile")
    random = ds.samples(kind, layer, unit, "random")
    notes: list[str] = []
    if model is not None:
        _fill(model, kind, layer, unit, ds, quantile)
    elif quantile:
        notes.append(f"{len(quantile)} quantile samples left out: their activations need the model")
    train_rows = [r for r in top if int(r["rank"]) % 2 == 0][: cfg.train_top]
    train_ids = {int(r["window_id"]) for r in train_rows}
    test_rows = [
        *((r, "top") for r in top if int(r["window_id"]) not in train_ids),
        *((r, "quantile") for r in quantile),
        *((r, "random") for r in random),
    ]
    test: list[Record] = []
    seen = set(train_ids)
    for row, source in test_rows:
        wid = int(row["window_id"])
        if wid in seen or row.get("acts") is None:
            continue
        seen.add(wid)
        test.append(_record(row, source))
    if extra is None and model is not None and cfg.extra_random > 0:
        extra = layer_windows(ds, model, kind, layer, cfg)
    if extra is not None:
        test += _extra_random(extra, unit, seen)
    pairs = any(r.get("key_position") is not None for r in top)
    return NodeRecords(kind, layer, unit, [_record(r, "top") for r in train_rows], test, pairs, notes)


def _record(row: dict[str, Any], source: str) -> Record:
    key = row.get("key_position")
    return Record(
        window_id=int(row["window_id"]),
        tokens=[str(t) for t in row["tokens"][1:]],
        acts=[float(a) for a in row["acts"][1:]],
        source=source,
        key=int(key) - 1 if key is not None and int(key) > 0 else None,  # key 0: the start token
    )


def _fill(
    model: HookedDecoder, kind: str, layer: int, unit: int, ds: Dataset, rows: list[dict[str, Any]]
) -> None:
    """Recompute the per-token activations of ``rows`` stored without them (quantile samples)."""
    from mechscope.engine.lens import unit_activations

    todo = [r for r in rows if r.get("acts") is None]
    if not todo:
        return
    windows = ds.windows([int(r["window_id"]) for r in todo])
    acts = unit_activations(
        model, kind, layer, unit, [windows[int(r["window_id"])]["token_ids"] for r in todo]
    )
    for r, a in zip(todo, acts, strict=True):
        r["acts"] = [float(v) for v in a]


@dataclass(frozen=True)
class LayerWindows:
    """The extra random windows of one kind's layer, with every unit's activations on them: one
    forward serves every node of the layer (a job keeps the last few, :func:`layer_windows`)."""

    ids: list[int]
    tokens: list[list[str]]  # start token left out
    acts: np.ndarray  # (window, pos, unit), start token left out


def layer_windows(
    ds: Dataset, model: HookedDecoder, kind: str, layer: int, cfg: RecordConfig
) -> LayerWindows:
    """``cfg.extra_random`` windows drawn uniformly, seeded by the kind and layer."""
    from mechscope.engine.lens import layer_activations

    n_windows = int(ds.meta()["n_windows"])
    rng = np.random.default_rng([cfg.seed, zlib.crc32(kind.encode()), layer])
    ids = sorted(int(i) for i in rng.choice(n_windows, size=min(cfg.extra_random, n_windows), replace=False))
    if not ids:
        return LayerWindows([], [], np.zeros((0, 0, 0), dtype=np.float32))
    windows = ds.windows(ids)
    acts = layer_activations(model, kind, layer, [windows[i]["token_ids"] for i in ids])
    return LayerWindows(ids, [[str(t) for t in windows[i]["tokens"][1:]] for i in ids], acts[:, 1:].numpy())


def _extra_random(extra: LayerWindows, unit: int, taken: set[int]) -> list[Record]:
    """The layer's extra windows as the unit's records, but those already among its records."""
    return [
        Record(i, toks, [float(v) for v in extra.acts[w, :, unit]], "extra")
        for w, (i, toks) in enumerate(zip(extra.ids, extra.tokens, strict=True))
        if i not in taken
    ]
