"""Where a dictionary reads and writes in the model.

An SAE reads and writes one hook point. A transcoder of layer L is named ``blocks.L.mlp`` on the
command line and in training configs: it reads what the MLP reads, the normalised MLP input
``blocks.L.ln2.out`` (with parallel residual too: the MLP always reads through ``ln2``), and
predicts what the MLP writes, ``blocks.L.mlp_out`` (after Gemma's post-norm: the MLP's whole
write to the residual stream). The names follow ``models/hook_docs.py``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mechscope.errors import InputError
from mechscope.models.components import Norm

if TYPE_CHECKING:
    from mechscope.models.decoder import HookedDecoder

TRANSCODER_KINDS = ("transcoder", "skip_transcoder")


def mlp_points(spec: str) -> tuple[str, str]:
    """``blocks.L.mlp`` -> (``blocks.L.ln2.out``, ``blocks.L.mlp_out``): a transcoder's input
    and target. An InputError names the spelling for anything else."""
    parts = spec.split(".")
    if len(parts) != 3 or parts[0] != "blocks" or not parts[1].isdigit() or parts[2] != "mlp":
        raise InputError(f"a transcoder's hook names a layer's MLP, e.g. blocks.3.mlp; got {spec!r}")
    return f"blocks.{parts[1]}.ln2.out", f"blocks.{parts[1]}.mlp_out"


def reads(spec: str, kind: str) -> tuple[str, ...]:
    """The hook points a dictionary of ``kind`` named ``spec`` trains on: its input, then (for
    transcoders) its target."""
    return mlp_points(spec) if kind in TRANSCODER_KINDS else (spec,)


def norm_of(point: str) -> tuple[int, str] | None:
    """(layer, norm) when ``point`` is a block's pre-norm output (``blocks.L.ln2.out`` -> (L,
    "ln2")): a dictionary reading it reads the residual stream through that norm, like a neuron."""
    parts = point.split(".")
    if len(parts) == 4 and parts[0] == "blocks" and parts[1].isdigit() and parts[2] in ("ln1", "ln2"):
        return (int(parts[1]), parts[2]) if parts[3] == "out" else None
    return None


def input_norm(model: HookedDecoder, point: str) -> Norm:
    """The norm module of :func:`norm_of` ``(point)``."""
    found = norm_of(point)
    if found is None:
        raise InputError(f"{point} is not a norm's output (blocks.L.ln1.out or blocks.L.ln2.out)")
    norm = getattr(model.block(found[0]), found[1])
    assert isinstance(norm, Norm)
    return norm


def point_width(model: HookedDecoder, point: str) -> int:
    """Width of one token's activation at ``point`` (``attn.z`` flattened to heads x d_head)."""
    from mechscope.models.weights import residual_map

    model.hook_point(point)  # an unknown point fails here, naming the allowed ones
    parts = point.split(".")
    if parts[-1] == "out" and parts[-2] in ("ln1", "ln2", "ln1_post", "ln2_post"):
        return model.cfg.d_model
    return residual_map(model, point).width
