"""What ``POST /api/debug`` may explain besides the default logit difference: the log-probability
of a continuation, or a probe direction in the residual stream (a pasted vector or a node's write).

These are the request's shapes; :func:`mechscope.server.routes.debugger.direction` turns them into
the engine's directions (``engine/directions.py``: ``LogProb``, ``ResidualDirection``).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, Strict, model_validator

from mechscope.engine.nodes import Node

_Int = Annotated[int, Strict()]


class LogProbDirection(BaseModel):
    """The log-probability of a continuation (summed over its tokens) after the prompt."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["logprob"] = "logprob"
    continuation: Annotated[str, Field(min_length=1, max_length=2_000)] | _Int = Field(
        description="text (tokenised without BOS) or one token id"
    )


class ProbeDirection(BaseModel):
    """A probe: the residual stream at ``layer``/``point`` (at the request's position) dotted with a
    vector, either pasted (d_model entries) or a node's write (its residual direction)."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["probe"] = "probe"
    vector: list[float] | None = Field(default=None, description="d_model entries (GET /api/model)")
    node: Node | None = Field(default=None, description="use this node's write as the probe vector")
    layer: _Int = Field(ge=0)
    point: Literal["resid_pre", "resid_mid", "resid_post"] = "resid_post"
    normalize: bool = Field(default=False, description="scale the vector to norm 1 first")

    @model_validator(mode="after")
    def _one_source(self) -> ProbeDirection:
        if (self.vector is None) == (self.node is None):
            raise ValueError("give exactly one of vector or node")
        return self


DebugDirection = Annotated[LogProbDirection | ProbeDirection, Field(discriminator="kind")]
