"""The served OpenAPI schema's additions: the server's limits written into the request bodies."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mechscope.server.settings import Limits


def add_limits(schema: dict[str, Any], limits: Limits) -> None:
    """Write the server's limits into the request bodies' schemas: ``maximum`` of k, top_n and
    max_new_tokens, ``maxItems`` of the lists that max_batch bounds. (Token counts, such as
    max_prompt_tokens, depend on the tokenizer and cannot be said in JSON Schema.)"""
    maximum = {"k": limits.max_k, "top_n": limits.max_verify, "max_new_tokens": limits.max_new_tokens}
    max_items = {
        "targets": limits.max_batch,
        "distractors": limits.max_batch,
        "interventions": limits.max_batch,
    }
    for name, body in schema.get("components", {}).get("schemas", {}).items():
        if not name.endswith("Request"):
            continue
        for prop, spec in body.get("properties", {}).items():
            if prop in maximum:
                spec["maximum"] = min(spec.get("maximum", maximum[prop]), maximum[prop])
            elif prop in max_items and spec.get("type") == "array":
                spec["maxItems"] = max_items[prop]
