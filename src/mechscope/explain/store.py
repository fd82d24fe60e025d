"""Where explanations and their scores live: ``explanations.duckdb`` in the dataset's folder, and
every SQL statement that touches it.

A file of its own, beside ``dataset.duckdb``: collation writes and renames only its own files
(data/store.py), so re-collating never wipes explanations. One row per (node, backend, model,
prompt version, scorer, scorer model): a node explained by one backend and scored by another is
another row, not one that replaces it. Each row is one INSERT, committed on its own (DuckDB's write-ahead log makes a
commit atomic and durable), so a job killed at any moment (kill -9) keeps every node it finished
and none half-written, and a re-run skips the nodes already there (:meth:`ExplanationStore.done`).

DuckDB lets one process open a database for writing at a time: a second ``mechscope explain`` on
the same dataset is refused with a one-line error while the first runs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mechscope.errors import InputError

DATABASE = "explanations.duckdb"
SCORE_COLUMNS = ("simulation", "detection", "fuzzing", "embedding")

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS explanations (
    kind VARCHAR NOT NULL, layer INTEGER NOT NULL, unit INTEGER NOT NULL,
    backend VARCHAR NOT NULL, model VARCHAR NOT NULL, prompt_version VARCHAR NOT NULL,
    explainer VARCHAR NOT NULL,
    explanation VARCHAR,
    failure VARCHAR,
    scorer VARCHAR NOT NULL, scorer_model VARCHAR NOT NULL,
    dataset VARCHAR,
    train_windows INTEGER[], test_windows INTEGER[],
    {", ".join(f"{c} DOUBLE" for c in SCORE_COLUMNS)},
    scores VARCHAR,
    notes VARCHAR,
    seconds DOUBLE, timings VARCHAR,
    created TIMESTAMP NOT NULL,
    explanation_vector FLOAT[],
    PRIMARY KEY (kind, layer, unit, backend, model, prompt_version, scorer, scorer_model)
)
"""
_COLUMNS = (
    "kind", "layer", "unit", "backend", "model", "prompt_version", "explainer", "explanation", "failure",
    "scorer", "scorer_model", "dataset", "train_windows", "test_windows", *SCORE_COLUMNS, "scores", "notes",
    "seconds", "timings", "created", "explanation_vector",
)  # fmt: skip
_JSON = ("scores", "notes", "timings")
_ROW = "* EXCLUDE (explanation_vector)"  # what queries return: every column but the vector
_SHOWN = "explanation IS NULL, embedding IS NULL, embedding DESC, created DESC"  # see latest()
_NONE = ""  # scorer and scorer_model of a row scored without an LLM (key columns cannot be NULL)


class StoreLocked(InputError):
    """Another process (a running ``mechscope explain``) holds the file for writing."""


@dataclass(frozen=True)
class StoredExplanation:
    """One row: a node's explanation by one backend and model with one prompt version, and its scores."""

    kind: str
    layer: int
    unit: int
    backend: str
    model: str
    prompt_version: str
    explainer: str
    explanation: str | None
    failure: str | None
    scorer: str | None  # the simulating/judging backend; None when nothing was simulated
    scorer_model: str | None
    dataset: str  # the dataset's windows fingerprint: which corpus slice the scores are on
    train_windows: list[int]
    test_windows: list[int]
    scores: dict[str, dict[str, Any]]  # name -> Score.as_dict() (value, n, lo, hi, failure, ...)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)
    created: datetime = field(default_factory=lambda: datetime.now(UTC).replace(tzinfo=None))
    explanation_vector: list[float] | None = None  # its sentence embedding (semantic search)

    def row(self) -> list[Any]:
        values = {
            **{c: getattr(self, c) for c in _COLUMNS if c not in SCORE_COLUMNS and c not in _JSON},
            "scorer": self.scorer or _NONE,
            "scorer_model": self.scorer_model or _NONE,
            **{c: (self.scores.get(c) or {}).get("value") for c in SCORE_COLUMNS},
            **{c: json.dumps(getattr(self, c)) for c in _JSON},
        }
        return [values[c] for c in _COLUMNS]


class ExplanationStore:
    """The explanations of one dataset folder. ``read_only`` opens an existing file for queries."""

    def __init__(self, dataset_root: str | Path, read_only: bool = False) -> None:
        import duckdb

        self.path = Path(dataset_root).expanduser() / DATABASE
        if read_only and not self.path.is_file():
            raise InputError(f"{self.path.parent}: no explanations yet (run mechscope explain)")
        try:
            self._con = duckdb.connect(str(self.path), read_only=read_only)
        except duckdb.IOException as e:
            raise StoreLocked(
                f"{self.path}: cannot open ({str(e).splitlines()[0]}); is another explain job running?"
            ) from None
        if not read_only:
            self._con.execute(_SCHEMA)

    def close(self) -> None:
        self._con.close()

    def __enter__(self) -> ExplanationStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _rows(self, sql: str, params: list[Any]) -> list[dict[str, Any]]:
        cur = self._con.cursor()
        try:
            cur.execute(sql, params)
            cols = [d[0] for d in cur.description]
            rows = [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]
        finally:
            cur.close()
        for r in rows:
            for c in ("scorer", "scorer_model"):
                if r.get(c) == _NONE:
                    r[c] = None
            for c in _JSON:
                if isinstance(r.get(c), str):
                    r[c] = json.loads(r[c])
        return rows

    def add(self, result: StoredExplanation) -> None:
        """Insert (or replace) one node's row, committed on its own."""
        marks = ", ".join("?" for _ in _COLUMNS)
        self._con.execute(
            f"INSERT OR REPLACE INTO explanations ({', '.join(_COLUMNS)}) VALUES ({marks})", result.row()
        )

    def done(
        self, backend: str, model: str, prompt_version: str, scorer: str | None, scorer_model: str | None
    ) -> set[tuple[str, int, int]]:
        """The nodes that already have a row for this backend, model, prompt version and scorer."""
        rows = self._rows(
            "SELECT kind, layer, unit FROM explanations WHERE backend = ? AND model = ? AND prompt_version = ? "
            "AND scorer = ? AND scorer_model = ?",
            [backend, model, prompt_version, scorer or _NONE, scorer_model or _NONE],
        )
        return {(r["kind"], r["layer"], r["unit"]) for r in rows}

    def latest(self, kind: str, layer: int, unit: int) -> dict[str, Any] | None:
        """The node's explanation to show: of those that did not fail, the one with the best
        embedding score (the score every row gets offline, so a baseline and a small local LLM's
        text compete on it), then the newest; a node whose every row failed gives its newest."""
        rows = self._rows(
            f"SELECT {_ROW} FROM explanations WHERE kind = ? AND layer = ? AND unit = ? "
            f"ORDER BY {_SHOWN} LIMIT 1",
            [kind, layer, unit],
        )
        return rows[0] if rows else None

    def latest_many(self, nodes: list[tuple[str, int, int]]) -> dict[tuple[str, int, int], dict[str, Any]]:
        """:meth:`latest` of many nodes in one query (the Debugger's node table), by node."""
        if not nodes:
            return {}
        keys = [f"{k}\x1f{layer}\x1f{u}" for k, layer, u in nodes]
        rows = self._rows(
            f"""
            SELECT {_ROW} FROM explanations
            WHERE kind || chr(31) || CAST(layer AS VARCHAR) || chr(31) || CAST(unit AS VARCHAR) IN ?
            QUALIFY row_number() OVER (PARTITION BY kind, layer, unit ORDER BY {_SHOWN}) = 1
            """,
            [keys],
        )
        return {(r["kind"], r["layer"], r["unit"]): r for r in rows}

    def of_kinds(self, kinds: list[str]) -> list[dict[str, Any]]:
        """Every row of these kinds (all backends), in node order."""
        return self._rows(
            f"SELECT {_ROW} FROM explanations WHERE kind IN ? ORDER BY kind, layer, unit, backend, created",
            [kinds],
        )

    def search(self, text: str, n: int = 50) -> list[dict[str, Any]]:
        """Explanations containing ``text`` (case-insensitive), best simulation score first."""
        if not text.strip():
            raise InputError("search text is empty")
        pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        return self._rows(
            f"SELECT {_ROW} FROM explanations WHERE explanation ILIKE ? ESCAPE '\\' "
            "ORDER BY simulation DESC NULLS LAST, created DESC LIMIT ?",
            [pattern, n],
        )

    def nearest(self, vector: list[float], n: int = 50) -> list[dict[str, Any]]:
        """Semantic search: each node's explanation closest in meaning to ``vector`` (an embedding
        by the same embedder as the rows', unit length), best first, with its ``similarity``
        (cosine). Rows without an embedding (explained without an embedder) are not searched."""
        return self._rows(
            f"""
            SELECT {_ROW}, list_cosine_similarity(explanation_vector, ?::FLOAT[]) AS similarity
            FROM explanations
            WHERE explanation IS NOT NULL AND len(explanation_vector) = ?
            QUALIFY row_number() OVER (PARTITION BY kind, layer, unit ORDER BY similarity DESC) = 1
            ORDER BY similarity DESC, kind, layer, unit LIMIT ?
            """,
            [vector, len(vector), n],
        )

    def count(self) -> int:
        return int(self._rows("SELECT count(*) AS n FROM explanations", [])[0]["n"])
