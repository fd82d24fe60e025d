"""Collated datasets: a node's top, random and quantile examples and statistics; token and text search."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from fastapi import APIRouter

from mechscope.server.deps import State
from mechscope.server.schemas import (
    DatasetNode,
    DatasetNodeRequest,
    DatasetStatus,
    Example,
    NodeStats,
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
    rows = ds.query(
        "SELECT window_id, token_ids FROM windows WHERE window_id IN ?", [[e.window_id for e in todo]]
    )
    ids = {r["window_id"]: list(r["token_ids"]) for r in rows}
    tokens = torch.tensor([ids[e.window_id] for e in todo])
    point = f"blocks.{req.layer}.mlp.post" if req.kind == "mlp_neuron" else f"blocks.{req.layer}.attn.z"
    with torch.no_grad():
        _, cache = model.run_with_cache(tokens, names=[point])
    x = cache[point][:, :, req.index].float()  # (window, pos) or (window, pos, d_head)
    acts = x if req.kind == "mlp_neuron" else x.norm(dim=-1)
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

    result, _ = await state.worker.run("dataset-node:" + req.model_dump_json(), work)
    return result


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
    from mechscope.server.errors import FieldError

    ds = state.datasets.dataset()
    if ds is None:
        raise FieldError("dataset", f"no collated dataset yet ({status(state).status}); see GET /api/dataset")
    return ds
