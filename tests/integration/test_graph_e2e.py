"""The Graph page in a real browser (Debian's Chromium via playwright-core) against `mechscope serve`
on the embedded SmolLM2 with 30 random skip-transcoders: the graph renders (nodes, links, token
columns, scores), a tooltip, a latent's side panel and its node page, an edge's heads and a Q/K
trace link into the Debugger, pinning, the causal check's table and correlations, a supernode and
the pinned-only view, a reload that keeps all of it, and the Neuronpedia export.

Random transcoders make a valid (if uninteresting) graph: enough for the page. Screenshots land
in ci-artifacts/screenshots/.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from mechscope.models.dictionaries import DictionaryConfig, SparseCoder, init_random
from mechscope.models.loading.dictionary_formats import save_dictionary
from tests.web.conftest import WEB, need, npm

pytestmark = pytest.mark.slow
ROOT = WEB.parent
N_LAYERS = 30  # SmolLM2-135M
D_MODEL = 576


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_random_transcoders(folder: Path, n_latents: int = 256, k: int = 8) -> Path:
    """One random skip-transcoder per layer of SmolLM2, in mechscope's format (`--sae folder`)."""
    for layer in range(N_LAYERS):
        cfg = DictionaryConfig(d_in=D_MODEL, n_latents=n_latents, hook=f"blocks.{layer}.ln2.out",
                               out_hook=f"blocks.{layer}.mlp_out", d_out=D_MODEL, kind="skip_transcoder",
                               activation="topk", k=k, apply_b_dec_to_input=False,
                               model="SmolLM2-135M-Instruct")  # fmt: skip
        save_dictionary(init_random(SparseCoder(cfg), 100 + layer), folder / f"blocks.{layer}.mlp", {})
    return folder


def test_graph_page_in_chromium(tmp_path: Path) -> None:
    need(shutil.which("chromium") is not None, "Debian's chromium is not installed")
    need(
        (ROOT / "src/mechscope/server/static/index.html").is_file(),
        "the web app is not built (scripts/build_web.sh)",
    )
    saes = write_random_transcoders(tmp_path / "transcoders")
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "mechscope", "serve", "--port", str(port), "--sae", str(saes)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert server.stdout is not None
        deadline = time.monotonic() + 180
        line = ""
        while time.monotonic() < deadline and "open http" not in line:
            line = server.stdout.readline()
            if not line and server.poll() is not None:
                pytest.fail(f"mechscope serve exited with {server.returncode}")
        assert "open http" in line, "the server did not say where to point the browser"
        # keep reading its log, so that a full pipe never blocks the server
        threading.Thread(target=server.stdout.read, daemon=True).start()
        shots = ROOT / "ci-artifacts" / "screenshots"
        shots.mkdir(parents=True, exist_ok=True)
        r = npm(
            "run",
            "--silent",
            "e2e:graph",
            env={"BASE_URL": f"http://127.0.0.1:{port}", "SCREENSHOT_DIR": str(shots)},
            timeout=900,
        )
        assert r.returncode == 0, r.stdout[-6000:] + r.stderr[-6000:]
        assert list(shots.glob("graph-*.png")), "no screenshots were written"
    finally:
        server.terminate()
        server.wait(20)
