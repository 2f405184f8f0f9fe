"""One reranking setting on planted decision data: the Serve app's order, the truth, the trade-offs."""

from __future__ import annotations

import numpy as np
import pytest

from graphrec_ray.evaluation.decision_data import DecisionData
from graphrec_ray.evaluation.policy_eval import PolicyEvaluator, RerankSetting, category_diversity, coverage
from graphrec_ray.rerank.mmr import unit_rows
from graphrec_ray.rerank.scalarize import DEFAULT_VALUE_SCALE, scalarize
from graphrec_ray.serving.pipeline import Scored, rerank
from graphrec_ray.serving.versioned import RerankPart

U, K, D = 40, 30, 16
N_ITEMS = U * K + 10  # every user has its own candidates; 10 items are never candidates


def planted(seed: int = 0) -> DecisionData:
    """Each user's 30 candidates: the 15 most relevant share category 0 and one embedding direction (a
    redundant head); the other 15 have distinct categories and orthogonal directions (a diverse tail).

    Predictions are planted against the truth: p_click ranks the "click" items (even positions) first, e_value
    the "value" items (odd positions); the truth agrees, so w_engagement buys engagement and w_value buys value.
    """
    rng = np.random.default_rng(seed)
    basis = np.linalg.qr(rng.standard_normal((D, D)))[0]
    item_emb = np.zeros((N_ITEMS, D), np.float32)
    cats = np.zeros(N_ITEMS, np.int64)
    item_idx = np.zeros((U, K), np.int64)
    p = np.zeros((U, K), np.float32)
    v = np.zeros((U, K), np.float32)
    perm = rng.permutation(N_ITEMS)
    for u in range(U):
        items = perm[u * K:(u + 1) * K]
        item_idx[u] = items
        for j, i in enumerate(items):
            if j < 15:
                item_emb[i] = basis[0] + 0.01 * rng.standard_normal(D)
                cats[i] = 0
            else:
                item_emb[i] = basis[1 + (j - 15)]
                cats[i] = 1 + (j - 15)
        rel = np.linspace(0.9, 0.3, K)  # head first
        click_item = np.arange(K) % 2 == 0
        p[u] = np.where(click_item, rel, rel - 0.2)
        v[u] = np.where(click_item, rel - 0.2, rel) * DEFAULT_VALUE_SCALE
    true_click = p.astype(np.float64) * 0.9
    true_value = v.astype(np.float64) / DEFAULT_VALUE_SCALE
    return DecisionData(np.arange(U), 1000 + np.arange(U), item_idx, p, v, true_click, true_value,
                        unit_rows(item_emb), cats, 5000 + np.arange(N_ITEMS), "simulator")


@pytest.fixture(scope="module")
def ev() -> PolicyEvaluator:
    return PolicyEvaluator(planted(), n_boot=200)


def test_lambda_one_is_the_pure_relevance_order(ev: PolicyEvaluator) -> None:
    d = ev.data
    s = RerankSetting(0.7, 0.3, 1.0, 30)
    final = scalarize(d.p_click, d.e_value, 0.7, 0.3)
    expect = np.argsort(-final, axis=1, kind="stable")[:, :10]
    np.testing.assert_array_equal(ev.served_positions(s), expect)


def test_served_lists_equal_the_serve_apps_rerank(ev: PolicyEvaluator) -> None:
    d = ev.data
    s = RerankSetting(0.4, 0.6, 0.5, 20)
    r = ev.evaluate(s)
    part = RerankPart(d.item_unit)
    for u in range(d.n_users):
        served = rerank(part, Scored("v", d.item_idx[u], d.p_click[u], d.e_value[u]), 10, 0.4, 0.6,
                        DEFAULT_VALUE_SCALE, 0.5, 20)
        np.testing.assert_array_equal(r.served[u], served.item_idx)


def test_diversity_rises_as_lambda_falls_on_a_redundant_head(ev: PolicyEvaluator) -> None:
    div = [ev.evaluate(RerankSetting(0.5, 0.5, lam, 30)).intervals["diversity"] for lam in (1.0, 0.7, 0.3)]
    assert div[0].estimate == pytest.approx(0.0)  # relevance order: ten head items, all category 0
    assert div[0].high < div[1].low and div[1].estimate <= div[2].estimate
    assert div[2].estimate > 0.8


def test_weights_trade_engagement_for_value_by_the_truth(ev: PolicyEvaluator) -> None:
    eng = ev.evaluate(RerankSetting(1.0, 0.0, 1.0, 30))
    val = ev.evaluate(RerankSetting(0.0, 1.0, 1.0, 30))
    assert eng.intervals["engagement"].estimate > val.intervals["engagement"].estimate
    assert val.intervals["value"].estimate > eng.intervals["value"].estimate
    # engagement of the engagement-weighted list is known: the 10 best click items' truth
    d = ev.data
    expect = np.sort(d.true_click, axis=1)[:, ::-1][:, :10].mean()
    assert eng.intervals["engagement"].estimate == pytest.approx(expect)
    iv = eng.intervals["engagement"]
    assert iv.low <= iv.estimate <= iv.high and iv.n == U


def test_pool_smaller_than_k_serves_the_pool() -> None:
    ev = PolicyEvaluator(planted(), n_boot=50)
    r = ev.evaluate(RerankSetting(0.5, 0.5, 0.5, 4))
    assert r.served.shape == (U, 4)


def test_category_diversity_and_coverage_known_values() -> None:
    np.testing.assert_allclose(category_diversity(np.array([[0, 0, 1, 1], [1, 2, 3, 4], [5, 5, 5, 5]])),
                               [1 - 4 / 12, 1.0, 0.0])
    cov = coverage(np.array([[1, 2], [2, 3]]), n_items=10)
    assert cov.estimate == pytest.approx(0.3) and np.isnan(cov.low)


def test_invalid_settings_are_rejected() -> None:
    with pytest.raises(ValueError):
        RerankSetting(0.0, 0.0, 0.5, 10)
    with pytest.raises(ValueError):
        RerankSetting(0.5, 0.5, 1.5, 10)
