"""The API's OpenAPI schema without a real model (it depends on the routes and bodies only)."""

from __future__ import annotations

from typing import Any


def openapi_schema() -> dict[str, Any]:
    from mechscope.models.config import ModelConfig
    from mechscope.models.decoder import HookedDecoder
    from mechscope.server.app import create_app

    cfg = ModelConfig(
        architecture="llama", d_model=8, n_layers=1, n_heads=2, d_head=4, d_mlp=8, d_vocab=4, n_ctx=8
    )
    return create_app(HookedDecoder(cfg, None)).openapi()
