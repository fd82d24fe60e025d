"""Rebuild a model's tokenizer from GGUF metadata with the ``tokenizers`` library.

A GGUF file carries no ``tokenizer.json``: llama.cpp stores the vocabulary, merges or scores,
token types and special ids under ``tokenizer.ggml.*`` keys. We rebuild the tokenizer llama.cpp
would run, following its ``src/llama-vocab.cpp`` (pre-tokenizer regexes, BOS default, the
end-of-generation list) and its converter ``convert_hf_to_gguf.py`` (what it rewrote on the way in).

Two vocabulary kinds are supported:

* ``gpt2``: byte-level BPE (SmolLM2, Qwen2, Llama 3). Tokens are already spelled in GPT-2's
  byte alphabet; the merges are in the file; ``tokenizer.ggml.pre`` names the split regex.
* ``llama``: SentencePiece BPE (Gemma 3, Llama 2). There are no merges, only per-token scores;
  a pair merges when the joined piece is in the vocabulary, best score first, and text that no
  piece covers falls back to ``<0xNN>`` byte tokens.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from tokenizers import AddedToken, Regex, decoders, normalizers, pre_tokenizers
from tokenizers import Tokenizer as HFTokenizer
from tokenizers.models import BPE

from mechscope.errors import ModelLoadError, UnsupportedTokenizerError
from mechscope.models.tokenizer import Tokenizer

logger = logging.getLogger(__name__)

# Token types, as llama.cpp's ``llama_token_type`` enum numbers them.
NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6

SPIECE_SPACE = "\u2581"  # "▁": SentencePiece's spelling of a space

# Split rules. GPT-2's regex is the one tokenizers' ByteLevel pre-tokenizer applies by itself.
_GPT2_SPLIT = "gpt2"
_DIGITS_THEN_GPT2 = "digits+gpt2"  # llama.cpp: "\p{N}" first, then GPT-2's regex (SmolLM, StarCoder)
# From llama-vocab.cpp (LLAMA_VOCAB_PRE_TYPE_QWEN2 and _LLAMA3, "original regex from tokenizer.json").
_QWEN2_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
_LLAMA3_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)

# ``tokenizer.ggml.pre`` -> (split rule, ignore_merges). Names and groups as in llama-vocab.cpp.
_BPE_PRE: dict[str, tuple[str, bool]] = {
    "gpt-2": (_GPT2_SPLIT, False),
    "phi-2": (_GPT2_SPLIT, False),
    "mpt": (_GPT2_SPLIT, False),
    "olmo": (_GPT2_SPLIT, False),
    "smollm": (_DIGITS_THEN_GPT2, False),
    "starcoder": (_DIGITS_THEN_GPT2, False),
    "refact": (_DIGITS_THEN_GPT2, False),
    "codeshell": (_DIGITS_THEN_GPT2, False),
    "qwen2": (_QWEN2_SPLIT, False),
    "deepseek-r1-qwen": (_QWEN2_SPLIT, False),
    "stablelm2": (_QWEN2_SPLIT, False),
    "megrez": (_QWEN2_SPLIT, False),
    # llama.cpp sets ignore_merges for the Llama 3 family: a whole pre-token found in the
    # vocabulary is taken as is, as tiktoken does.
    "llama-bpe": (_LLAMA3_SPLIT, True),
    "llama3": (_LLAMA3_SPLIT, True),
    "llama-v3": (_LLAMA3_SPLIT, True),
    "falcon3": (_LLAMA3_SPLIT, True),
    "smaug-bpe": (_LLAMA3_SPLIT, False),
    "dbrx": (_LLAMA3_SPLIT, False),
}
_BPE_PRE_ADDS_BOS = {"llama-bpe", "llama3", "llama-v3", "falcon3"}

# Tokens llama.cpp treats as end-of-generation by their text (llama-vocab.cpp, special_eog_ids;
# ggml-org/llama.cpp#9606), because converters do not always record them in the metadata.
_EOG_TEXTS = (
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "<|eom_id|>",
    "<EOT>",
    "_<EOT>",
    "<|end_of_text|>",
    "<end_of_utterance>",
)


def tokenizer_from_gguf(metadata: Mapping[str, Any], source: str = "GGUF metadata") -> Tokenizer:
    """The tokenizer described by a GGUF file's ``tokenizer.ggml.*`` metadata.

    ``source`` names the file in error messages.
    """
    model = metadata.get("tokenizer.ggml.model")
    tokens = metadata.get("tokenizer.ggml.tokens")
    if not tokens:
        raise UnsupportedTokenizerError(
            f"{source}: no tokenizer: metadata key 'tokenizer.ggml.tokens' is missing or empty"
        )
    tokens = list(tokens)
    types = list(metadata.get("tokenizer.ggml.token_type") or [NORMAL] * len(tokens))
    if len(types) != len(tokens):
        raise ModelLoadError(
            f"{source}: 'tokenizer.ggml.token_type' has {len(types)} entries, expected one per token "
            f"({len(tokens)})"
        )
    if model == "gpt2":
        backend, add_bos_default = _byte_level_bpe(metadata, tokens, types, source)
    elif model == "llama":
        backend, add_bos_default = _sentencepiece_bpe(metadata, tokens, types, source)
    else:
        raise UnsupportedTokenizerError(
            f"{source}: tokenizer model {model!r} ('tokenizer.ggml.model') is not supported; "
            "supported: 'gpt2' (byte-level BPE) and 'llama' (SentencePiece BPE)"
        )
    if backend.get_vocab_size(with_added_tokens=True) != len(tokens):
        # Every id must keep its GGUF meaning, or the embedding rows would be misread.
        raise ModelLoadError(
            f"{source}: rebuilt tokenizer has {backend.get_vocab_size(with_added_tokens=True)} ids, "
            f"expected {len(tokens)} (one per GGUF token)"
        )
    bos_id = _token_id(metadata, "bos_token_id", len(tokens), source)
    add_bos = bool(metadata.get("tokenizer.ggml.add_bos_token", add_bos_default))
    return Tokenizer(
        backend=backend,
        bos_id=bos_id,
        eos_ids=_eos_ids(metadata, tokens, source),
        pad_id=_token_id(metadata, "padding_token_id", len(tokens), source),
        add_bos=add_bos and bos_id is not None,
        chat_template=metadata.get("tokenizer.chat_template"),
    )


def _byte_level_bpe(
    metadata: Mapping[str, Any], tokens: list[str], types: list[int], source: str
) -> tuple[HFTokenizer, bool]:
    pre = metadata.get("tokenizer.ggml.pre", "")
    if pre not in _BPE_PRE:
        raise ModelLoadError(
            f"{source}: pre-tokenizer {pre!r} ('tokenizer.ggml.pre') is not supported; "
            f"supported: {sorted(_BPE_PRE)}"
        )
    split, ignore_merges = _BPE_PRE[pre]
    merges = metadata.get("tokenizer.ggml.merges")
    if not merges:
        raise ModelLoadError(f"{source}: metadata key 'tokenizer.ggml.merges' is missing or empty")
    alphabet = set(_bytes_to_unicode().values())
    spelled = [
        # A normal token must be spelled in the byte alphabet for BPE to reach it; llama.cpp's
        # converter can leave a few raw. Special and added tokens keep their text: they are
        # matched in the raw input, never built by merges.
        _byte_spelling(t) if kind == NORMAL and not set(t) <= alphabet else t
        for t, kind in zip(tokens, types, strict=True)
    ]
    pairs = []
    for merge in merges:
        cut = merge.find(" ", 1)  # as llama.cpp splits them: the first token may itself be " "
        pairs.append((merge[:cut], merge[cut + 1 :]))
    try:
        backend = HFTokenizer(BPE(_vocab(spelled, source), pairs, ignore_merges=ignore_merges))
    except Exception as e:  # tokenizers raises a bare Exception, e.g. for a merge of unknown tokens
        raise ModelLoadError(f"{source}: 'tokenizer.ggml.merges' does not fit the token list ({e})") from e
    if split == _GPT2_SPLIT:
        backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    elif split == _DIGITS_THEN_GPT2:
        backend.pre_tokenizer = pre_tokenizers.Sequence(
            [
                pre_tokenizers.Digits(individual_digits=True),
                pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
            ]
        )
    else:
        backend.pre_tokenizer = pre_tokenizers.Sequence(
            [
                pre_tokenizers.Split(Regex(split), behavior="isolated"),
                pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
            ]
        )
    backend.decoder = decoders.ByteLevel()
    _add_special_tokens(backend, spelled, types, spiece=False)
    return backend, pre in _BPE_PRE_ADDS_BOS


def _sentencepiece_bpe(
    metadata: Mapping[str, Any], tokens: list[str], types: list[int], source: str
) -> tuple[HFTokenizer, bool]:
    scores = list(metadata.get("tokenizer.ggml.scores") or [])
    if len(scores) != len(tokens):
        raise ModelLoadError(
            f"{source}: 'tokenizer.ggml.scores' has {len(scores)} entries, expected one per token "
            f"({len(tokens)}); a SentencePiece vocabulary needs them to order merges"
        )
    # llama.cpp's converter writes "▁" as a real space in user-defined tokens (Gemma's runs of
    # spaces), because llama.cpp matches those in the raw text. Our normalizer turns spaces
    # into "▁" first, so spell them back the SentencePiece way.
    spelled = [
        t.replace(" ", SPIECE_SPACE) if kind == USER_DEFINED else t
        for t, kind in zip(tokens, types, strict=True)
    ]
    vocab = _vocab(spelled, source)
    unk_id = _token_id(metadata, "unknown_token_id", len(tokens), source)
    model = BPE(
        vocab,
        _merges_from_scores(spelled, types, scores, vocab),
        unk_token=spelled[unk_id] if unk_id is not None else None,
        byte_fallback=True,
        fuse_unk=True,
    )
    backend = HFTokenizer(model)
    # llama.cpp default for SentencePiece vocabularies: prepend a space unless told otherwise.
    # It does so for every text fragment that starts the input or follows a special token,
    # which a normalizer reproduces (added tokens are split off before it runs).
    space_prefix = bool(metadata.get("tokenizer.ggml.add_space_prefix", True))
    replace = normalizers.Replace(" ", SPIECE_SPACE)
    backend.normalizer = (
        normalizers.Sequence([normalizers.Prepend(SPIECE_SPACE), replace]) if space_prefix else replace
    )
    steps = [decoders.Replace(SPIECE_SPACE, " "), decoders.ByteFallback(), decoders.Fuse()]
    if space_prefix:
        steps.append(decoders.Strip(content=" ", left=1, right=0))
    backend.decoder = decoders.Sequence(steps)
    _add_special_tokens(backend, spelled, types, spiece=True)
    return backend, True  # llama.cpp adds BOS to SentencePiece vocabularies by default


def _merges_from_scores(
    tokens: list[str], types: list[int], scores: list[float], vocab: Mapping[str, int]
) -> list[tuple[str, str]]:
    """BPE merges equivalent to SentencePiece's rule: join the pair whose piece scores best.

    Every split of a normal piece into two vocabulary pieces is a merge, ranked by the joined
    piece's score (then by id, for a stable order). Control, byte and user-defined tokens are
    never the result of a merge in SentencePiece, so they yield none.
    """
    ranked: list[tuple[float, int, int, str, str]] = []
    for token_id, (piece, kind) in enumerate(zip(tokens, types, strict=True)):
        if kind != NORMAL or len(piece) < 2:
            continue
        for cut in range(1, len(piece)):
            left, right = piece[:cut], piece[cut:]
            if left in vocab and right in vocab:
                ranked.append((-scores[token_id], token_id, cut, left, right))
    ranked.sort()
    return [(left, right) for _, _, _, left, right in ranked]


def _add_special_tokens(backend: HFTokenizer, tokens: list[str], types: list[int], spiece: bool) -> None:
    """Register control and user-defined tokens so that they encode as one token each.

    Control (and unknown) tokens become special: ``decode(..., skip_special=True)`` drops them.
    User-defined tokens (Gemma's ``<start_of_image>``, runs of newlines) are plain added tokens.
    llama.cpp matches both in the raw text before tokenizing the rest (tokenizer_st_partition).
    """
    special, added = [], []
    for token, kind in zip(tokens, types, strict=True):
        if kind in (CONTROL, UNKNOWN):
            special.append(AddedToken(token, special=True, normalized=False))
        elif kind == USER_DEFINED:
            # A "▁" spelling exists only after our normalizer, so match it there.
            normalized = spiece and SPIECE_SPACE in token
            added.append(AddedToken(token, special=False, normalized=normalized))
    if special:
        backend.add_special_tokens(special)
    if added:
        backend.add_tokens(added)


def _vocab(tokens: Sequence[str], source: str) -> dict[str, int]:
    vocab: dict[str, int] = {}
    for token_id, token in enumerate(tokens):
        if not token or token in vocab:
            # llama.cpp names an empty token "[EMPTY_i]"; a duplicate text cannot have two ids in a
            # string-keyed vocabulary, so the later id gets an unreachable placeholder.
            placeholder = f"[EMPTY_{token_id}]" if not token else f"[DUPLICATE_{token_id}]"
            logger.warning("%s: token %d %r replaced by %s", source, token_id, token, placeholder)
            token = placeholder
        vocab[token] = token_id
    return vocab


def _token_id(metadata: Mapping[str, Any], key: str, n_tokens: int, source: str) -> int | None:
    value = metadata.get(f"tokenizer.ggml.{key}")
    if value is None:
        return None
    if not 0 <= int(value) < n_tokens:
        raise ModelLoadError(
            f"{source}: 'tokenizer.ggml.{key}' is {value}, expected an id below the vocabulary "
            f"size {n_tokens}"
        )
    return int(value)


def _eos_ids(metadata: Mapping[str, Any], tokens: list[str], source: str) -> tuple[int, ...]:
    """End-of-generation ids as llama.cpp collects them: eos, eot, eom, then known texts.

    For Gemma 3 this adds ``<end_of_turn>`` (106) to ``<eos>`` (1), matching the
    ``eos_token_id: [1, 106]`` of Google's generation_config.json; for SmolLM2 it adds
    ``<|endoftext|>`` (0) to ``<|im_end|>`` (2).
    """
    ids: list[int] = []
    for key in ("eos_token_id", "eot_token_id", "eom_token_id"):
        token_id = _token_id(metadata, key, len(tokens), source)
        if token_id is not None and token_id not in ids:
            ids.append(token_id)
    for token_id, token in enumerate(tokens):
        if token in _EOG_TEXTS and token_id not in ids:
            ids.append(token_id)
    return tuple(ids)


def _byte_spelling(text: str) -> str:
    table = _bytes_to_unicode()
    return "".join(table[b] for b in text.encode("utf-8"))


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible map from bytes to printable characters (openai/gpt-2, encoder.py)."""
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    table = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + extra)
            extra += 1
    return table
