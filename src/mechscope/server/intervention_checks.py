"""Interventions of a request, checked and made runnable before any model work is queued.

Beyond :func:`mechscope.server.limits.interventions` (counts, kinds, reference prompts), a steering
vector must have d_model entries and a node write's prompt must fit the prompt limit, and a dataset
mean is looked up in the served collated dataset here: the engine never reads datasets, and the
cache key of the request must hold the means it ran with (a running collation's preview changes).
"""

from __future__ import annotations

from collections.abc import Sequence

from mechscope.engine.interventions import (
    Intervention,
    MeanOf,
    NodeWriteSource,
    Steer,
    VectorSource,
    resolve_dataset_means,
)
from mechscope.errors import InputError
from mechscope.server import limits
from mechscope.server.deps import ServerState
from mechscope.server.errors import FieldError


def prepared(state: ServerState, ivs: Sequence[Intervention], field: str) -> list[Intervention]:
    """``ivs`` checked against the limits, with dataset means resolved to ``set`` ops."""
    model, lim = state.model, state.settings.limits
    limits.interventions(model, ivs, field, lim)
    d_model = model.cfg.d_model
    for i, iv in enumerate(ivs):
        if not isinstance(iv.op, Steer):
            continue
        src, f = iv.op.direction, f"{field}[{i}].op.direction"
        if isinstance(src, VectorSource) and len(src.vector) != d_model:
            raise FieldError(
                f"{f}.vector", f"{f}.vector has {len(src.vector)} entries; expected d_model = {d_model}"
            )
        if isinstance(src, NodeWriteSource) and src.prompt is not None:
            limits.prompt_tokens(model, src.prompt, f"{f}.prompt", lim)
    if not any(iv.op.kind == "dataset_mean" for iv in ivs):
        return list(ivs)
    ds = state.datasets.dataset()
    mean_of: MeanOf | None = None
    if ds is not None:

        def mean_of(kind: str, layer: int, index: int) -> float:
            ds.check_node(kind, layer, index)
            rows = ds.query(
                "SELECT mean FROM nodes WHERE kind = ? AND layer = ? AND unit = ?", [kind, layer, index]
            )
            return float(rows[0]["mean"])

    try:
        return resolve_dataset_means(model, ivs, mean_of)
    except InputError as e:
        # "interventions[i]: ..." -> the request's own field name
        msg = str(e).replace("interventions[", f"{field}[", 1)
        raise FieldError(msg.split(":", 1)[0] + ".op", msg) from None
