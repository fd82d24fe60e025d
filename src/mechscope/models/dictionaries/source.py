"""Training data for dictionaries: every requested hook point's activations from ONE model
forward per batch of windows, with the start token and attention sinks left out, in chunks
shuffled by a seeded generator.

A dictionary may read several points at once: a transcoder trains on its input and its target
(:func:`mechscope.models.dictionaries.points.reads`). Its rows are the points' activations side
by side, (tokens, d_in + d_out), so one mask and one shuffle keep input and target aligned.

A chunk is a fixed run of windows (``chunk_windows``): its activations fill the shuffling buffer,
which is drained completely before the next chunk is read. Chunk ``c`` is therefore a pure
function of the windows and the seed, so a resumed run re-reads exactly the chunk it stopped in.

Excluded tokens (docs/autoencoders.md):

- position 0 of every window: the start token (BOS, or SmolLM2's ``<|endoftext|>``), whose
  activation is the same in every window and huge in the residual stream;
- attention sinks: tokens whose activation norm at a hook point exceeds ``sink_factor`` times the
  median norm of that hook point's stream tokens in the same model batch (per hook point). Their
  norms are tens of times the median on SmolLM2's residual stream, and a few of them dominate the
  loss and make training diverge (sparsify PR #113). A token is left out of a dictionary when it
  is a sink at any of the points the dictionary reads.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch

from mechscope.errors import InputError
from mechscope.models.decoder import HookedDecoder
from mechscope.models.hooks import HookPoint


class _Stop(Exception):
    """Raised once the last requested hook point has fired: later layers are not needed."""


@dataclass
class Chunk:
    """One chunk's activations per dictionary, shuffled: (tokens, width) fp32 each (the widths
    of the points it reads, side by side)."""

    index: int
    acts: dict[str, torch.Tensor]
    excluded_sinks: dict[str, int]  # tokens left out as attention sinks, per dictionary


Reads = dict[str, tuple[str, ...]]  # dictionary -> the hook points it reads, side by side


def as_reads(groups: Reads | Sequence[str]) -> Reads:
    """A plain list of hook points is one SAE per point."""
    return dict(groups) if isinstance(groups, dict) else {h: (h,) for h in groups}


def capture(
    model: HookedDecoder, tokens: torch.Tensor, groups: Reads | Sequence[str], sink_factor: float | None
) -> tuple[dict[str, torch.Tensor], dict[str, int]]:
    """One forward of ``tokens`` (batch, pos), stopped after the last point any dictionary of
    ``groups`` reads: each dictionary's stream-token rows (kept tokens, width), the sinks dropped."""
    groups = as_reads(groups)
    got: dict[str, torch.Tensor] = {}
    wanted = {p for points in groups.values() for p in points}

    def keep(x: torch.Tensor, hp: HookPoint) -> None:
        got[hp.name] = x
        if wanted <= got.keys():
            raise _Stop

    with torch.no_grad(), model.hooks(fwd=[(h, keep) for h in wanted]), contextlib.suppress(_Stop):
        model(tokens.to(model.device))
    flat = {}
    for h in wanted:
        x = got[h][:, 1:]  # stream tokens only: position 0 is the start token
        flat[h] = x.reshape(-1, x[0, 0].numel()).float()  # (tokens, width); attn.z flattened per token
    out, sinks = {}, {}
    for key, points in groups.items():
        keep_mask = torch.ones(len(flat[points[0]]), dtype=torch.bool)
        if sink_factor is not None:
            for p in points:
                norms = flat[p].norm(dim=-1)
                keep_mask &= norms <= sink_factor * norms.median()
        sinks[key] = int((~keep_mask).sum())
        out[key] = torch.cat([flat[p][keep_mask] for p in points], dim=-1)
    return out, sinks


def chunks(
    model: HookedDecoder,
    windows: torch.Tensor,
    groups: Reads | Sequence[str],
    chunk_windows: int,
    model_batch: int,
    seed: int,
    sink_factor: float | None,
    start: int = 0,
) -> Iterator[Chunk]:
    """Chunks ``start, start + 1, ...`` of ``windows`` (window, pos) until they run out."""
    if not groups:
        raise InputError("no hook points to train on")
    groups = as_reads(groups)
    hooks = list(groups)
    n_chunks = windows.shape[0] // chunk_windows
    if n_chunks == 0:
        raise InputError(f"{windows.shape[0]} windows are fewer than one chunk ({chunk_windows}); add text")
    for c in range(start, n_chunks):
        parts: dict[str, list[torch.Tensor]] = {h: [] for h in hooks}
        sinks = dict.fromkeys(hooks, 0)
        for b in range(c * chunk_windows, (c + 1) * chunk_windows, model_batch):
            got, dropped = capture(
                model, windows[b : min(b + model_batch, (c + 1) * chunk_windows)], groups, sink_factor
            )
            for h in hooks:
                parts[h].append(got[h])
                sinks[h] += dropped[h]
        g = torch.Generator().manual_seed(seed * 1_000_003 + c)
        acts = {}
        for h in hooks:
            x = torch.cat(parts[h])
            acts[h] = x[torch.randperm(len(x), generator=g)]
        yield Chunk(c, acts, sinks)
