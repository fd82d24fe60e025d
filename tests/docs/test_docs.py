"""Docs are tested: generated pages are current, every CLI command and option is documented."""

from __future__ import annotations

from pathlib import Path

import click

from mechscope.cli import main
from mechscope.models.hook_docs import HOOKS, doc_key, markdown
from tests.conftest import CONFIGS, tiny_model

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_hooks_page_is_generated_from_the_code() -> None:
    assert (DOCS / "hooks.md").read_text() == markdown(), (
        "run: python -m mechscope.models.hook_docs > docs/hooks.md"
    )


def test_every_hook_point_of_every_family_is_documented() -> None:
    for family in CONFIGS:
        for name in tiny_model(family).hook_names():
            assert doc_key(name) in HOOKS, name


def test_every_cli_command_and_option_is_in_cli_md() -> None:
    text = (DOCS / "cli.md").read_text()
    assert isinstance(main, click.Group)
    for name, cmd in main.commands.items():
        assert f"mechscope {name}" in text, f"docs/cli.md does not document `mechscope {name}`"
        for param in cmd.params:
            if isinstance(param, click.Option):
                assert any(opt in text for opt in param.opts), f"docs/cli.md lacks {param.opts[0]} of {name}"


def test_glossary_defines_every_dimension_name() -> None:
    text = (DOCS / "glossary.md").read_text()
    dims = {d for shape, _ in HOOKS.values() for d in shape.split() if d != "1"}
    for d in dims:
        assert f"`{d}`" in text, d


def test_every_api_route_is_in_api_md() -> None:
    from mechscope.server.app import ROUTERS

    text = (DOCS / "api.md").read_text()
    for router in ROUTERS:
        for route in router.routes:
            methods = sorted(getattr(route, "methods", set()))
            path = "/api" + getattr(route, "path", "")
            assert f"`{methods[0]} {path}`" in text, f"docs/api.md does not document {methods[0]} {path}"
