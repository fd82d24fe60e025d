"""Collated datasets: a node's top, random and quantile examples and statistics, a head's pattern on
one window; token and text search."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from fastapi import APIRouter

from mechscope.engine.kinds import Kind, kinds_of
from mechscope.engine.lens import node_tokens, unit_activations
from mechscope.engine.nodes import Node
from mechscope.server import limits
from mechscope.server.deps import State
from mechscope.server.errors import FieldError
from mechscope.server.schemas import (
    DatasetNode,
    DatasetNodeRequest,
    DatasetStatus,
    Example,
    HeadPattern,
    NodeStats,
    PatternRequest,
    SearchHit,
    SearchRequest,
    TokenNode,
    TokenNodesRequest,
)

if TYPE_CHECKING:
    from mechscope.data.store import Dataset
    from mechscope.models.decoder import HookedDecoder

router = APIRouter(tags=["datasets"])


def status(state: State) -> DatasetStatus:
    src = state.datasets
    p = src.progress()
    ds = src.dataset()
    meta = ds.meta() if ds is not None else {}
    return DatasetStatus(
        status=str(p["status"]),
        fraction=float(p.get("fraction", 0.0)),  # type: ignore[arg-type]
        tokens_done=int(p.get("tokens_done", 0)),  # type: ignore[call-overload]
        tokens_total=int(p.get("tokens_total", 0)),  # type: ignore[call-overload]
        preview_tokens=p.get("preview_tokens") if ds is not None and ds.is_preview else None,  # type: ignore[arg-type]
        corpus=meta.get("corpus"),
        attribution=meta.get("attribution"),
    )


@router.get("/dataset")
def dataset_status(state: State) -> DatasetStatus:
    """Which collated dataset the node pages read, and how far its collation got."""
    return status(state)


def _examples(rows: list[dict[str, Any]]) -> list[Example]:
    return [Example.model_validate({**r, "tokens": list(r["tokens"])}) for r in rows]


def _fill_acts(model: HookedDecoder, ds: Dataset, req: DatasetNodeRequest, examples: list[Example]) -> None:
    """Quantile samples are stored without per-token values: recompute them with one forward."""
    todo = [e for e in examples if e.acts is None]
    if not todo:
        return
    windows = ds.windows([e.window_id for e in todo])
    rows = [windows[e.window_id]["token_ids"] for e in todo]
    acts = unit_activations(model, req.kind, req.layer, req.index, rows)  # (window, pos)
    for e, a in zip(todo, acts, strict=True):
        e.acts = [float(v) for v in a]


@router.post("/dataset/node")
async def dataset_node(req: DatasetNodeRequest, state: State) -> DatasetNode:
    """A node's collated examples (top, random, by quantile) and activation statistics; only the
    status while the dataset is not ready."""
    st = status(state)
    ds = state.datasets.dataset()
    if ds is None:
        return DatasetNode(status=st)
    ds.check_node(req.kind, req.layer, req.index)

    def work() -> DatasetNode:
        assert ds is not None
        quantile = _examples(ds.samples(req.kind, req.layer, req.index, "quantile"))
        _fill_acts(state.model, ds, req, quantile)
        return DatasetNode(
            status=st,
            stats=NodeStats.model_validate(ds.stats(req.kind, req.layer, req.index)),
            top=_examples(ds.top_examples(req.kind, req.layer, req.index, req.n)),
            random=_examples(ds.samples(req.kind, req.layer, req.index, "random")),
            quantile=quantile,
        )

    # The key names the database read: a preview's answer must not outlive the preview.
    key = f"dataset-node:{st.status}:{st.preview_tokens}:" + req.model_dump_json()
    result, _ = await state.worker.run(key, work)
    return result


@router.post("/dataset/pattern")
async def dataset_pattern(req: PatternRequest, state: State) -> HeadPattern:
    """A head on one dataset window (one forward): its attention (query x key), each pair's write,
    the marked query's strongest key, and what the head's write there promotes and suppresses."""

    ds = _ready(state)
    lim = state.settings.limits
    kind = _pattern_kind(state.model, req.kind)
    limits.unit(state.model, kind.name, req.layer, req.head, ("layer", "head"))
    limits.at_most(req.k, lim.max_k, "k", "max_k")
    window = ds.windows([req.window_id]).get(req.window_id)
    if window is None:
        n = int(ds.meta().get("n_windows", 0))
        raise FieldError("window_id", f"window_id {req.window_id} is not in the dataset (windows 0..{n - 1})")
    ids: list[int] = window["token_ids"]
    if len(ids) > lim.max_prompt_tokens:
        raise FieldError(
            "window_id",
            f"window {req.window_id} has {len(ids)} tokens; the limit is {lim.max_prompt_tokens} (max_prompt_tokens)",
        )
    if req.query is not None and req.query >= len(ids):
        raise FieldError("query", f"query {req.query} is past the window's last position {len(ids) - 1}")

    def work() -> HeadPattern:
        assert kind.pair_view is not None
        pairs = kind.pair_view(state.model, ids, req.layer, req.head)
        q = req.query if req.query is not None else _peak(pairs.z_norm)
        node = Node(kind=kind.name, layer=req.layer, index=req.head, token=q)
        return HeadPattern(
            window_id=req.window_id,
            tokens=window["tokens"],
            query=q,
            key=int(pairs.write[q, : q + 1].argmax()),
            activation=pairs.z_norm.tolist(),
            pattern=[row[: i + 1].tolist() for i, row in enumerate(pairs.pattern)],
            write=[row[: i + 1].tolist() for i, row in enumerate(pairs.write)],
            output=node_tokens(state.model, node, torch.tensor([ids]), req.k),
        )

    result, _ = await state.worker.run(f"dataset-pattern:{ds.is_preview}:" + req.model_dump_json(), work)
    return result


def _pattern_kind(model: HookedDecoder, name: str | None) -> Kind:
    """The kind a pattern request names, or the model's first kind with a (query, key) view."""
    have = [k for k in kinds_of(model) if k.pair_view is not None]
    for k in have:
        if name is None or k.name == name:
            return k
    raise FieldError(
        "kind", f"kind {name!r} has no (query, key) view; kinds with one: {', '.join(k.name for k in have)}"
    )


def _peak(values: torch.Tensor) -> int:
    """The peak over the stream tokens: position 0, the start token, is left out as in collation."""
    return 1 + int(values[1:].argmax()) if len(values) > 1 else 0


@router.post("/dataset/token")
def dataset_token(req: TokenNodesRequest, state: State) -> list[TokenNode]:
    """Nodes whose top examples peak on a token (its id, or its text ignoring case and spaces)."""
    ds = _ready(state)
    return [TokenNode.model_validate(r) for r in ds.nodes_for_token(req.token, req.n)]


@router.post("/dataset/search")
def dataset_search(req: SearchRequest, state: State) -> list[SearchHit]:
    """Corpus windows containing the text, with the nodes that have them as top examples."""
    ds = _ready(state)
    return [SearchHit.model_validate(r) for r in ds.search(req.text, req.n)]


def _ready(state: State) -> Dataset:
    ds = state.datasets.dataset()
    if ds is None:
        raise FieldError("dataset", f"no collated dataset yet ({status(state).status}); see GET /api/dataset")
    return ds
