"""What a dictionary is: its shape, activation, where it reads and writes, and how its inputs
are scaled. Saved as ``dictionary.json`` beside its weights (see :mod:`.io`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from mechscope.errors import InputError

KINDS = ("sae", "transcoder", "skip_transcoder")
ACTIVATIONS = ("topk", "batchtopk", "jumprelu", "relu")


@dataclass(frozen=True)
class DictionaryConfig:
    """A sparse dictionary's architecture (not how it was trained: see ``TrainConfig``)."""

    d_in: int
    """Width of the input: the hook point's last dimension (``attn.z`` flattened: heads x d_head)."""
    n_latents: int
    """Number of latents (the dictionary's width)."""
    hook: str
    """The hook point it reads (an SAE is also spliced in there)."""
    activation: str = "topk"
    """``topk``, ``batchtopk`` (trained as batch top-k, saved and run as ``jumprelu`` with its
    threshold), ``jumprelu`` or ``relu``."""
    k: int | None = 32
    """Active latents per token for topk and batchtopk (batchtopk: the batch average)."""
    kind: str = "sae"
    """``sae`` reconstructs its input; ``transcoder`` predicts ``out_hook`` from ``hook``;
    ``skip_transcoder`` adds a linear skip term ``x @ W_skip``."""
    d_out: int | None = None
    """Width of the output; None means ``d_in`` (SAEs)."""
    out_hook: str | None = None
    """Transcoders: the hook point whose value it predicts (e.g. ``blocks.3.mlp_out``)."""
    apply_b_dec_to_input: bool = True
    """Subtract ``b_dec`` from the input before encoding (OpenAI, sparsify and SAELens SAEs do;
    transcoders cannot, their ``b_dec`` lives in the output space)."""
    model: str = ""
    """Name of the model it was trained on (informational)."""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise InputError(f"dictionary kind {self.kind!r} is not one of: {', '.join(KINDS)}")
        if self.activation not in ACTIVATIONS:
            raise InputError(f"activation {self.activation!r} is not one of: {', '.join(ACTIVATIONS)}")
        if self.d_in < 1 or self.n_latents < 1:
            raise InputError(f"d_in and n_latents must be >= 1, got {self.d_in} and {self.n_latents}")
        if self.activation in ("topk", "batchtopk") and not (self.k and 0 < self.k <= self.n_latents):
            raise InputError(
                f"k must be in 1..n_latents ({self.n_latents}) for {self.activation}, got {self.k}"
            )
        if self.kind != "sae" and self.apply_b_dec_to_input:
            raise InputError("a transcoder cannot apply b_dec to its input (b_dec is in the output space)")
        if self.kind != "sae" and not self.out_hook:
            raise InputError(f"a {self.kind} needs out_hook, the hook point it predicts")

    @property
    def width_out(self) -> int:
        return self.d_out if self.d_out is not None else self.d_in

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DictionaryConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise InputError(f"unknown dictionary config fields {unknown}; allowed: {sorted(known)}")
        return cls(**d)
