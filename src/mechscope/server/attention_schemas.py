"""The Attention page's requests and responses (``/api/attention``, ``/api/heads/detect``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator
from pydantic_core import PydanticCustomError

from mechscope.engine.attention import AttentionPatterns, HeadDetection
from mechscope.server.schemas import Int, _Request


class Repeated(_Request):
    """A sequence of ``length`` random ordinary tokens repeated twice behind the start token,
    drawn with ``seed`` (the first of the head detectors' sequences with the same seed)."""

    length: Int = Field(default=25, ge=1, description="random tokens in each half")
    seed: Int = Field(default=0, ge=0)


class AttentionRequest(_Request):
    """The attention of one head (or every head) of a layer on one sequence: a prompt, a repeated
    random-token sequence or a dataset window (exactly one of them)."""

    prompt: str | None = Field(default=None, min_length=1, max_length=20_000)
    repeated: Repeated | None = None
    window_id: Int | None = Field(default=None, ge=0, description="a window of the collated dataset")
    layer: Int = Field(ge=0)
    head: Int | None = Field(default=None, ge=0, description="one head; default: every head of the layer")

    @model_validator(mode="after")
    def _one_source(self) -> AttentionRequest:
        given = [n for n in ("prompt", "repeated", "window_id") if getattr(self, n) is not None]
        if len(given) != 1:
            got = ", ".join(given) or "none"
            raise PydanticCustomError(
                "one_source", f"prompt: give exactly one of prompt, repeated or window_id (got {got})"
            )
        return self


class AttentionView(AttentionPatterns):
    """The patterns, with the sequence as text (to open it on another page; a random sequence's
    text may tokenize differently)."""

    text: str


class DetectRequest(_Request):
    """Score every head as a previous-token, duplicate-token, induction and attention-sink head."""

    source: Literal["repeated", "prompt", "dataset"] = Field(
        default="repeated",
        description="repeated: n random sequences of `length` tokens, each repeated twice; prompt: the "
        "prompt; dataset: the collated dataset's first n windows",
    )
    prompt: str | None = Field(default=None, min_length=1, max_length=20_000, description="source 'prompt'")
    length: Int = Field(default=25, ge=1, description="source 'repeated': random tokens in each half")
    n: Int = Field(default=8, ge=1, description="source 'repeated': sequences; 'dataset': windows")
    seed: Int = Field(default=0, ge=0, description="source 'repeated'")

    @model_validator(mode="after")
    def _prompt_iff_source(self) -> DetectRequest:
        if (self.source == "prompt") != (self.prompt is not None):
            raise PydanticCustomError(
                "prompt_source", "prompt: give a prompt with source 'prompt', and only then"
            )
        return self


class Detection(HeadDetection):
    """The scores, with the first sequence they were measured on (what a click on a head shows)."""

    tokens: list[str] = Field(description="the first sequence's tokens")
    window_id: int | None = Field(description="source 'dataset': the first window's id")
