"""Interventions: composable, serialisable edits of activations during a forward.

An :class:`Intervention` is a *target* (MLP neurons, an attention head's output at query tokens, one
query-key pair of a head, residual-stream positions, a layer's output, the token embedding; every
node kind has one, see :meth:`Intervention.on_node`) and an *op* (zero, mean, dataset mean, resample,
set, scale, add, steer). Both are pydantic models, so a list of interventions is the JSON the server
accepts. :func:`intervention_hooks` compiles them into forward hooks for :meth:`HookedDecoder.hooks`;
a dataset mean needs the collated dataset, so :func:`resolve_dataset_means` first turns it into a
``set`` with the unit's mean (the engine does not read datasets).

Explicit ``positions`` refer to the prompt (negative values count from its end) and are applied on
a call that covers the whole prompt; ``positions=None`` means every position, also while generating.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Annotated, Any, Literal

import torch
from pydantic import AliasChoices, BaseModel, ConfigDict, Discriminator, Field, Tag, field_validator

from mechscope.engine.kinds import Site, get_kind
from mechscope.engine.lens import write_direction
from mechscope.engine.nodes import Node
from mechscope.errors import InputError
from mechscope.models.hooks import HookFn, HookPoint

if TYPE_CHECKING:
    from mechscope.models.decoder import HookedDecoder


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NodeTarget(_Spec):
    """Units of any node kind, with the fields of a :class:`Node`: a neuron (or several, by a
    list of indices), a head's output at its query positions or with ``key`` one query-key pair
    of its pattern, a layer's output, the token embedding, ... (``GET /api/model`` lists the kinds)."""

    kind: str = Field(pattern=r"^[a-z][a-z0-9_]*$", description="a node kind (not 'residual')")
    layer: int | None = Field(default=None, ge=0, description="block index, for kinds with layers")
    index: int | list[int] | None = Field(
        default=None,
        validation_alias=AliasChoices("index", "head"),  # ``head``: the field's name until 0.1
        description="unit index (or indices, where the kind allows several)",
    )
    positions: list[int] | None = Field(default=None, description="prompt positions; None = all")
    key: int | None = Field(
        default=None, ge=0, description="key position: edit the attention probability of that pair"
    )
    renormalize: bool = Field(default=False, description="with key: rescale the row to sum to 1 again")

    @field_validator("index")
    @classmethod
    def _non_negative(cls, v: int | list[int] | None) -> int | list[int] | None:
        if v is not None and any(i < 0 for i in ([v] if isinstance(v, int) else v)):
            raise ValueError("indices must be >= 0")
        return v


class ResidualTarget(_Spec):
    kind: Literal["residual"] = "residual"
    layer: int = Field(ge=0)
    point: Literal["resid_pre", "resid_mid", "resid_post"] = "resid_pre"
    positions: list[int] | None = None


AnyTarget = NodeTarget | ResidualTarget


def _target_type(v: Any) -> str:
    kind = v.get("kind") if isinstance(v, dict) else getattr(v, "kind", None)
    return "residual" if kind == "residual" else "node"


Target = Annotated[
    Annotated[NodeTarget, Tag("node")] | Annotated[ResidualTarget, Tag("residual")],
    Discriminator(_target_type),
]


class Zero(_Spec):
    kind: Literal["zero"] = "zero"


class Mean(_Spec):
    """The target's mean over every token of a reference batch of prompts."""

    kind: Literal["mean"] = "mean"
    reference: list[str] = Field(min_length=1)


class Resample(_Spec):
    """The target's activation on another prompt, aligned on the last tokens of both."""

    kind: Literal["resample"] = "resample"
    prompt: str = Field(min_length=1)


class Set(_Spec):
    kind: Literal["set"] = "set"
    value: float | list[float]


class Scale(_Spec):
    kind: Literal["scale"] = "scale"
    factor: float


class Add(_Spec):
    """Add a value (a neuron) or a vector (a head's d_head output, a d_model residual: steering)."""

    kind: Literal["add"] = "add"
    value: float | list[float]


class DatasetMean(_Spec):
    """The unit's mean activation over the collated dataset (its ``nodes`` table): for kinds whose
    activation is the scalar the intervention site edits. Resolved by :func:`resolve_dataset_means`."""

    kind: Literal["dataset_mean"] = "dataset_mean"


class VectorSource(_Spec):
    """A residual-stream vector given by value (d_model entries)."""

    kind: Literal["vector"] = "vector"
    vector: list[float] = Field(min_length=1)


class NodeWriteSource(_Spec):
    """The vector a node writes into the residual stream per unit of activation
    (:func:`mechscope.engine.lens.write_direction`); ``prompt`` for kinds whose write depends on it."""

    kind: Literal["node_write"] = "node_write"
    node: Node
    prompt: str | None = Field(default=None, min_length=1, max_length=20_000)


DirectionSource = Annotated[VectorSource | NodeWriteSource, Field(discriminator="kind")]


class Steer(_Spec):
    """Add ``coefficient`` x a residual direction (a pasted vector or a node's write) at a target
    whose value is a d_model vector (the residual stream, a layer's output, the embedding)."""

    kind: Literal["steer"] = "steer"
    coefficient: float
    direction: DirectionSource
    normalize: bool = Field(default=False, description="scale the direction to norm 1 first")


AnyOp = Zero | Mean | DatasetMean | Resample | Set | Scale | Add | Steer
Op = Annotated[AnyOp, Field(discriminator="kind")]


class Intervention(_Spec):
    target: Target
    op: Op

    @classmethod
    def on_node(cls, node: Node, op: AnyOp | None = None) -> Intervention:
        """The intervention that edits exactly ``node`` (zero-ablates it by default): the Debugger's
        "ablate" action. A head pair is edited without renormalising its row."""
        target = NodeTarget(
            kind=node.kind, layer=node.layer, index=node.index, key=node.key, positions=[node.token]
        )
        return cls(target=target, op=op or Zero())


def _site(model: HookedDecoder, t: AnyTarget) -> Site:
    cfg = model.cfg
    if t.layer is not None and t.layer >= cfg.n_layers:
        raise InputError(f"target.layer {t.layer} out of range 0..{cfg.n_layers - 1}")
    if isinstance(t, ResidualTarget):
        if t.point == "resid_mid" and cfg.parallel_residual:
            raise InputError("target.point 'resid_mid' does not exist with parallel residual")
        return Site(f"blocks.{t.layer}.{t.point}", (slice(None),), cfg.d_model)
    kind = get_kind(t.kind, model)
    for name, present, wanted in (
        ("layer", t.layer is not None, kind.layered),
        ("index", t.index is not None, kind.unit is not None),
    ):
        if present != wanted:
            raise InputError(
                f"target.{name} is {'required' if wanted else 'not allowed'} for kind {kind.name}"
            )
    if t.key is not None and not kind.pairs:
        raise InputError(f"target.key: kind {kind.name} has no (query, key) pairs")
    if t.renormalize and t.key is None:
        raise InputError("target.renormalize applies to a (query, key) pair target only (give key)")
    return kind.site(model, t.layer, t.index, t.key)


def _positions(positions: list[int] | None, n: int) -> list[int] | None:
    if positions is None:
        return None
    out = []
    for p in positions:
        q = p + n if p < 0 else p
        if not 0 <= q < n:
            raise InputError(f"target.positions: {p} out of range for a prompt of {n} tokens")
        out.append(q)
    return out


def intervention_hooks(
    model: HookedDecoder,
    interventions: Sequence[Intervention],
    prompt_len: int,
    rows: Sequence[int] | None = None,
) -> list[tuple[str, HookFn]]:
    """Forward hooks applying ``interventions`` to a prompt of ``prompt_len`` tokens.

    ``rows`` restricts them to those batch rows (batched single-node ablations); None = every row.
    Values that need extra forwards (mean, resample) are computed here, once.
    """
    hooks = []
    for i, iv in enumerate(interventions):
        try:
            hooks.append(_compile(model, iv, prompt_len, rows))
        except InputError as e:
            raise InputError(f"interventions[{i}]: {e}") from None
    return hooks


def _compile(
    model: HookedDecoder, iv: Intervention, n: int, rows: Sequence[int] | None
) -> tuple[str, HookFn]:
    t, op = iv.target, iv.op
    site = _site(model, t)
    positions = _positions(t.positions, n)
    pair = site.pair
    if isinstance(op, DatasetMean):
        raise InputError(
            "op 'dataset_mean' needs a collated dataset: resolve it with resolve_dataset_means "
            "(the server does when it has a dataset)"
        )
    if pair:
        assert isinstance(t, NodeTarget) and t.key is not None
        if not isinstance(op, Zero | Set | Scale):
            raise InputError(f"op '{op.kind}' is not defined for a query-key pair; use zero, set or scale")
        if t.key >= n or (positions is not None and any(p < t.key for p in positions)):
            raise InputError(f"target.key {t.key} must be < {n} and <= every query position (causal)")
    value = _op_value(model, t, op, site, n)
    row_idx = None if rows is None else torch.tensor(list(rows), device=model.device)
    renorm = pair and isinstance(t, NodeTarget) and t.renormalize
    pos_dim = len(site.lead)  # dimension of positions in the hook's tensor, batch excluded
    idx: tuple[Any, ...] = (slice(None), slice(None) if positions is None else positions, *site.unit)
    if positions is not None and isinstance(site.unit[0], list):
        # Positions x neurons as a grid, not as pairs (advanced indexing pairs up lists).
        idx = (slice(None), torch.tensor(positions)[:, None], torch.tensor(site.unit[0])[None, :])

    def hook(x: torch.Tensor, _hp: HookPoint) -> torch.Tensor:
        if positions is not None and x.shape[1 + pos_dim] != n:
            return x  # a generation step after the prompt: explicit positions are the prompt's
        x = x.clone()
        view = x if row_idx is None else x[row_idx]
        if pair:
            lead: tuple[Any, ...] = (slice(None), *site.lead)
            sel = view[lead]  # (batch, pos, kv_pos)
            pos = slice(None) if positions is None else positions
            before = sel[:, pos]
            before[..., site.unit[0]] = _apply(op, before[..., site.unit[0]], value)
            if renorm:
                before = before / before.sum(-1, keepdim=True).clamp_min(1e-12)
            sel[:, pos] = before
            view[lead] = sel
        else:
            view[idx] = _apply(op, view[idx], value)
        if row_idx is not None:
            x[row_idx] = view
        return x

    return site.point, hook


def _op_value(model: HookedDecoder, t: AnyTarget, op: AnyOp, site: Site, n: int) -> torch.Tensor | None:
    """The tensor an op needs (set/add values, means, resampled activations, steering vectors),
    shaped to broadcast."""
    if isinstance(op, Zero | Scale | DatasetMean):
        return None
    if isinstance(op, Steer):
        return steering_vector(model, op, site)
    if isinstance(op, Set | Add):
        vals = [op.value] if isinstance(op.value, float | int) else list(op.value)
        n_units = len(site.unit[0]) if isinstance(site.unit[0], list) else 1
        if len(vals) not in (1, site.width * (n_units if site.width == 1 else 1)):
            raise InputError(
                f"op.value has {len(vals)} entries; expected 1 or {site.width} (the target's width)"
            )
        return torch.tensor(vals, dtype=model.dtype, device=model.device)
    with torch.no_grad():
        if isinstance(op, Mean):
            tokens, mask = model.to_tokens(op.reference)
            acts = _capture(model, site.point, tokens, mask)
            keep = torch.ones(tokens.shape, dtype=torch.bool) if mask is None else mask.bool().cpu()
            flat = acts[keep.to(acts.device)]  # (tokens, ...)
            return flat[(slice(None), *site.unit)].mean(0)
        tokens, _ = model.to_tokens(op.prompt)
        acts = _capture(model, site.point, tokens, None)[0]  # (pos, ...)
        m = tokens.shape[1]
        positions = _positions(t.positions, n)
        src = list(range(n)) if positions is None else positions
        other = [p - n + m for p in src]  # aligned on the last tokens
        if any(not 0 <= p < m for p in other):
            raise InputError(
                f"op.prompt has {m} tokens; aligned on the last token it does not cover positions {src}"
            )
        if positions is None and m != n:
            raise InputError(f"resampling every position needs prompts of equal length ({n} vs {m} tokens)")
        return acts[other][(slice(None), *site.unit)]


def _capture(
    model: HookedDecoder, point: str, tokens: torch.Tensor, mask: torch.Tensor | None
) -> torch.Tensor:
    """One hook point's activation on ``tokens`` (batch, pos, ...)."""
    got: dict[str, torch.Tensor] = {}

    def keep(x: torch.Tensor, _hp: HookPoint) -> None:
        got["x"] = x.detach()

    with model.hooks(fwd=[(point, keep)]):
        model(tokens, attention_mask=mask)
    return got["x"]


def _apply(op: AnyOp, x: torch.Tensor, value: torch.Tensor | None) -> torch.Tensor:
    if isinstance(op, Zero):
        return torch.zeros_like(x)
    if isinstance(op, Scale):
        return x * op.factor
    assert value is not None
    if isinstance(op, Add | Steer):
        return x + value
    return value.expand_as(x)


def steering_vector(model: HookedDecoder, op: Steer, site: Site | None = None) -> torch.Tensor:
    """``op.coefficient`` x its direction (d_model,), checked against ``site`` when given: steering
    adds to a value that is a residual-stream vector."""
    d_model = model.cfg.d_model
    if site is not None and (site.pair or site.width != d_model):
        raise InputError(
            f"op 'steer' adds a d_model ({d_model}) vector; this target's value has {site.width} "
            "entries: steer the residual stream, a layer's output or the embedding, or use 'add'"
        )
    src = op.direction
    if isinstance(src, VectorSource):
        if len(src.vector) != d_model:
            raise InputError(
                f"op.direction.vector has {len(src.vector)} entries; expected d_model = {d_model}"
            )
        vec = torch.tensor(src.vector, dtype=torch.float32)
    else:
        try:
            with torch.no_grad():
                vec = write_direction(model, src.node, src.prompt).detach().cpu()
        except InputError as e:
            raise InputError(f"op.direction.node: {e}") from None
    if op.normalize:
        norm = float(vec.norm())
        if norm == 0:
            raise InputError("op.direction is the zero vector: it has no direction to normalize")
        vec = vec / norm
    return (op.coefficient * vec).to(dtype=model.dtype, device=model.device)


MeanOf = Callable[[str, int, int], float]
"""``mean_of(kind, layer, index)``: a unit's mean activation over a collated dataset (layer 0 for
kinds without layers), e.g. from :meth:`mechscope.data.store.Dataset.stats`."""


def dataset_mean_units(model: HookedDecoder, t: AnyTarget) -> list[int]:
    """The unit indices a dataset mean of ``t`` sets, after checking that the kind's activation
    (what collation averages: ``Kind.hook`` then ``Kind.activations``) is the very scalar its
    intervention site edits; decided from the kind's fields, so a new kind needs no edit here."""
    if isinstance(t, ResidualTarget):
        raise InputError(
            "op 'dataset_mean' applies to node kinds with one scalar per unit, not the residual stream"
        )
    site = _site(model, t)
    kind = get_kind(t.kind, model)
    layer = t.layer if t.layer is not None else 0
    why = None
    if kind.collation is None:
        why = "it is not collated into datasets"
    elif site.pair or t.key is not None:
        why = "a (query, key) pair is not a collated unit"
    elif site.width != 1 or site.lead or len(site.unit) != 1:
        why = f"its intervention site edits a {site.width}-entry value per unit, not one scalar"
    elif site.point != kind.hook(layer):
        why = f"its intervention site ({site.point}) is not the tensor its activation is read from"
    else:
        # The activation must be the hook tensor's own entry (not a norm or other function of it).
        probe = torch.randn(1, 2, kind.size(model.cfg), generator=torch.Generator().manual_seed(0))
        try:
            same = torch.equal(kind.activations(probe), probe)
        except (RuntimeError, IndexError, ValueError):
            same = False
        if not same:
            why = "its activation is a function of the tensor its intervention site edits"
    if why is not None:
        raise InputError(f"op 'dataset_mean' is not defined for kind {kind.name}: {why}")
    idx = site.unit[0]
    assert isinstance(idx, list | int)
    return [idx] if isinstance(idx, int) else list(idx)


def takes_dataset_mean(model: HookedDecoder, kind_name: str) -> bool:
    """Whether units of a kind can be set to their dataset mean (:func:`dataset_mean_units` accepts
    its first unit): what ``GET /api/model`` tells the intervention editor."""
    kind = get_kind(kind_name, model)
    if kind.unit is None or kind.size(model.cfg) == 0:
        return False
    target = NodeTarget(kind=kind.name, layer=0 if kind.layered else None, index=0)
    try:
        dataset_mean_units(model, target)
    except InputError:
        return False
    return True


def resolve_dataset_means(
    model: HookedDecoder, interventions: Sequence[Intervention], mean_of: MeanOf | None
) -> list[Intervention]:
    """``interventions`` with every ``dataset_mean`` op replaced by ``set`` to the units' dataset
    means; ``mean_of`` None (no dataset loaded) refuses them."""
    out = []
    for i, iv in enumerate(interventions):
        if not isinstance(iv.op, DatasetMean):
            out.append(iv)
            continue
        try:
            if mean_of is None:
                raise InputError("op 'dataset_mean' needs a collated dataset, and none is loaded")
            units = dataset_mean_units(model, iv.target)
            assert isinstance(iv.target, NodeTarget)
            layer = iv.target.layer if iv.target.layer is not None else 0
            values = [float(mean_of(iv.target.kind, layer, u)) for u in units]
        except InputError as e:
            raise InputError(f"interventions[{i}]: {e}") from None
        out.append(iv.model_copy(update={"op": Set(value=values[0] if len(values) == 1 else values)}))
    return out
