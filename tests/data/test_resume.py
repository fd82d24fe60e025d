"""kill -9 in the middle of a collation, then re-run: the result equals an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.data._helpers import dump_tables

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = """
import sys, time
from pathlib import Path
from mechscope.data.collate import CollateConfig, collate
from mechscope.data.store import Workspace
from tests.conftest import tiny_model
from tests.data._helpers import small_windows

corpus_dir, out, slow = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3] == "slow"
model = tiny_model("llama")
if slow:  # a sleeping hook makes the run last long enough to be killed midway; values are unchanged
    model.add_hook("blocks.0.mlp.post", lambda x, hook: time.sleep(0.05))
windows = small_windows(model, corpus_dir, n_docs=60)
collate(model, windows, Workspace(out), CollateConfig(window=16, top_k=4, random_samples=3, batch=4, shard=8))
"""


def _run(corpus_dir: Path, out: Path, mode: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", SCRIPT, str(corpus_dir), str(out), mode], cwd=ROOT)


def test_kill_9_then_resume_equals_an_uninterrupted_run(tmp_path: Path) -> None:
    corpus_dir = tmp_path / "corpus"
    corpus_dir.mkdir()
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    proc = _run(corpus_dir, killed, "slow")
    manifest = killed / "manifest.json"
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:  # wait for the first durable shard
            if manifest.is_file() and json.loads(manifest.read_text()).get("windows_done", 0) >= 8:
                break
            assert proc.poll() is None, "the run ended before it could be killed"
            time.sleep(0.02)
        time.sleep(0.3)  # into the next shard
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    m = json.loads(manifest.read_text())
    assert m["status"] == "running" and 8 <= m["windows_done"] < m["identity"]["n_windows"]
    assert (killed / m["state"]).is_file()
    assert _run(corpus_dir, killed, "fast").wait() == 0  # resume
    assert _run(corpus_dir, clean, "fast").wait() == 0  # uninterrupted
    assert json.loads(manifest.read_text())["status"] == "done"
    assert not list((killed / "state").glob("*")), "checkpoints are removed once the dataset is written"
    a, b = dump_tables(killed), dump_tables(clean)
    assert a.keys() == b.keys() and {"examples", "nodes", "samples", "windows", "token_peaks"} <= a.keys()
    for name in a:
        assert a[name] == b[name], name


KILL_IN_FINAL_BUILD = """
import os, signal
import duckdb
from mechscope.data import store

build = store._build_database

def build_then_die(path, tables):
    if not path.name.startswith(".dataset.duckdb"):  # previews build as usual
        return build(path, tables)
    con = duckdb.connect(str(path))  # as the real build does: its WAL is on disk, uncheckpointed
    con.execute("CREATE TABLE half AS SELECT range AS i FROM range(1000)")
    os.kill(os.getpid(), signal.SIGKILL)

store._build_database = build_then_die
"""


def test_kill_9_during_the_final_database_build_leaves_no_wal_after_resume(tmp_path: Path) -> None:
    corpus_dir = tmp_path / "corpus"
    corpus_dir.mkdir()
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    proc = subprocess.Popen(
        [sys.executable, "-c", KILL_IN_FINAL_BUILD + SCRIPT, str(corpus_dir), str(killed), "fast"], cwd=ROOT
    )
    assert proc.wait() == -signal.SIGKILL
    left = [p.name for p in killed.glob(".dataset.duckdb.*")]
    assert any(n.endswith(".wal") for n in left), left  # what the kill leaves behind
    assert _run(corpus_dir, killed, "fast").wait() == 0  # resume
    assert _run(corpus_dir, clean, "fast").wait() == 0
    assert not [p.name for p in killed.rglob(".*") if p.name.endswith((".tmp", ".wal"))]
    a, b = dump_tables(killed), dump_tables(clean)
    for name in a:
        assert a[name] == b[name], name
