"""Prompt pairs for patching (IOI, repeated random tokens) and the activation/attribution comparison."""

from __future__ import annotations

import pytest
import torch
from tokenizers import Regex, pre_tokenizers
from tokenizers import Tokenizer as HFTokenizer
from tokenizers.decoders import Fuse
from tokenizers.models import WordLevel

from mechscope.engine.directions import LogitDiff
from mechscope.engine.pairs import IOI_TEMPLATES, _pair, ioi_pair, repeat_pair
from mechscope.engine.patch_compare import compare_methods, pearson
from mechscope.engine.patching import patch
from mechscope.errors import InputError
from mechscope.models.config import ModelConfig
from mechscope.models.decoder import HookedDecoder
from mechscope.models.tokenizer import Tokenizer

WORDS = ["<pad>", "<bos>", "<eos>", ",", " Mary", " John", " Alice", " Bob", " Ann", " and", " went", " to",
         " the", " store", " gave", " a", " drink", " park", " ball", " apple", " pear", " plum", " fig",
         " kiwi", " lime", " date", "When", " Ma", "ry"]  # fmt: skip


def word_model(seed: int = 0) -> HookedDecoder:
    """A tiny random llama whose tokenizer has whole words (" Mary" is one token), like a BPE's."""
    backend = HFTokenizer(WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="<pad>"))
    backend.pre_tokenizer = pre_tokenizers.Split(Regex(r" ?[A-Za-z]+|[^ A-Za-z]"), behavior="isolated")
    backend.decoder = Fuse()
    tok = Tokenizer(backend=backend, bos_id=1, eos_ids=(2,), pad_id=0, add_bos=True)
    cfg = ModelConfig(architecture="llama", d_model=32, n_layers=2, n_heads=4, d_head=8, d_mlp=48,
                      d_vocab=len(WORDS), n_ctx=64, eos_token_ids=(2,), tie_embeddings=True)  # fmt: skip
    torch.manual_seed(seed)
    return HookedDecoder(cfg, tok).requires_grad_(False).eval()


def test_ioi_pairs_tokenise_to_the_same_length_and_differ_at_the_names() -> None:
    model = word_model()
    swap = ioi_pair(model, "Mary", "John")
    assert swap.clean == "When Mary and John went to the store, John gave a drink to"
    assert swap.corrupted == "When Mary and John went to the store, Mary gave a drink to"
    assert (swap.targets, swap.distractors) == ([" Mary"], [" John"])
    assert len(swap.clean_tokens) == len(swap.corrupted_tokens) == 15
    assert swap.changed == [10] and swap.clean_tokens[10] == " John"
    abc = ioi_pair(model, "Mary", "John", corruption="abc", others=("Alice", "Bob"))
    assert abc.corrupted == "When Alice and Bob went to the store, John gave a drink to"
    assert abc.changed == [2, 4]
    park = ioi_pair(model, "Ann", "Bob", template=IOI_TEMPLATES["park"])
    assert park.clean.endswith("Bob gave a ball to") and park.targets == [" Ann"]


def test_ioi_pair_errors_name_what_is_wrong() -> None:
    model = word_model()
    with pytest.raises(
        InputError, match=r"io: ' Mary2' is 2 tokens \(\[' Mary', '<pad>'\]\); each name must be one"
    ):
        ioi_pair(model, "Mary2", "John")
    with pytest.raises(InputError, match="subject: 'John Smith' is not a name"):
        ioi_pair(model, "Mary", "John Smith")
    with pytest.raises(InputError, match=r"\{S\} appears 0 times"):
        ioi_pair(model, "Mary", "John", template="When {A} and {B} left")
    with pytest.raises(InputError, match="names must all differ"):
        ioi_pair(model, "Mary", "Mary")
    with pytest.raises(InputError, match=r"others\[1\]: . Zed9. is 2 tokens"):
        ioi_pair(model, "Mary", "John", corruption="abc", others=("Alice", "Zed9"))
    # Prompts of different lengths (a name merging with its neighbours would do it) are refused.
    assert model.tokenizer is not None
    with pytest.raises(InputError, match="clean prompt is 3 tokens and the corrupted one 4"):
        _pair(model.tokenizer, "When Mary", "When Ma ry", [" Mary"], [])


def test_repeated_random_tokens() -> None:
    model = word_model()
    pair = repeat_pair(model, length=4, seed=3)
    clean, corrupted = pair.clean_tokens[1:], pair.corrupted_tokens[1:]
    assert len(clean) == len(corrupted) == 7
    assert clean[4:] == clean[:3] and pair.targets == [clean[3]] and pair.distractors == []
    assert corrupted[:4] == clean[:4] and all(t not in clean[:4] for t in corrupted[4:])
    assert pair.changed == [5, 6, 7]
    assert repeat_pair(model, length=4, seed=3) == pair  # seeded
    assert repeat_pair(model, length=4, seed=4) != pair
    with pytest.raises(InputError, match="length must be"):
        repeat_pair(model, length=1)
    with pytest.raises(InputError, match="found only"):
        repeat_pair(model, length=12)  # more distinct word tokens than the vocabulary has


def test_pearson() -> None:
    a = torch.tensor([[1.0, 2.0], [3.0, 5.0]])
    assert pearson(a, a) == pytest.approx(1.0)
    assert pearson(a, -2 * a + 7) == pytest.approx(-1.0)
    b = torch.tensor([[2.0, 1.0], [0.5, 4.0]])
    x, y = a.flatten().numpy(), b.flatten().numpy()
    expected = float(
        ((x - x.mean()) * (y - y.mean())).sum()
        / (((x - x.mean()) ** 2).sum() * ((y - y.mean()) ** 2).sum()) ** 0.5
    )
    assert pearson(a, b) == pytest.approx(expected)
    assert pearson(a, torch.ones(2, 2)) is None
    assert pearson(torch.ones(1), torch.ones(1)) is None


@pytest.mark.parametrize("site", ["resid_pre", "heads"])
def test_compare_returns_both_methods_and_their_correlation(site: str) -> None:
    model = word_model()
    pair = ioi_pair(model, "Mary", "John")
    d = LogitDiff(targets=pair.targets, distractors=pair.distractors)
    res = compare_methods(model, pair.clean, pair.corrupted, d, site=site)  # type: ignore[arg-type]
    act = patch(model, pair.clean, pair.corrupted, d, site=site, method="activation")  # type: ignore[arg-type]
    est = patch(model, pair.clean, pair.corrupted, d, site=site, method="attribution")  # type: ignore[arg-type]
    assert res.activation == act and res.attribution == est
    assert res.correlation == pytest.approx(pearson(torch.tensor(act.values), torch.tensor(est.values)))
    if site == "resid_pre":  # layer 0 at the changed name restores everything, in both methods
        assert act.values[0][10] == pytest.approx(1.0, abs=1e-4)


def test_compare_can_skip_the_exact_sweep() -> None:
    model = word_model()
    pair = ioi_pair(model, "Mary", "John")
    d = LogitDiff(targets=pair.targets, distractors=pair.distractors)
    res = compare_methods(model, pair.clean, pair.corrupted, d, site="heads", skip_activation="too costly")
    assert res.activation is None and res.correlation is None and res.skipped == "too costly"
    assert res.attribution == patch(model, pair.clean, pair.corrupted, d, site="heads", method="attribution")
