"""The one interface to a language model that explains, simulates or judges: a local model loaded
by mechscope, or an OpenAI-compatible HTTP endpoint. Explainers and scorers see only this."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from mechscope.errors import InputError, MechscopeError


class LLMError(MechscopeError):
    """A backend call failed for good (after its retries): the caller records a failure, never a score."""


class PromptTooLong(LLMError, InputError):
    """A prompt longer than the model's context: an input error, and a failed call for a batch job."""


class BackendUnavailable(MechscopeError):
    """A backend's optional dependency or asset is not installed; the message says how to install it."""


ROLES = ("system", "user", "assistant")


def check_request(messages: list[Message], max_tokens: int, temperature: float, top_logprobs: int) -> None:
    """The checks every backend makes before a call: an :class:`InputError` naming the bad field."""
    if not messages:
        raise InputError("messages is empty; a chat request needs at least one message")
    for i, m in enumerate(messages):
        if m.role not in ROLES:
            raise InputError(f"messages[{i}].role is {m.role!r}; expected one of {', '.join(ROLES)}")
    if max_tokens < 1:
        raise InputError(f"max_tokens must be >= 1, got {max_tokens}")
    if temperature < 0:
        raise InputError(f"temperature must be >= 0, got {temperature}")
    if not 0 <= top_logprobs <= 20:
        raise InputError(f"top_logprobs must be in [0, 20] (the OpenAI API's limit), got {top_logprobs}")


@dataclass(frozen=True)
class Message:
    role: str  # "system", "user" or "assistant"
    content: str


@dataclass(frozen=True)
class TokenLogprobs:
    """One position of a completion: the token there, its logprob, and the top alternatives
    (token text -> logprob, the chosen token included) as the backend reported them."""

    token: str
    logprob: float
    top: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Completion:
    text: str
    finish_reason: str  # "stop" or "length" (a truncated answer is "length")
    logprobs: list[TokenLogprobs] | None = None  # None when the backend returned none


class LLM(Protocol):
    """What explainers and scorers call. ``name`` and ``model`` are stored as provenance."""

    name: str  # "local" or the endpoint's base URL
    model: str  # the model's name as the backend knows it

    def complete(
        self,
        messages: list[Message],
        *,
        max_tokens: int,
        temperature: float = 0.0,
        top_logprobs: int = 0,
        json_schema: dict[str, object] | None = None,
    ) -> Completion:
        """A chat completion. ``top_logprobs`` > 0 asks for that many alternatives per generated
        token (an endpoint may ignore it: then ``logprobs`` is None). ``json_schema`` asks for
        structured output where the backend supports it. Raises :class:`LLMError`."""
        ...

    def prompt_logprobs(
        self,
        messages: list[Message],
        assistant_prefix: str,
        *,
        top_logprobs: int,
        always: Sequence[str] = (),
    ) -> list[TokenLogprobs] | None:
        """Teacher-forced logprobs of every token of ``assistant_prefix`` written as the start of
        the assistant's answer to ``messages``: the all-at-once simulator reads its "unknown"
        slots from them in one forward. ``always``: token texts whose logprobs each position
        reports among ``top`` even when they are not among the likeliest, where the backend has
        the whole distribution (a local model; texts that are not one token are left out). None
        when the backend cannot (most endpoints)."""
        ...
