"""The activations recorded by :meth:`HookedDecoder.run_with_cache`."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import torch

from mechscope.errors import HookError
from mechscope.models.hooks import canonical_name, unknown_hook_message


class ActivationCache(Mapping[str, torch.Tensor]):
    """A read-only mapping from hook name to tensor; TransformerLens aliases work as keys."""

    def __init__(
        self, data: dict[str, torch.Tensor], tokens: torch.Tensor, attention_mask: torch.Tensor | None
    ):
        self._data = data
        self.tokens = tokens  # (batch, pos)
        self.attention_mask = attention_mask  # (batch, pos) or None when nothing is padded

    def __getitem__(self, name: str) -> torch.Tensor:
        try:
            return self._data[canonical_name(name)]
        except KeyError:
            raise HookError(unknown_hook_message(name, list(self._data)) + " in this cache") from None

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and canonical_name(name) in self._data

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def stack(self, suffix: str) -> torch.Tensor:
        """One activation of every layer stacked: ``stack("resid_post")`` -> (layer, batch, pos, ...)."""
        layers = [
            v for k, v in self._data.items() if k.startswith("blocks.") and k.split(".", 2)[2] == suffix
        ]
        if not layers:
            raise HookError(f"no per-layer activation {suffix!r} in this cache")
        return torch.stack(layers)

    def to(self, device: str | torch.device) -> ActivationCache:
        mask = self.attention_mask.to(device) if self.attention_mask is not None else None
        return ActivationCache({k: v.to(device) for k, v in self._data.items()}, self.tokens.to(device), mask)

    def nbytes(self) -> int:
        return sum(v.numel() * v.element_size() for v in self._data.values())

    def __repr__(self) -> str:
        return f"ActivationCache({len(self)} tensors, {self.nbytes() / 2**20:.1f} MiB)"
