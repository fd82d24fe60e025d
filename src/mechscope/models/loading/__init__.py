"""Loading models: Hugging Face folders, GGUF files and the embedded defaults."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import torch

from mechscope.errors import ModelLoadError
from mechscope.models.config import ModelConfig
from mechscope.models.decoder import HookedDecoder
from mechscope.models.families import family_for
from mechscope.models.memory import keep_freed_memory_by_default
from mechscope.models.tokenizer import Tokenizer

log = logging.getLogger(__name__)

# Bump when a change to conversion (weights or config) would make old cache entries wrong.
# v2: Gemma 3 sliding layers take their own rotary base.
CONVERTER_VERSION = "2"

NAMED_MODELS = {
    "smollm2": "SmolLM2-135M-Instruct (GGUF Q4_1, the embedded default)",
    "gemma3-270m": "Gemma 3 270M (GGUF Q4_K_M; Gemma terms of use apply)",
}
DEFAULT_MODEL = "smollm2"


def load_model(
    path: str | Path | None = None,
    dtype: torch.dtype | str = torch.float32,
    device: str | torch.device = "cpu",
    use_cache: bool = True,
) -> HookedDecoder:
    """Load a model: None for the embedded default (SmolLM2-135M-Instruct), a name from
    :data:`NAMED_MODELS`, a Hugging Face checkpoint folder, or a ``.gguf`` file."""
    t0 = time.perf_counter()
    keep_freed_memory_by_default()  # see models/memory.py: activation-heavy calls 2x faster
    dt = _dtype(dtype)
    source = resolve_source(path)
    if source.is_dir():
        model = _load_hf_folder(source, dt)
    elif source.suffix.lower() == ".gguf":
        model = _load_gguf(source, dt, use_cache)
    elif not source.exists():
        raise ModelLoadError(f"{source}: no such file or folder")
    else:
        raise ModelLoadError(f"{source}: expected a Hugging Face checkpoint folder or a .gguf file")
    model = model.to(device)
    model.load_seconds = time.perf_counter() - t0
    return model


def resolve_source(path: str | Path | None) -> Path:
    name = DEFAULT_MODEL if path is None else str(path)
    if name == "smollm2":
        from mechscope.models.loading.assets import smollm2_gguf_path

        return smollm2_gguf_path()
    if name == "gemma3-270m":
        from mechscope.models.loading.assets import gemma3_270m_gguf_path

        return gemma3_270m_gguf_path()
    return Path(name).expanduser()


def _dtype(dtype: torch.dtype | str) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        allowed = dtype
    else:
        allowed = {
            "float32": torch.float32,
            "fp32": torch.float32,
            "bfloat16": torch.bfloat16,
            "bf16": torch.bfloat16,
            "float16": torch.float16,
            "fp16": torch.float16,
        }.get(dtype)  # type: ignore[assignment]
        if allowed is None:
            raise ModelLoadError(f"dtype {dtype!r} is not supported; use float32, bfloat16 or float16")
    return allowed


def _load_hf_folder(folder: Path, dtype: torch.dtype) -> HookedDecoder:
    from mechscope.models.loading.hf import read_hf_config, read_hf_tokenizer, read_hf_weights

    hf_config = read_hf_config(folder)
    family = family_for(hf_config, str(folder / "config.json"))
    cfg = family.config(hf_config)
    weights = family.weights(read_hf_weights(folder), cfg)
    tokenizer = read_hf_tokenizer(folder, hf_config)
    return build_model(cfg, weights, tokenizer, dtype, source=str(folder))


def _load_gguf(path: Path, dtype: torch.dtype, use_cache: bool) -> HookedDecoder:
    from mechscope.models.loading.cache import cached_convert
    from mechscope.models.loading.gguf import read_gguf

    def convert() -> tuple[ModelConfig, dict[str, torch.Tensor], Tokenizer]:
        ckpt = read_gguf(path, dtype=dtype)
        family = family_for(ckpt.hf_config, str(path))
        cfg = family.config(ckpt.hf_config)
        bits = "".join(c for c in ckpt.quantization.split("_")[0] if c.isdigit())
        note = (
            f"dequantized {bits}-bit weights (GGUF {ckpt.quantization})"
            if bits
            else f"GGUF {ckpt.quantization}"
        )
        name = cfg.name if cfg.name not in ("", cfg.architecture) else path.stem
        cfg = _replace(cfg, note=note, name=name)
        return cfg, family.weights(ckpt.tensors, cfg), ckpt.tokenizer

    if use_cache:
        cfg, weights, tokenizer = cached_convert(path, f"{dtype}-v{CONVERTER_VERSION}", convert)
    else:
        cfg, weights, tokenizer = convert()
    return build_model(cfg, weights, tokenizer, dtype, source=str(path))


def _replace(cfg: ModelConfig, **changes: object) -> ModelConfig:
    import dataclasses

    return dataclasses.replace(cfg, **changes)  # type: ignore[arg-type]


def build_model(
    cfg: ModelConfig,
    weights: dict[str, torch.Tensor],
    tokenizer: Tokenizer | None,
    dtype: torch.dtype = torch.float32,
    source: str = "checkpoint",
) -> HookedDecoder:
    """A decoder with exactly these weights: every parameter present with the expected shape."""
    with torch.device("meta"):
        model = HookedDecoder(cfg, tokenizer)
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    missing = sorted(set(expected) - set(weights))
    unexpected = sorted(set(weights) - set(expected))
    if missing:
        raise ModelLoadError(
            f"{source}: missing tensor(s) for {cfg.architecture}: {', '.join(missing[:8])}"
            + (f" and {len(missing) - 8} more" if len(missing) > 8 else "")
        )
    if unexpected:
        raise ModelLoadError(
            f"{source}: unexpected tensor(s) for {cfg.architecture}: {', '.join(unexpected[:8])}"
            + (f" and {len(unexpected) - 8} more" if len(unexpected) > 8 else "")
        )
    for name, shape in expected.items():
        if tuple(weights[name].shape) != shape:
            raise ModelLoadError(
                f"{source}: tensor {name} has shape {tuple(weights[name].shape)}; expected {shape}"
            )
    model.load_state_dict({k: v.to(dtype) for k, v in weights.items()}, assign=True)
    model.eval()
    model.requires_grad_(False)
    return model
