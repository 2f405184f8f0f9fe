"""The PDA popularity prior (graphrec_ray/retrieval/popularity_prior.py) on planted popularity with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from graphrec_ray.interactions import Interactions
from graphrec_ray.retrieval.base import EmbeddingRecommender
from graphrec_ray.retrieval.popularity_prior import (applies_to, export_tables, log_popularity, score_std,
                                                      user_prior_weights, with_popularity_prior)


def _planted() -> tuple[np.ndarray, np.ndarray, Interactions]:
    """6 users, 5 items; item i has 5 - i positive users (item 0 most popular); embeddings prefer the reverse."""
    rng = np.random.default_rng(0)
    users = np.concatenate([np.arange(5 - i) for i in range(5)])
    items = np.concatenate([np.full(5 - i, i) for i in range(5)])
    pos = Interactions(users, items, 6, 5)
    user = np.abs(rng.normal(size=(6, 3))).astype(np.float32) + 1.0
    item = np.outer(np.arange(5, dtype=np.float32) + 1.0, np.ones(3, np.float32))  # dot order: item 4 first
    return user, item, pos


def test_log_popularity_is_the_smoothed_share_of_positive_users() -> None:
    _, _, pos = _planted()
    counts = np.array([5, 4, 3, 2, 1], dtype=np.float64)
    np.testing.assert_allclose(log_popularity(pos), np.log((counts + 1) / 6), rtol=1e-6)
    assert log_popularity(Interactions(np.zeros(0, np.int64), np.zeros(0, np.int64), 2, 3)).tolist() == [0, 0, 0]


def test_augmented_inner_product_equals_dot_plus_gamma_log_pop() -> None:
    user, item, pos = _planted()
    lp = log_popularity(pos)
    u, i = with_popularity_prior(user, item, lp, 0.7)
    assert u.shape == (6, 4) and i.shape == (5, 4) and u.dtype == i.dtype == np.float32
    np.testing.assert_allclose(u @ i.T, user @ item.T + 0.7 * lp[None, :], rtol=1e-5, atol=1e-5)


def test_gamma_zero_keeps_the_dot_ranking_and_large_gamma_gives_popularity_order() -> None:
    user, item, pos = _planted()
    lp = log_popularity(pos)
    u0, i0 = with_popularity_prior(user, item, lp, 0.0)
    assert u0.shape == user.shape and np.array_equal(u0, user) and np.array_equal(i0, item)  # off: same tables
    top0, _ = EmbeddingRecommender(u0, i0).recommend(np.arange(6), k=5)
    assert (top0 == [4, 3, 2, 1, 0]).all()  # the dot ranking: least popular first
    big_u, big_i = with_popularity_prior(user, item, lp, 1e4)
    top, _ = EmbeddingRecommender(big_u, big_i).recommend(np.arange(6), k=5)
    assert (top == [0, 1, 2, 3, 4]).all()  # popularity order


def test_score_std_is_the_exact_spread_of_all_dot_products() -> None:
    rng = np.random.default_rng(1)
    user, item = rng.normal(size=(40, 5)) + 0.3, rng.normal(size=(30, 5)) - 0.1
    assert score_std(user, item) == pytest.approx(float(np.std(user @ item.T)), rel=1e-9)


def test_export_tables_puts_the_prior_on_ips_models_only_in_score_spread_units() -> None:
    user, item, pos = _planted()
    assert applies_to("lightgcn_ips", 1.0) and applies_to("mf_ips", 1.0)
    assert not applies_to("lightgcn", 1.0) and not applies_to("mf", 1.0) and not applies_to("lightgcn_ips", 0.0)
    u, i = export_tables("lightgcn", 2.0, user, item, pos)
    assert u is user and i is item  # plain models keep their tables (and their width)
    u, i = export_tables("lightgcn_ips", 2.0, user, item, pos)
    s = score_std(user, item)
    np.testing.assert_allclose(u @ i.T, user @ item.T + 2.0 * s * log_popularity(pos)[None, :], rtol=1e-5, atol=1e-4)


def test_log_pop_of_the_wrong_length_is_rejected() -> None:
    user, item, _ = _planted()
    with pytest.raises(ValueError, match="log_pop"):
        with_popularity_prior(user, item, np.zeros(4, np.float32), 1.0)


def test_per_user_weight_shrinks_the_prior_for_users_with_long_histories() -> None:
    # planted: user 0 has 5 positives, user 4 one, user 5 none -> weights n0/(n0+n_u) = 2/7, 2/3, 1
    user, item, pos = _planted()
    w = user_prior_weights(pos, 2.0)
    np.testing.assert_allclose(w, 2.0 / (2.0 + np.array([5, 4, 3, 2, 1, 0])), rtol=1e-6)
    assert w[0] < w[4] < w[5] == 1.0  # many positives -> smaller prior weight; no history -> the full gamma
    assert user_prior_weights(pos, 0.0).tolist() == [1.0] * 6  # n0 = 0: the global gamma for everyone


def test_per_user_weight_is_in_the_user_column_and_the_inner_product_is_dot_plus_weighted_prior() -> None:
    user, item, pos = _planted()
    u, i = export_tables("lightgcn_ips", 2.0, user, item, pos, n0=2.0)
    s, lp, w = score_std(user, item), log_popularity(pos), user_prior_weights(pos, 2.0)
    np.testing.assert_allclose(u[:, -1], w, rtol=1e-6)  # the user table carries the weight ...
    np.testing.assert_allclose(i[:, -1], 2.0 * s * lp, rtol=1e-5)  # ... the item column is unchanged
    np.testing.assert_allclose(u @ i.T, user @ item.T + 2.0 * s * w[:, None] * lp[None, :], rtol=1e-5, atol=1e-4)
    # regression (global prior): without n0 the user column stays ones, as serving and the manifest expect
    u1, _ = export_tables("lightgcn_ips", 2.0, user, item, pos)
    assert (u1[:, -1] == 1.0).all()
    with pytest.raises(ValueError, match="user_weight"):
        with_popularity_prior(user, item, lp, 1.0, np.ones(5, np.float32))
