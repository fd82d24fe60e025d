"""run_with_cache records into recycled buffers where malloc would give memory back
(models/buffer_pool.py): the same numbers, buffers reused only once nothing uses them, and the
pool no larger than the live caches plus the last recording."""

from __future__ import annotations

import threading

import pytest
import torch

from mechscope.models import buffer_pool, few_rows, memory, packed_weights
from mechscope.models.buffer_pool import BufferPool
from mechscope.models.decoder import HookedDecoder
from tests.conftest import tiny_model


@pytest.fixture
def pool(monkeypatch: pytest.MonkeyPatch) -> BufferPool:
    """A fresh pool, used as in a process whose malloc gives freed memory back."""
    fresh = BufferPool()
    monkeypatch.setattr(buffer_pool, "POOL", fresh)
    monkeypatch.setattr(memory, "is_keeping_freed_memory", lambda: False)
    return fresh


def tokens(seed: int, n: int = 10) -> torch.Tensor:
    return torch.randint(1, 50, (1, n), generator=torch.Generator().manual_seed(seed))


def cache_bytes(model: HookedDecoder, x: torch.Tensor, pool: BufferPool) -> int:
    """Bytes of the distinct storages a recording's cache and logits hold, each checked to be
    one of the pool's."""
    logits, cache = model.run_with_cache(x)
    storages = {
        t.untyped_storage().data_ptr(): t.untyped_storage().nbytes() for t in (logits, *cache.values())
    }
    assert set(storages) <= pool._owned
    return sum(storages.values())


@pytest.mark.parametrize("family", ["llama", "gpt2", "gemma3"])
def test_pooled_recording_equals_the_plain_one(family: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # Plain F.linear products in both runs: a pooled recording writes the logits into its buffer
    # with matmul's out=, while a plain run (where an earlier load_model() kept freed memory) may
    # take a split or packed product, equal only to float rounding on some CPUs (AMD EPYC: 4e-6).
    monkeypatch.setattr(few_rows, "MAX_ROWS", 0)
    monkeypatch.setenv(packed_weights.BUDGET_ENV, "0")
    packed_weights.clear()
    model = tiny_model(family)
    x = tokens(0)
    plain_logits, plain = model.run_with_cache(x)
    assert buffer_pool.pool_for_caches() is None or not memory.is_keeping_freed_memory()
    fresh = BufferPool()
    monkeypatch.setattr(buffer_pool, "POOL", fresh)
    monkeypatch.setattr(memory, "is_keeping_freed_memory", lambda: False)
    for _ in range(2):  # fresh buffers, then recycled ones
        logits, cache = model.run_with_cache(x)
        assert fresh.nbytes() > 0
        torch.testing.assert_close(logits, plain_logits, rtol=0, atol=0)
        assert list(cache) == list(plain)
        for name in plain:
            torch.testing.assert_close(cache[name], plain[name], rtol=0, atol=0, msg=name)
        del logits, cache


def test_a_kept_tensor_is_never_overwritten(pool: BufferPool) -> None:
    model = tiny_model("llama")
    _, cache = model.run_with_cache(tokens(0))
    kept = cache["blocks.0.resid_post"]
    view = cache["blocks.1.mlp.post"][0, 3:]
    before = kept.clone(), view.clone()
    del cache
    for seed in (1, 2):  # other prompts of the same length: the same buffer sizes
        model.run_with_cache(tokens(seed))
    torch.testing.assert_close(kept, before[0], rtol=0, atol=0)
    torch.testing.assert_close(view, before[1], rtol=0, atol=0)


def test_buffers_are_reused_once_free_and_the_pool_tracks_the_last_recording(pool: BufferPool) -> None:
    model = tiny_model("llama")
    held = cache_bytes(model, tokens(0), pool)  # the cache died on return
    assert pool.nbytes() == held
    cache_bytes(model, tokens(1), pool)
    assert pool.nbytes() == held  # recycled, not grown
    live = model.run_with_cache(tokens(2))
    cache_bytes(model, tokens(3), pool)  # a live cache's buffers are not free: new ones
    assert pool.nbytes() == 2 * held
    del live
    shorter = cache_bytes(model, tokens(4, n=6), pool)
    # Another length: the buffers this recording did not take are dropped at its end.
    assert pool.nbytes() == shorter < held
    pool.clear()
    assert pool.nbytes() == 0


def test_recordings_with_gradients_or_kept_graphs_are_not_pooled(pool: BufferPool) -> None:
    model = tiny_model("llama")
    model.run_with_cache(tokens(0), incl_bwd=True)
    model.run_with_cache(tokens(0), detach=False)
    assert pool.nbytes() == 0
    model.requires_grad_(True)
    with torch.enable_grad():
        logits, _ = model.run_with_cache(tokens(0))
    assert logits.requires_grad  # the graph the caller may differentiate is intact
    assert pool.nbytes() == 0


def test_the_pool_is_off_where_malloc_keeps_freed_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory, "is_keeping_freed_memory", lambda: True)
    assert buffer_pool.pool_for_caches() is None
    monkeypatch.setattr(memory, "is_keeping_freed_memory", lambda: False)
    assert buffer_pool.pool_for_caches() is buffer_pool.POOL


def test_recordings_in_threads_share_the_pool_safely(pool: BufferPool) -> None:
    # One model runs one forward at a time (its hooks are its own state; the server has one
    # model thread); the pool is shared by every model of the process.
    models = [tiny_model("llama", seed=i) for i in range(4)]
    xs = [tokens(i) for i in range(4)]
    want = [m.run_with_cache(x)[1]["blocks.1.resid_post"].clone() for m, x in zip(models, xs, strict=True)]
    got: list[torch.Tensor | None] = [None] * len(xs)

    def run(i: int) -> None:
        for _ in range(5):
            got[i] = models[i].run_with_cache(xs[i])[1]["blocks.1.resid_post"]

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(xs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for g, w in zip(got, want, strict=True):
        assert g is not None
        torch.testing.assert_close(g, w, rtol=0, atol=0)


def test_transient_outputs_hold_no_pooled_memory(pool: BufferPool) -> None:
    # Only the patterns are kept: the scores the explicit attention computes on the way die
    # within the forward and must not have been written into pooled buffers.
    model = tiny_model("llama")
    names = [f"blocks.{i}.attn.pattern" for i in range(model.cfg.n_layers)]
    logits, cache = model.run_with_cache(tokens(0), names=names)
    kept = {t.untyped_storage().data_ptr(): t.untyped_storage().nbytes() for t in (logits, *cache.values())}
    assert set(kept) <= pool._owned
    assert pool.nbytes() == sum(kept.values())
