"""The built web app on the same origin: files, SPA fallback, no path escapes; a real socket."""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path

import httpx
import uvicorn

from mechscope.server.app import create_app, openapi_schema
from tests.conftest import tiny_model
from tests.server.conftest import make_client

ROOT = Path(__file__).resolve().parents[2]


def test_files_spa_fallback_and_no_escape(tmp_path: Path) -> None:
    static = tmp_path / "static"
    (static / "assets").mkdir(parents=True)
    (static / "index.html").write_text("<html>app</html>")
    (static / "assets" / "app.js").write_text("console.log(1)")
    (tmp_path / "secret.txt").write_text("do not serve")
    with make_client(static_dir=static) as c:
        assert c.get("/assets/app.js").text == "console.log(1)"
        for path in ("/", "/?prompt=hi", "/node/attn_head/3/1?prompt=x"):
            r = c.get(path)
            assert r.status_code == 200 and r.text == "<html>app</html>", path
        for escape in ("/../secret.txt", "/assets/../../secret.txt", "/%2e%2e/secret.txt"):
            assert "do not serve" not in c.get(escape).text, escape


def test_node_pages_named_by_a_dotted_model_get_the_app(tmp_path: Path) -> None:
    """Model names hold dots (SmolLM2-135M-Instruct.Q4_1) and, URL-encoded, slashes: such a deep
    link is a page of the app, not a missing static file."""
    static = tmp_path / "static"
    static.mkdir()
    (static / "index.html").write_text("<html>app</html>")
    with make_client(static_dir=static) as c:
        for path in (
            "/node/SmolLM2-135M-Instruct.Q4_1/mlp_neuron/12/866",
            "/node/SmolLM2-135M-Instruct.Q4_1/attn_head/3/1?prompt=a.b&token=2",
            "/node/gemma-3-270m-it.Q8_0.gguf/attn_head/0/0",
            "/node/HuggingFaceTB%2FSmolLM2-135M/mlp_neuron/0/1",
        ):
            r = c.get(path)
            assert r.status_code == 200 and r.text == "<html>app</html>", path
            assert r.headers["content-type"].startswith("text/html"), path


def test_without_a_build_the_page_says_how_to_build(tmp_path: Path) -> None:
    with make_client(static_dir=tmp_path / "none") as c:
        assert "scripts/build_web.sh" in c.get("/").text


def test_checked_in_openapi_schema_is_current() -> None:
    """web/openapi.json feeds the generated TypeScript client; CI also diffs the client itself."""
    checked_in = json.loads((ROOT / "web" / "openapi.json").read_text())
    assert checked_in == json.loads(json.dumps(openapi_schema())), (
        "run: python scripts/export_openapi.py && (cd web && npm run gen:client)"
    )


def test_over_a_real_socket_on_loopback() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(create_app(tiny_model("llama")), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        base = f"http://127.0.0.1:{port}"
        r = httpx.post(f"{base}/api/debug", json={"prompt": "the cat", "targets": [" "]}, timeout=30)
        assert r.status_code == 200 and r.json()["left"]["value"] != 0
        bad = httpx.post(
            f"{base}/api/debug", json={"prompt": "the cat", "targets": [" "], "k": -1}, timeout=30
        )
        assert bad.status_code == 422 and bad.json()["field"] == "k"
    finally:
        server.should_exit = True
        thread.join(10)
