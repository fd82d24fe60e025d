"""Training data for dictionaries: every requested hook point's activations from ONE model
forward per batch of windows, with the start token and attention sinks left out, in chunks
shuffled by a seeded generator.

A chunk is a fixed run of windows (``chunk_windows``): its activations fill the shuffling buffer,
which is drained completely before the next chunk is read. Chunk ``c`` is therefore a pure
function of the windows and the seed, so a resumed run re-reads exactly the chunk it stopped in.

Excluded tokens (docs/autoencoders.md):

- position 0 of every window: the start token (BOS, or SmolLM2's ``<|endoftext|>``), whose
  activation is the same in every window and huge in the residual stream;
- attention sinks: tokens whose activation norm at a hook point exceeds ``sink_factor`` times the
  median norm of that hook point's stream tokens in the same model batch (per hook point). Their
  norms are tens of times the median on SmolLM2's residual stream, and a few of them dominate the
  loss and make training diverge (sparsify PR #113).
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
    """One chunk's activations per hook point, shuffled: (tokens, d_in) fp32 each."""

    index: int
    acts: dict[str, torch.Tensor]
    excluded_sinks: dict[str, int]  # tokens left out as attention sinks, per hook point


def capture(
    model: HookedDecoder, tokens: torch.Tensor, hooks: Sequence[str], sink_factor: float | None
) -> tuple[dict[str, torch.Tensor], dict[str, int]]:
    """One forward of ``tokens`` (batch, pos), stopped after the last of ``hooks``: each hook
    point's stream-token activations (kept tokens, d_in), flattened, and the sinks dropped."""
    got: dict[str, torch.Tensor] = {}
    wanted = set(hooks)

    def keep(x: torch.Tensor, hp: HookPoint) -> None:
        got[hp.name] = x
        if wanted <= got.keys():
            raise _Stop

    with torch.no_grad(), model.hooks(fwd=[(h, keep) for h in hooks]), contextlib.suppress(_Stop):
        model(tokens.to(model.device))
    out, sinks = {}, {}
    for h in hooks:
        x = got[h][:, 1:]  # stream tokens only: position 0 is the start token
        x = x.reshape(-1, x[0, 0].numel()).float()  # (tokens, d_in); attn.z flattened per token
        keep_mask = torch.ones(len(x), dtype=torch.bool)
        if sink_factor is not None:
            norms = x.norm(dim=-1)
            keep_mask = norms <= sink_factor * norms.median()
        sinks[h] = int((~keep_mask).sum())
        out[h] = x[keep_mask]
    return out, sinks


def chunks(
    model: HookedDecoder,
    windows: torch.Tensor,
    hooks: Sequence[str],
    chunk_windows: int,
    model_batch: int,
    seed: int,
    sink_factor: float | None,
    start: int = 0,
) -> Iterator[Chunk]:
    """Chunks ``start, start + 1, ...`` of ``windows`` (window, pos) until they run out."""
    if not hooks:
        raise InputError("no hook points to train on")
    n_chunks = windows.shape[0] // chunk_windows
    if n_chunks == 0:
        raise InputError(f"{windows.shape[0]} windows are fewer than one chunk ({chunk_windows}); add text")
    for c in range(start, n_chunks):
        parts: dict[str, list[torch.Tensor]] = {h: [] for h in hooks}
        sinks = dict.fromkeys(hooks, 0)
        for b in range(c * chunk_windows, (c + 1) * chunk_windows, model_batch):
            got, dropped = capture(
                model, windows[b : min(b + model_batch, (c + 1) * chunk_windows)], hooks, sink_factor
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
