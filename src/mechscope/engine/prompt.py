"""One prompt's token ids: what every single-prompt view (the debugger, the lens, patching,
attention, the prompt explorer) starts from. Its own module so that the lens and interventions
can use it without importing the attribution engine."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mechscope.errors import InputError

if TYPE_CHECKING:
    from mechscope.models.decoder import HookedDecoder, ModelInput


def prompt_ids(model: HookedDecoder, prompt: ModelInput) -> list[int]:
    """One prompt's token ids; a batch is refused (these views explain one prompt at a time)."""
    tokens, _ = model.to_tokens(prompt)
    if tokens.shape[0] != 1:
        raise InputError(f"the debugger takes one prompt, got a batch of {tokens.shape[0]}")
    return [int(t) for t in tokens[0]]
