"""Per-unit weight views: what each neuron and head reads from and writes to the residual stream.

Written once here, with a Gemma post-norm's gain folded in where a family has one, so that the
engine, collation and the dictionaries never re-derive a head's output matrix or a neuron's row.
Per-layer statistics (write norms, Gram matrices) are cached per model until a weight changes.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from mechscope.models.components import Norm
    from mechscope.models.decoder import HookedDecoder


@dataclass
class LayerWeights:
    """Weight-only quantities of one layer, with a post-norm's gain folded in (fp32)."""

    down: torch.Tensor  # (d_model, d_mlp): neuron n writes down[:, n] per unit of activation
    down_norm: torch.Tensor  # (d_mlp,): norm of each neuron's write per unit of activation
    w_o: torch.Tensor  # (d_model, head, d_head): head h writes w_o[:, h] @ z_h
    gram: torch.Tensor  # (head, d_head, d_head): W_O,h^T W_O,h, so |W_O,h x| = sqrt(x^T G_h x)

    def write_norm(self, x: torch.Tensor) -> torch.Tensor:
        """``|W_O,h x_h|`` for per-head vectors ``x`` (..., head, d_head), shape (..., head): the
        norm of what each head writes to the residual stream for ``x``, without a d_model product."""
        return torch.einsum("...he,hef,...hf->...h", x, self.gram, x).clamp_(min=0).sqrt_()


@dataclass
class LayerStack:
    """The small per-layer statistics of :class:`LayerWeights` stacked along a leading layer
    dimension, so that the engine scores a run of layers with one op instead of one per layer
    (each layer's fields are views into these; the matrices themselves are not copied)."""

    down_norm: torch.Tensor  # (layer, d_mlp)
    gram: torch.Tensor  # (layer, head, d_head, d_head)
    layers: list[LayerWeights]  # each layer's own views
    # (unit direction in fp64, its Readout at every layer), most recently used first
    _readouts: list[tuple[torch.Tensor, Readout]] = field(default_factory=list, repr=False)

    def write_norm(self, x: torch.Tensor, layers: list[int]) -> torch.Tensor:
        """:meth:`LayerWeights.write_norm` of ``layers`` at once: ``x`` (layer, pos, head, d_head)
        -> (layer, pos, head). Batched matmuls: an einsum's planning costs more than its work
        on a short prompt."""
        xt = x.transpose(1, 2)  # (layer, head, pos, d_head)
        sq = (torch.matmul(xt, self.gram[_run(layers)]) * xt).sum(-1)  # (layer, head, pos)
        return sq.clamp_(min=0).sqrt_().transpose(1, 2)

    def down_readout(self, g: torch.Tensor, layers: list[int]) -> torch.Tensor:
        """``g @ down`` of ``layers``, (layer, rows, d_mlp): what every neuron writes along the
        residual directions ``g`` (rows, d_model). See :meth:`_readout`."""
        return self._readout(g, layers, "down")

    def head_readout(self, g: torch.Tensor, layers: list[int]) -> torch.Tensor:
        """``g @ w_o`` of ``layers``, (layer, rows, head, d_head): what every head writes along
        the residual directions ``g`` (rows, d_model). See :meth:`_readout`."""
        return self._readout(g, layers, "heads")

    def _readout(self, g: torch.Tensor, layers: list[int], part: str) -> torch.Tensor:
        """These products read every down or output matrix (106 MB for SmolLM2): on a short
        prompt they are most of a debugger call's metric time. A logit objective's gradient at
        the scored position is a per-prompt scalar times the same vector (the unembedding
        difference through the frozen final norm), so the last few directions' products are
        kept, and a row that matches one (each component within 1e-6 relative) is its scalar
        times the kept product: the same numbers up to fp32 rounding.
        """
        norm = g[0].norm() if len(g) == 1 else None
        if norm is None or not bool(norm > 0):
            return self._products(g, layers, part)
        kept: torch.Tensor = getattr(self._kept(g[0] / norm), part)
        return kept[_run(layers)] * norm

    def _products(self, g: torch.Tensor, layers: list[int], part: str) -> torch.Tensor:
        with torch.no_grad():
            if part == "down":
                return torch.stack([g @ self.layers[i].down for i in layers])
            h, e = self.gram.shape[1:3]
            heads = torch.stack([g @ self.layers[i].w_o.reshape(-1, h * e) for i in layers])
            return heads.view(len(layers), len(g), h, e)

    def _kept(self, unit: torch.Tensor) -> Readout:
        """The every-layer products of a unit direction, from the kept ones or computed and kept."""
        exact = unit.double()
        for i, (direction, products) in enumerate(self._readouts):
            if bool(((exact - direction).abs() <= 1e-6 * direction.abs()).all()):
                self._readouts.insert(0, self._readouts.pop(i))  # most recently used first
                return products
        every, row = list(range(len(self.layers))), unit.float()[None]
        products = Readout(self._products(row, every, "down"), self._products(row, every, "heads"))
        self._readouts.insert(0, (exact, products))
        del self._readouts[_READOUTS_KEPT:]
        return products


def _run(layers: list[int]) -> slice | list[int]:
    """Consecutive layers as a slice: indexing a stacked tensor with it is a view, not a copy."""
    first = layers[0] if layers else 0
    return slice(first, first + len(layers)) if layers == list(range(first, first + len(layers))) else layers


_READOUTS_KEPT = 8  # directions whose products LayerStack._readout keeps (about 250 KB each for SmolLM2)


@dataclass
class Readout:
    """``g @ down`` (layer, rows, d_mlp) and ``g @ w_o`` (layer, rows, head, d_head) of every layer
    for a kept direction ``g`` (:meth:`LayerStack._readout`)."""

    down: torch.Tensor
    heads: torch.Tensor


_CACHE: weakref.WeakKeyDictionary[torch.nn.Module, tuple[tuple[int, ...], list[LayerWeights], LayerStack]] = (
    weakref.WeakKeyDictionary()
)


def layer_weights(model: HookedDecoder) -> list[LayerWeights]:
    """Every layer's :class:`LayerWeights`, cached until a weight is replaced or edited in place.

    Column norms of a (d_model, d_mlp) matrix are a strided reduction that costs more than the
    metrics of a short prompt; they only change when the weights do.
    """
    cfg = model.cfg
    params: list[torch.Tensor] = []
    for i in range(cfg.n_layers):
        b = model.block(i)
        params += [b.mlp.down_proj.weight, b.attn.o_proj.weight]
        if cfg.sandwich_norms:
            params += [b.ln1_post.weight, b.ln2_post.weight]
    key = tuple(v for p in params for v in (p.data_ptr(), p._version))
    hit = _CACHE.get(model)
    if hit is not None and hit[0] == key:
        return hit[1]
    downs, w_os = [], []
    with torch.no_grad():
        for i in range(cfg.n_layers):
            b = model.block(i)
            down = b.mlp.down_proj.weight.float()
            w_o = b.attn.w_o_heads().float()
            if cfg.sandwich_norms:
                down = down * b.ln2_post.gain().float()[:, None]
                w_o = w_o * b.ln1_post.gain().float()[:, None, None]
            downs.append(down)
            w_os.append(w_o)
        down_norm = torch.stack([d.norm(dim=0) for d in downs])
        gram = torch.stack([torch.einsum("dhe,dhf->hef", w, w) for w in w_os])
    out = [
        LayerWeights(d, down_norm[i], w, gram[i]) for i, (d, w) in enumerate(zip(downs, w_os, strict=True))
    ]
    stack = LayerStack(down_norm, gram, out)
    _CACHE[model] = (key, out, stack)
    return out


def layer_stack(model: HookedDecoder) -> LayerStack:
    """Every layer's weight views stacked (:class:`LayerStack`), cached with :func:`layer_weights`."""
    layer_weights(model)
    return _CACHE[model][2]


def neuron_write(model: HookedDecoder, layer: int, index: int) -> torch.Tensor:
    """(d_model,): what neuron ``index`` of block ``layer`` adds to the residual stream per unit."""
    return layer_weights(model)[layer].down[:, index]


def head_write(model: HookedDecoder, layer: int, head: int, z: torch.Tensor) -> torch.Tensor:
    """(..., d_model): what head ``head`` adds to the residual stream for its weighted values ``z``
    (..., d_head)."""
    return z.float() @ layer_weights(model)[layer].w_o[:, head].T


@dataclass
class Reader:
    """How a unit reads the residual stream: ``row . norm(resid)``, or ``row . resid`` with no norm
    (a dictionary reading a residual point)."""

    norm: Norm | None  # the norm its input passes through, if any
    row: torch.Tensor  # (d_model,)

    def direction(self) -> torch.Tensor:
        """The residual direction it reads, through the norm's gain (the scale frozen)."""
        return (self.row if self.norm is None else self.row * self.norm.gain()).detach()

    def read(self, resid: torch.Tensor) -> torch.Tensor:
        """(..., d_model) residual vectors -> (...) what the unit reads from each (biases aside)."""
        return (resid if self.norm is None else self.norm(resid)).float() @ self.row.float()


def neuron_reader(model: HookedDecoder, layer: int, index: int) -> Reader:
    """Neuron ``index`` of block ``layer``: its pre-activation row through ``ln2``."""
    block = model.block(layer)
    return Reader(block.ln2, block.mlp.in_rows()[index])


# ----- hook-point spaces -> the residual stream (the dictionaries' decoder directions) -----------
_IDENTITY_SITES = ("resid_pre", "resid_mid", "resid_post", "attn_out", "mlp_out")


@dataclass
class ResidualMap:
    """The linear map from a hook point's space to what it adds to the residual stream.

    ``matrix`` (d_model, width) maps a vector of the point's space (a neuron pattern of
    ``mlp.post``, a flattened ``attn.z``) to its residual write; None is the identity (the point
    is a residual stream or a layer's write). ``post_norm`` names the scale hook point of a Gemma
    post-norm that divides the write at run time (its gain is folded into ``matrix``), else None.
    """

    point: str
    layer: int
    width: int  # size of one vector of the point's space (flattened)
    rank: int  # where the write lands in the residual stream (see engine/objective.residual_rank)
    matrix: torch.Tensor | None
    post_norm: str | None = None

    def apply(self, v: torch.Tensor) -> torch.Tensor:
        """(..., width) -> (..., d_model)."""
        return v.float() if self.matrix is None else v.float() @ self.matrix.T


_SITES = (*_IDENTITY_SITES, "mlp.post", "attn.z")
_WRITE_OFFSET = {"resid_pre": 0, "resid_mid": 1, "attn_out": 1, "attn.z": 1}  # others: 2 (MLP side)


def _split_point(point: str) -> tuple[int, str]:
    from mechscope.errors import InputError

    parts = point.split(".")
    site = ".".join(parts[2:])
    if len(parts) < 3 or parts[0] != "blocks" or not parts[1].isdigit() or site not in _SITES:
        allowed = ", ".join(f"blocks.{{i}}.{s}" for s in _SITES)
        raise InputError(f"hook point {point!r} has no linear map to the residual stream; allowed: {allowed}")
    return int(parts[1]), site


def write_rank(point: str) -> int:
    """Where a write made at ``point`` lands in the residual stream (the ranks of
    :func:`mechscope.engine.objective.residual_rank`: layer l's attention writes 2l + 1, its MLP
    2l + 2; a residual point's own rank)."""
    layer, site = _split_point(point)
    return 2 * layer + _WRITE_OFFSET.get(site, 2)


def residual_map(model: HookedDecoder, point: str) -> ResidualMap:
    """The :class:`ResidualMap` of hook point ``point`` of ``model``, built from the views of
    :func:`layer_weights` (never re-derived); an InputError for points with no linear write."""
    from mechscope.errors import InputError

    cfg = model.cfg
    layer, site = _split_point(point)
    if point not in model.hook_points:
        raise InputError(f"hook point {point!r}: the model has no such point ({cfg.n_layers} layers)")
    two = 2 * layer
    if site in _IDENTITY_SITES:
        return ResidualMap(point, layer, cfg.d_model, write_rank(point), None)
    lw = layer_weights(model)[layer]
    if site == "mlp.post":
        post = f"blocks.{layer}.ln2_post.scale" if cfg.sandwich_norms else None
        return ResidualMap(point, layer, cfg.d_mlp, two + 2, lw.down, post)
    w_o = lw.w_o.reshape(cfg.d_model, cfg.n_heads * cfg.d_head)  # (d_model, head * d_head)
    post = f"blocks.{layer}.ln1_post.scale" if cfg.sandwich_norms else None
    return ResidualMap(point, layer, cfg.n_heads * cfg.d_head, two + 1, w_o, post)
