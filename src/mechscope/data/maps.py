"""2-D maps of a collated dataset: its prompts (windows) and its units, placed by t-SNE.

Built from what collation already stored, with no forward pass: the sparse window x unit matrix
whose entry is the unit's strongest activation in the window among the rows the dataset keeps
(each unit's top examples and its random and by-quantile samples), divided by the unit's
``max_activation`` so that units of different scales compare (clipped to [0, 1]: a unit "fires"
in a window to that fraction of its peak). The **prompts map** embeds the windows by their rows
(which units fire over the window, how strongly); the **units map** embeds the units by their
columns (where in the dataset they fire). Each row is L2-normalised (cosine geometry), reduced by
a truncated SVD (sparse input) to at most ``dims`` dimensions, then placed by openTSNE with a
stored seed.

Each map is a Parquet file in the dataset's ``maps/`` folder (``prompts.parquet``,
``units.parquet``): the coordinates, the ids of the points, and in the schema's metadata the
method, seed, parameters, the matrix's sizes, the timings and the dataset's fingerprint (its
manifest identity and its units). :func:`compute_maps` skips a map whose file matches the
dataset and the parameters, so re-running is free until the dataset changes or it is asked to.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from mechscope.durable import atomic_path
from mechscope.errors import InputError

if TYPE_CHECKING:
    import scipy.sparse as sp

    from mechscope.data.store import Dataset

What = Literal["prompts", "units"]
WHAT: tuple[What, ...] = ("prompts", "units")
FOLDER = "maps"
METHOD = "t-SNE (openTSNE) of a truncated SVD"
_META_KEY = b"mechscope.map"
FORMAT = 1  # the files' layout: a change makes old files stale
_GRAM_UP_TO = 8_192  # a smaller side up to this: an exact SVD from its Gram matrix
_FFT_FROM = 10_000  # points from which t-SNE's repulsion is interpolated (FFT) rather than Barnes-Hut


@dataclass(frozen=True)
class MapParams:
    """What a map depends on besides the dataset (all stored with it)."""

    seed: int = 0
    perplexity: float = 30.0
    dims: int = 50  # SVD components before t-SNE (fewer when the matrix is smaller)

    def check(self) -> MapParams:
        if not 0 <= self.seed < 2**31:
            raise InputError(f"seed {self.seed} is out of range (0..{2**31 - 1})")
        if not 1.0 <= self.perplexity <= 500.0:
            raise InputError(f"perplexity {self.perplexity} is out of range (1..500)")
        if not 2 <= self.dims <= 500:
            raise InputError(f"dims {self.dims} is out of range (2..500)")
        return self


@dataclass
class DatasetMap:
    """One map: a point per window (prompts) or per unit (units), and how it was made."""

    what: What
    x: np.ndarray
    y: np.ndarray
    ids: dict[str, np.ndarray]  # prompts: window_id; units: kind, layer, unit
    info: dict[str, Any] = field(default_factory=dict)  # method, params, sizes, seconds, fingerprint

    def __len__(self) -> int:
        return len(self.x)


@dataclass
class Matrix:
    """The normalised window x unit activations, and the unit of each column."""

    values: sp.csr_matrix  # (windows, units), entries in (0, 1]
    kind: np.ndarray  # (units,) str
    layer: np.ndarray
    unit: np.ndarray
    seconds: float


def map_path(root: Path, what: What) -> Path:
    return root / FOLDER / f"{what}.parquet"


def _database(ds: Dataset) -> Path:
    from mechscope.data.store import DATABASE

    if ds.progress()["status"] != "done" or not (ds.root / DATABASE).is_file():
        raise InputError(f"{ds.root}: the dataset is not finished collating; maps need the finished dataset")
    return ds.root / DATABASE


def fingerprint(ds: Dataset) -> str:
    """What identifies the dataset's contents: its manifest identity and its units per kind."""
    m = ds.workspace.manifest() or {}
    text = json.dumps([FORMAT, m.get("identity"), sorted(ds.units().items())], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def activation_matrix(ds: Dataset) -> Matrix:
    """The sparse window x unit matrix: a unit's max activation in a window over its stored rows
    (examples and samples), over its ``max_activation``, clipped to [0, 1]; zeros left out."""
    import duckdb
    import scipy.sparse as sp

    t0 = time.perf_counter()
    con = duckdb.connect(str(_database(ds)), read_only=True)
    try:
        units = con.execute(
            "SELECT kind, layer, unit, max_activation FROM nodes ORDER BY kind, layer, unit"
        ).fetchnumpy()
        n_windows = int(con.execute("SELECT count(*) FROM windows").fetchone()[0])  # type: ignore[index]
        cells = con.execute(
            """
            WITH n AS (SELECT kind, layer, unit, max_activation,
                              row_number() OVER (ORDER BY kind, layer, unit) - 1 AS col FROM nodes)
            SELECT x.window_id, n.col, max(x.activation / n.max_activation) AS a
            FROM (SELECT kind, layer, unit, window_id, activation FROM examples
                  UNION ALL SELECT kind, layer, unit, window_id, activation FROM samples) x
            JOIN n USING (kind, layer, unit)
            WHERE n.max_activation > 0 AND x.activation > 0
            GROUP BY ALL
            """
        ).fetchnumpy()
    finally:
        con.close()
    values = np.clip(np.asarray(cells["a"], dtype=np.float32), 0.0, 1.0)
    matrix = sp.csr_matrix(
        (values, (np.asarray(cells["window_id"]), np.asarray(cells["col"]))),
        shape=(n_windows, len(units["unit"])),
    )
    matrix.eliminate_zeros()
    kind = np.asarray(units["kind"], dtype=object).astype(str)
    return Matrix(
        matrix, kind, np.asarray(units["layer"]), np.asarray(units["unit"]), time.perf_counter() - t0
    )


def embed(
    rows: sp.spmatrix, params: MapParams, n_jobs: int | None = None
) -> tuple[np.ndarray, dict[str, Any]]:
    """2-D coordinates of each row of ``rows``: L2-normalised, truncated SVD, then t-SNE."""
    from sklearn.decomposition import TruncatedSVD
    from sklearn.preprocessing import normalize

    n, m = rows.shape
    info: dict[str, Any] = {"rows": n, "cols": m, "nnz": int(rows.nnz)}
    t0 = time.perf_counter()
    x = normalize(rows.astype(np.float64), norm="l2", axis=1)
    dims = max(1, min(params.dims, n - 1, m - 1))
    if n < 2 or m < 2:
        reduced = np.zeros((n, 1))
    elif min(n, m) <= _GRAM_UP_TO:
        reduced = _svd_by_gram(x, dims)
    else:
        reduced = TruncatedSVD(dims, algorithm="randomized", random_state=params.seed).fit_transform(x)
    info.update(dims=int(reduced.shape[1]), svd_seconds=round(time.perf_counter() - t0, 3))
    t1 = time.perf_counter()
    if n < 8:  # too few points for t-SNE's neighbourhoods: the first two SVD components
        coords = np.zeros((n, 2))
        coords[:, : min(2, reduced.shape[1])] = reduced[:, :2]
        info.update(method="truncated SVD (too few points for t-SNE)", perplexity=None)
    else:
        from openTSNE import TSNE

        # openTSNE needs 3 * perplexity < n; a small dataset gets the largest that fits.
        perplexity = round(float(min(params.perplexity, (n - 1) / 3.0)), 2)
        small = n < _FFT_FROM
        tsne = TSNE(
            n_components=2,
            perplexity=perplexity,
            random_state=params.seed,
            # Barnes-Hut on one thread for small maps: 0.3 s for 60 points where FFT's fixed grid
            # cost takes 10 s and threads on a busy machine 30 s.
            negative_gradient_method="bh" if small else "fft",
            n_jobs=1 if small else (n_jobs or os.cpu_count() or 1),
            verbose=False,
        )
        coords = np.asarray(tsne.fit(reduced), dtype=np.float64)
        info.update(method=METHOD, perplexity=perplexity)
    info["tsne_seconds"] = round(time.perf_counter() - t1, 3)
    if not np.isfinite(coords).all():
        raise RuntimeError("the embedding produced non-finite coordinates")
    return coords, info


def _svd_by_gram(x: sp.spmatrix, dims: int) -> np.ndarray:
    """The rows of ``x`` on its top ``dims`` singular directions (``U S``), exactly, from the Gram
    matrix of its smaller side: a dataset has few windows, so this is a small dense eigenproblem
    (1,587 windows: 1 s, where a randomized SVD of the sparse matrix takes 10)."""
    if x.shape[0] <= x.shape[1]:
        w, u = np.linalg.eigh((x @ x.T).toarray())  # x x^T = U S^2 U^T
        top = np.argsort(w)[::-1][:dims]
        out = u[:, top] * np.sqrt(np.clip(w[top], 0.0, None))
    else:
        w, v = np.linalg.eigh((x.T @ x).toarray())  # x^T x = V S^2 V^T, and x V = U S
        top = np.argsort(w)[::-1][:dims]
        out = np.asarray(x @ v[:, top])
    # Each component's sign fixed (its largest entry positive), as sklearn's svd_flip does.
    flip = np.sign(out[np.abs(out).argmax(0), np.arange(out.shape[1])])
    return np.asarray(out * np.where(flip == 0, 1.0, flip))


def _write(root: Path, m: DatasetMap) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    cols: dict[str, Any] = {
        "x": pa.array(m.x, pa.float32()),
        "y": pa.array(m.y, pa.float32()),
        **{k: pa.array(v) for k, v in m.ids.items()},
    }
    table = pa.table(cols).replace_schema_metadata({_META_KEY: json.dumps(m.info).encode()})
    with atomic_path(map_path(root, m.what)) as tmp:
        pq.write_table(table, tmp, compression="zstd")


def load_map(root: str | Path, what: What) -> DatasetMap | None:
    """The stored map, or None when there is none."""
    import pyarrow.parquet as pq

    path = map_path(Path(root), what)
    if not path.is_file():
        return None
    table = pq.read_table(path)
    info = json.loads((table.schema.metadata or {}).get(_META_KEY, b"{}"))
    ids = {
        name: table.column(name).to_numpy(zero_copy_only=False)
        for name in table.column_names
        if name not in ("x", "y")
    }
    x = table.column("x").to_numpy().astype(np.float64)
    y = table.column("y").to_numpy().astype(np.float64)
    return DatasetMap(what, x, y, ids, info)


def is_current(m: DatasetMap | None, ds: Dataset, params: MapParams | None = None) -> bool:
    """Whether ``m`` was computed from this dataset (and, given ``params``, with them)."""
    if m is None or m.info.get("fingerprint") != fingerprint(ds):
        return False
    return params is None or m.info.get("params") == asdict(params)


def compute_maps(
    ds: Dataset,
    what: tuple[What, ...] = WHAT,
    params: MapParams | None = None,
    force: bool = False,
    n_jobs: int | None = None,
) -> dict[What, DatasetMap]:
    """Compute (or reuse) the maps in ``what`` and store them beside the dataset; returns them all.

    A stored map is reused when it matches the dataset's fingerprint and ``params``, unless ``force``.
    """
    params = (params or MapParams()).check()
    bad = [w for w in what if w not in WHAT]
    if bad:
        raise InputError(f"unknown map {bad[0]!r}; maps: {', '.join(WHAT)}")
    _database(ds)
    out: dict[What, DatasetMap] = {}
    todo: list[What] = []
    for w in what:
        stored = load_map(ds.root, w)
        if not force and stored is not None and is_current(stored, ds, params):
            out[w] = stored
        else:
            todo.append(w)
    if not todo:
        return out
    mat = activation_matrix(ds)
    fp = fingerprint(ds)
    for w in todo:
        t0 = time.perf_counter()
        rows = mat.values if w == "prompts" else mat.values.T.tocsr()
        coords, info = embed(rows, params, n_jobs)
        ids: dict[str, np.ndarray] = (
            {"window_id": np.arange(rows.shape[0], dtype=np.int32)}
            if w == "prompts"
            else {"kind": mat.kind, "layer": mat.layer.astype(np.int32), "unit": mat.unit.astype(np.int32)}
        )
        info.update(
            fingerprint=fp,
            params=asdict(params),
            seed=params.seed,
            matrix_seconds=round(mat.seconds, 3),
            seconds=round(time.perf_counter() - t0 + mat.seconds, 3),
            created=datetime.now(UTC).isoformat(timespec="seconds"),
            format=FORMAT,
        )
        m = DatasetMap(w, coords[:, 0], coords[:, 1], ids, info)
        _write(ds.root, m)
        out[w] = m
    return out
