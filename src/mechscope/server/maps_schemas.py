"""The dataset maps' requests and responses (``/api/maps/*``, docs/maps.md)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from mechscope.server.schemas import Int, _Request

MapStatus = Literal["missing", "computing", "ready", "stale", "failed"]


class MapComputeRequest(_Request):
    """Compute the maps of the served dataset in the background (skipped where up to date)."""

    what: Literal["prompts", "units", "both"] = "both"
    seed: Int = Field(default=0, ge=0, le=2**31 - 1, description="the SVD's and t-SNE's seed")
    perplexity: float = Field(default=30.0, ge=1, le=500, description="t-SNE's (lowered for small datasets)")
    force: bool = Field(default=False, description="recompute even when the stored maps are up to date")


class MapInfo(BaseModel):
    """How a map was made: method, seed, parameters, the matrix's sizes and the timings."""

    method: str
    seed: int
    perplexity: float | None = Field(description="the one t-SNE used; None when there were too few points")
    dims: int = Field(description="SVD components t-SNE started from")
    rows: int = Field(description="points (windows or units)")
    cols: int = Field(description="what each point is described by (units or windows)")
    nnz: int = Field(description="non-zero entries of the activation matrix")
    seconds: float = Field(description="total time to compute this map, the shared matrix included")
    matrix_seconds: float
    svd_seconds: float
    tsne_seconds: float
    created: str


class MapJob(BaseModel):
    """The server's background computation of the maps, if one ran since it started."""

    status: Literal["idle", "computing", "done", "failed"]
    what: list[str]
    error: str | None
    seconds: float | None = Field(description="how long it has run or ran")


class _MapBase(BaseModel):
    status: MapStatus = Field(
        description="ready: points below; missing: never computed; stale: computed from another version of "
        "the dataset; computing: a background job is computing it; failed: the last job failed (error)"
    )
    job: MapJob
    info: MapInfo | None
    x: list[float]
    y: list[float]


class PromptsMap(_MapBase):
    """One point per dataset window (prompt), by the units that fire over it."""

    window_id: list[int]
    title: list[str] = Field(description="the title of each window's document")
    text: list[str] = Field(description="each window's text (what the Debugger's prompt would be)")


class UnitsMap(_MapBase):
    """One point per collated unit, by the windows it fires in; its explanation where there is one."""

    kinds: list[str] = Field(description="the node kinds that ``kind`` indexes")
    kind: list[int] = Field(description="each unit's kind, an index into ``kinds``")
    layer: list[int]
    index: list[int]
    explanation: list[str | None] = Field(description="the explanation shown on its node page")
    score: list[float | None] = Field(description="that explanation's embedding score")
