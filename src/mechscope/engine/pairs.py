"""Clean/corrupted prompt pairs for patching: the indirect-object task and repeated random tokens.

Patching needs two prompts of the same token length whose answers differ (engine/patching.py).
Two standard pairs:

- *Indirect object identification* (IOI, Wang et al. 2022): "When Mary and John went to the store,
  John gave a drink to" -> " Mary". The ``swap`` corruption puts the other name in the final clause
  ("..., Mary gave a drink to": now " John" is the answer); the ``abc`` corruption replaces the
  first clause's names by two unrelated ones, so no name repeats and nothing says who receives.
  The metric is logit(" Mary") - logit(" John").
- *Repeated random tokens* (induction): a random sequence followed by its repeat, cut one token
  short; the answer is the next repeated token. The corrupted prompt has other random tokens in the
  second half, so nothing can be copied.

Each name must be one token (with its leading space, as it appears in the prompt) and both prompts
must tokenise to the same length, else :class:`InputError` says which name or prompt is wrong.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import torch
from pydantic import BaseModel, Field

from mechscope.errors import InputError

if TYPE_CHECKING:
    from mechscope.models.decoder import HookedDecoder
    from mechscope.models.tokenizer import Tokenizer

IoiCorruption = Literal["swap", "abc"]
IOI_CORRUPTIONS: tuple[IoiCorruption, ...] = ("swap", "abc")
# {A} and {B}: the first clause's names (the indirect object first); {S}: the final clause's subject.
IOI_TEMPLATES: dict[str, str] = {
    "store": "When {A} and {B} went to the store, {S} gave a drink to",
    "park": "When {A} and {B} went to the park, {S} gave a ball to",
    "office": "After {A} and {B} arrived at the office, {S} handed a letter to",
    "dinner": "While {A} and {B} were having dinner, {S} passed the salt to",
}
PLACEHOLDERS = ("{A}", "{B}", "{S}")
MAX_SAMPLING_TRIES = 50  # random sequences drawn before giving up on one that re-tokenises exactly


class PromptPair(BaseModel):
    """A clean and a corrupted prompt of the same token length, with the clean answer (targets)
    and the answer it competes with (distractors), ready for ``POST /api/patch``."""

    clean: str
    corrupted: str
    targets: list[str]
    distractors: list[str]
    clean_tokens: list[str] = Field(description="the clean prompt's tokens, BOS included")
    corrupted_tokens: list[str]
    changed: list[int] = Field(description="positions where the two prompts' tokens differ")


def _tokenizer(model: HookedDecoder) -> Tokenizer:
    if model.tokenizer is None:
        raise InputError("building a prompt pair needs the model's tokenizer; this model has none")
    return model.tokenizer


def _name_token(tok: Tokenizer, name: str, field: str) -> None:
    """A name is inserted after a space; " Mary" must then be exactly one token."""
    if not name or any(c.isspace() or c in "{}" for c in name):
        raise InputError(f"{field}: {name!r} is not a name (a word without spaces or braces)")
    ids = tok.encode(" " + name, add_bos=False)
    if len(ids) != 1:
        raise InputError(
            f"{field}: ' {name}' is {len(ids)} tokens ({tok.token_strs(ids)!r}); each name must be one "
            "token, so that the clean and corrupted prompts line up and the answer is one logit"
        )


def _fill(template: str, a: str, b: str, s: str) -> str:
    return template.replace("{A}", a).replace("{B}", b).replace("{S}", s)


def _pair(
    tok: Tokenizer, clean: str, corrupted: str, targets: list[str], distractors: list[str]
) -> PromptPair:
    a, b = tok.encode(clean), tok.encode(corrupted)
    if len(a) != len(b):
        raise InputError(
            f"the clean prompt is {len(a)} tokens and the corrupted one {len(b)}: patching needs the same "
            f"length (clean: {tok.token_strs(a)!r}; corrupted: {tok.token_strs(b)!r})"
        )
    return PromptPair(
        clean=clean,
        corrupted=corrupted,
        targets=targets,
        distractors=distractors,
        clean_tokens=tok.token_strs(a),
        corrupted_tokens=tok.token_strs(b),
        changed=[i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y],
    )


def ioi_pair(
    model: HookedDecoder,
    io: str = "Mary",
    subject: str = "John",
    template: str = IOI_TEMPLATES["store"],
    corruption: IoiCorruption = "swap",
    others: tuple[str, str] = ("Alice", "Bob"),
) -> PromptPair:
    """The IOI pair for names ``io`` (the answer) and ``subject``: ``template`` holds ``{A}``, ``{B}``
    (the first clause's names) and ``{S}`` (the final clause's subject) once each, and is filled
    with A=io, B=S=subject. ``swap`` corrupts S to io; ``abc`` replaces A and B by ``others``."""
    tok = _tokenizer(model)
    for p in PLACEHOLDERS:
        if template.count(p) != 1:
            raise InputError(
                f"template: must contain each of {', '.join(PLACEHOLDERS)} exactly once; {p} appears "
                f"{template.count(p)} times"
            )
    if corruption not in IOI_CORRUPTIONS:
        raise InputError(f"corruption must be one of {list(IOI_CORRUPTIONS)}, got {corruption!r}")
    names = {"io": io, "subject": subject}
    if corruption == "abc":
        names |= {"others[0]": others[0], "others[1]": others[1]}
    for field, name in names.items():
        _name_token(tok, name, field)
    if len(set(names.values())) != len(names):
        raise InputError(f"the names must all differ, got {list(names.values())!r}")
    clean = _fill(template, io, subject, subject)
    corrupted = (
        _fill(template, io, subject, io) if corruption == "swap" else _fill(template, *others, subject)
    )
    return _pair(tok, clean, corrupted, [" " + io], [" " + subject])


def _word_tokens(tok: Tokenizer, vocab: int, count: int, gen: torch.Generator) -> list[int]:
    """``count`` distinct random tokens that are a space and letters (" apple"), and encode back
    to themselves: sequences of them re-tokenise to the same ids almost always."""
    picked: list[int] = []
    for _ in range(200 * count):
        i = int(torch.randint(vocab, (1,), generator=gen))
        s = tok.token_str(i)
        if i in picked or len(s) < 3 or s[0] != " " or not s[1:].isalpha() or not s[1:].isascii():
            continue
        if tok.encode(s, add_bos=False) == [i]:
            picked.append(i)
            if len(picked) == count:
                return picked
    raise InputError(
        f"found only {len(picked)} word tokens for a random sequence of {count}; this tokenizer's "
        "vocabulary has too few tokens of a space and letters"
    )


def repeat_pair(model: HookedDecoder, length: int = 10, seed: int = 0) -> PromptPair:
    """Random tokens ``r`` (``length`` of them, from ``seed``), then ``r`` again without its last
    token: the answer is that token. The corrupted prompt continues with other random tokens. No
    distractor: the metric is the answer's logit (no other token is a natural competitor)."""
    if not 2 <= length <= 512:
        raise InputError(f"length must be in 2..512, got {length}")
    tok = _tokenizer(model)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(MAX_SAMPLING_TRIES):
        ids = _word_tokens(tok, model.cfg.d_vocab, 2 * length, gen)
        first, other = ids[:length], ids[length:]
        clean_ids, corrupted_ids = first + first[:-1], first + other[:-1]
        clean, corrupted = tok.decode(clean_ids), tok.decode(corrupted_ids)
        # Exact round trips keep the requested tokens (a merge across two words would change them).
        if (
            tok.encode(clean, add_bos=False) == clean_ids
            and tok.encode(corrupted, add_bos=False) == corrupted_ids
        ):
            return _pair(tok, clean, corrupted, [tok.token_str(first[-1])], [])
    raise InputError(
        f"no random sequence of {length} tokens re-tokenised exactly in {MAX_SAMPLING_TRIES} tries; "
        "try another seed or a shorter length"
    )
