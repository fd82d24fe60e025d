"""``create_app``: the JSON API under /api and the built web app on the same origin."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from fastapi.responses import FileResponse, HTMLResponse, Response
from fastapi_offline import FastAPIOffline

from mechscope import __version__
from mechscope.models.config import ModelConfig
from mechscope.models.decoder import HookedDecoder
from mechscope.server import errors
from mechscope.server.datasets import DatasetSource
from mechscope.server.deps import ServerState
from mechscope.server.middleware import BodyLimit, CrashGuard
from mechscope.server.openapi import add_limits
from mechscope.server.routes import attention as attention_routes
from mechscope.server.routes import (
    datasets,
    debugger,
    explanations,
    generate,
    graphs,
    lens_grid,
    patch_pairs,
    patching,
    prompt_explorer,
    views,
)
from mechscope.server.routes import maps as maps_routes
from mechscope.server.routes import model as model_routes
from mechscope.server.schemas import ErrorBody
from mechscope.server.security import Guard
from mechscope.server.settings import Settings
from mechscope.server.warm_up import warm_up
from mechscope.server.worker import ModelWorker

if TYPE_CHECKING:
    from mechscope.models.decoder import HookedDecoder

STATIC = Path(__file__).parent / "static"  # `npm run build` in web/ writes here
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "a Host header this server does not serve (DNS rebinding)"},
    401: {"model": ErrorBody, "description": "the access token is missing or wrong (non-loopback servers)"},
    413: {"model": ErrorBody, "description": "the request body is over max_body_bytes"},
    422: {"model": ErrorBody, "description": "bad input: the message names the field and what is allowed"},
    500: {"model": ErrorBody, "description": "a server bug; the log has the details, the body never does"},
    503: {"model": ErrorBody, "description": "the model's queue is full; retry after Retry-After seconds"},
}
MAX_PATH = 1024  # longer paths name no file of the built app (and overflow the OS's name limit)
ROUTERS = (
    model_routes.router,
    debugger.router,
    views.router,
    patching.router,
    generate.router,
    datasets.router,
    explanations.router,
    graphs.router,
    prompt_explorer.router,
    attention_routes.router,
    patch_pairs.router,
    lens_grid.router,
    maps_routes.router,
)

_NOT_BUILT = """<!doctype html><meta charset="utf-8"><title>mechscope</title>
<p>mechscope's API is running (<a href="/docs">/docs</a>), but the web app is not built in this
install. Build it with <code>bash scripts/build_web.sh</code> (needs Node.js and npm), then restart.</p>"""


def create_app(
    model: HookedDecoder,
    settings: Settings | None = None,
    static_dir: Path | None = None,
    datasets: DatasetSource | None = None,
) -> FastAPI:
    """The server for ``model``; ``static_dir`` (default: the package's built web app) is served at /;
    ``datasets`` is the collated dataset of the node pages (default: ``settings.dataset``)."""
    settings = settings or Settings()
    source = datasets or DatasetSource(settings.dataset)

    def background_working() -> bool:  # the server's own background work: jobs run on one thread
        maps = getattr(app.state, "mechscope_maps", None)
        return source.working() or (maps is not None and maps.job.working)

    worker = ModelWorker(
        settings.queue_size, settings.cache_size, settings.limits.max_job_seconds, background_working
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if settings.warm_up:  # queued first on the model thread; requests wait behind it
            state.warm_up = asyncio.ensure_future(worker.run(None, lambda: warm_up(model), client="warm-up"))
        yield
        worker.close()
        source.close()

    # FastAPIOffline: /docs and /redoc load their scripts from this server, not a CDN.
    app: FastAPI = FastAPIOffline(title="mechscope", version=__version__, lifespan=lifespan)
    state = ServerState(model=model, worker=worker, settings=settings, datasets=source)
    app.state.mechscope = state
    errors.install(app)
    explanations.install(app)
    for router in ROUTERS:
        app.include_router(router, prefix="/api", responses=ERROR_RESPONSES)
    if settings.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["*"],
        )
    # Outermost last: Host and token first, then the body limit, then the crash guard.
    app.add_middleware(CrashGuard)
    app.add_middleware(BodyLimit, max_bytes=settings.limits.max_body_bytes)
    app.add_middleware(Guard, settings=settings)
    _mount_web(app, static_dir or STATIC)
    _schema_with_limits(app, settings)
    return app


def _schema_with_limits(app: FastAPI, settings: Settings) -> None:
    """The served schema states this server's limits (k <= max_k, ...), so a request valid by the
    schema is not refused for a bound it did not show."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            add_limits(generate(), settings.limits)
        assert app.openapi_schema is not None
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _mount_web(app: FastAPI, root: Path) -> None:
    """Files of the built app by exact path; any other non-API path gets index.html, so that a
    shared link such as /debugger?prompt=... or /node/... opens the page it names."""
    root = root.resolve()
    index = root / "index.html"
    api_paths = {"/api" + getattr(r, "path", "") for router in ROUTERS for r in router.routes}

    @app.get("/{path:path}", include_in_schema=False)
    def web(path: str) -> Response:
        if path == "api" or path.startswith("api/"):
            if f"/{path}" in api_paths:
                return errors.json_error(f"/{path} takes POST with a JSON body", None, 405, {"Allow": "POST"})
            return errors.json_error(f"no API route /{path[:200]}", None, 404)
        if "\x00" in path or len(path) > MAX_PATH:
            return errors.json_error("no such page: the path is too long or holds a NUL byte", None, 404)
        if not index.is_file():
            return HTMLResponse(_NOT_BUILT)
        candidate = (root / path).resolve()
        # Only files inside the built folder: a request path never walks out of it.
        if path and candidate.is_file() and candidate.is_relative_to(root):
            return FileResponse(candidate)
        return FileResponse(index, headers={"Cache-Control": "no-cache"})


def openapi_schema() -> dict[str, Any]:
    """The API's OpenAPI schema without a real model (it depends on the routes and bodies only)."""
    cfg = ModelConfig(
        architecture="llama", d_model=8, n_layers=1, n_heads=2, d_head=4, d_mlp=8, d_vocab=4, n_ctx=8
    )
    return create_app(HookedDecoder(cfg, None)).openapi()
