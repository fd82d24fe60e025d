"""The web app in a real browser (Debian's Chromium via playwright-core) against `mechscope serve`
on the embedded SmolLM2 with a small collated dataset: the demo page, the node table, an ablation's
side-by-side panes, a reload; then the node pages: a head's top examples and its from/to view, a
neuron's examples and weight tokens, the prompt form, keyboard navigation, both path forms; and
the dataset explorer (search, nodes on a token, through to a node page).

Screenshots land in ci-artifacts/screenshots/.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.web.conftest import WEB, need, npm

pytestmark = pytest.mark.slow
ROOT = WEB.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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
    need(shutil.which("chromium") is not None, "Debian's chromium is not installed")
    need(
        (ROOT / "src/mechscope/server/static/index.html").is_file(),
        "the web app is not built (scripts/build_web.sh)",
    )
    dataset = _collate(tmp_path / "dataset")
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "mechscope", "serve", "--port", str(port), "--dataset", str(dataset)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert server.stdout is not None
        deadline = time.monotonic() + 120
        line = ""
        while time.monotonic() < deadline and "open http" not in line:
            line = server.stdout.readline()
            if not line and server.poll() is not None:
                pytest.fail(f"mechscope serve exited with {server.returncode}")
        assert "open http" in line, "the server did not say where to point the browser"
        shots = ROOT / "ci-artifacts" / "screenshots"
        shots.mkdir(parents=True, exist_ok=True)
        r = npm(
            "run",
            "--silent",
            "e2e",
            env={"BASE_URL": f"http://127.0.0.1:{port}", "SCREENSHOT_DIR": str(shots)},
        )
        assert r.returncode == 0, r.stdout[-6000:] + r.stderr[-6000:]
        assert list(shots.glob("*.png")), "no screenshots were written"
    finally:
        server.terminate()
        server.wait(20)
