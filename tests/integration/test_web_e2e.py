"""The Debugger in a real browser (Debian's Chromium via playwright-core) against `mechscope serve`
on the embedded SmolLM2: the demo page, the node table, an ablation's side-by-side panes, a reload.

Screenshots land in ci-artifacts/screenshots/.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time

import pytest

from tests.web.conftest import WEB, need, npm

pytestmark = pytest.mark.slow
ROOT = WEB.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_debugger_in_chromium() -> None:
    need(shutil.which("chromium") is not None, "Debian's chromium is not installed")
    need(
        (ROOT / "src/mechscope/server/static/index.html").is_file(),
        "the web app is not built (scripts/build_web.sh)",
    )
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "mechscope", "serve", "--port", str(port)],
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
