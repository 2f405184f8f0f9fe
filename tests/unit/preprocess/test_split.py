"""Temporal split: cut rules, ties at a cut, no leakage (globally and per user); deterministic hash fallback."""

from __future__ import annotations

import numpy as np
import pytest

from graphrec_ray.preprocess.split import TEST, TRAIN, VAL, assign_by_hash, assign_by_time, assign_per_user, \
    temporal_cuts, users_without_training


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


# ------------------------------------------------------------------------------------------- per user (issue 10)
def test_per_user_known_answer_and_few_row_users_stay_in_training() -> None:
    # user 7: 10 rows -> 8 train, 1 val, 1 test (its own last 20%); user 8: 3 rows < min_user_rows -> all train
    user = np.array([8, 7] * 3 + [7] * 7)
    ts = np.array([100, 0, 101, 1, 102, 2, 3, 4, 5, 6, 7, 8, 9], dtype=np.float64)   # shuffled users, any order
    codes = assign_per_user(user, ts, 0.8, 0.1, "rows", min_user_rows=10)
    assert codes[user == 8].tolist() == [TRAIN] * 3
    assert codes[user == 7].tolist() == [TRAIN] * 8 + [VAL, TEST]
    # with the global split user 8, active only late, has no training row at all
    assert TRAIN not in assign_by_time(ts, *temporal_cuts(np.sort(ts), 0.8, 0.1))[user == 8].tolist()


@pytest.mark.parametrize("by", ["rows", "time"])
def test_per_user_no_leakage_within_a_user_and_every_held_out_user_has_training(by: str) -> None:
    """Per user: every val/test timestamp is strictly after all of that user's training timestamps (ties too),
    and no user with enough rows lacks training history."""
    rng = np.random.default_rng(2)
    n_users = 300
    rows = rng.integers(1, 60, n_users)                              # 1..59 rows per user
    user = np.repeat(np.arange(n_users), rows)
    start = rng.uniform(0, 5e6, n_users)                             # users active in different periods
    ts = np.round(start[user] + rng.exponential(2e4, user.size), -2)  # rounded: many ties within a user
    perm = rng.permutation(user.size)
    user, ts = user[perm], ts[perm]
    codes = assign_per_user(user, ts, 0.8, 0.1, by, min_user_rows=10)
    for u in range(n_users):
        c, t = codes[user == u], ts[user == u]
        if rows[u] < 10:
            assert (c == TRAIN).all()
            continue
        assert (c == TRAIN).any()                                    # training history for every such user
        if (c != TRAIN).any():
            assert t[c == TRAIN].max() < t[c != TRAIN].min()
        if (c == VAL).any() and (c == TEST).any():
            assert t[c == VAL].max() < t[c == TEST].min()
    held = np.unique(user[codes != TRAIN])
    assert held.size > 0.6 * (rows >= 10).sum()                      # most users with enough rows are evaluated
    if by == "rows":                                                 # shares near 80/10/10 over all rows
        np.testing.assert_allclose(np.bincount(codes, minlength=3) / codes.size, [0.8, 0.1, 0.1], atol=0.04)


def test_per_user_all_rows_tied_stay_in_training() -> None:
    """Regression: a user whose rows share one timestamp would get val/test rows and no training row."""
    user, ts = np.zeros(12, dtype=np.int64), np.full(12, 5.0)
    assert (assign_per_user(user, ts, 0.8, 0.1, "rows", 10) == TRAIN).all()
    assert (assign_per_user(user, ts, 0.8, 0.1, "time", 10) == TRAIN).all()


def test_users_without_training_counts_distinct_users() -> None:
    assert users_without_training(np.array([1, 1, 2]), np.array([2, 3, 3, 4])) == (3, 2)
    assert users_without_training(np.array([], dtype=np.int64), np.array([], dtype=np.int64)) == (0, 0)
