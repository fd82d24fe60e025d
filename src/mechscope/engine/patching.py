"""Activation patching and attribution patching: where does the clean prompt's answer live?

Both compare a *clean* and a *corrupted* prompt of the same length. Activation patching runs the
corrupted prompt with one site (a residual position, a layer's attention or MLP output at a
position, a head everywhere or at one position) replaced by its clean value and reports the
normalised metric ``(m - m_corrupted) / (m_clean - m_corrupted)``: 0 = no effect, 1 = the whole
clean behaviour restored. Attribution patching estimates the same grid linearly from one
forward-backward pass on the corrupted prompt: ``(clean - corrupted) . gradient``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import torch
from pydantic import BaseModel

from mechscope.engine.directions import Direction, Objective, compile_direction
from mechscope.engine.prompt import prompt_ids
from mechscope.engine.recorder import Recording, capture, evaluate, record, resumable_from
from mechscope.errors import InputError
from mechscope.models.hooks import HookPoint

if TYPE_CHECKING:
    from collections.abc import Callable

    from mechscope.models.decoder import HookedDecoder, ModelInput

PatchSite = Literal["resid_pre", "attn_out", "mlp_out", "heads", "heads_by_pos"]
PATCH_SITES: tuple[PatchSite, ...] = ("resid_pre", "attn_out", "mlp_out", "heads", "heads_by_pos")
MAX_TOKENS_PER_FORWARD = 2048  # bounds a batched forward's memory


class PatchingResult(BaseModel):
    """A heatmap: ``values[row][col]``, rows labelled ``rows`` (layers, or layer.head), columns
    ``columns`` (the clean prompt's tokens, or heads)."""

    site: PatchSite
    method: Literal["activation", "attribution"]
    rows: list[str]
    columns: list[str]
    values: list[list[float]]
    clean_value: float
    corrupted_value: float

    def _repr_html_(self) -> str:
        """Jupyter's view of the grid (:mod:`mechscope.notebook`, imported only when shown)."""
        from mechscope.notebook.patching import patching_html

        return patching_html(self)


def _point(site: PatchSite, layer: int) -> str:
    return f"blocks.{layer}.attn.z" if site.startswith("heads") else f"blocks.{layer}.{site}"


def _resid_in(layer: int) -> str:
    return f"blocks.{layer}.resid_pre"


def _labels(model: HookedDecoder, site: PatchSite, tokens: list[str]) -> tuple[list[str], list[str]]:
    cfg = model.cfg
    layers = [f"L{i}" for i in range(cfg.n_layers)]
    if site == "heads":
        return layers, [f"H{h}" for h in range(cfg.n_heads)]
    if site == "heads_by_pos":
        return [f"L{i}.H{h}" for i in range(cfg.n_layers) for h in range(cfg.n_heads)], tokens
    return layers, tokens


def _objectives(
    model: HookedDecoder, clean: ModelInput, corrupted: ModelInput, direction: Direction
) -> tuple[list[int], Objective, Objective]:
    if getattr(direction, "kind", None) == "node":
        raise InputError("patching measures a direction of the output or the residual stream, not a node")
    a, b = prompt_ids(model, clean), prompt_ids(model, corrupted)
    if len(a) != len(b):
        raise InputError(
            f"clean and corrupted prompts must have the same number of tokens ({len(a)} vs {len(b)})"
        )
    return a, compile_direction(model, a, direction), compile_direction(model, b, direction)


def patch(
    model: HookedDecoder,
    clean: ModelInput,
    corrupted: ModelInput,
    direction: Direction,
    site: PatchSite = "resid_pre",
    method: Literal["activation", "attribution"] = "activation",
    check: Callable[[], None] | None = None,
) -> PatchingResult:
    """Patch every ``site`` from ``clean`` into ``corrupted``; see the module docstring. ``check`` is
    called between the sweep's chunks and may raise to stop it (a server's time limit, a client gone)."""
    if site not in PATCH_SITES:
        raise InputError(f"unknown patching site {site!r}; allowed: {list(PATCH_SITES)}")
    if method not in ("activation", "attribution"):
        raise InputError(f"method must be 'activation' or 'attribution', got {method!r}")
    ids, clean_obj, corr_obj = _objectives(model, clean, corrupted, direction)
    n, cfg = len(ids), model.cfg
    points = [_point(site, i) for i in range(cfg.n_layers)]
    clean_acts, clean_value = capture(model, clean_obj, points)
    if method == "attribution":
        rec = record(model, corr_obj, points, points)
        corr_value = rec.value
    else:
        # The corrupted run's input to every block: a cell at layer L resumes there (the blocks
        # before it see nothing patched), which halves a sweep's forwards on average.
        starts, corr_value = capture(model, corr_obj, [_resid_in(i) for i in range(cfg.n_layers)])
    denom = clean_value - corr_value
    if abs(denom) < 1e-9:
        raise InputError("the clean and corrupted prompts give the same value: nothing to restore")
    if method == "attribution":
        grid = _attribution_grid(rec, clean_acts, points, site, n)
    else:
        grid = _activation_grid(model, corr_obj, clean_acts, starts, points, site, n, check)
    tok = model.tokenizer
    tokens = [tok.token_str(i) if tok is not None else str(i) for i in ids]
    rows, cols = _labels(model, site, tokens)
    values = ((grid - corr_value) / denom) if method == "activation" else grid / denom
    return PatchingResult(
        site=site,
        method=method,
        rows=rows,
        columns=cols,
        values=[[float(v) for v in r] for r in values],
        clean_value=clean_value,
        corrupted_value=corr_value,
    )


def _activation_grid(
    model: HookedDecoder,
    obj: Objective,
    clean: dict[str, torch.Tensor],
    starts: dict[str, torch.Tensor],
    points: list[str],
    site: PatchSite,
    n: int,
    check: Callable[[], None] | None = None,
) -> torch.Tensor:
    """Values of the corrupted prompt with each cell patched: (rows, columns) of the heatmap;
    ``starts``: the corrupted rows' input to each block, where layer ``points[i]``'s forwards start."""
    h = model.cfg.n_heads
    # Each cell: (positions, head) to copy from clean; head None = the whole vector.
    if site == "heads":
        cells: list[tuple[slice | int, int | None]] = [(slice(0, n), j) for j in range(h)]
    elif site == "heads_by_pos":
        cells = [(p, j) for j in range(h) for p in range(n)]
    else:
        cells = [(p, None) for p in range(n)]
    r, width = obj.rows.shape
    chunk = max(1, MAX_TOKENS_PER_FORWARD // (r * width))
    out = []
    for layer, point in enumerate(points):
        src = clean[point]  # (row, pos, ...)
        resume = (layer, starts[_resid_in(layer)]) if resumable_from(obj, layer) else None
        for start in range(0, len(cells), chunk):
            if check is not None:
                check()
            part = cells[start : start + chunk]

            def hook(
                x: torch.Tensor, _hp: HookPoint, part: list = part, src: torch.Tensor = src
            ) -> torch.Tensor:
                x = x.clone().view(len(part), r, *x.shape[1:])
                for v, (pos, head) in enumerate(part):
                    if head is None:
                        x[v, :, pos] = src[:, pos]
                    else:
                        x[v, :, pos, head] = src[:, pos, head]
                return x.view(-1, *x.shape[2:])

            out.append(evaluate(model, obj, len(part), [(point, hook)], resume=resume))
    grid = torch.cat(out)
    if site == "heads_by_pos":
        return grid.view(len(points) * h, n)
    return grid.view(len(points), -1)


def _attribution_grid(
    rec: Recording, clean: dict[str, torch.Tensor], points: list[str], site: PatchSite, n: int
) -> torch.Tensor:
    """(clean - corrupted) . gradient of the corrupted run, per cell."""
    rows = []
    for point in points:
        diff = clean[point][0, :n].float() - rec.acts[point].float()  # (pos, ...)
        prod = diff * rec.grads[point].float()
        if site == "heads":
            rows.append(prod.sum((0, 2))[None])  # (1, head)
        elif site == "heads_by_pos":
            rows.append(prod.sum(2).T)  # (head, pos)
        else:
            rows.append(prod.sum(-1)[None])  # (1, pos)
    return torch.cat(rows)
