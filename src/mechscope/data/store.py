"""Where a collated dataset lives on disk, and every SQL statement that touches it.

A workspace folder (default ``$MECHSCOPE_HOME/datasets/<model>/<corpus>/``) holds:

- ``manifest.json``: what is being collated (model, token windows, options), how far it got, and
  the one durable checkpoint to resume from;
- ``state/state-<windows done>.npz``: that checkpoint (the running top-k buffers, samples,
  histograms and moments), deleted once the dataset is written;
- ``parquet/<table>.parquet`` and ``dataset.duckdb``: the finished dataset (docs/datasets.md);
- ``preview/preview-<windows done>.duckdb``: while the collation runs, a database of what the
  windows done so far give (written after 1, 2, 4, 8, ... shards), so that node pages fill in
  before the end; the manifest names the newest, and the finished dataset replaces them.

Every file is written under a temporary name, fsynced, renamed into place and its folder fsynced;
the manifest only ever points to a checkpoint that is already durable. A process killed at any
moment (kill -9) therefore leaves either the previous checkpoint or the new one, and re-running
the same command resumes from it with nothing lost or counted twice.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mechscope.durable import atomic_path
from mechscope.errors import InputError

if TYPE_CHECKING:
    import pyarrow as pa

MANIFEST = "manifest.json"
DATABASE = "dataset.duckdb"
STATES = "state/state-*.npz"  # checkpoints, named by the windows they hold
PREVIEWS = "preview/preview-*.duckdb"  # databases of a running collation, likewise
# Sort orders make DuckDB's zone maps skip everything but the rows a query asks for.
_ORDER = {
    "nodes": "kind, layer, unit",
    "examples": "kind, layer, unit, rank",
    "samples": "kind, layer, unit, sample, rank",
    "windows": "window_id",
    "documents": "doc",
    "bins": "bin",
    "meta": "key",
}


def default_workspace(model_name: str, corpus_name: str) -> Path:
    from mechscope.models.loading.assets import mechscope_home

    return mechscope_home() / "datasets" / _slug(model_name) / _slug(corpus_name)


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.") or "unnamed"


class Workspace:
    """The folder of one collation: manifest, checkpoint and finished dataset."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser()

    @property
    def manifest_path(self) -> Path:
        return self.root / MANIFEST

    def manifest(self) -> dict[str, Any] | None:
        try:
            return dict(json.loads(self.manifest_path.read_text()))
        except FileNotFoundError:
            return None

    def _write_manifest(self, m: dict[str, Any]) -> None:
        with atomic_path(self.manifest_path) as tmp:
            tmp.write_text(json.dumps(m, indent=1))

    def begin(self, identity: dict[str, Any]) -> bool:
        """Start or resume the collation described by ``identity``; True if it is already done."""
        identity = json.loads(json.dumps(identity))  # as it reads back from the manifest
        m = self.manifest()
        if m is not None and m.get("identity") != identity:
            differ = sorted(
                k for k in {*identity, *m.get("identity", {})} if identity.get(k) != m["identity"].get(k)
            )
            raise InputError(
                f"{self.root} holds another collation (it differs in: {', '.join(differ)}); "
                "pass another --out folder or delete this one"
            )
        self.root.mkdir(parents=True, exist_ok=True)
        # Left by a process killed mid-write; DuckDB's log of a database killed mid-build is beside it.
        for stray in [*self.root.rglob(".*.tmp"), *self.root.rglob(".*.tmp.wal")]:
            stray.unlink(missing_ok=True)
        if m is None:
            m = {"identity": identity, "status": "running", "windows_done": 0, "state": None}
            self._write_manifest(m)
        if m["status"] == "done" and (self.root / DATABASE).is_file():
            return True
        self._prune(STATES, keep=m.get("state"))
        self._prune(PREVIEWS, keep=m.get("preview"))
        return False

    def load_state(self) -> dict[str, np.ndarray] | None:
        m = self.manifest()
        if not m or not m.get("state"):
            return None
        with np.load(self.root / m["state"]) as f:
            return {k: f[k] for k in f.files}

    def save_state(self, arrays: dict[str, np.ndarray], windows_done: int) -> None:
        """Make a checkpoint durable, then point the manifest at it, then drop the older one."""
        name = STATES.replace("*", f"{windows_done:09d}")
        with atomic_path(self.root / name) as tmp, tmp.open("wb") as fh:
            np.savez(fh, **arrays)  # type: ignore[arg-type]
        m = self.manifest() or {}
        m.update(windows_done=windows_done, state=name)
        self._write_manifest(m)
        self._prune(STATES, keep=name)

    def _prune(self, pattern: str, keep: str | None) -> None:
        """Delete the workspace files matching ``pattern`` (STATES or PREVIEWS) but ``keep``."""
        for p in self.root.glob(pattern):
            if p.relative_to(self.root).as_posix() != keep:
                p.unlink(missing_ok=True)

    def write_preview(self, tables: dict[str, pa.Table], windows_done: int) -> None:
        """Write a database of a running collation's tables, point the manifest at it, drop the older."""
        name = PREVIEWS.replace("*", f"{windows_done:09d}")
        with atomic_path(self.root / name) as tmp:
            tmp.unlink()  # DuckDB creates its own file
            _build_database(tmp, tables)
        m = self.manifest() or {}
        m.update(preview=name, preview_windows=windows_done)
        self._write_manifest(m)
        self._prune(PREVIEWS, keep=name)

    def write_dataset(self, tables: dict[str, pa.Table]) -> None:
        """Write the Parquet files and the DuckDB database, then mark the manifest done."""
        import pyarrow.parquet as pq

        for name, table in tables.items():
            with atomic_path(self.root / "parquet" / f"{name}.parquet") as tmp:
                pq.write_table(table, tmp, compression="zstd", row_group_size=64 * 1024)
        with atomic_path(self.root / DATABASE) as tmp:
            tmp.unlink()  # DuckDB creates its own file
            _build_database(tmp, {name: self.root / "parquet" / f"{name}.parquet" for name in tables})
        m = self.manifest() or {}
        m.update(status="done", state=None, preview=None, preview_windows=None)
        self._write_manifest(m)
        self._prune(STATES, keep=None)
        self._prune(PREVIEWS, keep=None)


def _build_database(path: Path, tables: dict[str, Path] | dict[str, pa.Table]) -> None:
    """The DuckDB database of the dataset's tables, each a Parquet file or an Arrow table."""
    import duckdb

    con = duckdb.connect(str(path))
    try:
        for name, table in tables.items():
            if isinstance(table, Path):
                src = table.as_posix().replace("'", "''")
                con.execute(
                    f"CREATE TABLE {name} AS SELECT * FROM read_parquet('{src}') ORDER BY {_ORDER[name]}"
                )
            else:
                con.register("incoming", table)
                con.execute(f"CREATE TABLE {name} AS SELECT * FROM incoming ORDER BY {_ORDER[name]}")
                con.unregister("incoming")
        # Which nodes peak on which token: the top examples grouped by their peak token.
        con.execute(
            """
            CREATE TABLE token_peaks AS
            SELECT e.token_id, w.tokens[e.position + 1] AS token,
                   lower(trim(w.tokens[e.position + 1])) AS token_norm,
                   e.kind, e.layer, e.unit, count(*) AS n_examples, max(e.activation) AS max_activation
            FROM examples e JOIN windows w USING (window_id)
            GROUP BY ALL ORDER BY token_id, n_examples DESC, max_activation DESC
            """
        )
        con.execute("CREATE INDEX token_peaks_norm ON token_peaks (token_norm)")
        con.execute("CHECKPOINT")
    finally:
        con.close()


# ----- reading --------------------------------------------------------------------------------------
class Dataset:
    """Read API over a collated dataset, for the server and notebooks.

    Methods are safe to call from several threads (each uses its own cursor). Node addresses are
    ``(kind, layer, index)``, ``kind`` one of the collated node kinds (:meth:`units`).
    """

    def __init__(self, root: str | Path) -> None:
        self.workspace = Workspace(root)
        self.root = self.workspace.root
        self._con: Any = None
        self._con_path: str | None = None  # file name of the open database
        self._meta: dict[str, Any] | None = None
        self._units: dict[str, tuple[int, int]] | None = None

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None

    def __enter__(self) -> Dataset:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def progress(self) -> dict[str, Any]:
        """How far the collation got: status (missing, running, done), windows and tokens."""
        m = self.workspace.manifest()
        if m is None:
            return {"status": "missing", "windows_done": 0, "windows_total": 0, "fraction": 0.0}
        ident = m["identity"]
        total = int(ident["n_windows"])
        done = total if m["status"] == "done" else int(m["windows_done"])
        per = int(ident["window"]) - 1
        preview = None if m["status"] == "done" else m.get("preview_windows")
        return {
            "status": m["status"], "windows_done": done, "windows_total": total,
            "tokens_done": done * per, "tokens_total": total * per, "fraction": done / max(total, 1),
            "preview_tokens": None if preview is None else int(preview) * per,
        }  # fmt: skip

    def _database(self) -> Path | None:
        """The database to read: the finished one, else the newest preview, else None."""
        if (self.root / DATABASE).is_file():
            return self.root / DATABASE
        m = self.workspace.manifest()
        preview = m.get("preview") if m else None
        return self.root / preview if preview and (self.root / preview).is_file() else None

    @property
    def is_preview(self) -> bool:
        """Whether reads come from a running collation's preview (the windows done so far)."""
        path = self._database()
        return path is not None and path.name != DATABASE

    def _cursor(self) -> Any:
        if self._con is None or self._con_path != DATABASE:  # a preview: is there a newer one?
            import duckdb

            path = self._database()
            if path is None:
                raise InputError(f"{self.root}: no finished dataset yet ({self.progress()['status']})")
            if self._con is None or path.name != self._con_path:
                # Not closed: other threads may be reading it (an unlinked preview stays readable);
                # it closes when its last cursor is gone.
                self._con, self._con_path, self._meta = (
                    duckdb.connect(str(path), read_only=True),
                    path.name,
                    None,
                )
        return self._con.cursor()

    def _rows(self, sql: str, params: list[Any]) -> list[dict[str, Any]]:
        cur = self._cursor()
        try:
            cur.execute(sql, params)
            cols = [d[0] for d in cur.description]
            return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]
        finally:
            cur.close()

    def meta(self) -> dict[str, Any]:
        if self._meta is None or self._con_path != DATABASE:  # a preview may have been replaced
            self._meta = {
                r["key"]: json.loads(r["value"]) for r in self._rows("SELECT key, value FROM meta", [])
            }
        return self._meta

    @property
    def attribution(self) -> str:
        return str(self.meta().get("attribution", ""))

    def units(self) -> dict[str, tuple[int, int]]:
        """Each collated node kind's ``(layers, units per layer)``, read from the nodes table
        (one row per unit), so a dataset describes itself whatever kinds collated it."""
        if self._units is None or self._con_path != DATABASE:  # a preview may have been replaced
            rows = self._rows(
                "SELECT kind, max(layer) + 1 AS layers, max(unit) + 1 AS units FROM nodes GROUP BY kind ORDER BY kind",
                [],
            )
            self._units = {str(r["kind"]): (int(r["layers"]), int(r["units"])) for r in rows}
        return self._units

    def check_node(self, kind: str, layer: int, index: int) -> None:
        units = self.units()
        if kind not in units:
            raise InputError(
                f"node kind {kind!r} is not collated in this dataset; collated: {', '.join(units)}"
            )
        n_layers, size = units[kind]
        if not (0 <= layer < n_layers and 0 <= index < size):
            raise InputError(
                f"{kind} L{layer}.{index} does not exist: layers 0..{n_layers - 1}, index 0..{size - 1}"
            )

    def _per_window(self) -> int:
        return int(self.meta()["window"]) - 1

    def top_examples(self, kind: str, layer: int, index: int, n: int = 10) -> list[dict[str, Any]]:
        """The node's ``n`` top-activating windows, best first, each with every token's activation.

        ``doc``, ``token_offset`` and ``char_offset`` locate the window's first stream token;
        ``peak_doc`` and ``title`` are the document of the peak token (a window can cross into the
        next document)."""
        self.check_node(kind, layer, index)
        rows = self._rows(
            """
            SELECT e.rank, e.window_id, e.activation, e.position, e.token_id, e.key_position, e.acts,
                   w.tokens, w.doc, w.token_offset, w.char_offset, d.doc AS peak_doc, d.title
            FROM (SELECT *, window_id * ? + position - 1 AS stream_pos FROM examples
                  WHERE kind = ? AND layer = ? AND unit = ? ORDER BY rank LIMIT ?) e
            JOIN windows w ON w.window_id = e.window_id
            ASOF JOIN documents d ON e.stream_pos >= d.stream_start
            ORDER BY e.rank
            """,
            [self._per_window(), kind, layer, index, n],
        )
        return [_with_acts(r) for r in rows]

    def samples(self, kind: str, layer: int, index: int, sample: str = "random") -> list[dict[str, Any]]:
        """``random``: uniformly random windows; ``quantile``: windows whose peak lies in the bin of
        each quantile of the node's window peaks (``quantile_lo``..``quantile_hi``), ascending."""
        self.check_node(kind, layer, index)
        if sample not in ("random", "quantile"):
            raise InputError(f"sample {sample!r} is not one of: random, quantile")
        rows = self._rows(
            """
            SELECT s.rank, s.window_id, s.activation, s.position, s.token_id, s.quantile_lo, s.quantile_hi,
                   s.acts, w.tokens, w.doc, w.token_offset, w.char_offset, d.doc AS peak_doc, d.title
            FROM (SELECT *, window_id * ? + position - 1 AS stream_pos FROM samples
                  WHERE kind = ? AND layer = ? AND unit = ? AND sample = ?) s
            JOIN windows w ON w.window_id = s.window_id
            ASOF JOIN documents d ON s.stream_pos >= d.stream_start
            ORDER BY s.rank
            """,
            [self._per_window(), kind, layer, index, sample],
        )
        return [_with_acts(r) for r in rows]

    def stats(self, kind: str, layer: int, index: int) -> dict[str, Any]:
        """Count, mean, variance, skewness, excess kurtosis, density, max and the histogram
        (non-empty bin range only: ``hist_lo``/``hist_hi`` edges with ``hist`` counts)."""
        self.check_node(kind, layer, index)
        (row,) = self._rows(
            "SELECT * FROM nodes WHERE kind = ? AND layer = ? AND unit = ?", [kind, layer, index]
        )
        hist = list(row.pop("hist"))
        edges = self._rows("SELECT lo, hi FROM bins ORDER BY bin", [])
        used = [i for i, c in enumerate(hist) if c]
        lo, hi = (used[0], used[-1] + 1) if used else (0, 0)
        row.update(
            hist=hist[lo:hi], hist_lo=[e["lo"] for e in edges[lo:hi]], hist_hi=[e["hi"] for e in edges[lo:hi]]
        )
        return row

    def nodes_for_token(self, token: int | str, n: int = 20) -> list[dict[str, Any]]:
        """Nodes whose top examples peak on ``token`` (an id, or its text, case and surrounding
        space ignored), most such examples first, then by peak activation."""
        column, value = (
            ("token_id", int(token)) if isinstance(token, int) else ("token_norm", token.strip().lower())
        )
        return self._rows(
            f"""
            SELECT kind, layer, unit, token_id, token, n_examples, max_activation FROM token_peaks
            WHERE {column} = ? ORDER BY n_examples DESC, max_activation DESC, kind, layer, unit LIMIT ?
            """,
            [value, n],
        )

    def search(self, text: str, n: int = 20) -> list[dict[str, Any]]:
        """Windows whose text, or whose document's title, contains ``text`` (case-insensitive), with
        the nodes that have them as a top example (strongest first, five at most)."""
        if not text.strip():
            raise InputError("search text is empty")
        rows = self._rows(
            """
            SELECT w.window_id, w.text, w.doc, d.title FROM windows w JOIN documents d ON d.doc = w.doc
            WHERE contains(lower(w.text), lower(?)) OR contains(lower(coalesce(d.title, '')), lower(?))
            ORDER BY w.window_id LIMIT ?
            """,
            [text, text, n],
        )
        if rows:
            ids = [r["window_id"] for r in rows]
            nodes = self._rows(
                """
                SELECT window_id, kind, layer, unit, activation, position FROM examples WHERE window_id IN ?
                QUALIFY row_number() OVER (PARTITION BY window_id ORDER BY activation DESC) <= 5
                ORDER BY window_id, activation DESC
                """,
                [ids],
            )
            for r in rows:
                r["nodes"] = [x for x in nodes if x["window_id"] == r["window_id"]]
        return rows

    def windows(self, window_ids: list[int]) -> dict[int, dict[str, Any]]:
        """The windows with these ids (those that exist), each with its ``token_ids``, ``tokens``
        (their text) and ``doc``, by id."""
        if not window_ids:
            return {}
        rows = self._rows(
            "SELECT window_id, token_ids, tokens, doc FROM windows WHERE window_id IN ? ORDER BY window_id",
            [list(window_ids)],
        )
        return {
            r["window_id"]: {**r, "token_ids": list(r["token_ids"]), "tokens": list(r["tokens"])}
            for r in rows
        }

    def query(self, sql: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
        """Any read-only SQL over the tables of docs/datasets.md."""
        return self._rows(sql, params or [])


def _with_acts(row: dict[str, Any]) -> dict[str, Any]:
    from mechscope.data.schema import decode_acts

    blob = row.pop("acts")
    row["acts"] = decode_acts(blob) if blob is not None else None
    return row
