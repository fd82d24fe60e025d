"""The model every workload runs, and the tokens it runs on.

``real``: the embedded SmolLM2-135M-Instruct (``ms.load_model()``); ``random``: SmolLM2's shape
with random weights (no GGUF needed); ``tiny``: a 2-layer random Llama, for the harness's own
smoke test.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from bench import _common
from mechscope.models.config import ModelConfig
from mechscope.models.decoder import HookedDecoder
from mechscope.models.memory import keep_freed_memory_by_default

MODES = ("real", "random", "tiny")

# The debugger benchmark's prompt (bench/engine.py), repeated to any length.
TEXT = (
    "When Mary and John went to the store, John gave a drink to Mary. The store was on the corner of "
    "the street, next to the old library where the children used to read on Sunday afternoons. "
)


def tiny_config() -> ModelConfig:
    """A 2-layer Llama with grouped-query attention: every code path, in milliseconds."""
    return ModelConfig(
        architecture="llama",
        d_model=64,
        n_layers=2,
        n_heads=4,
        n_kv_heads=2,
        d_head=16,
        d_mlp=128,
        d_vocab=512,
        n_ctx=1024,
        norm="rmsnorm",
        norm_eps=1e-5,
        act="silu",
        gated_mlp=True,
        rope_theta=10000.0,
        tie_embeddings=True,
        name="tiny Llama (random weights)",
    )


@dataclass
class Subject:
    model: HookedDecoder
    mode: str
    label: str  # what the report says was measured

    def tokens(self, n: int) -> torch.Tensor:
        """(1, n) token ids: the debugger prompt where there is a tokenizer, fixed random ids otherwise."""
        tok = self.model.tokenizer
        if tok is not None:
            ids = tok.encode(TEXT)
            ids = (ids * (n // max(len(ids), 1) + 1))[:n]
            return torch.tensor([ids])
        g = torch.Generator().manual_seed(0)
        return torch.randint(3, self.model.cfg.d_vocab, (1, n), generator=g)

    def logit_pair(self) -> tuple[int, int]:
        """(target, distractor) of the logit difference every gradient workload explains."""
        tok = self.model.tokenizer
        if tok is not None:
            return tok.encode(" Mary", False)[0], tok.encode(" John", False)[0]
        return 1, 2


def load_subject(mode: str) -> Subject:
    """The model under test, with mechscope's process settings as ``load_model`` applies them."""
    if mode == "real":
        import mechscope as ms

        model = ms.load_model()
        label = f"{model.cfg.name or 'embedded default'} ({model.cfg.note or 'checkpoint'})"
    elif mode in ("random", "tiny"):
        keep_freed_memory_by_default()  # what load_model() does; MECHSCOPE_KEEP_FREED_MEMORY=0 opts out
        cfg = _common.smollm2_config() if mode == "random" else tiny_config()
        model = _common.random_model(cfg)
        label = cfg.name or mode
    else:
        raise ValueError(f"unknown model mode {mode!r}; expected one of {MODES}")
    _common.check_llama_like(model.cfg)
    model.requires_grad_(False).eval()
    return Subject(model, mode, label)


def weight_bytes(model: torch.nn.Module) -> int:
    """Bytes of distinct weights one decode step reads: every matrix once (a tied embedding is
    read whole by the unembedding; an untied one would be over-counted by all but one row)."""
    seen: set[int] = set()
    total = 0
    for p in model.state_dict().values():
        if p.data_ptr() not in seen:
            seen.add(p.data_ptr())
            total += p.numel() * p.element_size()
    return total
