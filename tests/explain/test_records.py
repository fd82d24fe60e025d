"""Records: the train/test split by window, the 0-10 scale, the start token left out."""

from __future__ import annotations

import numpy as np

from mechscope.data.store import Dataset
from mechscope.explain.records import RecordConfig, load_records, scaled
from mechscope.models.decoder import HookedDecoder
from tests.explain._helpers import DIGIT_NODE, WINDOW


def test_scaled_is_floor_of_ten_times_the_share_of_the_max_with_negatives_clipped() -> None:
    got = scaled([-1.0, 0.0, 0.29, 1.5, 2.99, 3.0, 4.5], 3.0)
    assert got.tolist() == [0, 0, 0, 5, 9, 10, 10]
    assert scaled([1.0, 2.0], 0.0).tolist() == [0, 0]  # a dead node: nothing to scale against


def test_train_and_test_never_share_a_window(digit_ds: Dataset, digit: HookedDecoder) -> None:
    for node in [DIGIT_NODE, ("mlp_neuron", 1, 5), ("attn_head", 1, 2)]:
        recs = load_records(digit_ds, *node, model=digit)
        train = [r.window_id for r in recs.train]
        test = [r.window_id for r in recs.test]
        assert train and test
        assert not set(train) & set(test)
        assert len(set(test)) == len(test) and len(set(train)) == len(train)
        top = [r["window_id"] for r in digit_ds.top_examples(*node, n=100)]
        assert train == top[0::2][: RecordConfig().train_top]  # even ranks, strongest first
        assert {"top", "quantile", "random", "extra"} >= {r.source for r in recs.test}
        assert all(len(r.tokens) == len(r.acts) == WINDOW - 1 for r in recs.train + recs.test)


def test_start_token_is_left_out_and_recomputed_acts_match_the_stored_ones(
    digit_ds: Dataset, digit: HookedDecoder
) -> None:
    recs = load_records(digit_ds, *DIGIT_NODE, model=digit)
    row = digit_ds.top_examples(*DIGIT_NODE, n=1)[0]
    first = recs.train[0]
    assert first.tokens == row["tokens"][1:] and first.acts == row["acts"][1:]
    assert {r.source for r in recs.test} >= {"quantile", "extra"}
    for r in recs.test:  # the digit neuron: 3.0 exactly on digits, 0 elsewhere, whoever computed it
        want = [3.0 if t.isdigit() else 0.0 for t in r.tokens]
        np.testing.assert_allclose(r.acts, want, atol=1e-3)
    assert recs.scale == 3.0 and not recs.pairs


def test_without_the_model_quantile_samples_are_left_out_and_said_so(digit_ds: Dataset) -> None:
    recs = load_records(digit_ds, *DIGIT_NODE, model=None)
    assert {r.source for r in recs.test} <= {"top", "random"}
    assert any("quantile" in n for n in recs.notes)


def test_head_records_carry_their_key(digit_ds: Dataset, digit: HookedDecoder) -> None:
    recs = load_records(digit_ds, "attn_head", 1, 2, model=digit, cfg=RecordConfig(extra_random=0))
    assert recs.pairs
    rows = {r["window_id"]: r for r in digit_ds.top_examples("attn_head", 1, 2, n=100)}
    for r in recs.train:
        kp = rows[r.window_id]["key_position"]
        assert r.key == (kp - 1 if kp > 0 else None)
        assert r.acts[rows[r.window_id]["position"] - 1] == max(r.acts)
