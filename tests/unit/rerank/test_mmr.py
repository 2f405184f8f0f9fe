"""MMR: lambda=1 is pure relevance order; lower lambda raises intra-list diversity on planted clusters."""

from __future__ import annotations

import numpy as np
import pytest

from graphrec_ray.rerank.mmr import intra_list_diversity, mmr_select, unit_rows


def _planted(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """60 candidates in 3 tight clusters; cluster 0 holds all the most relevant items."""
    rng = np.random.default_rng(seed)
    centres = np.eye(3, 6, dtype=np.float32)
    cluster = np.repeat(np.arange(3), 20)
    emb = unit_rows(centres[cluster] + 0.05 * rng.standard_normal((60, 6)).astype(np.float32))
    rel = np.where(cluster == 0, 1.0, 0.6) + 0.1 * rng.random(60)
    perm = rng.permutation(60)  # shuffle so input order carries no information
    return rel[perm], emb[perm], cluster[perm]


def test_lambda_one_equals_pure_relevance_order() -> None:
    rel, emb, _ = _planted()
    np.testing.assert_array_equal(mmr_select(rel, emb, 10, lambda_diversity=1.0), np.argsort(-rel)[:10])
    # the general loop with lambda=1 (no shortcut) gives the same order
    np.testing.assert_array_equal(mmr_select(rel, emb, 10, lambda_diversity=1.0 - 1e-12), np.argsort(-rel)[:10])


def test_lower_lambda_increases_diversity_on_planted_clusters() -> None:
    rel, emb, cluster = _planted()
    ild = {}
    clusters = {}
    for lam in (1.0, 0.7, 0.3):
        pick = mmr_select(rel, emb, 9, lambda_diversity=lam)
        ild[lam] = intra_list_diversity(emb[pick])
        clusters[lam] = len(set(cluster[pick].tolist()))
    assert clusters[1.0] == 1  # pure relevance: all from the best cluster
    assert clusters[0.3] == 3  # diverse: every cluster represented
    assert ild[1.0] < ild[0.7] <= ild[0.3]


def test_top_n_pool_limits_candidates_and_first_pick_is_most_relevant() -> None:
    rel, emb, _ = _planted()
    best5 = set(np.argsort(-rel)[:5].tolist())
    pick = mmr_select(rel, emb, 10, lambda_diversity=0.2, top_n_pool=5)
    assert len(pick) == 5 and set(pick.tolist()) == best5
    assert pick[0] == int(np.argmax(rel))
    assert len(set(mmr_select(rel, emb, 60, 0.5).tolist())) == 60  # no duplicates


def test_bad_lambda_raises_and_empty_input() -> None:
    with pytest.raises(ValueError):
        mmr_select(np.zeros(3), np.zeros((3, 2)), 2, lambda_diversity=1.5)
    assert mmr_select(np.zeros(0), np.zeros((0, 2)), 3).size == 0
    assert intra_list_diversity(np.ones((1, 2))) == 0.0
