"""The web app's own tests (vitest, the generated-client check, the browser run), from pytest.

They need Node.js and `npm ci` in web/ (scripts/install.sh --test does both). Missing tools skip
the tests locally with the reason; under CI (CI=true) they fail instead, so a broken install
cannot pass as green.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import need

WEB = Path(__file__).resolve().parents[2] / "web"


def npm(
    *args: str, env: dict[str, str] | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    need(shutil.which("npm") is not None, "npm is not installed")
    need((WEB / "node_modules").is_dir(), "web/node_modules is missing: run npm ci in web/")
    return subprocess.run(
        ["npm", *args],
        cwd=WEB,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def need_browser_and_app() -> None:
    """Skip (locally) or fail (CI) a browser test without Debian's chromium or the built app."""
    need(shutil.which("chromium") is not None, "Debian's chromium is not installed")
    need(
        (WEB.parent / "src/mechscope/server/static/index.html").is_file(),
        "the web app is not built (scripts/build_web.sh)",
    )


@contextmanager
def serving(*args: str, start_seconds: float = 120) -> Iterator[str]:
    """``mechscope serve`` on a free port with ``args`` for a ``with`` block; yields its base URL
    once it says where to point the browser, and stops it on the way out."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    server = subprocess.Popen(
        [sys.executable, "-m", "mechscope", "serve", "--port", str(port), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert server.stdout is not None
        deadline = time.monotonic() + start_seconds
        line = ""
        while time.monotonic() < deadline and "open http" not in line:
            line = server.stdout.readline()
            if not line and server.poll() is not None:
                pytest.fail(f"mechscope serve exited with {server.returncode}")
        assert "open http" in line, "the server did not say where to point the browser"
        # keep reading its log, so that a full pipe never blocks the server
        threading.Thread(target=server.stdout.read, daemon=True).start()
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(20)


def run_e2e(script: str, base_url: str, timeout: float = 600) -> Path:
    """``npm run <script>`` against ``base_url``; asserts it passed and returns the screenshot folder."""
    shots = WEB.parent / "ci-artifacts" / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    r = npm(
        "run", "--silent", script, env={"BASE_URL": base_url, "SCREENSHOT_DIR": str(shots)}, timeout=timeout
    )
    assert r.returncode == 0, r.stdout[-6000:] + r.stderr[-6000:]
    return shots
