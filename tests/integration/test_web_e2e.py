"""The web app in a real browser (Debian's Chromium via playwright-core) against `mechscope serve`
on the embedded SmolLM2 with a small collated dataset: the demo page, the node table, an ablation's
side-by-side panes, a reload; then the node pages: a head's top examples and its from/to view, a
neuron's examples and weight tokens, the prompt form, keyboard navigation, both path forms; and
the dataset explorer (search, nodes on a token, through to a node page).

Screenshots land in ci-artifacts/screenshots/.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.web.conftest import need_browser_and_app, run_e2e, serving

pytestmark = pytest.mark.slow


def _collate(out: Path) -> Path:
    """Ten windows of the default corpus (~20 s on 2 cores): every node has real top examples."""
    r = subprocess.run(
        [sys.executable, "-m", "mechscope", "collate", "--tokens", "630", "--out", str(out), "--quiet"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert (out / "dataset.duckdb").is_file()
    return out


def test_debugger_and_node_pages_in_chromium(tmp_path: Path) -> None:
    need_browser_and_app()
    dataset = _collate(tmp_path / "dataset")
    with serving("--dataset", str(dataset)) as url:
        shots = run_e2e("e2e", url)
    assert list(shots.glob("*.png")), "no screenshots were written"
