"""Closed-form truth of the simulator model, against Monte Carlo and numerical integration."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from graphrec_ray.errors import DataError
from graphrec_ray.sources.simulator.ground_truth import (GroundTruth, expected_log1p_watch_ratio, expected_watch_ratio,
                                                         p_watch_at_least)

MU = np.array([-1.5, -0.4, 0.0, 0.7, 1.6])
SIGMA, P_SKIP = 0.6, 0.05


def _draws(n: int = 400_000, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    wr = np.exp(MU[:, None] + SIGMA * rng.normal(size=(len(MU), n)))
    wr[rng.random(wr.shape) < P_SKIP] = 0.0
    return wr


def test_closed_forms_match_monte_carlo() -> None:
    wr = _draws()
    n = wr.shape[1]
    for thr in (0.5, 2.0):
        p = p_watch_at_least(MU, SIGMA, P_SKIP, thr)
        emp = (wr >= thr).mean(axis=1)
        assert np.all(np.abs(emp - p) < 5 * np.sqrt(p * (1 - p) / n) + 1e-9)
    v = np.log1p(wr)
    ev = expected_log1p_watch_ratio(MU, SIGMA, P_SKIP)
    assert np.all(np.abs(v.mean(axis=1) - ev) < 5 * v.std(axis=1) / np.sqrt(n))
    ew = expected_watch_ratio(MU, SIGMA, P_SKIP)
    assert np.all(np.abs(wr.mean(axis=1) - ew) < 5 * wr.std(axis=1) / np.sqrt(n))


def test_log1p_quadrature_is_exact_to_numerical_integration() -> None:
    z = np.linspace(-12, 12, 400_001)
    dens = np.exp(-0.5 * z * z) / np.sqrt(2 * np.pi)
    for mu in MU:
        ref = (1 - P_SKIP) * np.trapezoid(np.log1p(np.exp(mu + SIGMA * z)) * dens, z)
        assert expected_log1p_watch_ratio(np.array([mu]), SIGMA, P_SKIP)[0] == pytest.approx(ref, abs=1e-9)


def _toy(tmp_path: Path) -> GroundTruth:
    rng = np.random.default_rng(3)
    U, I, d = 7, 9, 4
    gt = GroundTruth(
        user_ids=np.array([2, 5, 8, 11, 14, 17, 20]), video_ids=np.arange(100, 100 + I),
        user_factors=rng.normal(size=(U, d)), item_factors=rng.normal(size=(I, d)),
        user_bias=rng.normal(size=U) * 0.1, item_bias=rng.normal(size=I) * 0.1,
        activity=np.exp(rng.normal(size=U) * 0.3), exposure_weight=np.exp(rng.normal(size=I)),
        item_propensity=np.zeros(I), small_user_ids=np.array([5, 8]), small_video_ids=np.array([101, 103]),
        item_categories=np.eye(I, 3), user_preferences=np.full((U, 3), 1 / 3),
        params={"mu0": -0.3, "scale": 0.5, "sigma": 0.5, "p_skip": 0.01, "density": 0.3, "click_threshold": 0.5},
    )
    pi = gt.exposure_prob(gt.user_ids, gt.video_ids)
    gt = GroundTruth(**{**gt.__dict__, "item_propensity": pi.mean(axis=0)})
    gt.save(tmp_path)
    return GroundTruth.load(tmp_path)


def test_load_save_round_trip_shapes_and_raw_ids(tmp_path: Path) -> None:
    gt = _toy(tmp_path)
    users, items = np.array([20, 2, 5]), np.array([108, 100])
    p = gt.p_click(users, items)
    assert p.shape == (3, 2) and p.dtype == np.float64 and np.all((p > 0) & (p < 1))
    # raw id lookup: row for user 20 equals the last row of the full matrix
    full = gt.p_click(gt.user_ids, gt.video_ids)
    assert np.allclose(p[0], full[-1, [8, 0]])
    assert np.allclose(gt.p_watch_at_least(users, items, 0.5), p)
    assert np.all(gt.p_watch_at_least(users, items, 2.0) < p)
    assert np.all(gt.e_value(users, items) < np.log1p(gt.e_watch_ratio(users, items)))  # Jensen


def test_blocks_give_the_same_answer(tmp_path: Path) -> None:
    gt = _toy(tmp_path)
    whole = gt._blocked(gt.user_ids, gt.video_ids, lambda mu: mu, block=1024)
    pieces = gt._blocked(gt.user_ids, gt.video_ids, lambda mu: mu, block=2)
    assert np.allclose(whole, pieces, rtol=1e-12, atol=1e-12)


def test_exposure_is_zero_on_the_small_block_and_propensity_is_its_mean(tmp_path: Path) -> None:
    gt = _toy(tmp_path)
    pi = gt.exposure_prob(gt.user_ids, gt.video_ids)
    assert np.all(pi[np.ix_([1, 2], [1, 3])] == 0.0)
    assert np.all(pi[0] > 0)
    assert np.allclose(gt.exposure_propensity(gt.video_ids), pi.mean(axis=0))


def test_unknown_ids_and_missing_truth(tmp_path: Path) -> None:
    gt = _toy(tmp_path)
    with pytest.raises(KeyError, match="user_id"):
        gt.p_click(np.array([3]), np.array([100]))
    with pytest.raises(KeyError, match="video_id"):
        gt.exposure_propensity(np.array([99]))
    with pytest.raises(DataError, match="graphrec simulate"):
        GroundTruth.load(tmp_path / "real_kuairec")
