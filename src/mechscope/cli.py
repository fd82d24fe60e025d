"""The ``mechscope`` command line: thin wrappers over library calls."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

import click

from mechscope import __version__

F = TypeVar("F", bound=Callable[..., Any])

MODEL_HELP = "A .gguf file, a Hugging Face checkpoint folder, or a name: smollm2 (default), gemma3-270m."


def friendly_errors(fn: F) -> F:
    """Turn mechscope's typed errors into a one-line message and exit status 1."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from mechscope.errors import MechscopeError

        try:
            return fn(*args, **kwargs)
        except MechscopeError as e:
            raise click.ClickException(str(e)) from None

    return wrapper  # type: ignore[return-value]


@click.group()
@click.version_option(__version__, prog_name="mechscope")
def main() -> None:
    """mechscope: a fast, offline transformer debugger."""


@main.command()
@click.argument("model", required=False)
@click.option("--dtype", default="float32", show_default=True, help="float32, bfloat16 or float16.")
@click.option("--json", "as_json", is_flag=True, help="Print the facts as JSON.")
@friendly_errors
def info(model: str | None, dtype: str, as_json: bool) -> None:
    """Print a model's architecture, sizes, hook points and load time.

    MODEL: a .gguf file, a Hugging Face checkpoint folder, or smollm2 (default) / gemma3-270m.
    """
    import dataclasses

    from mechscope.models.loading import load_model

    m = load_model(model, dtype=dtype)
    cfg = m.cfg
    facts: dict[str, Any] = {
        "name": cfg.name,
        "architecture": cfg.architecture,
        "weights": cfg.note or "as stored",
        "dtype": str(m.dtype).removeprefix("torch."),
        "parameters": sum(p.numel() for p in m.parameters()),
        "layers": cfg.n_layers,
        "d_model": cfg.d_model,
        "heads": f"{cfg.n_heads} query / {cfg.n_kv_heads} key-value, d_head {cfg.d_head}",
        "d_mlp": cfg.d_mlp,
        "vocab": cfg.d_vocab,
        "context": cfg.n_ctx,
        "hook_points": len(m.hook_names()),
        "load_seconds": round(m.load_seconds, 3),
    }
    if as_json:
        click.echo(json.dumps({**facts, "config": dataclasses.asdict(cfg)}, indent=2))
        return
    width = max(len(k) for k in facts)
    for k, v in facts.items():
        v = f"{v:,}" if isinstance(v, int) else v
        click.echo(f"{k.replace('_', ' '):<{width}}  {v}")


@main.command()
@click.argument("prompt")
@click.option("--model", "-m", default=None, help=MODEL_HELP)
@click.option("--max-new-tokens", "-n", default=32, show_default=True, type=click.IntRange(0, 4096))
@click.option(
    "--temperature", "-t", default=0.0, show_default=True, type=click.FloatRange(0), help="0 is greedy."
)
@click.option("--top-k", default=None, type=click.IntRange(1), help="Sample among the k likeliest tokens.")
@click.option(
    "--top-p", default=None, type=click.FloatRange(0, 1, min_open=True), help="Nucleus sampling mass."
)
@click.option("--seed", default=None, type=int, help="Random seed for sampling.")
@click.option("--stop", multiple=True, help="Stop when this text appears (repeatable).")
@friendly_errors
def generate(
    prompt: str,
    model: str | None,
    max_new_tokens: int,
    temperature: float,
    top_k: int | None,
    top_p: float | None,
    seed: int | None,
    stop: tuple[str, ...],
) -> None:
    """Continue PROMPT with the model (KV-cached sampling), printing prompt and continuation."""
    from mechscope.models.loading import load_model

    m = load_model(model)
    out = m.generate(
        prompt,
        max_new_tokens=max_new_tokens,
        temperature=temperature,
        top_k=top_k,
        top_p=top_p,
        seed=seed,
        stop_strings=stop,
    )
    click.echo(prompt + click.style(out.text, bold=True))


@main.command()
@click.argument("model", required=False)
@click.option("--aliases", is_flag=True, help="Also list the TransformerLens-style aliases.")
@friendly_errors
def hooks(model: str | None, aliases: bool) -> None:
    """List the model's hook point names, in forward order."""
    from mechscope.models.hooks import tl_aliases
    from mechscope.models.loading import load_model

    for name in load_model(model).hook_names():
        click.echo(name)
    if aliases:
        for alias, name in tl_aliases().items():
            click.echo(f"{alias} -> {name}")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
