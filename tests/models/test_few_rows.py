"""Products of a few rows split over torch's threads (models/few_rows.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
import torch.nn.functional as F

from mechscope.models import few_rows, packed_weights
from tests.conftest import tiny_model
from tests.models.test_packed_weights import block_linears, embed_grad


@pytest.fixture(autouse=True)
def fresh_packs() -> Iterator[None]:
    packed_weights.clear()
    yield
    packed_weights.clear()


def force(split: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """Products of 3-256 rows split (in two blocks) as on an AMD CPU; with ``split=False`` none
    splits, as before this module."""
    monkeypatch.setattr(few_rows, "mkl_single_core_products", lambda: split)
    monkeypatch.setattr(few_rows, "_cores", lambda: 2)
    if not split:
        monkeypatch.setattr(few_rows, "MAX_ROWS", 0)


def counted_splits(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The row counts of the products that ran split, from now on."""
    seen: list[int] = []
    real = few_rows.split_linear

    def spy(weight: torch.Tensor, bias: torch.Tensor | None, x: torch.Tensor, blocks: int) -> torch.Tensor:
        seen.append(x.numel() // x.shape[-1])
        return real(weight, bias, x, blocks)

    monkeypatch.setattr(few_rows, "split_linear", spy)
    return seen


@pytest.mark.parametrize("rows", [1, 2, 5, 16, 40])
@pytest.mark.parametrize("blocks", [2, 3])
@pytest.mark.parametrize("with_bias", [False, True])
def test_a_split_product_equals_f_linear(rows: int, blocks: int, with_bias: bool) -> None:
    gen = torch.Generator().manual_seed(rows * blocks)
    weight = torch.randn(48, 20, generator=gen)
    bias = torch.randn(48, generator=gen) if with_bias else None
    x = torch.randn(1, rows, 20, generator=gen)
    got = few_rows.split_linear(weight, bias, x, blocks)
    assert got.shape == (1, rows, 48)
    torch.testing.assert_close(got, F.linear(x, weight, bias), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("family", ["llama", "gpt2", "gemma3"])
@pytest.mark.parametrize("length", [1, 2, 9, 30])
def test_a_split_forward_equals_the_unsplit_one(
    family: str, length: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = tiny_model(family)
    tokens = torch.randint(3, model.cfg.d_vocab, (1, length), generator=torch.Generator().manual_seed(length))
    with monkeypatch.context() as m:
        force(False, m)
        expected = model(tokens)
    packed_weights.clear()
    force(True, monkeypatch)
    seen = counted_splits(monkeypatch)
    got = model(tokens)
    linears = block_linears(model)
    # every block linear; not the unembedding, whose 103 rows two threads do not divide
    assert len(seen) == len(linears) and model.cfg.d_vocab % 2 == 1
    assert not any(mod in packed_weights._CACHE for mod in linears)  # split weights get no packs
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_input_gradients_through_split_products_equal_the_unsplit_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    model = tiny_model("llama")
    tokens = torch.randint(3, 60, (1, 12), generator=torch.Generator().manual_seed(1))
    with monkeypatch.context() as m:
        force(False, m)
        expected = embed_grad(model, tokens)
    force(True, monkeypatch)
    seen = counted_splits(monkeypatch)
    logits, grad = embed_grad(model, tokens)
    assert seen
    torch.testing.assert_close(logits, expected[0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(grad, expected[1], rtol=1e-5, atol=1e-6)


def test_decode_steps_split_on_any_cpu_and_generate_the_same_text(monkeypatch: pytest.MonkeyPatch) -> None:
    model = tiny_model("llama")
    with monkeypatch.context() as m:
        force(False, m)
        expected = model.generate("hello", max_new_tokens=8, stop_tokens=[]).tokens
    monkeypatch.setattr(few_rows, "mkl_single_core_products", lambda: False)  # an Intel CPU
    monkeypatch.setattr(few_rows, "_cores", lambda: 2)
    seen = counted_splits(monkeypatch)
    assert model.generate("hello", max_new_tokens=8, stop_tokens=[]).tokens == expected
    assert seen and set(seen) == {1}  # the prompt's prefill (6 rows) did not split


@pytest.mark.parametrize("with_bias", [False, True])
def test_a_split_product_does_not_depend_on_the_thread_count(
    with_bias: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The blocks come from the machine, not from torch's threads: a Ray worker on one thread
    multiplies as the driver does on all of them."""
    force(True, monkeypatch)
    gen = torch.Generator().manual_seed(5)
    owner = torch.nn.Linear(40, 96, bias=with_bias).requires_grad_(False)
    x = torch.randn(18, 40, generator=gen)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = few_rows.linear(owner, owner.weight, owner.bias, x)
        torch.set_num_threads(2)
        two = few_rows.linear(owner, owner.weight, owner.bias, x)
    finally:
        torch.set_num_threads(threads)
    assert one is not None and two is not None and torch.equal(one, two)


@pytest.mark.parametrize(
    ("rows", "cores", "dtype", "blocks"),
    [
        (48, 2, torch.float32, 2),
        (48, 5, torch.float32, 4),  # the most blocks up to the cores that divide the rows
        (48, 64, torch.float32, 8),  # at most MAX_BLOCKS
        (47, 8, torch.float32, 1),  # a prime: not split
        (48, 1, torch.float32, 1),  # one core
        (48, 2, torch.float64, 1),
    ],
)
def test_blocks_follow_the_machine_and_the_shape(
    rows: int, cores: int, dtype: torch.dtype, blocks: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(few_rows, "_cores", lambda: cores)
    weight = torch.zeros(rows, 20, dtype=dtype)
    assert few_rows.blocks_for(weight, torch.zeros(3, 20, dtype=dtype)) == blocks
    assert few_rows.blocks_for(torch.zeros(20, rows).t(), torch.zeros(3, 20)) == 1  # rows not contiguous


def test_which_products_split(monkeypatch: pytest.MonkeyPatch) -> None:
    force(True, monkeypatch)
    seen = counted_splits(monkeypatch)
    owner = torch.nn.Linear(20, 48, bias=False).requires_grad_(False)
    for rows in (1, 4, few_rows.MAX_ROWS, few_rows.MAX_ROWS + 1):
        few_rows.linear(owner, owner.weight, None, torch.randn(rows, 20))
    assert seen == [1, 4, few_rows.MAX_ROWS]
    monkeypatch.setattr(few_rows, "mkl_single_core_products", lambda: False)  # Intel's CPUs
    for rows in (2, 3, 16):
        few_rows.linear(owner, owner.weight, None, torch.randn(rows, 20))
    assert seen[3:] == [2]


@pytest.mark.parametrize(
    ("cpuinfo", "splits"),
    [
        ("processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC\n", True),
        ("processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R)\n", False),
        ("processor\t: 0\nBogoMIPS\t: 50.00\n", False),  # no vendor (an ARM kernel): keep MKL's choice
    ],
)
def test_the_vendor_comes_from_proc_cpuinfo(cpuinfo: str, splits: bool) -> None:
    assert few_rows.not_intel(cpuinfo) is splits
