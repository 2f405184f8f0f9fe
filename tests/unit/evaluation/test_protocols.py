"""The three protocols on a tiny hand-made example with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from graphrec_ray.evaluation.protocols import (parse_relevance, temporal_protocol, true_preference_protocol,
                                               unbiased_protocol)
from graphrec_ray.interactions import Interactions

# 2 users, 5 items; the model prefers higher item index for everyone
SCORES = np.tile(np.arange(5, dtype=np.float32), (2, 1))
score_fn = lambda users: SCORES[users]  # noqa: E731
TRAIN = Interactions(np.array([0, 1]), np.array([4, 3]), 2, 5).matrix()


def test_temporal_uses_watch_ratio_threshold_and_excludes_training() -> None:
    test = Interactions(np.array([0, 0, 1]), np.array([3, 0, 0]), 2, 5, np.array([0.9, 0.1, 0.7]))
    m = temporal_protocol(score_fn, test, TRAIN, recall_ks=(1,), ndcg_ks=(1,))
    # user 0: item 4 excluded -> top-1 is item 3 (relevant); item 0 has ratio 0.1, not relevant
    # user 1: item 3 excluded -> top-1 is item 4, relevant is item 0 -> miss
    assert m["recall@1"] == 0.5 and m["n_users"] == 2


def test_unbiased_ranks_only_small_matrix_items_with_both_thresholds() -> None:
    users = np.repeat([0, 1], 3)
    items = np.tile([0, 1, 2], 2)
    wr = np.array([0.6, 0.2, 3.0, 2.0, 0.5, 0.1])
    small = Interactions(users, items, 2, 5, wr)
    m = unbiased_protocol(score_fn, small, TRAIN, recall_ks=(1,), ndcg_ks=(1,))
    # candidates {0,1,2}; top-1 = item 2 for both users
    assert m["ge0.5/recall@1"] == pytest.approx((1 / 2 + 0) / 2)  # u0 rel {0,2}; u1 rel {0,1}
    assert m["gt2.0/recall@1"] == 1.0 and m["gt2.0/n_users"] == 1  # only u0 has ratio > 2 (item 2)


def test_true_preference_recall_and_mean_gain() -> None:
    p = np.array([[0.9, 0.1, 0.1, 0.2, 0.3], [0.1, 0.1, 0.1, 0.8, 0.6]])
    m = true_preference_protocol(score_fn, np.array([0, 1]), p, TRAIN, threshold=0.5, recall_ks=(2,),
                                 ndcg_ks=(2,), gain_k=2)
    # u0 top-2 (4 excluded): 3, 2 -> misses item 0; u1 (3 excluded): 4, 2 -> hits item 4
    assert m["recall@2"] == pytest.approx(0.5)
    assert m["mean_gain@2"] == pytest.approx(((0.2 + 0.1) / 2 + (0.6 + 0.1) / 2) / 2)


def test_parse_relevance() -> None:
    assert parse_relevance(">=0.5") == ("ge0.5", ">=", 0.5)
    assert parse_relevance(">2") == ("gt2.0", ">", 2.0)
    with pytest.raises(ValueError):
        parse_relevance("=1")
