"""Read a GGUF file (llama.cpp's format) into what a Hugging Face checkpoint folder holds.

The result is an HF-style ``config.json`` dict plus tensors under HF parameter names with the
HF checkpoint's shapes and meaning, so the family code maps GGUF and safetensors checkpoints in
one place. Undoing what llama.cpp's ``convert_hf_to_gguf.py`` changed is this module's job:

* Llama-family q/k rows are permuted per head (``LlamaModel.permute``) for llama.cpp's
  interleaved rotary; we invert it. Qwen2 and Gemma 3 are converted without it.
* Gemma norms are stored as ``w + 1`` (HF Gemma multiplies by ``1 + w``); we subtract 1.
* Quantized blocks are dequantized with ``gguf.quants`` (numpy) to float32.

The header is parsed here rather than with ``gguf.GGUFReader``, which builds a numpy view per
array element and takes 10 s (SmolLM2) to 27 s (Gemma 3) on vocabularies of 49k-262k tokens.
Format: https://github.com/ggml-org/ggml/blob/master/docs/gguf.md
"""

from __future__ import annotations

import mmap
import re
import struct
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gguf.quants as _gguf_quants
import numpy as np
import torch
from gguf import GGML_QUANT_SIZES, GGMLQuantizationType, LlamaFileType
from gguf.quants import dequantize

from mechscope.errors import (
    InputError,
    ModelLoadError,
    UnsupportedArchitectureError,
    UnsupportedTensorTypeError,
)
from mechscope.models.loading.gguf_tokenizer import tokenizer_from_gguf
from mechscope.models.tokenizer import Tokenizer

_MAGIC = b"GGUF"
_DEFAULT_ALIGNMENT = 32
# Metadata value types (gguf.md, gguf_metadata_value_type) -> struct format; 8 is string, 9 array.
_SCALARS = {
    0: "<B",
    1: "<b",
    2: "<H",
    3: "<h",
    4: "<I",
    5: "<i",
    6: "<f",
    7: "<?",
    10: "<Q",
    11: "<q",
    12: "<d",
}
_FLOAT32, _STRING, _ARRAY = 6, 8, 9

_Q = GGMLQuantizationType
# Every type gguf.quants dequantizes: F32/F16 inline, the rest through its per-type classes (the
# K-quants, legacy Q*_0/Q*_1, IQ families, TQ1_0/TQ2_0, MXFP4, ...). gguf-py keeps that registry
# private; the K/IQ block layouts live there and nowhere else in Python.
ALLOWED_TYPES: tuple[GGMLQuantizationType, ...] = (
    _Q.F32,
    _Q.F16,
    *sorted(_gguf_quants._type_traits, key=lambda t: t.value),
)
"""Tensor types ``read_gguf`` dequantizes (with ``gguf.quants``); any other is an error."""


@dataclass
class GGUFCheckpoint:
    """A GGUF file translated into the contents of a Hugging Face checkpoint folder."""

    hf_config: dict[str, Any]
    """HF-style config.json contents, including ``model_type``."""
    tensors: dict[str, torch.Tensor]
    """HF parameter names -> dequantized tensors, shaped (out_features, in_features)."""
    tokenizer: Tokenizer
    """The tokenizer rebuilt from the file's metadata."""
    quantization: str
    """The file's weight type as llama.cpp names it, e.g. ``"Q4_1"`` or ``"Q4_K_M"``."""


@dataclass(frozen=True)
class _TensorInfo:
    name: str
    shape: tuple[int, ...]  # torch order; GGUF lists dims fastest-first, i.e. (in, out) for a matrix
    qtype: GGMLQuantizationType
    offset: int  # absolute byte offset in the file
    nbytes: int


ROPE_FREQS = "rope_freqs"
"""Key of llama.cpp's ``rope_freqs.weight`` (rotary frequency divisors) among the HF-named tensors."""

# GGUF tensor names (gguf.md, "Standardized tensor names") -> HF names.
_GLOBAL_NAMES = {"token_embd": "model.embed_tokens", "output_norm": "model.norm", "output": "lm_head"}
_LAYER_NAMES = {
    "attn_q": "self_attn.q_proj",
    "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj",
    "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
    "attn_norm": "input_layernorm",
    "ffn_norm": "post_attention_layernorm",
}
# Gemma 3 has four norms per block; llama.cpp calls the pre-MLP one ffn_norm.
_GEMMA3_LAYER_NAMES = {
    **_LAYER_NAMES,
    "ffn_norm": "pre_feedforward_layernorm",
    "post_attention_norm": "post_attention_layernorm",
    "post_ffw_norm": "post_feedforward_layernorm",
    "attn_q_norm": "self_attn.q_norm",
    "attn_k_norm": "self_attn.k_norm",
}


_QWEN3_LAYER_NAMES = {**_LAYER_NAMES, "attn_q_norm": "self_attn.q_norm", "attn_k_norm": "self_attn.k_norm"}
_GEMMA2_LAYER_NAMES = {
    k: v for k, v in _GEMMA3_LAYER_NAMES.items() if k not in ("attn_q_norm", "attn_k_norm")
}
# Phi-3 keeps HF's fused projections; llama.cpp calls the fused gate/up matrix ffn_up.
_PHI3_LAYER_NAMES = {
    "attn_qkv": "self_attn.qkv_proj",
    "attn_output": "self_attn.o_proj",
    "ffn_up": "mlp.gate_up_proj",
    "ffn_down": "mlp.down_proj",
    "attn_norm": "input_layernorm",
    "ffn_norm": "post_attention_layernorm",
}


@dataclass(frozen=True)
class _Arch:
    model_type: str
    hf_class: str
    layer_names: dict[str, str]
    permute_qk: bool  # convert_hf_to_gguf.py: only LlamaModel.modify_tensors permutes q/k
    norm_offset: float  # convert_hf_to_gguf.py: Gemma3Model adds 1 to every "*norm.weight"
    biases: tuple[str, ...] = ()  # HF modules that carry a bias
    global_names: dict[str, str] = field(default_factory=lambda: dict(_GLOBAL_NAMES))
    layer_prefix: str = "model.layers"  # HF's prefix of block N's modules
    transposed: tuple[str, ...] = ()  # HF tensors stored (in, out) (GPT-2's Conv1D); GGUF has (out, in)
    per_head_qkv: bool = False  # HF's fused qkv rows are per head [q, k, v]; llama.cpp's are [q; k; v]


_ARCHS = {
    "llama": _Arch("llama", "LlamaForCausalLM", _LAYER_NAMES, permute_qk=True, norm_offset=0.0),
    "qwen2": _Arch("qwen2", "Qwen2ForCausalLM", _LAYER_NAMES, False, 0.0, ("q_proj", "k_proj", "v_proj")),
    "gemma3": _Arch("gemma3_text", "Gemma3ForCausalLM", _GEMMA3_LAYER_NAMES, False, 1.0),
    "qwen3": _Arch("qwen3", "Qwen3ForCausalLM", _QWEN3_LAYER_NAMES, False, 0.0),
    "gemma2": _Arch("gemma2", "Gemma2ForCausalLM", _GEMMA2_LAYER_NAMES, False, 1.0),
    "phi3": _Arch("phi3", "Phi3ForCausalLM", _PHI3_LAYER_NAMES, False, 0.0),
    "gpt2": _Arch(
        "gpt2",
        "GPT2LMHeadModel",
        {
            "attn_norm": "ln_1",
            "attn_qkv": "attn.c_attn",
            "attn_output": "attn.c_proj",
            "ffn_norm": "ln_2",
            "ffn_up": "mlp.c_fc",
            "ffn_down": "mlp.c_proj",
        },
        False,
        0.0,
        global_names={
            "token_embd": "transformer.wte",
            "position_embd": "transformer.wpe",
            "output_norm": "transformer.ln_f",
            "output": "lm_head",
        },
        layer_prefix="transformer.h",
        # convert_hf_to_gguf.py's GPT2Model transposes these four Conv1D weights to (out, in).
        transposed=tuple(f"{m}.weight" for m in ("attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj")),
    ),
    "gptneox": _Arch(
        "gpt_neox",
        "GPTNeoXForCausalLM",
        {
            "attn_norm": "input_layernorm",
            "attn_qkv": "attention.query_key_value",
            "attn_output": "attention.dense",
            "ffn_norm": "post_attention_layernorm",
            "ffn_up": "mlp.dense_h_to_4h",
            "ffn_down": "mlp.dense_4h_to_h",
        },
        False,
        0.0,
        global_names={
            "token_embd": "gpt_neox.embed_in",
            "output_norm": "gpt_neox.final_layer_norm",
            "output": "embed_out",
        },
        layer_prefix="gpt_neox.layers",
        per_head_qkv=True,
    ),
}
# Mistral is written as "llama" by llama.cpp's converter (MistralModel is a LlamaModel).


def read_gguf(path: str | Path, dtype: torch.dtype = torch.float32) -> GGUFCheckpoint:
    """Read a GGUF file of a supported architecture (see ``_ARCHS``); weights come back dequantized
    to ``dtype``."""
    if dtype not in (torch.float32, torch.bfloat16, torch.float16):
        raise InputError(f"dtype must be torch.float32, torch.bfloat16 or torch.float16, got {dtype}")
    path = Path(path)
    buffer, metadata, infos = _open(path)
    arch_name = str(metadata.get("general.architecture"))
    arch = _ARCHS.get(arch_name)
    if arch is None:
        raise UnsupportedArchitectureError(
            f"{path}: GGUF architecture {arch_name!r} ('general.architecture') is not supported; "
            f"supported: {sorted(_ARCHS)}"
        )
    hf_infos = _hf_names(path, arch_name, arch, infos)
    config = _hf_config(_Meta(path, arch_name, metadata), arch, hf_infos)
    _check_shapes(path, config, arch, hf_infos)  # before the slow parts: tokenizer, dequantizing
    tokenizer = tokenizer_from_gguf(metadata, source=str(path))
    tensors = {}
    freqs = hf_infos.pop(ROPE_FREQS, None)
    if freqs is not None:
        factors = _dequantize(buffer, freqs)
        if factors.shape != (config["head_dim"] // 2,):
            raise ModelLoadError(
                f"{path}: rope_freqs.weight has shape {tuple(factors.shape)}, expected ({config['head_dim'] // 2},)"
            )
        config["rope_scaling"] = {"rope_type": "freq_factors", "factors": factors.tolist()}
    for hf_name, info in hf_infos.items():
        tensor = _dequantize(buffer, info)
        if arch.permute_qk and hf_name.endswith(("q_proj.weight", "q_proj.bias")):
            tensor = _unpermute(tensor, config["num_attention_heads"])
        elif arch.permute_qk and hf_name.endswith(("k_proj.weight", "k_proj.bias")):
            tensor = _unpermute(tensor, config["num_key_value_heads"])
        if hf_name.endswith(arch.transposed):
            tensor = tensor.T.contiguous()
        if arch.per_head_qkv and ".query_key_value." in hf_name:
            # Undo GPTNeoXModel.modify_tensors: [q; k; v] blocks back to per-head [q, k, v] rows.
            h = config["num_attention_heads"]
            tensor = tensor.reshape(3, h, -1, *tensor.shape[1:]).transpose(0, 1).reshape(tensor.shape)
        if arch.norm_offset and hf_name.endswith("norm.weight"):
            tensor = tensor - arch.norm_offset  # in float32, as the converter added it
        tensors[hf_name] = tensor.to(dtype)
    return GGUFCheckpoint(config, tensors, tokenizer, _quantization(metadata, infos))


def provenance_note(quantization: str) -> str:
    """Text for ``ModelConfig.note``, e.g. "dequantized 4-bit weights (GGUF Q4_1)"."""
    match = re.match(r"B?F(\d+)$|Q(\d)", quantization)
    if match and match.group(1):
        return f"{match.group(1)}-bit float weights (GGUF {quantization})"
    bits = f"{match.group(2)}-bit " if match else ""
    return f"dequantized {bits}weights (GGUF {quantization})"


def _open(path: Path) -> tuple[mmap.mmap, dict[str, Any], list[_TensorInfo]]:
    """Memory-map the file and parse its header; every structural problem is a ModelLoadError."""
    if not path.is_file():
        raise ModelLoadError(f"{path}: GGUF file not found")
    with path.open("rb") as f:
        if f.read(4) != _MAGIC:
            raise ModelLoadError(f"{path}: not a GGUF file (expected the magic bytes 'GGUF' at the start)")
        buffer = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    try:
        metadata, infos = _Header(buffer).parse()
    except (struct.error, IndexError, KeyError, UnicodeDecodeError, ValueError) as e:
        raise ModelLoadError(f"{path}: GGUF header is truncated or corrupted ({e})") from e
    for info in infos:
        if info.offset + info.nbytes > len(buffer):
            raise ModelLoadError(
                f"{path}: file is truncated: tensor {info.name!r} needs bytes up to "
                f"{info.offset + info.nbytes}, but the file has {len(buffer)} bytes"
            )
        if info.qtype not in ALLOWED_TYPES:
            raise UnsupportedTensorTypeError(
                f"{path}: tensor {info.name!r} has type {info.qtype.name}, which mechscope cannot "
                f"dequantize; supported: {', '.join(t.name for t in ALLOWED_TYPES)}"
            )
    return buffer, metadata, infos


class _Header:
    """A cursor over the header bytes (little-endian GGUF v2/v3)."""

    def __init__(self, buffer: mmap.mmap) -> None:
        self.buf = buffer
        self.pos = 4

    def parse(self) -> tuple[dict[str, Any], list[_TensorInfo]]:
        version = self._scalar(4)
        if version not in (2, 3):
            raise ValueError(f"GGUF version {version}; expected 2 or 3 (little-endian)")
        n_tensors, n_kv = self._scalar(10), self._scalar(10)
        metadata = {}
        for _ in range(n_kv):
            key = self._string()
            metadata[key] = self._value(self._scalar(4))
        raw = []
        for _ in range(n_tensors):
            name = self._string()
            dims = [self._scalar(10) for _ in range(self._scalar(4))]
            raw.append((name, tuple(reversed(dims)), GGMLQuantizationType(self._scalar(4)), self._scalar(10)))
        align = int(metadata.get("general.alignment", _DEFAULT_ALIGNMENT))
        data_start = -(-self.pos // align) * align
        infos = []
        for name, shape, qtype, offset in raw:
            block, type_size = GGML_QUANT_SIZES[qtype]
            if shape and shape[-1] % block:
                raise ValueError(
                    f"tensor {name!r} has rows of {shape[-1]}, not a multiple of {qtype.name} blocks"
                )
            nbytes = int(np.prod(shape, dtype=np.int64)) // block * type_size
            infos.append(_TensorInfo(name, shape, qtype, data_start + offset, nbytes))
        return metadata, infos

    def _scalar(self, kind: int) -> Any:
        fmt = _SCALARS[kind]
        (value,) = struct.unpack_from(fmt, self.buf, self.pos)
        self.pos += struct.calcsize(fmt)
        if kind == _FLOAT32:
            # Shortest decimal that round-trips in float32: recovers config.json's 1e-05, not 9.99e-06.
            return float(str(np.float32(value)))
        return value

    def _string(self) -> str:
        n = self._scalar(10)
        if self.pos + n > len(self.buf):
            raise ValueError("string runs past the end of the file")
        text = self.buf[self.pos : self.pos + n].decode("utf-8", errors="replace")
        self.pos += n
        return text

    def _value(self, kind: int) -> Any:
        if kind == _STRING:
            return self._string()
        if kind != _ARRAY:
            return self._scalar(kind)
        item_kind, n = self._scalar(4), self._scalar(10)
        if item_kind in (_STRING, _ARRAY):
            return [self._value(item_kind) for _ in range(n)]
        dtype = np.dtype(_SCALARS[item_kind])
        items = np.frombuffer(self.buf, dtype=dtype, count=n, offset=self.pos)
        self.pos += n * dtype.itemsize
        return items.tolist()


def _hf_names(path: Path, arch_name: str, arch: _Arch, infos: list[_TensorInfo]) -> dict[str, _TensorInfo]:
    """GGUF tensor names -> HF names; a tensor we cannot place is an error, never skipped."""
    out = {}
    for info in infos:
        if info.name == "rope_freqs.weight" and arch.model_type == "llama":
            out[ROPE_FREQS] = info  # Llama 3.1+ rope scaling, as per-frequency divisors
            continue
        stem, _, suffix = info.name.rpartition(".")
        parts = stem.split(".")
        hf = None
        if len(parts) == 1 and parts[0] in arch.global_names:
            hf = arch.global_names[parts[0]]
        elif len(parts) == 3 and parts[0] == "blk" and parts[2] in arch.layer_names:
            hf = f"{arch.layer_prefix}.{int(parts[1])}.{arch.layer_names[parts[2]]}"
        if hf is None or suffix not in ("weight", "bias"):
            raise ModelLoadError(
                f"{path}: tensor {info.name!r} is not part of a {arch_name} model as mechscope reads it; "
                f"expected {', '.join(arch.global_names)} and blk.N.{{{', '.join(arch.layer_names)}}}"
            )
        out[f"{hf}.{suffix}"] = info
    return out


class _Meta:
    """Architecture metadata with errors that name the file and key."""

    def __init__(self, path: Path, arch: str, values: dict[str, Any]) -> None:
        self.path, self.arch, self.values = path, arch, values

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(f"{self.arch}.{key}", default)

    def require(self, key: str) -> Any:
        if f"{self.arch}.{key}" not in self.values:
            raise ModelLoadError(f"{self.path}: metadata key '{self.arch}.{key}' is missing")
        return self.values[f"{self.arch}.{key}"]


def _hf_config(meta: _Meta, arch: _Arch, tensors: dict[str, _TensorInfo]) -> dict[str, Any]:
    """config.json as the HF checkpoint had it, from llama.cpp's metadata keys and defaults."""
    if arch.model_type == "gpt2":
        return _gpt2_config(meta, arch, tensors)
    if arch.model_type == "gpt_neox":
        return _neox_config(meta, arch, tensors)
    hidden, heads = int(meta.require("embedding_length")), int(meta.require("attention.head_count"))
    kv_heads = meta.get("attention.head_count_kv", heads)
    if isinstance(kv_heads, list):  # some converters write one count per layer
        if len(set(kv_heads)) != 1:
            raise ModelLoadError(f"{meta.path}: per-layer key/value head counts {kv_heads} are not supported")
        kv_heads = kv_heads[0]
    _check_declared(meta, arch, tensors, hidden, heads, int(kv_heads))
    head_dim = int(meta.get("attention.key_length", hidden // heads))
    if int(meta.get("attention.value_length", head_dim)) != head_dim:
        raise ModelLoadError(f"{meta.path}: key and value head sizes differ; mechscope needs them equal")
    # llama.cpp writes vocab_size for some architectures only; the token list always has it.
    vocab = meta.get("vocab_size") or len(meta.values.get("tokenizer.ggml.tokens") or ())
    config: dict[str, Any] = {
        "model_type": arch.model_type,
        "architectures": [arch.hf_class],
        "hidden_size": hidden,
        "num_hidden_layers": int(meta.require("block_count")),
        "num_attention_heads": heads,
        "num_key_value_heads": int(kv_heads),
        "head_dim": head_dim,
        "intermediate_size": int(meta.require("feed_forward_length")),
        "vocab_size": int(vocab),
        "max_position_embeddings": int(meta.require("context_length")),
        "rms_norm_eps": meta.require("attention.layer_norm_rms_epsilon"),
        "rope_theta": meta.get("rope.freq_base", 10000.0),  # llama.cpp's default
        "rope_scaling": _rope_scaling(meta),
        # llama.cpp writes output.weight only when it differs from the embedding.
        "tie_word_embeddings": "lm_head.weight" not in tensors,
        "bos_token_id": meta.values.get("tokenizer.ggml.bos_token_id"),
        "eos_token_id": meta.values.get("tokenizer.ggml.eos_token_id"),
        "pad_token_id": meta.values.get("tokenizer.ggml.padding_token_id"),
    }
    rope_dims = meta.get("rope.dimension_count", head_dim)
    if rope_dims != head_dim and arch.model_type != "phi3":
        raise ModelLoadError(f"{meta.path}: partial rotary ({rope_dims} of {head_dim} dims) is not supported")
    if arch.model_type == "llama":
        has_bias = any(n.endswith("_proj.bias") for n in tensors)
        config.update(hidden_act="silu", attention_bias=has_bias, mlp_bias=False)
    elif arch.model_type in ("qwen2", "qwen3"):
        config.update(hidden_act="silu", use_sliding_window=False, attention_bias=False)
    elif arch.model_type == "phi3":
        config.update(hidden_act="silu", partial_rotary_factor=rope_dims / head_dim)
        if meta.get("rope.scaling.attn_factor") is not None or "rope_factors_long.weight" in tensors:
            raise ModelLoadError(f"{meta.path}: Phi-3 long-context (longrope) scaling is not supported")
    elif arch.model_type == "gemma2":
        config.update(_gemma3_config(meta, config, pattern=2))
    elif arch.model_type == "gemma3_text":
        config.update(_gemma3_config(meta, config))
    return config


def _check_declared(
    meta: _Meta, arch: _Arch, tensors: dict[str, _TensorInfo], hidden: int, heads: int, kv_heads: int
) -> None:
    """Declared sizes against the tensors actually in the file, before anything is sized from them:
    a hostile header (block_count = 2**32 - 1, say) is an error, not a loop or a huge allocation."""
    prefix = arch.layer_prefix + "."
    layers = {int(n.removeprefix(prefix).split(".")[0]) for n in tensors if n.startswith(prefix)}
    n_layers = int(meta.require("block_count"))
    if n_layers != len(layers) or (layers and max(layers) != n_layers - 1):
        raise ModelLoadError(
            f"{meta.path}: metadata declares block_count={n_layers}, but the file has tensors for "
            f"{len(layers)} blocks"
        )
    embed = tensors.get(arch.global_names["token_embd"] + ".weight")
    if embed is not None and embed.shape[-1] != hidden:
        raise ModelLoadError(
            f"{meta.path}: metadata declares embedding_length={hidden}, but token_embd.weight has "
            f"{embed.shape[-1]} columns"
        )
    if heads <= 0 or kv_heads <= 0 or heads % kv_heads:
        raise ModelLoadError(
            f"{meta.path}: head counts {heads} (query) and {kv_heads} (key/value) must be positive, "
            "the first a multiple of the second"
        )


def _gpt2_config(meta: _Meta, arch: _Arch, tensors: dict[str, _TensorInfo]) -> dict[str, Any]:
    """GPT-2's own config.json keys (its family reads those, not Llama's)."""
    hidden, heads = int(meta.require("embedding_length")), int(meta.require("attention.head_count"))
    _check_declared(meta, arch, tensors, hidden, heads, heads)
    vocab = meta.get("vocab_size") or len(meta.values.get("tokenizer.ggml.tokens") or ())
    return {
        "model_type": "gpt2",
        "architectures": [arch.hf_class],
        "n_embd": hidden,
        "n_layer": int(meta.require("block_count")),
        "n_head": heads,
        "n_inner": int(meta.require("feed_forward_length")),
        "n_positions": int(meta.require("context_length")),
        "vocab_size": int(vocab),
        "layer_norm_epsilon": meta.require("attention.layer_norm_epsilon"),
        "activation_function": "gelu_new",  # llama.cpp's GPT-2 graph uses the tanh GELU
        "tie_word_embeddings": "lm_head.weight" not in tensors,
        "bos_token_id": meta.values.get("tokenizer.ggml.bos_token_id"),
        "eos_token_id": meta.values.get("tokenizer.ggml.eos_token_id"),
    }


def _neox_config(meta: _Meta, arch: _Arch, tensors: dict[str, _TensorInfo]) -> dict[str, Any]:
    """GPT-NeoX's own config.json keys."""
    hidden, heads = int(meta.require("embedding_length")), int(meta.require("attention.head_count"))
    _check_declared(meta, arch, tensors, hidden, heads, heads)
    vocab = meta.get("vocab_size") or len(meta.values.get("tokenizer.ggml.tokens") or ())
    head_dim = hidden // heads
    return {
        "model_type": "gpt_neox",
        "architectures": [arch.hf_class],
        "hidden_size": hidden,
        "num_hidden_layers": int(meta.require("block_count")),
        "num_attention_heads": heads,
        "intermediate_size": int(meta.require("feed_forward_length")),
        "max_position_embeddings": int(meta.require("context_length")),
        "vocab_size": int(vocab),
        "layer_norm_eps": meta.require("attention.layer_norm_epsilon"),
        "rotary_pct": int(meta.get("rope.dimension_count", head_dim)) / head_dim,
        "rotary_emb_base": meta.get("rope.freq_base", 10000.0),
        "use_parallel_residual": bool(meta.get("use_parallel_residual", True)),
        "hidden_act": "gelu",
        "tie_word_embeddings": "embed_out.weight" not in tensors,
        "bos_token_id": meta.values.get("tokenizer.ggml.bos_token_id"),
        "eos_token_id": meta.values.get("tokenizer.ggml.eos_token_id"),
    }


def _biased_layers(
    arch: _Arch, n_layers: int, block: dict[str, tuple[int, ...]]
) -> dict[str, tuple[int, ...]]:
    """Every layer's ``{module}.weight`` of ``block``'s shape and its ``{module}.bias`` (GPT-2 and
    NeoX give every module a bias)."""
    return {
        f"{arch.layer_prefix}.{i}.{module}.{part}": shape if part == "weight" else shape[:1]
        for i in range(n_layers)
        for module, shape in block.items()
        for part in ("weight", "bias")
    }


def _neox_shapes(config: dict[str, Any], arch: _Arch) -> dict[str, tuple[int, ...]]:
    d, ff, v = config["hidden_size"], config["intermediate_size"], config["vocab_size"]
    out: dict[str, tuple[int, ...]] = {
        "gpt_neox.embed_in.weight": (v, d),
        "gpt_neox.final_layer_norm.weight": (d,),
        "gpt_neox.final_layer_norm.bias": (d,),
    }
    if not config["tie_word_embeddings"]:
        out["embed_out.weight"] = (v, d)
    block = {
        "input_layernorm": (d,),
        "attention.query_key_value": (3 * d, d),
        "attention.dense": (d, d),
        "post_attention_layernorm": (d,),
        "mlp.dense_h_to_4h": (ff, d),
        "mlp.dense_4h_to_h": (d, ff),
    }
    return out | _biased_layers(arch, config["num_hidden_layers"], block)


def _gpt2_shapes(config: dict[str, Any], arch: _Arch) -> dict[str, tuple[int, ...]]:
    """GPT-2 tensors as the file stores them: (out, in) matrices (the Conv1D ones transposed)."""
    d, ff, v = config["n_embd"], config["n_inner"], config["vocab_size"]
    out: dict[str, tuple[int, ...]] = {
        "transformer.wte.weight": (v, d),
        "transformer.wpe.weight": (config["n_positions"], d),
        "transformer.ln_f.weight": (d,),
        "transformer.ln_f.bias": (d,),
    }
    if not config["tie_word_embeddings"]:
        out["lm_head.weight"] = (v, d)
    block = {
        "ln_1": (d,),
        "attn.c_attn": (3 * d, d),
        "attn.c_proj": (d, d),
        "ln_2": (d,),
        "mlp.c_fc": (ff, d),
        "mlp.c_proj": (d, ff),
    }
    return out | _biased_layers(arch, config["n_layer"], block)


def _gemma3_config(meta: _Meta, config: dict[str, Any], pattern: int = 6) -> dict[str, Any]:
    """Gemma 2/3 keys the GGUF does not store; values follow llama.cpp (llama-model.cpp,
    LLM_ARCH_GEMMA2/3): every ``pattern``-th layer is global (Gemma 3: set_swa_pattern(6), as HF's
    sliding_window_pattern; Gemma 2: 2)."""
    n_layers, window = config["num_hidden_layers"], int(meta.get("attention.sliding_window", 0))
    layer_types = [
        "full_attention" if not window or (i + 1) % pattern == 0 else "sliding_attention"
        for i in range(n_layers)
    ]
    # llama.cpp scales q by 1/sqrt(head_dim), except for the 27B (62 layers): 1/sqrt(hidden/heads).
    scalar = config["hidden_size"] // config["num_attention_heads"] if n_layers == 62 else config["head_dim"]
    return {
        "hidden_activation": "gelu_pytorch_tanh",  # the converter asserts Gemma 3 uses it
        "query_pre_attn_scalar": scalar,
        "sliding_window": window or None,
        "sliding_window_pattern": pattern,
        "layer_types": layer_types,
        "rope_local_base_freq": meta.get("rope.freq_base_swa", 10000.0),  # rope_freq_base_train_swa
        # The converter asserts both are None for Gemma 3; newer files may state a final cap.
        "final_logit_softcapping": meta.get("final_logit_softcapping"),
        "attn_logit_softcapping": meta.get("attn_logit_softcapping"),
        "attention_bias": False,
    }


def _rope_scaling(meta: _Meta) -> dict[str, Any] | None:
    kind = meta.get("rope.scaling.type", "none")
    factor = meta.get("rope.scaling.factor")
    if kind == "none" or factor in (None, 1.0):
        return None
    if kind == "linear":
        return {"rope_type": "linear", "factor": factor}
    if kind == "yarn":
        original = meta.get("rope.scaling.original_context_length")
        return {"rope_type": "yarn", "factor": factor, "original_max_position_embeddings": original}
    raise ModelLoadError(f"{meta.path}: rope scaling {kind!r} is not supported; supported: linear, yarn")


def _check_shapes(path: Path, config: dict[str, Any], arch: _Arch, tensors: dict[str, _TensorInfo]) -> None:
    """Every tensor the config implies is present with the HF shape, before any dequantizing."""
    if arch.model_type in ("gpt2", "gpt_neox"):
        shapes = _gpt2_shapes if arch.model_type == "gpt2" else _neox_shapes
        _compare_shapes(path, arch, shapes(config, arch), {}, tensors)
        return
    d, ff, v, hd = (config[k] for k in ("hidden_size", "intermediate_size", "vocab_size", "head_dim"))
    q, kv = config["num_attention_heads"] * hd, config["num_key_value_heads"] * hd
    layer: dict[str, tuple[int, ...]] = {
        "self_attn.q_proj": (q, d),
        "self_attn.k_proj": (kv, d),
        "self_attn.v_proj": (kv, d),
        "self_attn.o_proj": (d, q),
        "mlp.gate_proj": (ff, d),
        "mlp.up_proj": (ff, d),
        "mlp.down_proj": (d, ff),
        "self_attn.q_norm": (hd,),
        "self_attn.k_norm": (hd,),
        "self_attn.qkv_proj": (q + 2 * kv, d),
        "mlp.gate_up_proj": (2 * ff, d),
    }
    expected: dict[str, tuple[int, ...]] = {"model.embed_tokens.weight": (v, d), "model.norm.weight": (d,)}
    if not config["tie_word_embeddings"]:
        expected["lm_head.weight"] = (v, d)
    for i in range(config["num_hidden_layers"]):
        for module in arch.layer_names.values():
            expected[f"model.layers.{i}.{module}.weight"] = layer.get(module, (d,))
        for module in arch.biases:
            expected[f"model.layers.{i}.self_attn.{module}.bias"] = layer[f"self_attn.{module}"][:1]
    optional = {  # attention biases some llama-arch files carry
        f"model.layers.{i}.self_attn.{m}.bias": layer[f"self_attn.{m}"][:1]
        for i in range(config["num_hidden_layers"])
        for m in ("q_proj", "k_proj", "v_proj", "o_proj")
    }
    optional[ROPE_FREQS] = (hd // 2,)
    _compare_shapes(path, arch, expected, optional, tensors)


def _compare_shapes(
    path: Path,
    arch: _Arch,
    expected: dict[str, tuple[int, ...]],
    optional: dict[str, tuple[int, ...]],
    tensors: dict[str, _TensorInfo],
) -> None:
    for hf_name, want in expected.items():
        if hf_name not in tensors:
            raise ModelLoadError(
                f"{path}: tensor {_gguf_name(hf_name, arch)!r} ({hf_name}) is missing; expected shape {want}"
            )
    for hf_name, info in tensors.items():
        shape = expected.get(hf_name, optional.get(hf_name))
        if shape is None:
            raise ModelLoadError(f"{path}: tensor {info.name!r} is not expected for this configuration")
        if info.shape != shape:
            raise ModelLoadError(
                f"{path}: tensor {info.name!r} ({hf_name}) has shape {info.shape}, expected {shape} "
                "from the file's metadata"
            )


def _gguf_name(hf_name: str, arch: _Arch) -> str:
    stem, _, suffix = hf_name.rpartition(".")
    names = {hf: gguf for gguf, hf in arch.global_names.items()}
    if stem in names:
        return f"{names[stem]}.{suffix}"
    layer, module = stem.removeprefix(arch.layer_prefix + ".").split(".", 1)  # <prefix>.N.<module>
    names = {hf: gguf for gguf, hf in arch.layer_names.items()}
    return f"blk.{layer}.{names[module]}.{suffix}"


def _dequantize(buffer: mmap.mmap, info: _TensorInfo) -> torch.Tensor:
    block, type_size = GGML_QUANT_SIZES[info.qtype]
    rows = np.frombuffer(buffer, dtype=np.uint8, count=info.nbytes, offset=info.offset)
    rows = rows.reshape(-1, info.shape[-1] // block * type_size)  # (rows, bytes per row)
    values = dequantize(rows, info.qtype).reshape(info.shape)  # float32, (out, in)
    if not values.flags.writeable:  # F32 comes back as a view of the read-only file
        values = values.copy()
    return torch.from_numpy(values)


def _unpermute(weight: torch.Tensor, n_heads: int) -> torch.Tensor:
    """Invert llama.cpp's ``LlamaModel.permute`` on q/k rows (weights or biases).

    The converter reorders each head's rows from HF's two halves (rotate_half) to interleaved
    pairs: ``reshape(heads, 2, d/2, ...).swapaxes(1, 2)``. The inverse swaps them back.
    """
    half = weight.shape[0] // n_heads // 2
    return weight.reshape(n_heads, half, 2, *weight.shape[1:]).transpose(1, 2).reshape(weight.shape)


def _quantization(metadata: dict[str, Any], infos: list[_TensorInfo]) -> str:
    """llama.cpp's name for the file type (general.file_type), else the commonest matrix type."""
    file_type = metadata.get("general.file_type")
    if file_type is not None:
        try:
            return LlamaFileType(file_type).name.removeprefix("MOSTLY_").removeprefix("ALL_")
        except ValueError:
            pass
    counts = Counter(info.qtype.name for info in infos if len(info.shape) == 2)
    return counts.most_common(1)[0][0] if counts else "F32"
