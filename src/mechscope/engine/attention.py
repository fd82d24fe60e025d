"""Attention patterns and head detectors: what each head attends to, and which heads are
previous-token, duplicate-token, induction or attention-sink heads.

Patterns are read from the model's own pattern hook (the kind with (query, key) pairs names it,
``Kind.pattern_point``), never recomputed. The detectors follow TransformerLens' head detector
and Olsson et al. (2022): each is the mean, over the query positions where it is defined, of the
attention a head puts on the keys its rule names. One batched forward hooks every layer's pattern
and reduces it to per-head sums inside the hook, so no (batch, head, query, key) tensor outlives
its layer; the forward stops after the last layer's pattern (no unembedding).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from pydantic import BaseModel, Field

from mechscope.engine.kinds import Kind, kinds_of
from mechscope.engine.prompt import prompt_ids
from mechscope.errors import InputError

if TYPE_CHECKING:
    from mechscope.models.decoder import HookedDecoder, ModelInput
    from mechscope.models.hooks import HookPoint

MAX_TOKENS_PER_FORWARD = 2048  # rows x length of one batched forward: bounds its patterns' memory
ORDINARY_IDS = 20_000  # random tokens come from the first ids of the vocabulary (common merges in BPE)


class AttentionPatterns(BaseModel):
    """The attention of heads of one layer on one sequence: ``patterns[h][q][k]`` is the
    probability head ``heads[h]`` at query ``q`` puts on key ``k`` (keys ``0..q``: causal)."""

    kind: str = Field(description="the node kind of the heads (the one with (query, key) pairs)")
    tokens: list[str]
    ids: list[int]
    layer: int
    heads: list[int]
    patterns: list[list[list[float]]] = Field(description="(head, query, key <= query)")

    def dense(self) -> torch.Tensor:
        """(head, query, key) with the masked keys (after the query) as zeros."""
        n = len(self.tokens)
        out = torch.zeros(len(self.heads), n, n)
        for h, rows in enumerate(self.patterns):
            for q, row in enumerate(rows):
                out[h, q, : len(row)] = torch.tensor(row)
        return out

    def _repr_html_(self) -> str:
        """Jupyter's view: a heatmap per head and the token view (:mod:`mechscope.notebook`,
        imported only when shown)."""
        from mechscope.notebook.attention import attention_html

        return attention_html(self.tokens, self.dense(), [f"L{self.layer}.H{h}" for h in self.heads])


@dataclass(frozen=True)
class Detector:
    """One head detector: its name, words, and the (row, query, key) mask of the keys it counts;
    a query position counts when its mask row is not empty."""

    name: str
    label: str
    description: str
    mask: Callable[[torch.Tensor], torch.Tensor]  # (row, pos) ids -> (row, query, key) bool


def _causal_earlier(ids: torch.Tensor) -> torch.Tensor:
    """(row, query, key): key < query."""
    t = ids.shape[1]
    return torch.ones(t, t, dtype=torch.bool, device=ids.device).tril(-1).expand(ids.shape[0], t, t)


def _previous(ids: torch.Tensor) -> torch.Tensor:
    t = ids.shape[1]
    return torch.eye(t, dtype=torch.bool, device=ids.device).roll(-1, 1).tril(-1).expand(ids.shape[0], t, t)


def _duplicate(ids: torch.Tensor) -> torch.Tensor:
    return (ids[:, :, None] == ids[:, None, :]) & _causal_earlier(ids)


def _induction(ids: torch.Tensor) -> torch.Tensor:
    """Key j + 1 for every earlier occurrence j of the query's token (j + 1 <= query)."""
    dup = _duplicate(ids)
    out = torch.zeros_like(dup)
    out[:, :, 1:] = dup[:, :, :-1]
    return out


def _sink(ids: torch.Tensor) -> torch.Tensor:
    out = torch.zeros(ids.shape[0], ids.shape[1], ids.shape[1], dtype=torch.bool, device=ids.device)
    out[:, 1:, 0] = True
    return out


DETECTORS: tuple[Detector, ...] = (
    Detector("previous_token", "previous token", "mean attention from each position to the one before it",
             _previous),
    Detector("duplicate_token", "duplicate token",
             "mean attention from a token to its earlier occurrences (queries with one)", _duplicate),
    Detector("induction", "induction",
             "mean attention from a token to the token after each of its earlier occurrences (queries with one)",
             _induction),
    Detector("attention_sink", "attention sink",
             "mean attention to position 0, the start token (the first token without one; queries 1..)", _sink),
)  # fmt: skip


class DetectorScores(BaseModel):
    name: str
    label: str
    description: str
    scores: list[list[float]] = Field(description="(layer, head), each in [0, 1]")
    queries: int = Field(description="query positions averaged over (all rows): where the rule is defined")


class HeadDetection(BaseModel):
    """Every head's score for each detector, on ``rows`` sequences of ``length`` tokens."""

    kind: str
    n_layers: int
    n_heads: int
    rows: int
    length: int
    detectors: list[DetectorScores]


def pattern_kind(model: HookedDecoder) -> Kind:
    """The model's kind whose units have an attention pattern (its heads)."""
    for kind in kinds_of(model):
        if kind.pattern_point is not None and kind.layered:
            return kind
    raise InputError("this model has no node kind with an attention pattern")


class _Reached(Exception):
    """Raised by the last layer's pattern hook: the rest of the forward is not needed."""


def attention_patterns(
    model: HookedDecoder, prompt: ModelInput, layer: int, heads: Sequence[int] | None = None
) -> AttentionPatterns:
    """The attention pattern of ``heads`` (default: all) of block ``layer`` on ``prompt`` (one
    forward that stops at that layer's pattern hook)."""
    kind = pattern_kind(model)
    n_layers, n_heads = model.cfg.n_layers, kind.size(model.cfg)
    if not 0 <= layer < n_layers:
        raise InputError(f"layer {layer} does not exist: layers 0..{n_layers - 1}")
    chosen = list(range(n_heads)) if heads is None else list(heads)
    bad = [h for h in chosen if not 0 <= h < n_heads]
    if bad or not chosen:
        raise InputError(f"head {bad[0] if bad else '(none)'} does not exist: heads 0..{n_heads - 1}")
    ids = prompt_ids(model, prompt)
    assert kind.pattern_point is not None
    got: dict[str, torch.Tensor] = {}

    def grab(p: torch.Tensor, _hook: HookPoint) -> None:
        got["p"] = p[0, chosen].float().cpu()  # (head, query, key)
        raise _Reached

    with (
        torch.inference_mode(),
        model.hooks(fwd=[(kind.pattern_point(layer), grab)]),
        contextlib.suppress(_Reached),
    ):
        model(torch.tensor([ids], device=model.device))
    p = got["p"]
    return AttentionPatterns(
        kind=kind.name,
        tokens=_token_strs(model, ids),
        ids=ids,
        layer=layer,
        heads=chosen,
        patterns=[[row[: q + 1].tolist() for q, row in enumerate(ph)] for ph in p],
    )


def _token_strs(model: HookedDecoder, ids: list[int]) -> list[str]:
    return model.tokenizer.token_strs(ids) if model.tokenizer is not None else [str(i) for i in ids]


def ordinary_ids(model: HookedDecoder) -> torch.Tensor:
    """Token ids random sequences draw from: the first ``ORDINARY_IDS`` of the vocabulary, without
    the tokenizer's special and added tokens (BOS, EOS, padding, chat markers)."""
    tok = model.tokenizer
    top = min(model.cfg.d_vocab, tok.vocab_size if tok is not None else model.cfg.d_vocab, ORDINARY_IDS)
    special: set[int] = set()
    if tok is not None:
        special |= {i for i in (tok.bos_id, tok.pad_id, *tok.eos_ids) if i is not None}
        special |= set(tok.backend.get_added_tokens_decoder())
    keep = torch.ones(top, dtype=torch.bool)
    keep[[i for i in special if i < top]] = False
    ids = keep.nonzero()[:, 0]
    if len(ids) < 2:
        raise InputError("the vocabulary has fewer than 2 ordinary tokens to draw random sequences from")
    return ids


def repeated_tokens(
    model: HookedDecoder, length: int, n: int = 1, seed: int = 0, start: int | None = None
) -> list[list[int]]:
    """``n`` sequences of ``length`` random ordinary tokens repeated twice, each behind the start
    token ``start`` (default: the tokenizer's BOS, none without one). Seeded, drawn one sequence
    after another: the first ``k`` sequences do not depend on ``n``."""
    if length < 1 or n < 1:
        raise InputError(f"repeated sequences need length >= 1 and n >= 1, got length {length}, n {n}")
    if start is None and model.tokenizer is not None:
        start = model.tokenizer.bos_id
    pool = ordinary_ids(model)
    gen = torch.Generator().manual_seed(seed)
    rows = []
    for _ in range(n):
        half = pool[torch.randint(len(pool), (length,), generator=gen)].tolist()
        rows.append(([start] if start is not None else []) + half + half)
    return rows


def detect_heads(
    model: HookedDecoder,
    rows: Sequence[Sequence[int]],
    check: Callable[[], None] | None = None,
    detectors: Sequence[Detector] = DETECTORS,
) -> HeadDetection:
    """Score every head (layer x head) by each detector on equal-length token ``rows``.

    Rows are run in batches of at most ``MAX_TOKENS_PER_FORWARD`` tokens; ``check`` is called
    between batches (the server's stop check). A detector defined at no query position (e.g.
    induction on rows without a repeated token) scores 0 everywhere, with ``queries`` 0.
    """
    if not rows:
        raise InputError("head detection needs at least one token row")
    length = len(rows[0])
    if length < 2 or any(len(r) != length for r in rows):
        raise InputError(
            f"head detection needs rows of one length >= 2, got lengths {sorted({len(r) for r in rows})}"
        )
    kind = pattern_kind(model)
    assert kind.pattern_point is not None
    n_layers, n_heads = model.cfg.n_layers, kind.size(model.cfg)
    sums = torch.zeros(len(detectors), n_layers, n_heads, dtype=torch.float64)
    counts = torch.zeros(len(detectors), dtype=torch.float64)
    per = max(1, MAX_TOKENS_PER_FORWARD // length)
    for lo in range(0, len(rows), per):
        if check is not None:
            check()
        ids = torch.tensor([list(r) for r in rows[lo : lo + per]], device=model.device)
        masks = torch.stack([d.mask(ids) for d in detectors]).float()  # (detector, row, query, key)
        counts += masks.amax(-1).sum((1, 2)).double().cpu()
        _accumulate(model, kind, ids, masks, sums)
    # a sum of one row's probabilities: in [0, 1] but for float rounding, which the clamp removes
    means = (sums / counts.clamp_min(1)[:, None, None]).clamp(0, 1)
    return HeadDetection(
        kind=kind.name,
        n_layers=n_layers,
        n_heads=n_heads,
        rows=len(rows),
        length=length,
        detectors=[
            DetectorScores(name=d.name, label=d.label, description=d.description,
                           scores=means[i].tolist(), queries=int(counts[i]))
            for i, d in enumerate(detectors)
        ],
    )  # fmt: skip


def _accumulate(
    model: HookedDecoder, kind: Kind, ids: torch.Tensor, masks: torch.Tensor, sums: torch.Tensor
) -> None:
    """One forward over ``ids``: each layer's pattern, summed under each mask, into ``sums``."""
    assert kind.pattern_point is not None
    last = model.cfg.n_layers - 1

    def reducer(layer: int) -> Callable[[torch.Tensor, HookPoint], None]:
        def reduce(p: torch.Tensor, _hook: HookPoint) -> None:
            # (row, head, query, key) x (detector, row, query, key) -> (detector, head)
            sums[:, layer] += torch.einsum("bhqk,dbqk->dh", p.float(), masks).double().cpu()
            if layer == last:
                raise _Reached

        return reduce

    hooks = [(kind.pattern_point(i), reducer(i)) for i in range(model.cfg.n_layers)]
    with torch.inference_mode(), model.hooks(fwd=hooks), contextlib.suppress(_Reached):
        model(ids)
