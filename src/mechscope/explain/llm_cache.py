"""A persistent cache of successful LLM answers, so that re-running an explanation job costs
nothing: one SQLite file (stdlib ``sqlite3``), keyed by a hash of the full request.

The key is the sha256 of the request written as canonical JSON (sorted keys, no spaces): for an
HTTP endpoint the URL, model and the whole request body; for the local backend the model's name
and weights fingerprint, the messages and every parameter. Only answers are stored: a backend
puts a value after a call succeeded, so a failure is never replayed. A sampled answer
(temperature > 0) is replayed too: the same request gives the same answer on a re-run.

Several threads (one connection behind a lock) and several processes (SQLite's file locking, WAL
journal) may share one file.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from mechscope.errors import InputError
from mechscope.explain.llm import Completion, TokenLogprobs

CACHE_FILE = "llm-cache.sqlite"


def default_cache_path() -> Path:
    """``$MECHSCOPE_HOME/llm-cache/llm-cache.sqlite``."""
    from mechscope.models.loading.assets import mechscope_home

    return mechscope_home() / "llm-cache" / CACHE_FILE


def request_key(request: dict[str, Any]) -> str:
    """The sha256 of ``request`` as canonical JSON: equal requests, equal keys, whatever the
    order their fields were written in."""
    try:
        text = json.dumps(request, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise InputError(f"an LLM request must be plain JSON to be cached: {e}") from e
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class LLMCache:
    """Answers by request key. ``get`` counts hits and misses (``hits``, ``misses``)."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else default_cache_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        # check_same_thread=False: the lock, not the creating thread, serialises use.
        self._db = sqlite3.connect(self.path, timeout=60, check_same_thread=False, isolation_level=None)
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS answers (key TEXT PRIMARY KEY, answer TEXT NOT NULL, "
                "created REAL NOT NULL)"
            )
        self.hits = 0
        self.misses = 0

    def get(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute("SELECT answer FROM answers WHERE key = ?", (key,)).fetchone()
            if row is None:
                self.misses += 1
                return None
            self.hits += 1
        value: dict[str, Any] = json.loads(row[0])
        return value

    def put(self, key: str, answer: dict[str, Any]) -> None:
        text = json.dumps(answer, ensure_ascii=False)
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO answers (key, answer, created) VALUES (?, ?, ?)",
                (key, text, time.time()),
            )

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM answers").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __repr__(self) -> str:
        return f"LLMCache({str(self.path)!r})"


# ----- answers as JSON --------------------------------------------------------------------------
def logprobs_to_json(logprobs: list[TokenLogprobs] | None) -> list[dict[str, Any]] | None:
    if logprobs is None:
        return None
    return [{"token": t.token, "logprob": t.logprob, "top": t.top} for t in logprobs]


def logprobs_from_json(value: list[dict[str, Any]] | None) -> list[TokenLogprobs] | None:
    if value is None:
        return None
    return [TokenLogprobs(t["token"], float(t["logprob"]), dict(t["top"])) for t in value]


def completion_to_json(c: Completion) -> dict[str, Any]:
    return {"text": c.text, "finish_reason": c.finish_reason, "logprobs": logprobs_to_json(c.logprobs)}


def completion_from_json(value: dict[str, Any]) -> Completion:
    return Completion(value["text"], value["finish_reason"], logprobs_from_json(value["logprobs"]))
