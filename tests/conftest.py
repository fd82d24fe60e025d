"""Tiny random-weight models of each family, with a character-level tokenizer."""

from __future__ import annotations

import os
import string
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from tokenizers import Regex, pre_tokenizers
from tokenizers import Tokenizer as HFTokenizer
from tokenizers.models import WordLevel

from mechscope.models.config import ModelConfig
from mechscope.models.decoder import HookedDecoder
from mechscope.models.tokenizer import Tokenizer

CHARS = ["<pad>", "<bos>", "<eos>", *string.printable]


def char_tokenizer() -> Tokenizer:
    backend = HFTokenizer(WordLevel({c: i for i, c in enumerate(CHARS)}, unk_token="<pad>"))
    backend.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    return Tokenizer(backend=backend, bos_id=1, eos_ids=(2,), pad_id=0, add_bos=True)


BASE = dict(
    d_model=32, n_layers=2, n_heads=4, d_head=8, d_mlp=48, d_vocab=len(CHARS), n_ctx=64, eos_token_ids=(2,)
)
CONFIGS = {
    "llama": ModelConfig(architecture="llama", n_kv_heads=2, tie_embeddings=True, **BASE),  # type: ignore[arg-type]
    "gpt2": ModelConfig(
        architecture="gpt2",
        norm="layernorm",
        act="gelu_tanh",
        gated_mlp=False,
        positional="learned",
        qkv_bias=True,
        attn_out_bias=True,
        mlp_bias=True,
        **BASE,  # type: ignore[arg-type]
    ),
    "neox": ModelConfig(
        architecture="neox",
        norm="layernorm",
        act="gelu",
        gated_mlp=False,
        rotary_dim=4,
        parallel_residual=True,
        qkv_bias=True,
        attn_out_bias=True,
        mlp_bias=True,
        **BASE,  # type: ignore[arg-type]
    ),
    "gemma3": ModelConfig(
        architecture="gemma3",
        n_kv_heads=1,
        norm_weight_offset=1.0,
        act="gelu_tanh",
        qk_norm=True,
        sandwich_norms=True,
        embed_scale=32**0.5,
        sliding_window=3,
        layer_types=("sliding", "full"),
        rope_theta_local=100.0,
        final_softcap=5.0,
        attn_softcap=4.0,
        tie_embeddings=True,
        **BASE,  # type: ignore[arg-type]
    ),
}


def tiny_model(family: str, seed: int = 0) -> HookedDecoder:
    torch.manual_seed(seed)
    model = HookedDecoder(CONFIGS[family], char_tokenizer())
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(
                ("ln1.weight", "ln2.weight", "ln1_post.weight", "ln2_post.weight", "norm.weight")
            ):
                p.add_(torch.randn_like(p) * 0.3)  # norms away from their neutral value
            elif name.endswith("bias"):
                p.normal_(0, 0.1)
    model.requires_grad_(False)
    return model.eval()


@pytest.fixture(scope="session", autouse=True)
def llm_cache_of_the_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The tests' LLM answers go to a cache of this run, not the user's: an answer kept from an
    earlier run (a fake endpoint on a reused port) would stand in for the one a test expects.
    Ray workers get the same path through ``ray_worker_env``."""
    path = tmp_path_factory.mktemp("llm-cache") / "llm-cache.sqlite"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("mechscope.explain.llm_cache.default_cache_path", lambda: path)
        yield path


def ray_worker_env(tmp: Path) -> dict[str, Any]:
    """``ray.init`` keywords that give the workers their own ``MECHSCOPE_HOME`` (and so their own
    LLM cache), for the same reason."""
    return {"runtime_env": {"env_vars": {"MECHSCOPE_HOME": str(tmp)}}}


@pytest.fixture(params=sorted(CONFIGS))
def model(request: pytest.FixtureRequest) -> HookedDecoder:
    return tiny_model(request.param)


@pytest.fixture
def llama() -> HookedDecoder:
    return tiny_model("llama")


def need(condition: bool, what: str) -> None:
    """Skip a test whose tool or package is missing, with the reason; under CI (CI=true) fail
    instead, so that a broken install cannot pass as green."""
    if condition:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} (CI installs it with scripts/install.sh --test)")
    pytest.skip(what)
