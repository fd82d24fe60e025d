"""``mechscope models``: what is installed or cached, with sizes, and how to add a model."""

from __future__ import annotations

import dataclasses
import json

import click


@click.command("models")
@click.option("--json", "as_json", is_flag=True, help="Print the list as JSON.")
def models(as_json: bool) -> None:
    """List the embedded models, the Gemma test model and converted caches, with sizes."""
    from mechscope.models.loading.inventory import ADD_A_MODEL, human_size, list_models

    entries = list_models()
    if as_json:
        click.echo(json.dumps([dataclasses.asdict(e) for e in entries], indent=2))
        return
    width = max(len(e.name) for e in entries)
    for e in entries:
        size = human_size(e.size_bytes) if e.installed else "not installed"
        click.echo(f"{e.name:<{width}}  {e.kind:<15}  {size:>13}  {e.description}")
        click.echo(f"{'':<{width}}  {'install with' if not e.installed else 'at'}: {e.path}")
    click.echo("")
    click.echo(ADD_A_MODEL)


def register(group: click.Group) -> None:
    """Add the commands to the ``mechscope`` group (called once by cli.py)."""
    group.add_command(models)
