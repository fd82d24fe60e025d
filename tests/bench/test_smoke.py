"""``python -m bench`` end to end on a tiny random model: one workload, mechscope and transformers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def test_entry_point_runs_the_forward_workload(tmp_path: Path) -> None:
    pytest.importorskip("transformers")
    out, doc, chart = tmp_path / "r.json", tmp_path / "b.md", tmp_path / "b.png"
    cmd = [
        sys.executable,
        "-m",
        "bench",
        "--tiny",
        "--quick",
        "--only",
        "forward",
        "--peers",
        "transformers",
        "--lengths",
        "16",
        "--cell-seconds",
        "0.05",
        "--json",
        str(out),
        "--out-doc",
        str(doc),
        "--chart",
        str(chart),
    ]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    results = json.loads(out.read_text())
    tuned, defaults = results["workloads"]["forward"]["processes"]
    assert tuned["result"]["keep_freed_memory"] is True and defaults["result"]["keep_freed_memory"] is False
    cells = tuned["result"]["cells"]["16"]
    assert {"mechscope", "hf-eager", "hf-sdpa", "bare", "floor"} <= cells.keys()
    assert all(c["ok"] for c in tuned["result"]["checks"])  # transformers' logits match ours
    assert "tl" not in cells and "nnsight" not in cells  # --peers transformers
    assert "mechscope / transformers (sdpa)" in doc.read_text()
    assert "forward" in proc.stdout and "took" in proc.stdout
