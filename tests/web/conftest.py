"""The web app's own tests (vitest, the generated-client check, the browser run), from pytest.

They need Node.js and `npm ci` in web/ (scripts/install.sh --test does both). Missing tools skip
the tests locally with the reason; under CI (CI=true) they fail instead, so a broken install
cannot pass as green.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

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
