"""Splicing a dictionary into a model with its error term kept (outputs unchanged until a latent
is edited): an SAE where it reads; a transcoder where it writes, with an :class:`InputTap` at
its input point (spliced as ``<name>_input``). The engine's ``attach`` and the evaluation both
splice through here."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from mechscope.errors import InputError
from mechscope.models.decoder import HookedDecoder
from mechscope.models.dictionaries.coder import InputTap, SparseCoder
from mechscope.models.dictionaries.points import point_width


def _tap_name(name: str) -> str:
    return f"{name}_input"


def check_fits(model: HookedDecoder, coder: SparseCoder) -> None:
    """An InputError unless the dictionary's widths match the model's at its points."""
    cfg = coder.cfg
    pairs = [(cfg.hook, "d_in", cfg.d_in)]
    if coder.site != cfg.hook:
        pairs.append((coder.site, "d_out", cfg.width_out))
    for point, label, width in pairs:
        have = point_width(model, point)
        if have != width:
            raise InputError(f"{point} has width {have} in this model, the dictionary {label}={width}")


def splice_coder(model: HookedDecoder, coder: SparseCoder, name: str) -> str:
    """Splice ``coder`` in as ``name``; returns the point it is spliced at (:attr:`SparseCoder.site`)."""
    check_fits(model, coder)
    if coder.site != coder.cfg.hook:
        model.splice(coder.cfg.hook, InputTap(coder), _tap_name(name))
    try:
        model.splice(coder.site, coder, name)
    except Exception:
        if coder.site != coder.cfg.hook:
            model.unsplice(coder.cfg.hook, _tap_name(name))
        raise
    return coder.site


def unsplice_coder(model: HookedDecoder, point: str, name: str) -> SparseCoder:
    """Remove the dictionary spliced at ``point`` as ``name`` (and its input tap) and return it."""
    coder = model.unsplice(point, name)
    assert isinstance(coder, SparseCoder)
    if coder.site != coder.cfg.hook:
        model.unsplice(coder.cfg.hook, _tap_name(name))
    coder._input = None
    return coder


@contextmanager
def spliced_coder(model: HookedDecoder, coder: SparseCoder, name: str) -> Iterator[str]:
    """:func:`splice_coder` for a ``with`` block; yields the point, unspliced even on error."""
    point = splice_coder(model, coder, name)
    try:
        yield point
    finally:
        unsplice_coder(model, point, name)
