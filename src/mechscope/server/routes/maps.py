"""2-D maps of the served dataset's prompts and units (docs/maps.md): read them, compute them in the
background."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request

from mechscope.data.maps import WHAT, MapParams, What, is_current, load_map, map_path
from mechscope.server.background_maps import MapsJob
from mechscope.server.deps import State
from mechscope.server.errors import FieldError
from mechscope.server.maps_schemas import MapComputeRequest, MapInfo, MapJob, PromptsMap, UnitsMap

if TYPE_CHECKING:
    from mechscope.data.maps import DatasetMap
    from mechscope.data.store import Dataset

router = APIRouter(tags=["maps"])
_lock = threading.Lock()


class _MapsState:
    """Per app: the background job, and the last answer of each map (rebuilt when its file or the
    explanations change)."""

    def __init__(self) -> None:
        self.job = MapsJob()
        self.cache: dict[str, tuple[tuple[Any, ...], PromptsMap | UnitsMap]] = {}


def _maps_state(request: Request) -> _MapsState:
    with _lock:
        st: _MapsState | None = getattr(request.app.state, "mechscope_maps", None)
        if st is None:
            st = request.app.state.mechscope_maps = _MapsState()
        return st


def _ready(state: State) -> Dataset:
    """The served dataset, finished; a 422 saying why not otherwise."""
    src = state.datasets
    if src.root is None:
        raise FieldError(
            "dataset", "the server has no dataset: start it with --dataset DIR (or mechscope demo)"
        )
    ds = src.dataset()
    p = src.progress()
    if ds is None or ds.is_preview or p["status"] != "done":
        raise FieldError(
            "dataset",
            f"the dataset is not ready for maps (collation {p['status']}, "
            f"{float(p.get('fraction', 0.0)):.0%} done); maps need the finished dataset",  # type: ignore[arg-type]
        )
    return ds


def _mtime(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except FileNotFoundError:
        return 0


def _status(job: MapsJob, what: What, stored: DatasetMap | None, current: bool) -> str:
    if job.computing(what):
        return "computing"
    if job.status == "failed" and what in job.what and not current:
        return "failed"
    if stored is None:
        return "missing"
    return "ready" if current else "stale"


def _info(m: DatasetMap) -> MapInfo:
    return MapInfo.model_validate(m.info)


def _rounded(v: Any) -> list[float]:
    return [round(float(a), 3) for a in v]


def _prompts(ds: Dataset, m: DatasetMap) -> dict[str, Any]:
    rows = ds.query(
        "SELECT w.window_id, w.text, d.title FROM windows w LEFT JOIN documents d ON d.doc = w.doc "
        "ORDER BY w.window_id"
    )
    by_id = {r["window_id"]: r for r in rows}
    ids = [int(i) for i in m.ids["window_id"]]
    return {
        "window_id": ids,
        "title": [str(by_id[i]["title"] or "") for i in ids],
        "text": [str(by_id[i]["text"]) for i in ids],
    }


def _units(ds: Dataset, m: DatasetMap) -> dict[str, Any]:
    from mechscope.errors import InputError
    from mechscope.server.background_explain import open_store

    kinds = sorted({str(k) for k in m.ids["kind"]})
    code = {k: i for i, k in enumerate(kinds)}
    nodes = [
        (str(k), int(layer), int(u))
        for k, layer, u in zip(m.ids["kind"], m.ids["layer"], m.ids["unit"], strict=True)
    ]
    shown: dict[tuple[str, int, int], dict[str, Any]] = {}
    try:
        with open_store(ds.root) as store:
            shown = store.latest_many(nodes)
    except InputError:  # no explanations yet, or a running `mechscope explain` holds the file
        shown = {}
    rows = [shown.get(n) for n in nodes]
    return {
        "kinds": kinds,
        "kind": [code[n[0]] for n in nodes],
        "layer": [n[1] for n in nodes],
        "index": [n[2] for n in nodes],
        "explanation": [r["explanation"] if r else None for r in rows],
        "score": [
            None if not r or r.get("embedding") is None else round(float(r["embedding"]), 4) for r in rows
        ],
    }


def _answer(request: Request, state: State, what: What) -> PromptsMap | UnitsMap:
    ds = _ready(state)
    st = _maps_state(request)
    stored = load_map(ds.root, what)
    current = is_current(stored, ds)
    job = MapJob.model_validate(st.job.describe())
    status = _status(st.job, what, stored, current)
    model = PromptsMap if what == "prompts" else UnitsMap
    if stored is None or not current:
        empty: dict[str, list[Any]] = {
            n: [] for n in model.model_fields if n not in ("status", "job", "info")
        }
        return model(status=status, job=job, info=None, **empty)  # type: ignore[arg-type]
    explained = ds.root / "explanations.duckdb"
    key = (
        _mtime(map_path(ds.root, what)),
        _mtime(explained),
        _mtime(explained.with_name(explained.name + ".wal")),
    )
    cached = st.cache.get(what)
    if cached is None or cached[0] != key:
        extra = _prompts(ds, stored) if what == "prompts" else _units(ds, stored)
        body = model(
            status="ready", job=job, info=_info(stored), x=_rounded(stored.x), y=_rounded(stored.y), **extra
        )
        st.cache[what] = cached = (key, body)
    return cached[1].model_copy(update={"status": status, "job": job})


@router.get("/maps/prompts")
def prompts_map(request: Request, state: State) -> PromptsMap:
    """The prompts map: one point per dataset window (its document's title and text), placed by which
    units fire over it; only the status while it is missing, stale or first being computed."""
    body = _answer(request, state, "prompts")
    assert isinstance(body, PromptsMap)
    return body


@router.get("/maps/units")
def units_map(request: Request, state: State) -> UnitsMap:
    """The units map: one point per collated unit (kind, layer, index, its explanation and score), placed
    by where in the dataset it fires; only the status while it is missing, stale or first being computed."""
    body = _answer(request, state, "units")
    assert isinstance(body, UnitsMap)
    return body


@router.post("/maps/compute")
def compute_maps(req: MapComputeRequest, request: Request, state: State) -> MapJob:
    """Compute the maps in the server's background (t-SNE: about a minute for 50k units on 2 cores);
    maps already up to date with these options are kept unless ``force``. While a job runs, another
    request gets its status and starts nothing; poll GET /api/maps/{prompts,units}."""
    ds = _ready(state)
    st = _maps_state(request)
    what: tuple[What, ...] = WHAT if req.what == "both" else (req.what,)
    st.job.start(ds, what, MapParams(seed=req.seed, perplexity=req.perplexity), req.force)
    return MapJob.model_validate(st.job.describe())
