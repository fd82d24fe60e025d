"""``--sae DIR|demo`` (serve, demo, collate): load dictionaries and attach them to a model, so that
their latents are node kinds (of ``GET /api/model``, of collation) that every generic endpoint
(debug, verify, ablate, steer, node pages) handles like neurons and heads."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

from mechscope.engine.kinds.base import kinds_of
from mechscope.engine.kinds.latent import attach
from mechscope.errors import InputError, MechscopeError
from mechscope.models.decoder import HookedDecoder
from mechscope.models.dictionaries.coder import SparseCoder
from mechscope.models.loading.dictionary_formats import (
    NATIVE_CONFIG,
    SAELENS_WEIGHTS,
    SPARSIFY_WEIGHTS,
    circuit_tracer_layers,
    load_any,
)

_FILES = (NATIVE_CONFIG, SAELENS_WEIGHTS, SPARSIFY_WEIGHTS)
DEMO_REF = "demo"
"""``--sae demo``: the demo preset's dictionaries (models/dictionaries/presets.py)."""


def split_refs(values: Iterable[str]) -> list[str]:
    """``--sae a,b --sae c`` -> ``[a, b, c]``."""
    return [r.strip() for v in values for r in v.split(",") if r.strip()]


def dictionary_folders(ref: str) -> list[Path]:
    """The dictionaries ``ref`` names: a dictionary folder (mechscope, SAELens, sparsify) or file
    (OpenAI ``.pt``, circuit-tracer ``layer_L.safetensors``), a circuit-tracer folder of per-layer
    files, or a train-sae run folder, whose sub-folders are one dictionary per hook."""
    p = Path(ref).expanduser()
    if not p.exists():
        raise InputError(f"--sae {ref}: no such file or folder")
    if p.is_file() or any((p / f).is_file() for f in _FILES):
        return [p]
    if layers := circuit_tracer_layers(p):
        return layers
    inner = sorted(d for d in p.iterdir() if d.is_dir() and any((d / f).is_file() for f in _FILES))
    if not inner:
        raise InputError(
            f"--sae {ref}: not a dictionary (no {', '.join(_FILES)}, no layer_L.safetensors) nor a "
            "train-sae run folder holding some"
        )
    return inner


def _model_key(name: str) -> str:
    """A model name compared loosely: 'HuggingFaceTB/SmolLM2-135M-Instruct', the GGUF's
    'SmolLM2-135M-Instruct.Q4_1' and '...-GGUF' are the same model (a quantisation of its weights)."""
    last = name.strip().lower().rsplit("/", 1)[-1]
    while (short := re.sub(r"[.\-_](gguf|q\d\w*|i?q\d\w*|f16|f32|bf16|fp16|fp32)$", "", last)) != last:
        last = short
    return re.sub(r"[^a-z0-9]", "", last)


def check_model(coder: SparseCoder, model: HookedDecoder, where: str) -> None:
    """Refuse a dictionary trained for another model (its name is known and differs)."""
    trained, served = coder.cfg.model, model.cfg.name
    if trained and served and _model_key(trained) != _model_key(served):
        raise InputError(f"{where}: trained for model {trained!r}, but the served model is {served!r}")


def _free_name(model: HookedDecoder, name: str) -> str:
    """``name``, or ``name_2``, ``name_3``... when a kind of that name exists (two runs at one point)."""
    taken = {k.name for k in kinds_of(model)}
    n, out = 2, name
    while out in taken:
        out, n = f"{name}_{n}", n + 1
    return out


def demo_refs(model: HookedDecoder, refs: list[str], say: Callable[[str], None]) -> list[str]:
    """``refs`` with each preset name (``demo``; ``transcoders``, the replacement model of
    attribution graphs) replaced by its folder, training it first (once, with a time estimate)
    when it is not there yet."""
    from mechscope.models.dictionaries.presets import PRESETS, is_trained, preset_folder, train_preset
    from mechscope.models.dictionaries.workflow import progress_line

    out = []
    for ref in refs:
        preset = PRESETS.get(ref)
        if preset is None:
            out.append(ref)
            continue
        folder = preset_folder(model, preset)
        if not is_trained(folder, preset):
            train_preset(model, preset, folder, progress=progress_line(preset.train), say=say)
            sys.stderr.write("\n")
        out.append(str(folder))
    return out


def is_preset(ref: str) -> bool:
    from mechscope.models.dictionaries.presets import PRESETS

    return ref in PRESETS


def attach_all(model: HookedDecoder, refs: Iterable[str]) -> list[str]:
    """Load and attach every dictionary ``refs`` names; return the node kinds they became. Any
    problem (missing file, unknown format, another model, a width or hook point this model does
    not have) raises a one-line typed error naming the dictionary."""
    names = []
    for ref in refs:
        for folder in dictionary_folders(ref):
            try:
                coder = load_any(folder)
                check_model(coder, model, str(folder))
                names.append(attach(model, coder, _free_name(model, coder.default_name())))
            except MechscopeError as e:
                msg = str(e)
                if str(folder) not in msg:
                    msg = f"{folder}: {msg}"
                raise type(e)(msg) from None
    return names
