"""The node-kind record: everything the engine, collation, the server and the web app need to
know about one kind of node, as plain functions and values.

One kind lives in one file of this package (neuron.py, head.py, layer_output.py, embedding.py),
which builds a :class:`Kind` and registers it; nothing outside the package branches on a kind's
name. There is deliberately no class hierarchy and no enum of derived quantities: a new metric
is a field here and one function per kind, and a new kind is one file and one registry line.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from mechscope.errors import InputError

if TYPE_CHECKING:
    from mechscope.engine.metrics import Context, KindMetrics
    from mechscope.engine.objective import Objective
    from mechscope.models.config import ModelConfig
    from mechscope.models.decoder import HookedDecoder
    from mechscope.models.weights import Reader

Coords = tuple[str, ...]
"""Names of a metric tensor's dimensions, as :class:`~mechscope.engine.nodes.Node` fields:
``("layer", "token", "index")`` says entry ``[l, t, i]`` is the node ``L{l}.kind.{i}@{t}``."""


@dataclass(frozen=True)
class Site:
    """Where an intervention edits a unit: a hook point and how to index the unit in its tensor.

    The tensor is indexed ``x[batch, *lead, positions, *unit]``; ``width`` is the size of one
    unit's value (1 for a scalar, d_head for a head's output, d_model for a layer's write).
    """

    point: str
    unit: tuple[int | list[int] | slice, ...]
    width: int
    lead: tuple[int, ...] = ()  # indices before the position dimension (a head in a pattern)
    pair: bool = False  # the unit is one attention probability: only zero, set and scale apply


@dataclass(frozen=True)
class Trace:
    """How a node's own activation becomes a direction of interest (tracing upstream).

    ``objective(model, prompt_ids, node, through, downstream, freeze)`` builds the objective;
    ``through`` lists the choices for a unit node and ``pair_through`` for a (query, key) pair,
    each ``(value or None for the default, short label)``, the default first.
    """

    objective: Callable[..., Objective]
    through: tuple[tuple[str | None, str], ...]
    pair_through: tuple[tuple[str | None, str], ...] = ()


@dataclass(frozen=True)
class Collation:
    """How collation reads a kind's units: the hook points it stashes per layer (the last one
    triggers ``feed``) and the function from them to (batch, pos, unit) activations, plus, for
    kinds with pairs, each query's strongest key, and the density counts when they are not
    "activation > 0"."""

    points: Callable[[int], list[str]]
    feed: Callable[
        [HookedDecoder, int, dict[str, torch.Tensor]],
        tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None],
    ]
    density: str  # what the dataset's density column means for this kind (docs and schema)
    density_positive: bool = True  # density = fraction of tokens with activation > 0


@dataclass(frozen=True)
class TokenRow:
    """One row of the Debugger's token-effects heatmap: per prompt token, summed over nodes."""

    name: str
    label: str
    help: str
    direct: list[float]
    total: list[float]


@dataclass(frozen=True)
class Kind:
    """One kind of node. Fields that are None mark what the kind does not support."""

    name: str  # as in node strings: L3.{name}.12@5
    label: str  # for people: "MLP neuron"
    value_label: str  # what its activation is, for people: "neuron activation", "head output norm |z|"
    group: str  # the node table's filter group of its unit nodes (a name that URLs keep)
    layered: bool  # nodes have a layer
    unit: str | None  # noun of one index ("neuron"); None when nodes have no index
    size: Callable[[ModelConfig], int]  # indices per layer (1 when nodes have no index)
    rank: Callable[[int], int]  # residual rank of the write of layer l's nodes (see objective.py)
    hook: Callable[[int], str]  # hook point whose tensor defines the activations of layer l
    activations: Callable[
        [torch.Tensor], torch.Tensor
    ]  # tensor at ``hook`` (..., pos, ...) -> (..., pos, unit)
    points: Callable[[HookedDecoder], tuple[list[str], list[str]]]  # activations, gradients the metrics read
    metrics: Callable[[Context], KindMetrics]
    coords: Coords  # dimensions of its metric tensors
    site: Callable[[HookedDecoder, int | None, int | list[int] | None, int | None], Site]
    trace: Trace | None = None
    pairs: bool = False  # nodes may carry a key: a (query, key) pair of an attention head
    pair_coords: Coords = ()  # dimensions of its pair metric tensors
    pair_group: str | None = None
    group_label: str | None = None  # how the filter shows ``group`` (default: the name)
    pair_group_label: str | None = None
    pattern_point: Callable[[int], str] | None = None  # (batch, unit, pos, kv_pos) attention of layer l
    pair_view: Callable[..., Any] | None = None  # one unit's (query, key) view on a sequence
    write: Callable[..., torch.Tensor] | None = None  # (model, node, ids | None) -> (d_model,) write
    write_needs_prompt: bool = False  # what it writes depends on the prompt (a head's values)
    # (model, layer | None, index) -> how a unit reads the residual stream (its driving tokens)
    reader: Callable[[HookedDecoder, int | None, int], Reader] | None = None
    collation: Collation | None = None
    token_rows: Callable[[KindMetrics], list[TokenRow]] = field(default=lambda _m: [])
    # ``points`` for a run that interventions edit, where the metrics cannot rebuild what they
    # need from ``points`` (None: ``points`` serve both)
    edited_points: Callable[[HookedDecoder], tuple[list[str], list[str]]] | None = None
    default: bool = True  # scored by attribute() when the caller names no kinds
    verify: bool = False  # verified by default: fine-grained enough for zero-ablation to be local


# ----- the registry -----------------------------------------------------------------------------
_REGISTRY: dict[str, Kind] = {}


def register(kind: Kind) -> Kind:
    """Add a kind to every model's kinds (the built-ins are registered in ``kinds/__init__.py``)."""
    if not kind.name.isidentifier() or not kind.name.islower():
        raise ValueError(f"kind name {kind.name!r} must be a lower-case identifier")
    if kind.name in _REGISTRY:
        raise ValueError(f"a node kind named {kind.name!r} is registered already")
    _REGISTRY[kind.name] = kind
    return kind


def unregister(name: str) -> None:
    """Remove a registered kind (tests that register toy kinds clean up with this)."""
    _REGISTRY.pop(name, None)


SplicedKind = Callable[[Any, str, str], Kind]
"""``factory(module, point, name) -> Kind``: the node kind of a module spliced at ``point`` as ``name``."""
_SPLICED: dict[type, SplicedKind] = {}


def register_spliced(module_type: type, factory: SplicedKind) -> None:
    """Spliced modules of ``module_type`` contribute a node kind each (a dictionary's latents:
    ``kinds/latent.py``)."""
    _SPLICED[module_type] = factory


def unregister_spliced(module_type: type) -> None:
    _SPLICED.pop(module_type, None)


def kinds_of(model: HookedDecoder | None = None) -> list[Kind]:
    """Every kind of node ``model`` has: the registered ones, then one per spliced module whose
    type has a kind factory (:func:`register_spliced`), in forward order."""
    out = list(_REGISTRY.values())
    if model is not None:
        for point, name, module in model.splices():
            factory = next((f for t, f in _SPLICED.items() if isinstance(module, t)), None)
            if factory is not None:
                out.append(factory(module, point, name))
    return out


def get_kind(name: str, model: HookedDecoder | None = None) -> Kind:
    """The kind called ``name``, or an :class:`InputError` listing the kinds there are."""
    for kind in kinds_of(model):
        if kind.name == name:
            return kind
    allowed = ", ".join(k.name for k in kinds_of(model))
    raise InputError(f"unknown node kind {name!r}; allowed: {allowed}")
