"""Warm load: one load per fresh process, weights already on disk (and in mechscope's cache).

- ``mechscope``: ``ms.load_model()``, the embedded GGUF through mechscope's converted-weights
  cache (a cache hit: the model was loaded before);
- ``mechscope:folder``: ``ms.load_model(folder)`` of the Hugging Face checkpoint folder below;
- ``hf-sdpa``: transformers ``LlamaForCausalLM.from_pretrained(folder)``;
- ``tl-bridge``: TransformerLens ``TransformerBridge.boot_transformers(folder)``.

The folder (config, fp32 safetensors, tokenizer) is written once from the model under test, so
every loader reads the same weights. TransformerLens' HookedTransformer is not timed: it loads
only by a Hub model name, and nothing here is downloaded.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any


def save_folder(mode: str, folder: Path) -> dict[str, Any]:
    """Write the model under test as a Hugging Face checkpoint folder (once per run)."""
    from bench import _common
    from bench.peers import hf
    from bench.subjects import load_subject

    subject = load_subject(mode)
    hf.save_folder(subject.model, _common.hf_llama(subject.model, "sdpa"), folder)
    return {"folder": str(folder)}


def load_once(impl: str, folder: Path | None) -> dict[str, Any]:
    """Seconds to import the library and to load, in this (fresh) process."""
    t0 = time.perf_counter()
    import torch  # its import is timed apart from the load's

    t_torch = time.perf_counter() - t0
    if impl != "mechscope" and folder is None:
        raise ValueError(f"{impl} loads from a folder; none was given")
    t1 = time.perf_counter()
    model: Any
    if impl.startswith("mechscope"):
        import mechscope as ms

        t2 = time.perf_counter()
        model = ms.load_model() if impl == "mechscope" else ms.load_model(folder)
    elif impl == "hf-sdpa":
        from transformers import LlamaForCausalLM

        t2 = time.perf_counter()
        model = LlamaForCausalLM.from_pretrained(folder, dtype=torch.float32)
    elif impl == "tl-bridge":
        from transformer_lens.model_bridge import TransformerBridge
        from transformers import AutoTokenizer

        t2 = time.perf_counter()
        tok = AutoTokenizer.from_pretrained(folder)
        model = TransformerBridge.boot_transformers(str(folder), tokenizer=tok, device="cpu")
    else:
        raise ValueError(f"unknown load implementation {impl!r}")
    t3 = time.perf_counter()
    del model
    return {"import_torch_s": t_torch, "import_library_s": t2 - t1, "load_s": t3 - t2}
