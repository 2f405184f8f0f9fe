"""One reranking setting on planted decision data: the Serve app's order, the truth, the trade-offs."""

from __future__ import annotations

import numpy as np
import pytest

from graphrec_ray.evaluation.policy_eval import PolicyEvaluator, RerankSetting, category_diversity, coverage
from graphrec_ray.rerank.scalarize import DEFAULT_VALUE_SCALE, scalarize
from graphrec_ray.serving.request_path import Scored, rerank
from graphrec_ray.serving.versions import RerankPart
from tests.unit.evaluation.planted_decision import U, planted


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
