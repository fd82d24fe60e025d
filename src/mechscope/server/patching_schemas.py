"""Request and response bodies of the Patching and Lens pages' routes (routes/patch_pairs.py,
routes/lens_grid.py)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from mechscope.engine.lens import LensStream
from mechscope.engine.pairs import IOI_TEMPLATES, IoiCorruption
from mechscope.engine.patch_compare import PatchComparison
from mechscope.server.schemas import Int, PatchPairRequest, Token, _Request


class PairRequest(_Request):
    """A prompt pair to build: ``ioi`` (names and template) or ``repeat`` (random tokens, repeated)."""

    kind: Literal["ioi", "repeat"] = "ioi"
    io: str = Field(default="Mary", min_length=1, max_length=100, description="ioi: the answer's name")
    subject: str = Field(default="John", min_length=1, max_length=100, description="ioi: the other name")
    template: str = Field(
        default=IOI_TEMPLATES["store"],
        min_length=1,
        max_length=2_000,
        description="ioi: text with {A}, {B} (the first clause's names) and {S} (the final clause's "
        f"subject), once each; presets: {' | '.join(IOI_TEMPLATES.values())}",
    )
    corruption: IoiCorruption = Field(
        default="swap", description="ioi: swap = the other name as {S}; abc = `others` as {A} and {B}"
    )
    others: tuple[str, str] = Field(default=("Alice", "Bob"), description="ioi, abc: the replacement names")
    length: Int = Field(default=10, ge=2, le=512, description="repeat: random tokens before the repeat")
    seed: Int = Field(default=0, ge=0, le=2**31 - 1, description="repeat: the random sequence's seed")


class CompareRequest(PatchPairRequest):
    """Activation and attribution patching of one site, side by side."""


class CompareResponse(PatchComparison):
    kind: str | None = Field(
        description="the node kind whose activation is this site's hook point (rows are its layers, "
        "columns or the row's head its index), for links to node pages; None: no kind (the residual stream)"
    )


class LensGridRequest(_Request):
    prompt: str = Field(min_length=1, max_length=20_000)
    stream: LensStream = Field(
        default="resid",
        description="resid: the residual stream; attn, mlp: each layer's write, direct logits",
    )
    k: Int = Field(default=5, ge=1)
    target: Token | None = Field(
        default=None, description="a token (text of one token, or an id) whose probability and rank to return"
    )
