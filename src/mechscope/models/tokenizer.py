"""A thin wrapper over a ``tokenizers.Tokenizer`` that knows the model's special tokens."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from tokenizers import Tokenizer as HFTokenizer

from mechscope.errors import InputError


@dataclass
class Tokenizer:
    """Tokenization as the model was trained with it.

    ``add_bos`` says whether ``encode`` prepends ``bos_id`` by default; the wrapped
    tokenizer itself never adds special tokens, so there is one place that decides.
    """

    backend: HFTokenizer
    bos_id: int | None = None
    eos_ids: tuple[int, ...] = ()
    pad_id: int | None = None
    add_bos: bool = False
    chat_template: str | None = None
    _strings: dict[int, str] = field(default_factory=dict, repr=False)

    @property
    def vocab_size(self) -> int:
        return int(self.backend.get_vocab_size(with_added_tokens=True))

    def encode(self, text: str, add_bos: bool | None = None) -> list[int]:
        """Token ids of ``text``, with BOS first when ``add_bos`` (default: the model's own flag)."""
        if not isinstance(text, str):
            raise InputError(f"text must be a str, got {type(text).__name__}")
        ids = list(self.backend.encode(text, add_special_tokens=False).ids)
        use_bos = self.add_bos if add_bos is None else add_bos
        if use_bos and self.bos_id is not None:
            ids.insert(0, self.bos_id)
        return ids

    def encode_batch(self, texts: Sequence[str], add_bos: bool | None = None) -> list[list[int]]:
        return [self.encode(t, add_bos) for t in texts]

    def decode(self, ids: Sequence[int], skip_special: bool = False) -> str:
        return str(self.backend.decode(list(ids), skip_special_tokens=skip_special))

    def token_str(self, token_id: int) -> str:
        """The text one token stands for, as a person reads it (e.g. ``" Paris"``)."""
        s = self._strings.get(token_id)
        if s is None:
            s = self.backend.decode([token_id], skip_special_tokens=False)
            self._strings[token_id] = s
        return s

    def token_strs(self, ids: Sequence[int]) -> list[str]:
        return [self.token_str(int(i)) for i in ids]

    def single_token(self, text: str) -> int:
        """The id of ``text`` when it is exactly one token; a clear error otherwise."""
        ids = self.encode(text, add_bos=False)
        if len(ids) != 1:
            raise InputError(
                f"{text!r} is {len(ids)} tokens ({self.token_strs(ids)!r}); expected exactly one token"
            )
        return ids[0]
