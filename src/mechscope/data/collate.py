"""One streaming pass over a corpus: what makes every MLP neuron and attention head fire.

Activations (docs/datasets.md):

- an MLP neuron's at a token is ``blocks.{i}.mlp.post`` there;
- an attention head's at a query token is ``|z|``, the norm of its weighted values there (as in
  :mod:`mechscope.engine.metrics`); each top example of a head also records its strongest key,
  the key with the largest pair write ``p[q, k] · |W_O,h v_k|`` at the example's peak query.

Per unit (layer x neuron or layer x head) the pass keeps, in bounded memory and with vectorised
per-batch bookkeeping (no Python loop over units):

- the top-k windows by peak activation, with every token's activation (float16), merged from a
  running (units, k) buffer and each batch's per-window maxima; per-token values are gathered
  only for the windows that enter the buffer;
- a uniform random sample of windows (the ``s`` smallest hash priorities), and one random window
  per activation bin of the window peaks, from which samples by quantile are taken at the end;
- moments (Pébay merges of per-batch centred moments), a fixed-bin histogram
  (:mod:`mechscope.data.stats`) and the density: the fraction of tokens with activation > 0 for
  neurons, and for heads the fraction of query tokens that put less than half their attention on
  the start token (a head "at rest" parks its attention there; ``|z|`` itself is never 0).

Statistics cover the stream tokens only: position 0 (the start token) has the same activation in
every window and would crowd every top-k list.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import numpy as np
import torch

from mechscope.data import stats
from mechscope.data.schema import build_tables
from mechscope.data.stats import Moments
from mechscope.engine.kinds import Collation, Kind, get_kind, kinds_of
from mechscope.errors import InputError

if TYPE_CHECKING:
    from mechscope.data.corpora import Windows
    from mechscope.data.store import Workspace
    from mechscope.models.decoder import HookedDecoder

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CollateConfig:
    """Options of a collation; all but ``batch`` and ``shard`` are part of the result."""

    window: int = 64
    """Tokens per example window, the start token included."""
    top_k: int = 20
    """Top-activating windows kept per unit."""
    random_samples: int = 8
    """Uniformly random windows kept per unit."""
    batch: int = 16
    """Windows per forward pass."""
    shard: int = 256
    """Windows per durable checkpoint (rounded up to whole batches)."""
    seed: int = 0
    """Seed of the sampling priorities."""

    @property
    def shard_windows(self) -> int:
        """Windows per checkpoint: ``shard`` rounded up to whole batches."""
        return max(1, -(-self.shard // self.batch)) * self.batch

    def identity(self) -> dict[str, int]:
        """What must match for a run to resume another (batches change moment rounding)."""
        return {"window": self.window, "top_k": self.top_k, "random_samples": self.random_samples,
                "batch": self.batch, "seed": self.seed}  # fmt: skip


def merge_slots(buf: torch.Tensor, cand: torch.Tensor, largest: bool) -> tuple[torch.Tensor, ...]:
    """Keep the best ``k`` keys per row of ``buf`` (rows, k) among itself and ``cand`` (rows, n).

    Updates ``buf`` in place, slot by slot (slots are not kept sorted), and returns
    ``(row, slot, column of cand)`` for every candidate that entered, so that the caller copies
    only their payload. Keys are unique, so the result is exact whatever the batch order.
    """
    k = buf.shape[1]
    sel = torch.cat([buf, cand], 1).topk(k, dim=1, largest=largest, sorted=False).indices
    is_new = sel >= k
    if not bool(is_new.any()):
        empty = torch.empty(0, dtype=torch.long)
        return empty, empty, empty
    kept = torch.zeros(buf.shape[0], k + 1, dtype=torch.bool)
    kept.scatter_(1, torch.where(is_new, k, sel), True)
    row, slot = (~kept[:, :k]).nonzero(as_tuple=True)  # evicted slots, grouped by row
    new_row, new_col = is_new.nonzero(as_tuple=True)  # entering candidates, same rows, same counts
    col = sel[new_row, new_col] - k
    buf[row, slot] = cand[row, col]
    return row, slot, col


class KindState:
    """Everything kept for the units of one node kind: (layer, unit) arrays.

    ``density_positive``: the density counts activations > 0 (from the histogram); otherwise the
    kind's collation feeds its own counts. ``pairs``: top examples record a strongest key.
    """

    def __init__(self, kind: Kind, layers: int, units: int, cfg: CollateConfig) -> None:
        k, s, t, nb = cfg.top_k, cfg.random_samples, cfg.window, stats.N_BINS
        self.kind, self.layers, self.units, self.seed = kind.name, layers, units, cfg.seed
        assert kind.collation is not None
        self.density, self.density_positive = kind.collation.density, kind.collation.density_positive
        self.pairs = kind.pairs
        self.a: dict[str, torch.Tensor] = {
            "top_key": torch.full((layers, units, k), stats.EMPTY_TOP),
            "top_pos": torch.zeros(layers, units, k, dtype=torch.int16),
            "top_key_pos": torch.full((layers, units, k), -1, dtype=torch.int16),
            "top_acts": torch.zeros(layers, units, k, t, dtype=torch.float16),
            "rand_key": torch.full((layers, units, s), stats.EMPTY_SAMPLE),
            "rand_val": torch.zeros(layers, units, s),
            "rand_pos": torch.zeros(layers, units, s, dtype=torch.int16),
            "rand_acts": torch.zeros(layers, units, s, t, dtype=torch.float16),
            "bin_key": torch.full((layers, nb, units), stats.EMPTY_SAMPLE),
            "bin_val": torch.zeros(layers, nb, units),
            "bin_pos": torch.zeros(layers, nb, units, dtype=torch.int16),
            "bin_count": torch.zeros(layers, nb, units, dtype=torch.int64),
            "hist": torch.zeros(layers, nb, units, dtype=torch.int64),
            "active": torch.zeros(layers, units, dtype=torch.int64),
        }
        # Moments are merged shard by shard in window order: the shard being collated is "open";
        # closing it merges it into ``moments`` or, in a distributed worker, appends it to
        # ``closed`` for the driver to merge in the same order. Either way the float64 sums see
        # the same operations in the same order, so every split of the work gives identical bits.
        self.moments = [Moments.zeros(units) for _ in range(layers)]
        self.open = [Moments.zeros(units) for _ in range(layers)]
        self.closed: list[list[Moments]] | None = None
        # Token histogram by raw float code, folded into "hist" at each checkpoint: scattering into
        # 1024 codes skips a lookup per value. float32 counts are exact below 2^24 per shard.
        self.scratch = torch.zeros(layers, stats.N_CODES, units)
        self._ones = torch.ones(1, 1)
        self._unit_ids = torch.arange(layers * units).view(layers, 1, units)

    # ----- per batch ---------------------------------------------------------------------------
    def update(self, layer: int, x: torch.Tensor, w0: int, key_pos: torch.Tensor | None = None) -> None:
        """Add a batch: ``x`` (batch, pos, unit) float32 activations of windows ``w0, w0+1, ...``.

        ``key_pos`` (batch, pos, unit): a head's strongest key at each query (heads only).
        """
        a = self.a
        b, t, u = x.shape
        y = x[:, 1:].reshape(-1, u)  # (batch * (pos - 1), unit): stream tokens only, one copy
        self.open[layer].merge_(Moments.of(y))
        codes = stats.codes(y)
        self.scratch[layer].scatter_add_(0, codes, self._ones.expand(codes.shape))
        peak, peak_pos = y.view(b, t - 1, u).max(1)  # (batch, unit)
        peak_pos += 1
        windows = torch.arange(w0, w0 + b)

        row, slot, col = merge_slots(a["top_key"][layer], stats.top_keys(peak.T, windows[None]), largest=True)
        if row.numel():
            pos = peak_pos[col, row]
            a["top_pos"][layer, row, slot] = pos.to(torch.int16)
            a["top_acts"][layer, row, slot] = x[col, :, row].half()
            if key_pos is not None:
                a["top_key_pos"][layer, row, slot] = key_pos[col, pos, row].to(torch.int16)

        prio = stats.sample_keys(windows[:, None], self._unit_ids[layer], self.seed)  # (batch, unit)
        row, slot, col = merge_slots(a["rand_key"][layer], prio.T, largest=False)
        if row.numel():
            a["rand_val"][layer, row, slot] = peak[col, row]
            a["rand_pos"][layer, row, slot] = peak_pos[col, row].to(torch.int16)
            a["rand_acts"][layer, row, slot] = x[col, :, row].half()

        peak_bin = stats.bins_of(peak)  # (batch, unit)
        a["bin_count"][layer].scatter_add_(0, peak_bin, torch.ones_like(peak_bin))
        before = a["bin_key"][layer]
        after = before.scatter_reduce(0, peak_bin, prio, "amin")
        changed_bin, changed_unit = (after != before).nonzero(as_tuple=True)
        if changed_bin.numel():
            col = (after[changed_bin, changed_unit] & ((1 << stats.WINDOW_BITS) - 1)) - w0
            a["bin_val"][layer, changed_bin, changed_unit] = peak[col, changed_unit]
            a["bin_pos"][layer, changed_bin, changed_unit] = peak_pos[col, changed_unit].to(torch.int16)
            before.copy_(after)

    def fold(self) -> None:
        """Close the shard: move the scratch histogram into ``hist`` (and, for neurons, the > 0
        counts) and the open moments into ``moments`` (or ``closed``)."""
        if not self.open[0].n:
            return
        for layer in range(self.layers):
            counts = self.scratch[layer].round().long()  # (code, unit)
            self.a["hist"][layer].index_add_(0, stats.CODE_TO_BIN, counts)
            if self.density_positive:  # codes of x >= 2^-126: positive, not zero or subnormal
                self.a["active"][layer] += counts[512 + 2 :].sum(0)
        self.scratch.zero_()
        if self.closed is not None:
            self.closed.append(self.open)
        else:
            for total, shard in zip(self.moments, self.open, strict=True):
                total.merge_(shard)
        self.open = [Moments.zeros(self.units) for _ in range(self.layers)]

    def __getstate__(self) -> dict[str, Any]:
        """Pickled (a distributed worker's result) without the scratch histogram: fold first."""
        if self.open[0].n:
            raise RuntimeError("fold() a KindState before pickling it")
        return {k: v for k, v in self.__dict__.items() if k != "scratch"}

    def __setstate__(self, d: dict[str, Any]) -> None:
        self.__dict__.update(d)
        self.scratch = torch.zeros(self.layers, stats.N_CODES, self.units)

    # ----- checkpoints and merges ------------------------------------------------------------
    def arrays(self) -> dict[str, np.ndarray]:
        """The state as named arrays (call :meth:`fold` first)."""
        out = {f"{self.kind}.{k}": v.numpy() for k, v in self.a.items()}
        for name in ("mean", "m2", "m3", "m4"):
            out[f"{self.kind}.{name}"] = torch.stack([getattr(m, name) for m in self.moments]).numpy()
        out[f"{self.kind}.n"] = np.asarray([m.n for m in self.moments])
        return out

    def load(self, arrays: dict[str, np.ndarray]) -> None:
        for k in self.a:
            self.a[k] = torch.from_numpy(np.array(arrays[f"{self.kind}.{k}"]))
        n = arrays[f"{self.kind}.n"]
        parts = [torch.from_numpy(np.array(arrays[f"{self.kind}.{k}"])) for k in ("mean", "m2", "m3", "m4")]
        self.moments = [Moments(float(n[i]), *(p[i] for p in parts)) for i in range(self.layers)]

    def merge_(self, other: KindState) -> None:
        """Add the state of the windows that follow (e.g. another worker's). Exact for top-k,
        samples, counts and histograms whatever the split; moments are bit-identical to one pass
        when ``other`` kept its shards apart (``closed``) and the split falls on shard bounds."""
        self.fold()
        other.fold()
        a, b = self.a, other.a
        for layer in range(self.layers):
            row, slot, col = merge_slots(a["top_key"][layer], b["top_key"][layer], largest=True)
            for name in ("top_pos", "top_key_pos", "top_acts"):
                a[name][layer, row, slot] = b[name][layer, row, col]
            row, slot, col = merge_slots(a["rand_key"][layer], b["rand_key"][layer], largest=False)
            for name in ("rand_val", "rand_pos", "rand_acts"):
                a[name][layer, row, slot] = b[name][layer, row, col]
            take = b["bin_key"][layer] < a["bin_key"][layer]
            for name in ("bin_key", "bin_val", "bin_pos"):
                a[name][layer] = torch.where(take, b[name][layer], a[name][layer])
        for shard in other.closed if other.closed is not None else [other.moments]:
            for total, part in zip(self.moments, shard, strict=True):
                total.merge_(part)
        for name in ("bin_count", "hist", "active"):
            a[name] += b[name]


class CollationState:
    """The state of a whole collation: one :class:`KindState` per node kind, and windows done."""

    def __init__(self, model: HookedDecoder, cfg: CollateConfig) -> None:
        c = model.cfg
        self.kinds = {
            # A kind without layers (a dictionary's latents) is stored as layer 0.
            k.name: KindState(k, c.n_layers if k.layered else 1, k.size(c), cfg)
            for k in kinds_of(model)
            if k.collation is not None
        }
        self.done = 0  # windows collated, from the start of the range

    def fold(self) -> None:
        """Close the current shard (see :meth:`KindState.fold`)."""
        for ks in self.kinds.values():
            ks.fold()

    def keep_shards_apart(self) -> None:
        """Keep each closed shard's moments apart, for a driver to merge in window order."""
        for ks in self.kinds.values():
            ks.closed = []

    def arrays(self) -> dict[str, np.ndarray]:
        self.fold()
        out = {"done": np.asarray(self.done)}
        for ks in self.kinds.values():
            out.update(ks.arrays())
        return out

    def load(self, arrays: dict[str, np.ndarray]) -> None:
        self.done = int(arrays["done"])
        for ks in self.kinds.values():
            ks.load(arrays)

    def merge_(self, other: CollationState) -> None:
        """Add ``other``, the state of the windows that follow this one's."""
        for kind, ks in self.kinds.items():
            ks.merge_(other.kinds[kind])
        self.done += other.done


# ----- the pass ---------------------------------------------------------------------------------
def _hooks(model: HookedDecoder, state: CollationState, w0: list[int]) -> list[tuple[str, Any]]:
    """Forward hooks that feed one batch's activations into ``state`` (``w0[0]``: first window):
    each collated kind stashes its points of a layer and is fed at the last one."""
    hooks: list[tuple[str, Any]] = []
    for ks in state.kinds.values():
        kind = get_kind(ks.kind, model)
        assert kind.collation is not None
        rule = kind.collation
        for layer in range(ks.layers):
            points = rule.points(layer)
            stash: dict[str, torch.Tensor] = {}

            def keep(x: torch.Tensor, hook: Any, stash: dict[str, torch.Tensor] = stash) -> None:
                stash[hook.name] = x

            def feed(
                x: torch.Tensor, hook: Any, stash: dict[str, torch.Tensor] = stash, ks: KindState = ks,
                layer: int = layer, rule: Collation = rule,
            ) -> None:  # fmt: skip
                stash[hook.name] = x
                acts, key_pos, active = rule.feed(model, layer, stash)
                stash.clear()
                if active is not None:
                    ks.a["active"][layer] += active
                ks.update(layer, acts, w0[0], key_pos=key_pos)

            hooks += [(p, keep) for p in points[:-1]] + [(points[-1], feed)]
    return hooks


def _run_blocks(model: HookedDecoder, tokens: torch.Tensor) -> None:
    """The forward up to the last block's output: collation needs no final norm or logits
    (the unembedding is ~20% of a small model's forward)."""
    b, t = tokens.shape
    positions = torch.arange(t).expand(b, t)
    ctx = model.attention_context(positions, None)
    x = model.embed_step(tokens, positions)
    for i in range(model.cfg.n_layers):
        x = model.block(i)(x, ctx)


def collate_range(
    model: HookedDecoder,
    windows: Windows,
    cfg: CollateConfig,
    start: int = 0,
    stop: int | None = None,
    state: CollationState | None = None,
    checkpoint: Callable[[CollationState], None] | None = None,
    progress: ProgressBar | None = None,
) -> CollationState:
    """Collate windows ``[start, stop)`` into ``state`` (resumed at ``start + state.done``),
    closing a shard and calling ``checkpoint`` every ``cfg.shard_windows`` windows and at the
    end. ``start`` must fall on a shard bound for the moments to match a single pass bit for bit."""
    stop = windows.n if stop is None else stop
    state = state or CollationState(model, cfg)
    shard = cfg.shard_windows
    w0 = [start + state.done]
    first = w0[0]
    with torch.inference_mode(), model.hooks(fwd=_hooks(model, state, w0)):
        while w0[0] < stop:
            end = min(w0[0] + cfg.batch, stop)
            _run_blocks(model, windows.tokens[w0[0] : end].to(model.device))
            state.done += end - w0[0]
            w0[0] = end
            if progress is not None:
                progress.update(end - first)
            if state.done % shard == 0 or end == stop:
                state.fold()  # shards close at the same windows however the work is split
                if checkpoint is not None:
                    checkpoint(state)
    return state


def collate(
    model: HookedDecoder,
    windows: Windows,
    workspace: Workspace,
    cfg: CollateConfig | None = None,
    corpus_name: str = "",
    attribution: str | None = None,
    progress: ProgressBar | None = None,
    preview: bool = False,
) -> Path:
    """Collate every window into ``workspace`` (resuming a run killed midway) and write the
    dataset (DuckDB + Parquet). Returns the dataset's folder. With ``preview``, a database of the
    windows done so far is also written after 1, 2, 4, 8, ... shards (see :func:`checkpoint`)."""
    cfg = cfg or CollateConfig()
    state = begin(model, windows, workspace, cfg)
    if state is None:
        return workspace.root  # already complete
    if progress is not None:
        progress.start(windows.n, state.done)
    state = collate_range(
        model, windows, cfg, state=state, progress=progress,
        checkpoint=lambda s: checkpoint(s, model, windows, workspace, cfg, preview, corpus_name, attribution),
    )  # fmt: skip
    if progress is not None:
        progress.finish()
    return finish(state, model, windows, workspace, cfg, corpus_name, attribution)


def begin(
    model: HookedDecoder, windows: Windows, workspace: Workspace, cfg: CollateConfig
) -> CollationState | None:
    """Open ``workspace`` for this collation: the state to go on from (the last checkpoint's, or
    empty), or None when the dataset is already complete."""
    if windows.length != cfg.window:
        raise InputError(f"windows have {windows.length} tokens but the config says window={cfg.window}")
    if workspace.begin(_identity(model, windows, cfg)):
        return None
    state = CollationState(model, cfg)
    saved = workspace.load_state()
    if saved is not None:
        state.load(saved)
        log.info("resuming at window %d of %d", state.done, windows.n)
    return state


def checkpoint(
    state: CollationState,
    model: HookedDecoder,
    windows: Windows,
    workspace: Workspace,
    cfg: CollateConfig,
    preview: bool = False,
    corpus_name: str = "",
    attribution: str | None = None,
) -> None:
    """Make ``state`` durable; with ``preview``, also write a database of it when the shards done
    are a power of two (O(log n) writes in all, so early previews come fast and the total cost
    stays small) and the collation is not about to finish."""

    workspace.save_state(state.arrays(), state.done)
    shards = state.done // cfg.shard_windows
    power_of_two = shards and shards & (shards - 1) == 0 and state.done % cfg.shard_windows == 0
    if preview and power_of_two and state.done < windows.n:
        meta = _meta(model, windows, cfg, corpus_name, attribution, state.done)
        workspace.write_preview(build_tables(state, windows, model, {**meta, "preview": True}), state.done)


def finish(
    state: CollationState,
    model: HookedDecoder,
    windows: Windows,
    workspace: Workspace,
    cfg: CollateConfig,
    corpus_name: str,
    attribution: str | None,
) -> Path:
    """Write the finished ``state`` as the dataset (tables, Parquet, DuckDB) and mark it done."""

    meta = _meta(model, windows, cfg, corpus_name, attribution, windows.n)
    workspace.write_dataset(build_tables(state, windows, model, meta))
    return workspace.root


def _meta(
    model: HookedDecoder,
    windows: Windows,
    cfg: CollateConfig,
    corpus_name: str,
    attribution: str | None,
    done: int,
) -> dict[str, Any]:
    """The dataset's ``meta`` table, for ``done`` windows collated."""
    return {
        **_identity(model, windows, cfg),
        "corpus": corpus_name,
        "attribution": attribution or "",
        "tokens": done * (cfg.window - 1),
    }


def _identity(model: HookedDecoder, windows: Windows, cfg: CollateConfig) -> dict[str, Any]:
    """What a checkpoint must match to be resumed (model, weights, windows, options)."""
    return {
        "model": model.cfg.name or "model",
        "model_shape": [model.cfg.n_layers, model.cfg.d_mlp, model.cfg.n_heads],
        "weights": weights_fingerprint(model),
        "windows": windows.fingerprint(),
        "n_windows": windows.n,
        **cfg.identity(),
    }


def weights_fingerprint(model: HookedDecoder) -> str:
    """A cheap identity of the weights: a few sums, enough to refuse resuming with another model."""
    with torch.no_grad():
        sums = [float(p.double().sum()) for p in list(model.parameters())[:4]]
    return ",".join(f"{s:.9e}" for s in sums)


# ----- progress ---------------------------------------------------------------------------------
class ProgressBar:
    """A one-line progress bar with tokens/s and ETA, redrawn at most every ``every`` seconds."""

    def __init__(self, tokens_per_window: int, stream: TextIO | None = None, every: float = 0.5) -> None:
        self.per, self.stream, self.every = tokens_per_window, stream or sys.stderr, every
        self.total = self.base = 0
        self.t0 = self.last = 0.0

    def start(self, total_windows: int, done: int) -> None:
        self.total, self.base = total_windows, done
        self.t0 = self.last = time.perf_counter()
        self._draw(0, force=True)

    def update(self, new_windows: int) -> None:
        self._draw(new_windows)

    def finish(self) -> None:
        self._draw(self.total - self.base, force=True)
        self.stream.write("\n")
        self.stream.flush()

    def _draw(self, new: int, force: bool = False) -> None:
        now = time.perf_counter()
        if not force and now - self.last < self.every:
            return
        self.last = now
        done = self.base + new
        rate = new * self.per / max(now - self.t0, 1e-9)
        left = (self.total - done) * self.per / rate if rate > 0 else float("nan")
        frac = done / max(self.total, 1)
        bar = "#" * int(30 * frac)
        eta = "?" if left != left else f"{int(left) // 60}m{int(left) % 60:02d}s"
        self.stream.write(
            f"\rcollate [{bar:<30}] {frac:6.1%}  {done * self.per:,}/{self.total * self.per:,} tokens"
            f"  {rate:,.0f} tok/s  ETA {eta}   "
        )
        self.stream.flush()
