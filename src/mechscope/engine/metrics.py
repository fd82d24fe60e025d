"""Node metrics from one recording: activation, write magnitude, direct effect, estimated total effect.

Each node kind computes its own (``metrics`` in its file under :mod:`mechscope.engine.kinds`);
this module holds what they share. Definitions (docs/attribution.md):

- *write*: what the node adds to the residual stream. A neuron writes ``a * W_down[:, n]``; an
  attention pair writes ``p[q, k] * W_O,h v[k]`` at q; a head at a query token writes the sum over
  keys. Gemma's post-norms (``ln1_post``/``ln2_post``) enter with their scale frozen at its value.
- *direct effect*: write . g, where g is the gradient at the residual point where the backward
  pass starts (only nodes upstream of that point have one).
- *estimated total effect*: activation x gradient (for a head at a token: the sum over its pairs).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Protocol

import torch

from mechscope.engine.ranking import top_indices
from mechscope.engine.recorder import Recording

if TYPE_CHECKING:
    from mechscope.models.decoder import HookedDecoder

METRIC_NAMES = ("activation", "write_norm", "direct_effect", "total_effect")
SIGNED = {"direct_effect", "total_effect"}  # whose most negative values mean something too
Values = tuple[float | None, float, float, float]  # one node's metrics, in METRIC_NAMES order


class MetricTable(Protocol):
    """What the node table reads from a kind's metrics: the shape of the (conceptual) metric
    tensors, the flat indices of a metric's extremes, and the four values at given entries.

    :class:`Metrics` holds dense tensors; a kind whose tensors would be too large to keep (the
    (query, key) pairs of heads, which grow with the square of the prompt) answers from factors
    and from candidates it kept while computing them, and builds dense tensors only on demand."""

    @property
    def shape(self) -> tuple[int, ...]: ...

    def top(self, metric: str, k: int, largest: bool = True) -> torch.Tensor | None:
        """Flat indices of the ``k`` largest (smallest) entries of ``metric``; None without it."""
        ...

    def values(self, flat: torch.Tensor) -> list[Values]:
        """The four metrics at each flat index."""
        ...


@dataclass
class Metrics:
    """Metrics of every node of one kind, shaped like the kind's ``coords``; ``activation`` is
    None where a kind has none. ``pairs`` holds the (query, key) pair metrics of kinds with pairs."""

    activation: torch.Tensor | None
    write_norm: torch.Tensor
    direct_effect: torch.Tensor
    total_effect: torch.Tensor
    pairs: MetricTable | None = None

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.write_norm.shape)

    def top(self, metric: str, k: int, largest: bool = True) -> torch.Tensor | None:
        t = getattr(self, metric)
        return None if t is None else top_indices(t, k, largest)

    def values(self, flat: torch.Tensor) -> list[Values]:
        cols = [
            None if t is None else t.reshape(-1)[flat].tolist()
            for t in (self.activation, self.write_norm, self.direct_effect, self.total_effect)
        ]
        act = cols[0] if cols[0] is not None else [None] * len(flat)
        return list(zip(act, *cols[1:], strict=True))  # type: ignore[arg-type]


@dataclass
class Context:
    """What every metric function reads: the model, the recording and the backward's entry point."""

    model: HookedDecoder
    rec: Recording
    start: str
    start_rank: int
    n: int  # prompt positions

    @property
    def g_start(self) -> torch.Tensor:  # (pos, d_model)
        return self.rec.grads[self.start]

    @cached_property
    def reached(self) -> torch.Tensor:
        """Positions whose start gradient is non-zero: the only ones with direct effects.

        A logit objective's gradient enters the residual stream at the scored position alone, so
        direct effects cost one position's worth of products instead of the whole prompt's.
        """
        return (self.g_start != 0).any(-1).nonzero()[:, 0]

    def upstream(self, rank: int) -> bool:
        return rank <= self.start_rank

    def ran(self, name: str) -> bool:
        return name in self.rec.acts

    def post_scale(self, layer: int, which: str) -> torch.Tensor | None:
        """The frozen scale (pos, 1) of a Gemma post-norm (its gain is folded into the weight
        views of :mod:`mechscope.models.weights`), or None without post-norms."""
        if not self.model.cfg.sandwich_norms:
            return None
        return self.rec.acts[f"blocks.{layer}.{which}.scale"].float()


def stack_layers(ts: list[torch.Tensor]) -> torch.Tensor:
    """Recorded tensors stacked along a new layer dimension, in fp32 (one layer: a view)."""
    return ts[0].float()[None] if len(ts) == 1 else torch.stack(ts).float()


STEP_ENTRIES = 1 << 21  # entries a LayerTable scores per step (8 MB per fp32 tensor): fewer, larger ops
WHOLE_ENTRIES = 1 << 23  # a table this small (every layer, every window) is one step: no per-step costs
# (SmolLM2 at 128 tokens, metrics and node table: 58 ms in one step, 67 in steps of 2M entries;
# not for longer prompts, where 8M-entry steps raised the peak memory at 512 tokens by 360 MB)
CANDIDATES = 32  # extremes a LayerTable keeps per step and metric; a larger k scores the table again
WINDOWS = 8  # query windows a causal table (LayerTable.triangle) is scored in, from ...
WINDOW_FROM = 256  # ... this many positions. Below, a window's fixed costs exceed what it saves
# (SmolLM2's debugger, metrics and node table: 128 tokens 63 ms in one window, 72 in four;
# 256 tokens 180 ms in one, 150 in eight; 512 tokens 417 ms in eight, 446 in four)


@dataclass(frozen=True)
class Step:
    """What one step of :meth:`LayerTable.run` scores: ``layers`` (``rows``, as a tensor) and,
    in a table with a causal triangle, the queries ``start:stop`` against the keys ``0:stop``
    (a table without one: every position, ``0:n``). ``reached``: the positions among the
    step's queries that the start gradient reaches, which its compact direct effects hold."""

    layers: list[int]
    rows: torch.Tensor
    start: int
    stop: int
    reached: torch.Tensor


class LayerTable:
    """Metrics too large to keep (a neuron or a head pair at every layer and position),
    scored a few layers at a time and never stored whole.

    A kind subclasses it with :meth:`score`: the four metric tensors of one :class:`Step`,
    rebuilt from the recording. :meth:`run` scores every active layer once, in steps of about
    :data:`STEP_ENTRIES` entries, keeping each step's :data:`CANDIDATES` extremes with all four
    of their values and the sums over ``summed`` dimensions; the node table is answered from
    those. Dense tensors (``activation`` ...) are built only when asked for (notebooks, tests).

    Direct effects exist only at the positions the start gradient reaches (usually one), so
    ``score`` returns them compact: ``reached_dim`` (of one layer's block) holds only the
    step's ``reached`` positions. ``pairs`` is None: a table is a kind's pairs or a kind without
    pairs.

    ``triangle``, the (query, key) dims of a layer's block of a causal table: half of its
    entries (keys after their query) are zero by construction, so a long prompt is scored in
    :data:`WINDOWS` windows of queries, each against the keys up to its last query only (at 512
    tokens, 56% of the entries).
    """

    pairs = None
    has_activation = True

    def __init__(
        self,
        shape: tuple[int, ...],
        active: list[int],
        summed: tuple[int, ...],
        reached: torch.Tensor,
        reached_dim: int,
        triangle: tuple[int, int] | None = None,
    ) -> None:
        self.shape = shape
        self.active = active  # layers that ran and lie upstream of the start; others are zero
        self._summed = summed  # dims of one layer's block (layer excluded) that ``sums`` sum over
        self.reached, self._rdim = reached, reached_dim + 1  # the latter counts the layer dim
        # (query, key) dims counting the layer dim; the compact direct effects' dim is the query's
        self._tri = None if triangle is None else (triangle[0] + 1, triangle[1] + 1)
        if triangle is not None:  # sums over queries only: a window holds some of them, every key
            assert triangle[0] + 1 == self._rdim and triangle[0] in summed
        self.sums: dict[str, torch.Tensor] = {}  # metric -> sum over layers and ``summed`` dims
        self._count = CANDIDATES  # extremes kept per step, metric and sign
        self._found: dict[tuple[str, bool], list[tuple[torch.Tensor, torch.Tensor]]] = {}
        self._known: dict[int, Values] = {}  # flat index -> values, for every kept extreme

    def score(self, step: Step) -> dict[str, torch.Tensor]:
        """The four metrics (``activation`` only when ``has_activation``) of ``step``, each shaped
        like :meth:`block`, the direct effects compact (see the class); other entries are the
        kind's own (for ``run``'s ``on_step``)."""
        raise NotImplementedError

    def block(self, step: Step) -> tuple[int, ...]:
        """The shape of a step's metric tensors: its layers, and its queries and keys."""
        shape = [len(step.layers), *self.shape[1:]]
        if self._tri is not None:
            shape[self._tri[0]], shape[self._tri[1]] = step.stop - step.start, step.stop
        return tuple(shape)

    def steps(self) -> list[Step]:
        """Every active layer once: a few layers a step and, with a triangle, query windows."""
        windows = [(0, -1)]
        per_layer = math.prod(self.shape[1:])  # one layer's entries in a step
        n = self.shape[self._tri[0]] if self._tri is not None else 0
        if n >= max(WINDOW_FROM, 2):
            width = -(-n // WINDOWS)
            windows = [(a, min(a + width, n)) for a in range(0, n, width)]
            per_layer = per_layer // n * width  # in the last, widest window
        whole = per_layer * len(self.active) <= WHOLE_ENTRIES
        size = max(1, len(self.active) if whole else STEP_ENTRIES // per_layer)
        chunks = [self.active[at : at + size] for at in range(0, len(self.active), size)]
        return [self._step(chunk, a, b) for chunk in chunks for a, b in windows]

    def _step(self, layers: list[int], start: int = 0, stop: int = -1) -> Step:
        if self._tri is None:
            start, stop, reached = 0, self.shape[self._rdim], self.reached
        else:
            stop = self.shape[self._tri[0]] if stop < 0 else stop
            reached = self.reached[(self.reached >= start) & (self.reached < stop)]
        return Step(layers, torch.tensor(layers), start, stop, reached)

    def run(self, on_step: Callable[[Step, dict[str, torch.Tensor]], None] | None = None) -> None:
        """Score every active layer once; ``on_step(step, tensors)`` sees each step."""
        self.sums, self._found = {}, {}
        for step in self.steps():
            tensors = self.score(step)
            if on_step is not None:
                on_step(step, tensors)
            self._keep(step, tensors)

    def _keep(self, step: Step, tensors: dict[str, torch.Tensor]) -> None:
        dims = (0, *(d + 1 for d in self._summed))
        for metric in ("direct_effect", "total_effect"):
            part = self._spread(tensors[metric].sum(dims), dims, step, metric == "direct_effect")
            self.sums[metric] = self.sums[metric] + part if metric in self.sums else part
        # Each metric's extremes in the step's coordinates, mapped to the table's at once (one
        # unravel and one ravel per tensor shape, not one per metric and sign).
        picked: list[tuple[str, bool, torch.Tensor, torch.Tensor]] = []
        for metric in METRIC_NAMES:
            t = tensors.get(metric)
            if t is None:
                continue
            for largest in (True, False) if metric in SIGNED else (True,):
                local = top_indices(t, self._count, largest)
                picked.append((metric, largest, t.reshape(-1)[local], local))
        parts = []
        for compact in (False, True):
            group = [local for metric, _, _, local in picked if (metric == "direct_effect") == compact]
            if group:
                coords = unravel(
                    torch.cat(group), tuple(tensors["direct_effect" if compact else "total_effect"].shape)
                )
                if compact:  # the i-th reached position -> its place among the step's queries
                    coords[self._rdim] = step.reached[coords[self._rdim]] - step.start
                parts.append(coords)
        local_coords = [torch.cat(c) for c in zip(*parts, strict=True)]
        coords = list(local_coords)
        coords[0] = step.rows[coords[0]]
        coords[self._rdim] = coords[self._rdim] + step.start
        flat = ravel(coords, self.shape)
        order = [
            *(p for p in picked if p[0] != "direct_effect"),
            *(p for p in picked if p[0] == "direct_effect"),
        ]
        for (metric, largest, value, _), f in zip(order, flat.split([len(p[3]) for p in order]), strict=True):
            self._found.setdefault((metric, largest), []).append((value, f))
        for f, values in zip(flat.tolist(), self._gather(step, tensors, local_coords), strict=True):
            self._known[f] = values

    def _spread(self, part: torch.Tensor, dims: tuple[int, ...], step: Step, compact: bool) -> torch.Tensor:
        """A step's sum over ``dims`` in the table's coordinates: a compact direct effect's
        reached positions among all positions, a window's keys (the first ``stop``) among all."""
        kept = [d for d in range(1, len(self.shape)) if d not in dims]  # dims of ``part``, in order
        if compact and self._rdim in kept:
            at = kept.index(self._rdim)
            shape = list(part.shape)
            shape[at] = self.shape[self._rdim]
            part = torch.zeros(shape).index_copy_(at, step.reached, part)
        if self._tri is not None and self._tri[1] in kept:
            at = kept.index(self._tri[1])
            shape = list(part.shape)
            shape[at] = self.shape[self._tri[1]]
            padded = torch.zeros(shape)
            padded.narrow(at, 0, step.stop).copy_(part)
            part = padded
        return part

    def _gather(
        self, step: Step, tensors: dict[str, torch.Tensor], coords: list[torch.Tensor]
    ) -> list[Values]:
        """The four values at ``coords`` of the step's block (:meth:`block`; one tensor per dim)."""
        local = ravel(coords, self.block(step))
        absolute = coords[self._rdim] + step.start  # a position, for the compact direct effects
        cols: list[list[float] | list[None]] = []
        for metric in METRIC_NAMES:
            t = tensors.get(metric)
            if t is None:
                cols.append([None] * len(local))
            elif metric != "direct_effect":
                cols.append(t.reshape(-1)[local].tolist())
            elif not len(step.reached):
                cols.append([0.0] * len(local))
            else:
                r = torch.searchsorted(step.reached, absolute.contiguous()).clamp_(max=len(step.reached) - 1)
                hit = step.reached[r] == absolute
                at = ravel([*coords[: self._rdim], r, *coords[self._rdim + 1 :]], tuple(t.shape))
                cols.append(torch.where(hit, t.reshape(-1)[at], 0.0).tolist())
        return list(zip(*cols, strict=True))

    # ----- MetricTable -------------------------------------------------------------------------
    def top(self, metric: str, k: int, largest: bool = True) -> torch.Tensor | None:
        if metric == "activation" and not self.has_activation:
            return None
        if k > self._count:  # score again, keeping more (never the dense tensors: 1 GB at 512 tokens)
            self._count = k
            self.run()
        found = self._found.get((metric, largest))
        if found is None:
            return None
        values = torch.cat([v for v, _ in found])
        flat = torch.cat([f for _, f in found])
        return flat[values.topk(min(k, len(values)), largest=largest).indices]

    def values(self, flat: torch.Tensor) -> list[Values]:
        todo = [f for f in flat.tolist() if f not in self._known]
        if todo:  # entries that were no step's extremes: rebuild their layers
            per_layer = math.prod(self.shape[1:])
            zero: Values = (0.0 if self.has_activation else None, 0.0, 0.0, 0.0)
            for i in sorted({f // per_layer for f in todo}):
                at = [f % per_layer for f in todo if f // per_layer == i]
                if i in self.active:
                    step = self._step([i])  # one layer, every query: its block is the layer's
                    coords = unravel(torch.tensor(at), (1, *self.shape[1:]))
                    rows = self._gather(step, self.score(step), coords)
                else:
                    rows = [zero] * len(at)
                for f, v in zip(at, rows, strict=True):
                    self._known[i * per_layer + f] = v
        return [self._known[f] for f in flat.tolist()]

    # ----- dense views, built on demand ----------------------------------------------------------
    @cached_property
    def _dense(self) -> dict[str, torch.Tensor]:
        out = {m: torch.zeros(self.shape) for m in METRIC_NAMES}
        for i in self.active:
            tensors = self.score(self._step([i]))
            for metric in METRIC_NAMES:
                t = tensors.get(metric)
                if t is not None and metric == "direct_effect":
                    out[metric][i].index_copy_(self._rdim - 1, self.reached, t[0])
                elif t is not None:
                    out[metric][i] = t[0]
        return out

    @property
    def activation(self) -> torch.Tensor | None:
        return self._dense["activation"] if self.has_activation else None

    @property
    def write_norm(self) -> torch.Tensor:
        return self._dense["write_norm"]

    @property
    def direct_effect(self) -> torch.Tensor:
        return self._dense["direct_effect"]

    @property
    def total_effect(self) -> torch.Tensor:
        return self._dense["total_effect"]


def unravel(flat: torch.Tensor, shape: tuple[int, ...]) -> list[torch.Tensor]:
    """Row-major coordinates of flat indices in ``shape``, one tensor per dimension: what
    ``torch.unravel_index`` returns, without its argument checks (three times its arithmetic on
    the handful of indices a node table holds)."""
    coords = []
    for size in reversed(shape[1:]):
        coords.append(flat % size)
        flat = flat // size
    coords.append(flat)
    return coords[::-1]


def ravel(coords: list[torch.Tensor], shape: tuple[int, ...]) -> torch.Tensor:
    """Flat row-major indices of ``coords`` (one tensor per dimension) in ``shape``."""
    flat = torch.zeros_like(coords[0])
    for c, size in zip(coords, shape, strict=True):
        flat = flat * size + c
    return flat


KindMetrics = Metrics | LayerTable
"""What a kind's ``metrics`` returns: dense tensors, or a table scored layer by layer."""
