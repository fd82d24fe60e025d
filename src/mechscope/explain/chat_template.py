"""A chat rendered as the model was trained to read it: the model's own chat template (a Jinja
string, ``tokenizer.chat_template`` in a GGUF or ``tokenizer_config.json``), run in jinja2's
immutable sandbox with the globals and filters Hugging Face templates use, as ``transformers``'
``apply_chat_template`` does (``trim_blocks``, ``lstrip_blocks``, ``loopcontrols``,
``raise_exception``, ``tojson``, ``strftime_now``).

A model without a template (a base model's GGUF, e.g. the Gemma 3 270M test model) gets a plain
fallback: one ``role: content`` line per message and, for a generation prompt, ``assistant:``
(no special tokens; weak, but stated). Generation then stops where the model starts a new turn
(:data:`FALLBACK_STOPS`), since no end-of-turn token exists for it to emit.
"""

from __future__ import annotations

import json
from datetime import datetime
from functools import lru_cache
from typing import Any, NoReturn

import jinja2
import jinja2.ext
from jinja2.sandbox import ImmutableSandboxedEnvironment

from mechscope.errors import InputError
from mechscope.explain.llm import ROLES, LLMError, Message

FALLBACK_STOPS = tuple(f"\n{role}:" for role in ROLES)


class ChatTemplateError(LLMError, InputError):
    """The model's chat template cannot be compiled, or refused these messages (e.g. a role it
    does not know, or roles that do not alternate)."""


def render_chat(
    template: str | None,
    messages: list[Message],
    *,
    add_generation_prompt: bool = True,
    bos_token: str = "",
    eos_token: str = "",
) -> str:
    """The prompt text of ``messages``; with ``add_generation_prompt`` it ends where the
    assistant's answer starts."""
    if not template:
        lines = [f"{m.role}: {m.content}\n" for m in messages]
        return "".join(lines) + ("assistant:" if add_generation_prompt else "")
    compiled = _compile(template)
    try:
        return compiled.render(
            messages=[{"role": m.role, "content": m.content} for m in messages],
            add_generation_prompt=add_generation_prompt,
            bos_token=bos_token,
            eos_token=eos_token,
        )
    except jinja2.TemplateError as e:
        raise ChatTemplateError(f"the model's chat template refused the messages: {e}") from e


@lru_cache(maxsize=8)
def _compile(template: str) -> jinja2.Template:
    env = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols]
    )
    env.filters["tojson"] = _tojson
    env.globals["raise_exception"] = _raise
    env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    try:
        return env.from_string(template)
    except jinja2.TemplateError as e:
        raise ChatTemplateError(f"the model's chat template does not compile: {e}") from e


def _raise(message: str) -> NoReturn:
    raise jinja2.TemplateError(message)


def _tojson(
    value: Any, ensure_ascii: bool = False, indent: int | None = None, sort_keys: bool = False
) -> str:
    # transformers' tojson: unlike jinja2's own, it does not HTML-escape the result.
    return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent, sort_keys=sort_keys)
