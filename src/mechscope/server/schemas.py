"""Request and response bodies of the HTTP API (its OpenAPI schema is generated from these).

Responses reuse the engine's own pydantic models (``AttributionSummary``, ``ComparisonSummary``,
``PatchingResult``, ...), so the library, the API and the generated TypeScript client share one
vocabulary.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, Strict, field_validator, model_validator
from pydantic_core import PydanticCustomError

from mechscope.engine.attribution import AttributionSummary
from mechscope.engine.compare import CandidatePair, NodePair
from mechscope.engine.directions import LogitDiff
from mechscope.engine.interventions import Intervention
from mechscope.engine.lens import NodeActivations, NodeTokens
from mechscope.engine.nodes import Node
from mechscope.engine.patching import PatchSite
from mechscope.server.direction_schemas import DebugDirection
from mechscope.server.settings import Limits

Int = Annotated[int, Strict()]
"""An integer that must be a JSON integer: ``false`` and ``"3"`` are not integers."""


def _unusable(value: Any, path: str) -> str | None:
    """Where the raw request holds a value no field may take: a NaN or infinite number (JSON has
    neither; Python's parser reads NaN, Infinity and 1e999), or a lone UTF-16 surrogate, which no
    text encoding can carry (``"\\ud800"`` in JSON)."""
    if isinstance(value, float) and not math.isfinite(value):
        return f"{path or 'body'}: {value} is not a finite number"
    if isinstance(value, str):
        if any("\ud800" <= ch <= "\udfff" for ch in value):
            return f"{path or 'body'}: the text holds a lone surrogate (an unpaired \\ud800-\\udfff escape)"
        return None
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for k, v in items:
        found = _unusable(v, f"{path}[{k}]" if isinstance(k, int) else f"{path}.{k}" if path else str(k))
        if found:
            return found
    return None


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _finite_and_encodable(cls, data: Any) -> Any:
        # Walks the raw body, nested engine models (interventions, nodes) included.
        found = _unusable(data, "")
        if found:
            raise PydanticCustomError("unusable_value", found)
        return data


Token = str | Int
"""A continuation as text (tokenised without BOS) or as one token id."""


class ThroughChoice(BaseModel):
    through: str | None  # None: the kind's default
    label: str


class KindInfo(BaseModel):
    """One node kind of the served model, as the registry describes it (the web app reads these
    instead of spelling kinds)."""

    name: str
    label: str
    value_label: str = Field(description="what its activation is, for people")
    group: str = Field(description="the node table's filter group of its unit nodes")
    group_label: str = Field(description="how the node table's filter names the group")
    pair_group: str | None = Field(description="filter group of its (query, key) pair nodes; None: no pairs")
    pair_group_label: str | None
    layered: bool
    unit: str | None = Field(description="noun of one index; None when nodes have no index")
    size: int | None = Field(description="indices per layer; None when nodes have no index")
    pairs: bool
    through: list[ThroughChoice] = Field(
        description="trace choices of a unit node, default first; []: not traceable"
    )
    pair_through: list[ThroughChoice]
    weight_tokens: bool = Field(description="POST /api/node/tokens answers from the weights alone")
    prompt_tokens: bool = Field(description="POST /api/node returns promoted/suppressed tokens")
    collated: bool = Field(description="collated datasets hold its examples")
    dataset_mean: bool = Field(
        description="an intervention can set its units to their dataset mean (op dataset_mean)"
    )
    pattern: bool = Field(description="it has a query x key view (/api/dataset/pattern)")
    default: bool = Field(description="scored by /api/debug when the request names no kinds")


class ModelInfo(BaseModel):
    name: str
    architecture: str
    weights: str
    n_layers: int
    n_heads: int
    n_kv_heads: int
    d_model: int
    d_mlp: int
    d_vocab: int
    n_ctx: int
    adds_bos: bool = Field(
        description="the tokenizer prepends a BOS token to every prompt (positions count it)"
    )
    kinds: list[KindInfo]
    limits: Limits


class TokenizeRequest(_Request):
    text: str = Field(max_length=20_000)
    add_bos: bool | None = Field(
        default=None, description="None: as the model tokenises a prompt (what /api/debug runs)"
    )


class TokenInfo(BaseModel):
    id: int
    token: str


class TokenizeResponse(BaseModel):
    tokens: list[TokenInfo]


class Trace(_Request):
    """Explain a node's activation instead of the logit difference (the trace banner)."""

    node: Node
    through: str | None = Field(default=None, max_length=32, description="one of the kind's trace choices")
    downstream: Node | None = None


class DebugRequest(_Request):
    """Everything the Debugger page asks: one prompt explained, or two runs side by side.

    The left pane is always ``prompt`` unedited. A right pane appears when ``interventions`` or
    ``prompt2`` is given: ``prompt2`` (or ``prompt`` again) with the interventions applied, whose
    positions therefore refer to the right prompt.

    What is explained: the logit difference of ``targets`` vs ``distractors`` (the default), a
    traced node's activation (``trace``), or another ``direction`` (a continuation's log-prob, a
    probe); exactly one of the three.
    """

    prompt: str = Field(min_length=1, max_length=20_000)
    prompt2: str | None = Field(default=None, min_length=1, max_length=20_000)
    targets: list[Token] = Field(
        default_factory=list, description="empty only when tracing or with a direction"
    )
    distractors: list[Token] = Field(default_factory=list)
    position: Int = Field(default=-1, description="prompt position whose next token is scored (or probed)")
    trace: Trace | None = None
    direction: DebugDirection | None = Field(
        default=None, description="explain this instead of the logit difference; None: the logit difference"
    )
    interventions: list[Intervention] = Field(default_factory=list)
    kinds: list[str] | None = Field(
        default=None, min_length=1, max_length=64, description="node kinds to score; None: the default kinds"
    )
    k: Int = Field(default=10, ge=1, description="top nodes per kind and metric")
    freeze_norm_scale: bool = True
    align: Literal["last"] | list[tuple[Int, Int]] = "last"


class DebugResponse(BaseModel):
    left: AttributionSummary
    right: AttributionSummary | None = None
    value_diff: float | None = None  # right - left
    alignment: list[tuple[int, int]] | None = None
    candidates: list[CandidatePair] | None = None  # both sides' candidates, scored on both
    nodes: list[NodePair] | None = None  # both sides' top nodes, paired through the alignment
    elapsed_ms: float
    cached: bool = False


class VerifyRequest(DebugRequest):
    """Ablate the top nodes of the run the node table shows (the right pane when there is one)."""

    top_n: Int = Field(default=20, ge=1)


class NodeRequest(_Request):
    prompt: str = Field(min_length=1, max_length=20_000)
    node: Node
    k: Int = Field(default=10, ge=1, description="promoted / suppressed / driving tokens")


class NodeTokensRequest(_Request):
    """A neuron's output and input tokens from the weights alone: no prompt."""

    kind: str = Field(pattern=r"^[a-z][a-z0-9_]*$", description="a kind with weight_tokens (GET /api/model)")
    layer: Int = Field(ge=0)
    index: Int = Field(ge=0)
    k: Int = Field(default=10, ge=1, description="promoted / suppressed / driving tokens")


class NodeDetail(BaseModel):
    label: str
    activations: NodeActivations
    tokens: NodeTokens | None  # None for kinds with no per-unit output direction


class LensRequest(_Request):
    prompt: str = Field(min_length=1, max_length=20_000)
    k: Int = Field(default=5, ge=1)


class PatchPairRequest(_Request):
    """A clean and a corrupted prompt, what to score, and the site to patch: what every patching
    route takes."""

    clean: str = Field(min_length=1, max_length=20_000)
    corrupted: str = Field(min_length=1, max_length=20_000)
    targets: list[Token] = Field(min_length=1)
    distractors: list[Token] = Field(default_factory=list)
    site: PatchSite = "resid_pre"

    def direction(self) -> LogitDiff:
        """The logit difference the patching metric scores."""
        return LogitDiff(
            targets=[[t] if isinstance(t, int) else t for t in self.targets],
            distractors=[[t] if isinstance(t, int) else t for t in self.distractors],
        )


class PatchRequest(PatchPairRequest):
    method: Literal["activation", "attribution"] = "attribution"


MIN_TEMPERATURE = 0.01
MIN_TOP_P = 1e-3


class GenerateRequest(_Request):
    prompt: str = Field(min_length=1, max_length=20_000)
    max_new_tokens: Int = Field(default=32, ge=0)
    temperature: float = Field(
        default=0.0, ge=0, le=100, description=f"0: greedy; else at least {MIN_TEMPERATURE} (sampling)"
    )
    top_k: Int | None = Field(default=None, ge=1)
    top_p: float | None = Field(default=None, ge=MIN_TOP_P, le=1)
    seed: Int | None = Field(default=None, ge=0, le=2**63 - 1)
    interventions: list[Intervention] = Field(default_factory=list)

    @field_validator("temperature")
    @classmethod
    def _greedy_or_sampling(cls, t: float) -> float:
        # Dividing the logits by a tiny temperature overflows float32 to inf, and sampling fails.
        if 0 < t < MIN_TEMPERATURE:
            raise ValueError(f"temperature must be 0 (greedy) or at least {MIN_TEMPERATURE}")
        return t


class GenerateResponse(BaseModel):
    text: str
    tokens: list[TokenInfo]
    elapsed_ms: float


class ErrorBody(BaseModel):
    """Every 4xx/5xx answer: what was wrong and, where known, which field."""

    error: str
    field: str | None = None


class DatasetStatus(BaseModel):
    """The collated dataset the node pages read: ``none`` (no dataset configured), ``missing``
    (not started), ``running``, ``failed`` or ``done``."""

    status: str
    fraction: float = 0.0
    tokens_done: int = 0
    tokens_total: int = 0
    preview_tokens: int | None = None
    """While running: the corpus tokens behind the examples shown so far (a preview), if any."""
    corpus: str | None = None
    attribution: str | None = None


class Example(BaseModel):
    """A window of the corpus where the node fired, with every token's activation."""

    window_id: int
    activation: float  # at the peak token
    position: int  # the peak token's index in ``tokens``
    key_position: int | None = None  # heads: the strongest key of the peak query token
    tokens: list[str]
    acts: list[float] | None
    title: str | None = None  # the document of the peak token
    quantile_lo: float | None = None
    quantile_hi: float | None = None


class NodeStats(BaseModel):
    count: int
    mean: float
    var: float
    skew: float
    kurtosis: float
    density: float
    max_activation: float
    hist: list[int]
    hist_lo: list[float]
    hist_hi: list[float]


class DatasetNodeRequest(_Request):
    kind: str = Field(pattern=r"^[a-z][a-z0-9_]*$", description="a collated kind (GET /api/model)")
    layer: Int = Field(ge=0)
    index: Int = Field(ge=0)
    n: Int = Field(default=10, ge=1, le=50, description="top examples")


class DatasetNode(BaseModel):
    status: DatasetStatus
    stats: NodeStats | None = None
    top: list[Example] = Field(default_factory=list)
    random: list[Example] = Field(default_factory=list)
    quantile: list[Example] = Field(default_factory=list)


class PatternRequest(_Request):
    """One attention head on one window of the collated dataset."""

    kind: str | None = Field(
        default=None,
        pattern=r"^[a-z][a-z0-9_]*$",
        description="a kind with a pattern view; None: the model's first",
    )
    layer: Int = Field(ge=0)
    head: Int = Field(ge=0)
    window_id: Int = Field(ge=0, description="a window of the collated dataset (an example's window_id)")
    query: Int | None = Field(
        default=None, ge=0, description="the query position to mark; default: the head's peak in the window"
    )
    k: Int = Field(default=10, ge=1, description="promoted / suppressed tokens of the head's write at query")


class HeadPattern(BaseModel):
    """A head on a dataset window: who attends to whom, and how much each pair writes.

    Rows are queries, columns keys; row ``q`` holds keys ``0..q`` (causal attention), so the
    matrices are lower triangles stored row by row.
    """

    window_id: int
    tokens: list[str]
    query: int  # the marked query (the head's peak in the window unless asked otherwise)
    key: int  # the marked query's strongest key, by pair write (as collation records it)
    activation: list[float]  # the head's |z| at each query
    pattern: list[list[float]] = Field(description="attention probability p[q, k]; each row sums to 1")
    write: list[list[float]] = Field(description="pair write p[q, k] · |W_O,h v_k|, residual-stream norm")
    output: NodeTokens  # what the head's write at ``query`` promotes and suppresses


class TokenNodesRequest(_Request):
    token: str | Int
    n: Int = Field(default=20, ge=1, le=100)


class TokenNode(BaseModel):
    kind: str
    layer: int
    unit: int
    token: str
    n_examples: int
    max_activation: float


class SearchRequest(_Request):
    text: str = Field(min_length=1, max_length=200)
    n: Int = Field(default=20, ge=1, le=100)


class SearchHit(BaseModel):
    window_id: int
    text: str
    title: str | None
    nodes: list[dict[str, float | int | str]]


# ----- explanations (docs/explanations.md) ------------------------------------------------------------
class ExplainNodeRef(_Request):
    kind: str = Field(pattern=r"^[a-z][a-z0-9_]*$", description="a collated kind (GET /api/model)")
    layer: Int = Field(ge=0)
    index: Int = Field(ge=0)


class ExplanationScore(BaseModel):
    """One score of an explanation: absent (``value`` null) with the reason, never 0 for a failure."""

    value: float | None
    n: int = Field(description="records it was computed from")
    lo: float | None = Field(default=None, description="95% bootstrap interval, low end")
    hi: float | None = None
    failure: str | None = None
    failed: int = Field(default=0, description="records left out because their LLM call or answer failed")
    method: str | None = None
    mass: float | None = Field(
        default=None,
        description="simulation, all at once: the median probability the simulator put on a number "
        "0..10 at a token's value slot (low: the values rest on little)",
    )


class NodeExplanation(BaseModel):
    """A node's newest explanation that did not fail (else its newest row), with every score."""

    kind: str
    layer: int
    index: int
    explanation: str | None
    failure: str | None = None
    explainer: str = Field(description="baseline or llm")
    backend: str
    model: str
    prompt_version: str
    scorer: str | None = None
    scorer_model: str | None = None
    scores: dict[str, ExplanationScore]
    notes: list[str] = Field(default_factory=list)
    created: str
    similarity: float | None = Field(
        default=None, description="semantic search only: cosine of this explanation to the query text"
    )


class ExplanationsRequest(_Request):
    nodes: list[ExplainNodeRef] = Field(max_length=500, description="the nodes to look up (a table's rows)")


class ExplanationsResponse(BaseModel):
    explanations: list[NodeExplanation] = Field(description="the asked nodes that have one, in no order")


class ExplanationSearchRequest(_Request):
    text: str = Field(min_length=1, max_length=200, description="a text the explanation contains (any case)")
    n: Int = Field(default=20, ge=1, le=100)
    offset: Int = Field(default=0, ge=0, le=10_000)
    semantic: bool = Field(
        default=False,
        description="by meaning: each node's explanation closest to the text by sentence embedding "
        "(all-MiniLM-L6-v2), instead of the explanations that contain it",
    )


class ExplanationSearchResponse(BaseModel):
    hits: list[NodeExplanation] = Field(
        description="containing the text: best simulation score first; semantic: most similar first"
    )
    more: bool = Field(description="there are hits after these (ask again with offset + n)")


class ScoreExplanationRequest(ExplainNodeRef):
    explanation: str = Field(min_length=1, max_length=500)
    records: Int = Field(default=6, ge=1, le=64, description="held-out records to simulate, at most")


class SimulatedRecord(BaseModel):
    """One held-out record: its tokens, the node's true activations and the simulation's."""

    window_id: int
    source: str = Field(description="top, quantile, random or extra: where the record came from")
    tokens: list[str]
    acts: list[float] = Field(description="true activations, raw")
    scaled: list[int] = Field(description="true activations on the simulator's 0..10 scale")
    simulated: list[float] | None = Field(
        description="expected simulated value 0..10 per token; null: failed"
    )
    failure: str | None = None


class ScoreExplanationResponse(BaseModel):
    explanation: str
    score: ExplanationScore = Field(description="Pearson r of simulated vs true activations, pooled")
    scale: float = Field(description="the raw activation shown as 10 (the largest over the train records)")
    records: list[SimulatedRecord]
    tokens: int = Field(description="tokens the simulator's forwards were priced at (max_simulation_tokens)")
    notes: list[str] = Field(default_factory=list)
