"""The retrieval stage exports the popularity prior it evaluates (issue 10 item 8): an IPS model's written tables are
one column wider, their inner products are dot + gamma * s * log pop, and serving's files stay consistent."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from graphrec_ray.layout import RunLayout
from graphrec_ray.manifest import read_manifest, verify_manifest
from graphrec_ray.retrieval import stage
from graphrec_ray.retrieval.config import RetrievalConfig
from graphrec_ray.retrieval.popularity_prior import engagement, log_popularity, score_std, user_prior_weights
from graphrec_ray.retrieval.stage import load_inputs
from tests.unit.ranking.conftest import make_tiny_run
from tests.unit.retrieval.test_stage import popularity_fit


@pytest.fixture(scope="module")
def tiny_layout(tmp_path_factory: pytest.TempPathFactory) -> RunLayout:
    return RunLayout(make_tiny_run(tmp_path_factory.mktemp("retrieval_stage_prior")))


def test_stage_writes_the_prior_column_it_evaluates(tiny_layout: RunLayout) -> None:
    cfg = replace(RetrievalConfig(), baselines=("popularity",), popularity_prior=2.0, popularity_prior_signal="count")
    metrics = stage.run(cfg, tiny_layout, popularity_fit)

    assert verify_manifest(tiny_layout.retrieval) == []
    assert read_manifest(tiny_layout.retrieval)["dim"] == 2  # the injected fit's 1 column + the prior
    ue, ie = np.load(tiny_layout.user_embeddings), np.load(tiny_layout.item_embeddings)
    inputs = load_inputs(tiny_layout.preprocess)
    pos = inputs["train"].concat(inputs["val"]).relevant(">=", cfg.positive_threshold)
    raw = popularity_fit("lightgcn_ips", cfg, tiny_layout, None)
    s = score_std(raw["user"], raw["item"])
    assert (ue[:, -1] == 1.0).all()
    np.testing.assert_allclose(ie[:, -1], 2.0 * s * log_popularity(pos), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ue @ ie.T, raw["user"] @ raw["item"].T + 2.0 * s * log_popularity(pos)[None, :],
                               rtol=1e-5, atol=1e-4)
    # popularity + a prior increasing in popularity ranks like popularity: the evaluated figures agree
    ips, pop = metrics["models"]["lightgcn_ips"], metrics["models"]["popularity"]
    for k in ("unbiased/ge0.5/recall@20", "test/recall@20"):
        assert ips[k] == pytest.approx(pop[k], nan_ok=True), k


def test_stage_writes_the_per_user_prior_weight_in_the_user_column(tiny_layout: RunLayout) -> None:
    # popularity_prior_n0 > 0: the exported user column is n0 / (n0 + n_u) of the refit positives (not ones), and the
    # inner products are dot + gamma * w_u * s * log pop (a stage that dropped n0 would write ones)
    cfg = replace(RetrievalConfig(), baselines=(), popularity_prior=2.0, popularity_prior_n0=3.0,
                  popularity_prior_signal="count")
    stage.run(cfg, tiny_layout, popularity_fit)
    ue, ie = np.load(tiny_layout.user_embeddings), np.load(tiny_layout.item_embeddings)
    inputs = load_inputs(tiny_layout.preprocess)
    pos = inputs["train"].concat(inputs["val"]).relevant(">=", cfg.positive_threshold)
    raw = popularity_fit("lightgcn_ips", cfg, tiny_layout, None)
    s, w = score_std(raw["user"], raw["item"]), user_prior_weights(pos, 3.0)
    assert w.min() < 1.0  # the tiny run has users with positives
    np.testing.assert_allclose(ue[:, -1], w, rtol=1e-6)
    np.testing.assert_allclose(ue @ ie.T, raw["user"] @ raw["item"].T
                               + 2.0 * s * w[:, None] * log_popularity(pos)[None, :], rtol=1e-5, atol=1e-4)


def test_stage_writes_the_engagement_prior_of_every_fitted_view(tiny_layout: RunLayout) -> None:
    # the default signal: the item column is gamma * s * engagement over train + val views (all rows, not only the
    # positives); a stage that passed the positives as exposures would write a different column
    cfg = replace(RetrievalConfig(), baselines=(), popularity_prior=2.0)
    assert cfg.popularity_prior_signal == "engagement"
    stage.run(cfg, tiny_layout, popularity_fit)
    ie = np.load(tiny_layout.item_embeddings)
    inputs = load_inputs(tiny_layout.preprocess)
    rows = inputs["train"].concat(inputs["val"])
    raw = popularity_fit("lightgcn_ips", cfg, tiny_layout, None)
    s = score_std(raw["user"], raw["item"])
    z = engagement(rows, cfg.popularity_prior_shrinkage)
    np.testing.assert_allclose(ie[:, -1], 2.0 * s * z, rtol=1e-5, atol=1e-6)
    assert not np.allclose(z, engagement(rows.relevant(">=", cfg.positive_threshold), cfg.popularity_prior_shrinkage))
