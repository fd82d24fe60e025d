"""Start the server from the command line: load the model, listen, say where to point the browser."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import time
import webbrowser
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from mechscope.explain.llm import LLM

# The Debugger preloaded with the IOI prompt; the page keeps all its state in the URL.
IOI_QUERY = (
    "?prompt=When+Mary+and+John+went+to+the+store%2C+John+gave+a+drink+to&target=+Mary&distractor=+John"
)


def access_token(host: str) -> str | None:
    """The token the server requires: $MECHSCOPE_TOKEN if set; else, beyond loopback, a new one
    (with a warning: the server is reachable from the network); else none."""
    from mechscope.server.security import TOKEN_ENV, is_loopback, new_token

    token = os.environ.get(TOKEN_ENV) or None
    if not is_loopback(host):
        origin = f"from ${TOKEN_ENV}" if token else f"generated; set ${TOKEN_ENV} to choose it"
        click.echo(
            f"warning: listening on {host}, beyond this machine: every /api request needs the access "
            f"token ({origin}); open the printed link, or send 'Authorization: Bearer <token>'",
            err=True,
        )
        token = token or new_token()
    return token


def serve_model(
    model_ref: str | None,
    host: str,
    port: int,
    cors: list[str],
    path: str,
    open_browser: bool,
    dataset: Path | None = None,
    collate_demo: bool = False,
    allowed_hosts: list[str] | None = None,
    dictionaries: list[str] | None = None,
    background_llm: bool = False,
) -> None:
    """Serve until Ctrl+C. ``collate_demo``: collate the demo's slice of the default corpus in the
    background (resuming earlier work) when ``dataset`` is not finished, then explain its units
    (baseline, and with ``background_llm`` the shipped SmolLM2 after). Beyond loopback the server
    requires an access token: $MECHSCOPE_TOKEN, or one generated and printed here. ``dictionaries``:
    ``--sae`` references attached before serving (``demo``: the demo preset, trained if absent)."""
    start = time.perf_counter()
    import uvicorn

    from mechscope.models.loading import load_model
    from mechscope.server.app import STATIC, create_app
    from mechscope.server.datasets import DEMO_TOKENS, DatasetSource
    from mechscope.server.settings import Settings

    if dictionaries:
        from mechscope.engine.dictionaries import attach_all, demo_refs, dictionary_folders, is_preset

        for ref in dictionaries:  # a wrong path fails before the model loads
            if not is_preset(ref):
                dictionary_folders(ref)
    model = load_model(model_ref)
    folders: list[str] = []
    if dictionaries:
        folders = [str(Path(r).expanduser().resolve()) for r in demo_refs(model, dictionaries, click.echo)]
        attached = attach_all(model, folders)
        click.echo(
            f"attached {len(attached)} dictionaries; their latents are node kinds: {', '.join(attached)}"
        )
    if collate_demo and dataset is None:
        from mechscope.data.store import default_workspace

        # With dictionaries the demo's dataset also collates their latents: a folder of its own.
        key = f"-latents-{hashlib.sha256(chr(10).join(sorted(folders)).encode()).hexdigest()[:8]}"
        dataset = default_workspace(
            model.cfg.name or "model", f"wiki-demo-{DEMO_TOKENS}{key if folders else ''}"
        )
    token = access_token(host)
    settings = Settings(
        host=host,
        port=port,
        cors_origins=cors,
        dataset=dataset,
        token=token,
        allowed_hosts=allowed_hosts or [],
        warm_up=True,
    )
    source = DatasetSource(dataset)
    if collate_demo:
        source.collate_in_background(dictionaries=folders)
        if source.process is not None:
            click.echo(
                f"collating {DEMO_TOKENS:,} tokens of the default corpus in the background into {dataset}"
            )
            click.echo(
                "(node pages show examples after the first ~16k tokens and fill in as it goes, ~5 min "
                "on 2 cores; the work is kept for the next start)"
            )
        # Baseline explanations once the examples are there, then (opt-out) the local LLM's.
        source.explain_when_collated(model, llm=_shipped_llm if background_llm else None)
    app = create_app(model, settings, datasets=source)
    shown = "localhost" if host in ("127.0.0.1", "0.0.0.0", "::") else host
    url = f"http://{shown}:{port}/{path}"
    if token is not None:  # opening it sets the token's cookie for the web app
        url += ("&" if "?" in url else "?") + f"token={token}"
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


def _shipped_llm() -> LLM:
    """The background explainer's LLM: the shipped SmolLM2, a copy of its own."""
    from mechscope.explain.backends import make_llm

    return make_llm("local")
