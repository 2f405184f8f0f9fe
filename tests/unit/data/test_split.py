"""Temporal split: cut rules, ties at a cut, no leakage; deterministic hash fallback."""

from __future__ import annotations

import numpy as np
import pytest

from graphrec_ray.data.split import TEST, TRAIN, VAL, assign_by_hash, assign_by_time, temporal_cuts


def test_row_quantile_cuts_known_answer() -> None:
    ts = np.arange(100, dtype=np.float64)  # one row per second
    assert temporal_cuts(ts, 0.8, 0.1, "rows") == (80.0, 90.0)
    codes = assign_by_time(ts, 80.0, 90.0)
    assert (codes == TRAIN).sum() == 80 and (codes == VAL).sum() == 10 and (codes == TEST).sum() == 10


def test_time_range_cuts_ignore_row_density() -> None:
    ts = np.sort(np.concatenate([np.zeros(90), np.linspace(0, 100, 11)]))  # 90 rows at t=0
    assert temporal_cuts(ts, 0.8, 0.1, "time") == (80.0, 90.0)
    assert temporal_cuts(ts, 0.8, 0.1, "rows") == (0.0, 0.0)  # row quantiles: 91 of the 101 rows sit at t=0
    codes = assign_by_time(ts, 80.0, 90.0)
    assert (codes == TRAIN).sum() == 90 + 8  # every row before t=80


def test_ties_at_the_cut_never_straddle_it() -> None:
    ts = np.array([1, 2, 3, 3, 3, 3, 3, 4, 5, 6], dtype=np.float64)
    val_cut, test_cut = temporal_cuts(ts, 0.3, 0.5, "rows")  # position 3 holds a 3, position 8 a 5
    assert (val_cut, test_cut) == (3.0, 5.0)
    codes = assign_by_time(ts, val_cut, test_cut)
    assert set(codes[ts == 3].tolist()) == {VAL}
    assert codes.tolist() == [TRAIN, TRAIN, VAL, VAL, VAL, VAL, VAL, VAL, TEST, TEST]
    # both cuts on the same tied timestamp: validation is empty, the ties all go to test
    codes = assign_by_time(ts, *temporal_cuts(ts, 0.3, 0.3, "rows"))
    assert codes.tolist() == [TRAIN, TRAIN] + [TEST] * 8


@pytest.mark.parametrize("by", ["rows", "time"])
def test_no_val_or_test_timestamp_before_the_training_cut(by: str) -> None:
    rng = np.random.default_rng(0)
    ts = np.sort(np.round(rng.exponential(1000.0, 5000)))  # many ties
    codes = assign_by_time(ts, *temporal_cuts(ts, 0.7, 0.15, by))
    assert ts[codes == TRAIN].max() < ts[codes == VAL].min()
    assert ts[codes == VAL].max() < ts[codes == TEST].min()
    assert (np.diff(codes) >= 0).all()  # contiguous in time order


def test_hash_fallback_is_deterministic_pairwise_and_near_the_fractions() -> None:
    rng = np.random.default_rng(1)
    u, v = rng.integers(0, 1000, 20000), rng.integers(0, 5000, 20000)
    a = assign_by_hash(u, v, seed=3)
    assert np.array_equal(a, assign_by_hash(u, v, seed=3))
    assert np.array_equal(assign_by_hash(u[:5], v[:5], seed=3), a[:5])  # per row, independent of the batch
    shares = np.bincount(a, minlength=3) / a.size
    np.testing.assert_allclose(shares, [0.8, 0.1, 0.1], atol=0.015)
    assert not np.array_equal(a, assign_by_hash(u, v, seed=4))
    dup = assign_by_hash(np.array([5, 5, 5]), np.array([9, 9, 9]), seed=3)
    assert len(set(dup.tolist())) == 1  # all views of a pair land in one split


def test_empty_input_is_an_error() -> None:
    with pytest.raises(ValueError):
        temporal_cuts(np.array([]))
