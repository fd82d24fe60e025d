"""Start the server from the command line: load the model, listen, say where to point the browser."""

from __future__ import annotations

import asyncio
import contextlib
import time
import webbrowser

import click

# The Debugger preloaded with the IOI prompt; the page keeps all its state in the URL.
IOI_QUERY = (
    "?prompt=When+Mary+and+John+went+to+the+store%2C+John+gave+a+drink+to&target=+Mary&distractor=+John"
)


def serve_model(
    model_ref: str | None, host: str, port: int, cors: list[str], path: str, open_browser: bool
) -> None:
    start = time.perf_counter()
    import uvicorn

    from mechscope.models.loading import load_model
    from mechscope.server.app import STATIC, create_app
    from mechscope.server.settings import Settings

    settings = Settings(host=host, port=port, cors_origins=cors)
    model = load_model(model_ref)
    app = create_app(model, settings)
    shown = "localhost" if host in ("127.0.0.1", "0.0.0.0", "::") else host
    url = f"http://{shown}:{port}/{path}"
    if not (STATIC / "index.html").is_file():
        click.echo(
            "note: the web app is not built in this install (bash scripts/build_web.sh); serving the API only"
        )
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning"))

    async def announce() -> None:
        # Said once the socket listens, so the link works when it appears.
        while not server.started:
            if server.should_exit:
                return
            await asyncio.sleep(0.05)
        click.echo(f"mechscope is serving {model.cfg.name} ({time.perf_counter() - start:.1f} s to start)")
        click.echo(f"open {url}   (Ctrl+C stops)")
        if open_browser:
            webbrowser.open(url)

    async def both() -> None:
        await asyncio.gather(server.serve(), announce())

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(both())
