"""Tokenizers rebuilt from GGUF metadata: tiny vocabularies, and slow parity with transformers."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from mechscope.errors import ModelLoadError
from mechscope.models.loading.gguf_tokenizer import _bytes_to_unicode, tokenizer_from_gguf
from mechscope.models.tokenizer import Tokenizer

# ---- byte-level BPE ("gpt2") ----

SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
ALPHABET = list(_bytes_to_unicode().values())
MERGED = ["Ġt", "he", "Ġthe", "12", "Ã©"]


def bpe_metadata(pre: str = "gpt-2", **extra: Any) -> dict[str, Any]:
    tokens = SPECIAL + ALPHABET + MERGED + ["é"]  # the last one left unspelled, as a sloppy converter might
    return {
        "tokenizer.ggml.model": "gpt2",
        "tokenizer.ggml.pre": pre,
        "tokenizer.ggml.tokens": tokens,
        "tokenizer.ggml.token_type": [3] * len(SPECIAL) + [1] * (len(tokens) - len(SPECIAL)),
        "tokenizer.ggml.merges": ["Ġ t", "h e", "Ġt he", "1 2", "Ã ©"],
        "tokenizer.ggml.bos_token_id": 1,
        "tokenizer.ggml.eos_token_id": 2,
        "tokenizer.ggml.padding_token_id": 2,
        "tokenizer.chat_template": "{{ messages }}",
        **extra,
    }


def pieces(tok: Tokenizer, text: str) -> list[str]:
    return [tok.token_str(i) for i in tok.encode(text, add_bos=False)]


def test_byte_level_merges_specials_and_round_trip() -> None:
    tok = tokenizer_from_gguf(bpe_metadata())
    assert pieces(tok, "the the") == ["t", "he", " the"]
    ids = tok.encode("<|im_start|>user\nhi<|im_end|>", add_bos=False)
    assert ids[0] == 1 and ids[-1] == 2  # control tokens stay whole
    assert tok.decode(ids) == "<|im_start|>user\nhi<|im_end|>"
    assert tok.decode(ids, skip_special=True) == "user\nhi"
    text = "café naïve 日本語 🙂  \n\t x"
    assert tok.decode(tok.encode(text)) == text
    assert tok.vocab_size == len(bpe_metadata()["tokenizer.ggml.tokens"])


def test_special_ids_and_flags() -> None:
    tok = tokenizer_from_gguf(bpe_metadata())
    assert (tok.bos_id, tok.pad_id, tok.add_bos, tok.chat_template) == (1, 2, False, "{{ messages }}")
    assert tok.eos_ids == (2, 0)  # eos, then "<|endoftext|>" which llama.cpp also stops on
    assert tokenizer_from_gguf(bpe_metadata(pre="llama-bpe")).add_bos  # llama.cpp's Llama 3 default
    assert not tokenizer_from_gguf(
        bpe_metadata(pre="llama-bpe", **{"tokenizer.ggml.add_bos_token": False})
    ).add_bos


def test_raw_normal_token_is_respelled_in_the_byte_alphabet() -> None:
    tok = tokenizer_from_gguf(bpe_metadata())
    # "é" appears twice: once spelled ("Ã©"), once raw; the raw one would collide and is kept unreachable.
    assert pieces(tok, "é") == ["é"]
    assert tok.encode("é", add_bos=False) == [len(SPECIAL) + len(ALPHABET) + MERGED.index("Ã©")]


@pytest.mark.parametrize(("pre", "expected"), [("gpt-2", ["12", "3"]), ("smollm", ["1", "2", "3"])])
def test_smollm_splits_digits_before_merging(pre: str, expected: list[str]) -> None:
    assert pieces(tokenizer_from_gguf(bpe_metadata(pre=pre)), "123") == expected


@pytest.mark.parametrize(("pre", "module"), [("qwen2", "qwen2.tokenization_qwen2"), ("llama-bpe", None)])
def test_split_regexes_match_transformers(pre: str, module: str | None) -> None:
    transformers = pytest.importorskip("transformers")
    from tokenizers import Regex, pre_tokenizers

    if module is None:
        from transformers.integrations.gguf.gguf_tokenizer_mapping import _LLAMA3_SPLIT as regex
    else:
        regex = __import__(f"transformers.models.{module}", fromlist=["PRETOKENIZE_REGEX"]).PRETOKENIZE_REGEX
    assert transformers is not None
    oracle = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(regex), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    ours = tokenizer_from_gguf(bpe_metadata(pre=pre)).backend.pre_tokenizer
    for text in ["Hello WORLD's 12345 x", "  two\n\n\tthree  ", "I'M can't", "日本語 café 🙂 3.14"]:
        assert ours.pre_tokenize_str(text) == oracle.pre_tokenize_str(text), text


def test_byte_level_errors() -> None:
    with pytest.raises(ModelLoadError, match=r"m\.gguf: pre-tokenizer 'mystery' .*supported: \["):
        tokenizer_from_gguf(bpe_metadata(pre="mystery"), source="m.gguf")
    with pytest.raises(ModelLoadError, match=r"'tokenizer\.ggml\.merges' does not fit"):
        tokenizer_from_gguf(bpe_metadata(**{"tokenizer.ggml.merges": ["x y"]}))
    with pytest.raises(ModelLoadError, match=r"'tokenizer\.ggml\.token_type' has 2 entries"):
        tokenizer_from_gguf(bpe_metadata(**{"tokenizer.ggml.token_type": [3, 3]}))
    with pytest.raises(ModelLoadError, match=r"'tokenizer\.ggml\.bos_token_id' is 99999"):
        tokenizer_from_gguf(bpe_metadata(**{"tokenizer.ggml.bos_token_id": 99999}))
    with pytest.raises(ModelLoadError, match=r"tokenizer model 'bert' .*supported: 'gpt2'"):
        tokenizer_from_gguf(bpe_metadata(**{"tokenizer.ggml.model": "bert"}))


# ---- SentencePiece BPE ("llama", as Gemma 3 uses it) ----


def spm_metadata(
    add_space_prefix: bool = False, extra_pieces: tuple[tuple[str, float], ...] = ()
) -> dict[str, Any]:
    specials = [
        ("<pad>", 3),
        ("<eos>", 3),
        ("<bos>", 3),
        ("<unk>", 2),
        ("<start_of_turn>", 3),
        ("<end_of_turn>", 3),
    ]
    user = [("\n", 4), ("  ", 4), ("   ", 4)]  # llama.cpp writes Gemma's "▁▁" user tokens as spaces
    byte_tokens = [(f"<0x{b:02X}>", 6) for b in range(256)]
    normal = ["▁", "a", "b", "c", "e", "h", "l", "o", "he", "ll", "hel", "hell", "hello", "▁hello", "▁h"]
    entries = [(t, k, -1000.0) for t, k in specials + user] + [(t, k, 0.0) for t, k in byte_tokens]
    entries += [(t, 1, -float(i)) for i, t in enumerate(normal)]
    entries += [(t, 1, s) for t, s in extra_pieces]
    return {
        "tokenizer.ggml.model": "llama",
        "tokenizer.ggml.pre": "default",
        "tokenizer.ggml.tokens": [t for t, _, _ in entries],
        "tokenizer.ggml.token_type": [k for _, k, _ in entries],
        "tokenizer.ggml.scores": [s for _, _, s in entries],
        "tokenizer.ggml.bos_token_id": 2,
        "tokenizer.ggml.eos_token_id": 1,
        "tokenizer.ggml.unknown_token_id": 3,
        "tokenizer.ggml.padding_token_id": 0,
        "tokenizer.ggml.add_space_prefix": add_space_prefix,
    }


def test_sentencepiece_pieces_bytes_and_spaces() -> None:
    tok = tokenizer_from_gguf(spm_metadata())
    assert pieces(tok, "hello") == ["hello"]
    assert pieces(tok, " hello") == [" hello"]
    ids = tok.encode("é", add_bos=False)  # no piece covers it: UTF-8 byte fallback
    assert [tok.backend.id_to_token(i) for i in ids] == ["<0xC3>", "<0xA9>"] and tok.decode(ids) == "é"
    assert [tok.backend.id_to_token(i) for i in tok.encode("a  b   c", add_bos=False)] == [
        "a", "▁▁", "b", "▁▁▁", "c"
    ]  # fmt: skip
    assert tok.single_token("<start_of_turn>") == 4 and tok.single_token("\n") == 6
    for text in [
        "hello  world\n\n é 日本 🙂",
        "  lead and trail  ",
        "<start_of_turn>user\nhi<end_of_turn>\n",
    ]:
        assert tok.decode(tok.encode(text, add_bos=False)) == text
    assert (tok.bos_id, tok.eos_ids, tok.pad_id, tok.add_bos) == (
        2,
        (1, 5),
        0,
        True,
    )  # <end_of_turn> ends too
    assert tok.encode("hello")[0] == 2


def test_sentencepiece_space_prefix() -> None:
    tok = tokenizer_from_gguf(spm_metadata(add_space_prefix=True))
    assert [tok.backend.id_to_token(i) for i in tok.encode("hello", add_bos=False)] == ["▁hello"]
    assert tok.decode(tok.encode("hello", add_bos=False)) == "hello"


@pytest.mark.parametrize(("ab", "bc", "expected"), [(5.0, 1.0, ["ab", "c"]), (1.0, 5.0, ["a", "bc"])])
def test_sentencepiece_merges_follow_scores(ab: float, bc: float, expected: list[str]) -> None:
    tok = tokenizer_from_gguf(spm_metadata(extra_pieces=(("ab", ab), ("bc", bc))))
    assert pieces(tok, "abc") == expected


def test_sentencepiece_needs_scores() -> None:
    meta = spm_metadata()
    del meta["tokenizer.ggml.scores"]
    with pytest.raises(ModelLoadError, match=r"g\.gguf: 'tokenizer.ggml.scores' has 0 entries"):
        tokenizer_from_gguf(meta, source="g.gguf")


# ---- slow: the real embedded models against transformers' GGUF tokenizers ----

TEXTS = [
    "The quick brown fox jumps over the lazy dog.",
    " Hello world",
    "Hello world ",
    "  two leading and trailing two  ",
    "a  b   c    d",
    "line one\nline two\n\nline four\r\n",
    "\tindented\ttabs\t\t",
    "def f(x):\n    return x ** 2  # square\n",
    "12345 + 678 = 13023; 3.14159, 1e-5, 1,000,000",
    "café naïve 日本語 🙂",
    "Ünïcödé — “quotes” … ½ ©",
    "Привет мир, مرحبا, 한국어",
    "<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n",
    "<start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n",
    "I'm can't we'll they've IT'S",
    "",
    " ",
    "\n",
]


def _fuzz(n: int) -> list[str]:
    alphabet = list("abcXYZ0123456789  \n\t.,;:!?'\"()[]{}<>/\\|-_=+*&^%$#@~`éüñç日本語한국Привет😀½²")
    alphabet += ["<|im_start|>", "<|im_end|>", "<start_of_turn>", "<end_of_turn>", "<bos>", "\n\n\n", "    "]
    rng = random.Random(0)
    return ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 30))) for _ in range(n)]


def _assert_matches(path: Path, patch_digits: bool) -> Tokenizer:
    transformers = pytest.importorskip("transformers")
    from mechscope.models.loading.gguf import _open

    _, metadata, _ = _open(path)
    ours = tokenizer_from_gguf(metadata, source=str(path))
    theirs = transformers.AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    if patch_digits:
        # transformers' GGUF loader omits SmolLM's digit split, which both llama.cpp ("smollm":
        # "\p{N}" first) and SmolLM2's own tokenizer.json (Digits(individual_digits=True)) apply.
        from tokenizers import pre_tokenizers

        theirs.backend_tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
            [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False)]
        )
    for text in TEXTS + _fuzz(500):
        ids = ours.encode(text, add_bos=False)
        assert ids == theirs.encode(text, add_special_tokens=False), text
        assert ours.decode(ids) == text
    return ours


@pytest.mark.slow
def test_smollm2_tokenizer_matches_transformers() -> None:
    from mechscope.models.loading.assets import smollm2_gguf_path

    tok = _assert_matches(smollm2_gguf_path(), patch_digits=True)
    assert tok.single_token("<|im_start|>") == 1 and tok.single_token("<|im_end|>") == 2
    assert (tok.bos_id, tok.eos_ids, tok.add_bos) == (1, (2, 0), False)
    assert tok.chat_template and "<|im_start|>" in tok.chat_template


@pytest.mark.slow
def test_gemma3_tokenizer_matches_transformers(tmp_path_factory: pytest.TempPathFactory) -> None:
    from mechscope.models.loading.assets import gemma3_270m_gguf_path

    tok = _assert_matches(gemma3_270m_gguf_path(tmp_path_factory.mktemp("assets")), patch_digits=False)
    assert tok.single_token("<start_of_turn>") == 105 and tok.single_token("<end_of_turn>") == 106
    assert (tok.bos_id, tok.eos_ids, tok.pad_id, tok.add_bos) == (2, (1, 106), 0, True)
    assert tok.encode("Hi")[0] == 2
    assert tok.chat_template is None  # this GGUF carries none
