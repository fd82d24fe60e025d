"""What every ``mechscope`` command shares: the ``--model`` help and the one-line error wrapper.

A module of its own so that cli.py and the command modules it registers import it, not each other.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

import click

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


def ray_option(what: str) -> Callable[[F], F]:
    """``--ray [ADDRESS]`` as collate and explain take it: a cluster's address, or ``"local"``
    (start a local cluster) when given bare; the value lands in ``ray_address``."""
    return click.option(
        "--ray",
        "ray_address",
        is_flag=False,
        flag_value="local",
        default=None,
        metavar="[ADDRESS]",
        help=f"{what}: a cluster's address, or a local cluster when none is given.",
    )
