"""Bodies of the prompt explorer's route (POST /api/prompt/grid, docs/prompt-explorer.md)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from mechscope.server.schemas import Int, _Request


class UnitGridRequest(_Request):
    prompt: str = Field(min_length=1, max_length=20_000)
    kind: str = Field(
        pattern=r"^[a-z][a-z0-9_]*$", description="a kind with units (GET /api/model: size is not null)"
    )
    k: Int = Field(default=5, ge=1, le=20, description="logit-lens tokens per layer and position")


class GridLayer(BaseModel):
    """One layer's units at every position, 8-bit: value = code x scale, within scale / 2."""

    layer: int | None = Field(description="None for a kind without layers (one row)")
    scales: list[float] = Field(description="per position: the largest |activation| of the layer there / 127")
    codes: str = Field(
        description="base64 of int8 codes (two's complement), position-major: (position, unit)"
    )


class LensTop(BaseModel):
    """The logit lens, compact: ``ids[row][pos]`` and ``probs[row][pos]`` are the top-k tokens and
    their probabilities when the residual stream entering block ``row`` (last row: the final
    residual stream) is read out directly; ``vocab`` spells each id that occurs."""

    layers: list[str] = Field(description="'L0' .. 'L{n-1}' (entering that block), then 'final'")
    ids: list[list[list[int]]]
    probs: list[list[list[float]]]
    vocab: dict[int, str]


class UnitGridResponse(BaseModel):
    """Every layer's units of a kind at every token of a prompt, and the logit lens, from one call:
    a page moves along the positions without asking again."""

    kind: str
    tokens: list[str]
    units: int = Field(description="units per layer")
    layers: list[GridLayer]
    lens: LensTop
