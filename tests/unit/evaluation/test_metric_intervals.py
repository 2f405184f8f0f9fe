"""Bootstrap intervals in the ranking metrics (evaluate_ranking / protocols) and paired comparisons over seeds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from graphrec_ray.errors import UserError
from graphrec_ray.evaluation.compare import compare_seed_files, paired_over_seeds, prefixed, save_per_user
from graphrec_ray.evaluation.protocols import unbiased_protocol
from graphrec_ray.evaluation.ranking_metrics import evaluate_ranking
from graphrec_ray.evaluation.stats import bootstrap_mean
from graphrec_ray.interactions import Interactions


def _planted(n_users: int = 400, hit_every: int = 4) -> tuple[np.ndarray, sp.csr_matrix]:
    """Each user has one relevant item; the model ranks it first for every ``hit_every``-th user, else last.

    Known per-user answer: recall@1 = 1 for users u % hit_every == 0, else 0 (mean 1/hit_every).
    """
    n_items = 5
    scores = np.tile(np.arange(n_items, 0, -1, dtype=np.float32), (n_users, 1))  # item 0 best, item 4 worst
    rel = np.zeros((n_users, n_items), dtype=bool)
    hit = np.arange(n_users) % hit_every == 0
    rel[hit, 0] = True
    rel[~hit, 4] = True
    return scores, sp.csr_matrix(rel)


def test_ci_columns_are_the_bootstrap_of_the_known_per_user_values() -> None:
    scores, rel = _planted()
    users = np.arange(rel.shape[0])
    per_user: dict[str, np.ndarray] = {}
    m = evaluate_ranking(lambda u: scores[u], users, rel, recall_ks=(1, 5), ndcg_ks=(1,), batch_size=64, ci=True,
                         per_user=per_user)
    expected = (users % 4 == 0).astype(float)
    np.testing.assert_array_equal(per_user["recall@1"], expected)
    np.testing.assert_array_equal(per_user["users"], users)
    assert m["recall@1"] == pytest.approx(0.25)
    iv = bootstrap_mean(expected, seed=0)  # same users, same resampling seed: the same interval
    assert (m["recall@1/ci_low"], m["recall@1/ci_high"]) == pytest.approx((iv.low, iv.high))
    assert m["recall@1/ci_low"] < 0.25 < m["recall@1/ci_high"]
    # recall@5 is 1 for everyone: a degenerate interval at 1
    assert (m["recall@5"], m["recall@5/ci_low"], m["recall@5/ci_high"]) == (1.0, 1.0, 1.0)


def test_users_without_relevant_items_are_nan_and_left_out_of_mean_and_interval() -> None:
    scores, rel = _planted(40)
    rel = sp.lil_matrix(rel)
    rel[1] = False  # user 1 has nothing relevant
    per_user: dict[str, np.ndarray] = {}
    m = evaluate_ranking(lambda u: scores[u], np.arange(40), sp.csr_matrix(rel), recall_ks=(1,), ndcg_ks=(1,),
                         ci=True, per_user=per_user)
    assert np.isnan(per_user["recall@1"][1]) and m["n_users"] == 39
    assert m["recall@1"] == pytest.approx(10 / 39)
    assert "recall@1/ci_low" in m and "ndcg@1/ci_high" in m


def test_without_ci_no_interval_keys() -> None:
    scores, rel = _planted(20)
    m = evaluate_ranking(lambda u: scores[u], np.arange(20), rel, recall_ks=(1,), ndcg_ks=(1,))
    assert not any(k.endswith(("/ci_low", "/ci_high")) for k in m)


def test_protocol_emits_intervals_and_prefixed_per_user_values() -> None:
    users = np.repeat([0, 1], 3)
    items = np.tile([0, 1, 2], 2)
    small = Interactions(users, items, 2, 3, np.array([0.9, 0.1, 0.1, 0.1, 0.1, 0.9]))
    scores = np.tile(np.array([3.0, 2.0, 1.0], dtype=np.float32), (2, 1))
    empty = sp.csr_matrix((2, 3), dtype=bool)
    per_user: dict[str, np.ndarray] = {}
    m = unbiased_protocol(lambda u: scores[u], small, empty, (("ge0.5", ">=", 0.5),), recall_ks=(1,),
                          ndcg_ks=(1,), per_user=per_user)
    assert m["ge0.5/recall@1"] == 0.5  # user 0 hit, user 1 miss
    assert m["ge0.5/recall@1/ci_low"] == 0.0 and m["ge0.5/recall@1/ci_high"] == 1.0
    np.testing.assert_array_equal(per_user["ge0.5/recall@1"], [1.0, 0.0])
    np.testing.assert_array_equal(per_user["users"], [0, 1])


def test_paired_over_seeds_needs_three_seeds_and_finds_a_planted_gain() -> None:
    rng = np.random.default_rng(0)
    user_effect = rng.random(300)
    b = user_effect + rng.normal(0, 0.02, (3, 300))
    a = user_effect + 0.03 + rng.normal(0, 0.02, (3, 300))
    iv = paired_over_seeds(a, b)
    assert iv.verdict() == "better" and iv.low < 0.03 < iv.high
    assert paired_over_seeds(b, b + rng.normal(0, 0.02, (3, 300))).verdict() == "not significant"
    with pytest.raises(UserError, match=">= 3 seeds"):
        paired_over_seeds(a[:2], b[:2])


def test_compare_seed_files_aligns_users_across_seeds(tmp_path: Path) -> None:
    """Seeds may list the evaluation users in another order; values are matched by user index, not position."""
    rng = np.random.default_rng(1)
    n = 200
    truth_b = rng.random(n)
    paths = []
    for s in range(3):
        order = rng.permutation(n)  # a different user order in each file
        a = truth_b + 0.05
        per = {"A": prefixed("test/", {"recall@20": a[order], "users": order}),
               "B": prefixed("test/", {"recall@20": truth_b[order], "users": order})}
        paths.append(save_per_user(tmp_path / f"seed={s}.npz", per))
    out = compare_seed_files(paths, "A", "B", ["test/recall@20", "test/ndcg@20"])
    assert list(out) == ["test/recall@20"]  # ndcg@20 is in no file: skipped
    assert out["test/recall@20"].estimate == pytest.approx(0.05)
    assert out["test/recall@20"].low == pytest.approx(0.05) and out["test/recall@20"].high == pytest.approx(0.05)
