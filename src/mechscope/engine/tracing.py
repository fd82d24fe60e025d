"""Tracing upstream: a node's own activation as the direction of interest.

The backward pass enters the residual stream where the node reads it: an MLP neuron reads
``resid_mid`` of its layer (``resid_pre`` with parallel residual) through ``ln2``; an attention
head reads ``resid_pre`` through ``ln1``. With ``freeze_norm_scale`` the norms between that point and
the node are frozen too, so that the direct effects of upstream nodes are linear where the traced
quantity is (a pre-activation, a score through one side, a value projection). Each kind builds
its own objective (``Kind.trace``); this module checks the node and dispatches.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from mechscope.engine.kinds import get_kind
from mechscope.engine.nodes import Node
from mechscope.engine.objective import Objective
from mechscope.errors import InputError

if TYPE_CHECKING:
    from mechscope.models.decoder import HookedDecoder


def node_objective(
    model: HookedDecoder,
    prompt: list[int],
    node: Node,
    through: str | None,
    downstream: Node | None,
    freeze: bool,
) -> Objective:
    """The objective "``node``'s activation, traced through ``through``" on the token ids ``prompt``."""
    node = node.check(model, len(prompt))
    kind = get_kind(node.kind, model)
    if kind.trace is None:
        raise InputError(f"a {kind.label} node ({node}) has nothing upstream to trace")
    rows = torch.tensor([prompt], dtype=torch.long, device=model.device)
    return kind.trace.objective(
        model, node, through, downstream, freeze,
        rows=rows, prompt_len=len(prompt), position=node.token, description=f"trace from {node}",
    )  # fmt: skip
