"""The attribution graph's requests and responses (``/api/graph*``)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from mechscope.server.schemas import Int, Token, _Request


class GraphRequest(_Request):
    """One attribution graph: its prompt, the logit it explains and how it is pruned."""

    prompt: str = Field(min_length=1, max_length=20_000)
    target: Token | None = Field(
        default=None,
        description="the output token to explain (text: its first token; or an id); default: the "
        "top logits up to 95% probability, at most 10",
    )
    max_features: Int | None = Field(
        default=None, ge=0,
        description="latents whose inputs are computed; default 4096, or max_graph_features when lower",
    )  # fmt: skip
    node_threshold: float = Field(default=0.8, gt=0, le=1, description="node influence kept by pruning")
    edge_threshold: float = Field(default=0.98, gt=0, le=1, description="edge influence kept by pruning")


class GraphNode(BaseModel):
    id: str = Field(
        description="unique in the graph: Neuronpedia's node id (latent L_index_pos, token E_id_pos, logit "
        "(n_layers+1)_id_pos) except errors, err_L_pos (Neuronpedia's 0_L_pos can be a layer-0 latent's)"
    )
    number: int = Field(
        description="the node's number in the graph, for /api/graph/check and /api/graph/edge"
    )
    type: Literal["latent", "error", "token", "logit"]
    layer: int | None = Field(description="block of a latent or error; None for tokens and logits")
    pos: int
    index: int | None = Field(description="latent index, token id of a token or logit")
    kind: str | None = Field(description="a latent's node kind (its node page); None otherwise")
    activation: float | None
    influence: float = Field(description="influence on the logits (logits: their weight)")
    label: str
    probability: float | None = Field(description="a logit's probability")


class GraphLink(BaseModel):
    source: str
    target: str
    weight: float


class GraphScores(BaseModel):
    replacement: float
    completeness: float
    pruned_replacement: float = Field(description="the pruned graph's, pruned latents counted as error")
    pruned_completeness: float


class GraphResponse(BaseModel):
    prompt_tokens: list[str]
    tokens: list[int]
    n_layers: int
    nodes: list[GraphNode]
    links: list[GraphLink]
    scores: GraphScores
    kept_node_influence: float
    kept_edge_influence: float
    active_features: int = Field(description="active latents on the prompt")
    visited_features: int = Field(description="latents whose inputs were computed (at most max_features)")
    timings: dict[str, float] = Field(description="seconds by phase")
    elapsed_ms: float
    cached: bool = False


class GraphCheckRequest(GraphRequest):
    nodes: list[str] = Field(default_factory=list, max_length=100,
                             description="node ids (latents, errors); empty: the 20 most influential latents")  # fmt: skip
    factor: float = Field(default=0.0, ge=-10, le=10, description="scale each node by this (0: ablate)")


class GraphCheckRow(BaseModel):
    id: str
    predicted: float
    measured: float


class GraphCheckResponse(BaseModel):
    target: str = Field(description="the logit whose change is compared (minus the mean logit)")
    factor: float
    rows: list[GraphCheckRow]
    together_predicted: float
    together_measured: float
    pearson: float | None
    spearman: float | None


class GraphEdgeRequest(GraphRequest):
    source: str = Field(description="the edge's source node id")
    sink: str = Field(description="the edge's target node id")


class PairShareOut(BaseModel):
    query: int
    key: int
    share: float
    trace: str | None = Field(description="the Debugger's node of this (query, key) pair")


class HeadShareOut(BaseModel):
    layer: int
    head: int
    share: float
    pairs: list[PairShareOut]


class GraphEdgeResponse(BaseModel):
    source: str
    sink: str
    weight: float
    through_attention: float
    heads: list[HeadShareOut]


class GraphExportRequest(GraphRequest):
    pinned: list[str] = Field(default_factory=list, max_length=1000, description="node ids (GraphNode.id)")
    supernodes: list[list[str]] = Field(
        default_factory=list,
        max_length=200,
        description="[label, *node ids] each, as Neuronpedia writes them",
    )
    slug: str = Field(default="mechscope-graph", pattern=r"^[A-Za-z0-9_.-]{1,100}$")
