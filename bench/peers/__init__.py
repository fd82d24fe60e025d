"""The peers mechscope is compared with, and whether each is installed.

A peer is only ever imported inside a worker process that runs it; this module decides from
``importlib.util.find_spec`` alone (nothing imported), so a missing peer costs one printed line.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass


@dataclass(frozen=True)
class Peer:
    name: str  # as printed
    dist: str  # its distribution (pip name), for the version
    modules: tuple[str, ...]  # top-level modules it needs


PEERS = {
    "transformers": Peer("transformers", "transformers", ("transformers",)),
    "transformer-lens": Peer("TransformerLens", "transformer-lens", ("transformer_lens", "transformers")),
    "nnsight": Peer("nnsight", "nnsight", ("nnsight", "transformers")),
    "sae-lens": Peer("SAELens", "sae-lens", ("sae_lens",)),
}

# Each implementation a workload can time -> the peer it needs (None: mechscope or plain PyTorch).
IMPL_PEER: dict[str, str | None] = {
    "mechscope": None,
    "bare": None,
    "floor": None,
    "hf-eager": "transformers",
    "hf-sdpa": "transformers",
    "tl": "transformer-lens",
    "tl-bridge": "transformer-lens",
    "nnsight": "nnsight",
    "sae-lens": "sae-lens",
}


def missing_module(peer: str) -> str | None:
    """The first module ``peer`` needs that cannot be imported here, or None when it is installed."""
    for module in PEERS[peer].modules:
        if importlib.util.find_spec(module) is None:
            return module
    return None


def split_available(impls: list[str]) -> tuple[list[str], dict[str, str]]:
    """``impls`` whose peer is installed, and a reason for each one left out."""
    keep: list[str] = []
    skipped: dict[str, str] = {}
    for impl in impls:
        peer = IMPL_PEER.get(impl.split(":")[0])
        gone = missing_module(peer) if peer is not None else None
        if gone is None:
            keep.append(impl)
        else:
            skipped[impl] = (
                f"{PEERS[peer].name} is not installed (no module {gone!r}; pip install -e '.[bench]')"  # type: ignore[index]
            )
    return keep, skipped
