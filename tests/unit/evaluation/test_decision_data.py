"""Decision data on a planted run: serving's candidates and scores, truth from a planted simulator model or the
fully observed small_matrix block, npz round trip and subsets."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from graphrec_ray.errors import DataError
from graphrec_ray.evaluation.decision_data import (TRUTH_SIMULATOR, TRUTH_SMALL_MATRIX, DecisionData,
                                                   build_decision_data, primary_categories)
from graphrec_ray.layout import RunLayout
from graphrec_ray.ranking.context import RequestContext
from graphrec_ray.schema import INTERACTIONS
from graphrec_ray.ranking.embedding_ranker import EmbeddingRanker
from graphrec_ray.serving.config import ServeConfig
from graphrec_ray.sources.simulator.ground_truth import GroundTruth
from tests.unit.serving.planted import ITEM_RAW, RANKER, USER_RAW, Planted, make_run_dir

N_USERS, N_ITEMS = 30, 120
EVAL_USERS = np.array([1, 4, 7, 12, 20, 29])
CFG = ServeConfig(ranker_loader=RANKER)


def _write_eval_small(run_dir: Path, users: np.ndarray, items: np.ndarray, wr: np.ndarray) -> None:
    n = users.size
    pq.write_table(pa.table({
        "user_id": pa.array(USER_RAW(users)), "video_id": pa.array(ITEM_RAW(items)),
        "user_idx": pa.array(users, pa.int32()), "item_idx": pa.array(items, pa.int32()),
        "timestamp": pa.array(1.7e9 + np.arange(n, dtype=np.float64)), "date": pa.array(np.full(n, 20200704, np.int32)),
        "play_duration": pa.array((wr * 10000).astype(np.int64)), "video_duration": pa.array(np.full(n, 10000)),
        "watch_ratio": pa.array(wr), "label_click": pa.array((wr >= 0.5).astype(np.int8)),
        "label_value": pa.array(np.log1p(np.minimum(wr, 5.0)).astype(np.float32)),
    }, schema=INTERACTIONS), str(RunLayout(run_dir).split("eval_small")))


def _write_categories(data_dir: Path, cluster: np.ndarray) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    lines = ["video_id,feat"] + [f'{ITEM_RAW(i)},"[{c}, 99]"' for i, c in enumerate(cluster)]
    (data_dir / "item_categories.csv").write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> Planted:
    p = make_run_dir(tmp_path_factory.mktemp("run"), n_users=N_USERS, n_items=N_ITEMS)
    users = np.repeat(EVAL_USERS, N_ITEMS)
    items = np.tile(np.arange(N_ITEMS), EVAL_USERS.size)
    wr = (items % 5) * 0.3  # planted observed watch ratio: 0, 0.3, 0.6, 0.9, 1.2
    _write_eval_small(p.run_dir, users, items, wr)
    return p


def _sim_data_dir(root: Path, p: Planted) -> tuple[Path, GroundTruth]:
    data_dir = root / "sim"
    _write_categories(data_dir, p.cluster)
    rng = np.random.default_rng(1)
    d = p.user_emb.shape[1]
    gt = GroundTruth(
        user_ids=USER_RAW(np.arange(N_USERS)), video_ids=ITEM_RAW(np.arange(N_ITEMS)),
        user_factors=rng.standard_normal((N_USERS, d)), item_factors=rng.standard_normal((N_ITEMS, d)),
        user_bias=np.zeros(N_USERS), item_bias=rng.normal(0, 0.3, N_ITEMS), activity=np.ones(N_USERS),
        exposure_weight=np.ones(N_ITEMS), item_propensity=np.full(N_ITEMS, 0.1),
        small_user_ids=USER_RAW(EVAL_USERS), small_video_ids=ITEM_RAW(np.arange(N_ITEMS)),
        item_categories=np.eye(6)[p.cluster], user_preferences=np.full((N_USERS, 6), 1 / 6),
        params={"mu0": -0.4, "scale": 0.6, "sigma": 0.45, "p_skip": 0.01, "density": 0.1, "click_threshold": 0.5,
                "exposure_affinity": 0.0, "affinity_std": 1.0})
    gt.save(data_dir)
    return data_dir, gt


def test_simulator_truth_and_serving_candidates(planted: Planted, tmp_path: Path) -> None:
    data_dir, gt = _sim_data_dir(tmp_path, planted)
    dd = build_decision_data(planted.run_dir, data_dir, k_candidates=20, serve_config=CFG)
    assert dd.truth_source == TRUTH_SIMULATOR
    np.testing.assert_array_equal(dd.user_idx, EVAL_USERS)
    assert dd.item_idx.shape == (EVAL_USERS.size, 20)
    ranker = EmbeddingRanker.load(planted.run_dir)
    for row, u in enumerate(EVAL_USERS):
        # the request path's candidates: the exact unseen top-20 by inner product, best first
        np.testing.assert_array_equal(dd.item_idx[row], planted.exact_unseen_top(int(u), 20))
        p, v = ranker.score(int(u), dd.item_idx[row], RequestContext(0.0))
        np.testing.assert_allclose(dd.p_click[row], p, rtol=1e-6)
        np.testing.assert_allclose(dd.e_value[row], v, rtol=1e-6)
        raw_u, raw_i = USER_RAW([u]), ITEM_RAW(dd.item_idx[row])
        np.testing.assert_allclose(dd.true_click[row], gt.p_click(raw_u, raw_i)[0])
        np.testing.assert_allclose(dd.true_value[row], gt.e_value(raw_u, raw_i)[0])
    np.testing.assert_array_equal(dd.item_category, planted.cluster)  # primary = first tag, not 99
    np.testing.assert_allclose(np.linalg.norm(dd.item_unit, axis=1), 1.0, atol=1e-5)


def test_small_matrix_truth_restricts_candidates_to_observed_items(planted: Planted, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(planted.run_dir, run)
    # user 4 observed every item, user 7 only items 0..59 (in the block), others nothing
    users = np.concatenate([np.full(N_ITEMS, 4), np.full(60, 7)])
    items = np.concatenate([np.arange(N_ITEMS), np.arange(60)])
    wr = np.where(items % 2 == 0, 2.0, 0.2)
    _write_eval_small(run, users, items, wr)
    data_dir = tmp_path / "real"
    _write_categories(data_dir, planted.cluster)
    dd = build_decision_data(run, data_dir, k_candidates=10, serve_config=CFG)
    assert dd.truth_source == TRUTH_SMALL_MATRIX
    np.testing.assert_array_equal(dd.user_idx, [4, 7])
    assert (dd.item_idx[1] < 60).all()
    exact7 = [i for i in planted.exact_unseen_top(7, N_ITEMS) if i < 60][:10]
    np.testing.assert_array_equal(dd.item_idx[1], exact7)
    even = dd.item_idx % 2 == 0
    np.testing.assert_array_equal(dd.true_click, even.astype(float))
    np.testing.assert_allclose(dd.true_value, np.where(even, np.log1p(2.0), np.log1p(0.2)))


def test_seeded_user_subset_save_load_and_subset(planted: Planted, tmp_path: Path) -> None:
    data_dir, _ = _sim_data_dir(tmp_path, planted)
    a = build_decision_data(planted.run_dir, data_dir, n_users=3, k_candidates=8, seed=5, serve_config=CFG)
    b = build_decision_data(planted.run_dir, data_dir, n_users=3, k_candidates=8, seed=5, serve_config=CFG)
    assert a.n_users == 3 and set(a.user_idx) <= set(EVAL_USERS)
    np.testing.assert_array_equal(a.item_idx, b.item_idx)
    back = DecisionData.load(a.save(tmp_path / "dd.npz"))
    for name in ("user_idx", "item_idx", "p_click", "true_value", "item_unit", "item_category", "item_raw"):
        np.testing.assert_array_equal(getattr(back, name), getattr(a, name))
    assert back.truth_source == a.truth_source
    sub = a.subset(np.array([2, 0]))
    np.testing.assert_array_equal(sub.user_idx, a.user_idx[[2, 0]])
    np.testing.assert_array_equal(sub.true_click, a.true_click[[2, 0]])


def test_missing_file_and_no_categories_are_data_errors(planted: Planted, tmp_path: Path) -> None:
    with pytest.raises(DataError):
        DecisionData.load(tmp_path / "nope.npz")
    with pytest.raises(DataError):
        primary_categories(tmp_path / "empty", np.arange(3))


def test_shape_mismatch_is_rejected() -> None:
    z = np.zeros((2, 3))
    with pytest.raises(ValueError, match="p_click"):
        DecisionData(np.arange(2), np.arange(2), np.zeros((2, 3), np.int64), np.zeros((2, 2)), z, z, z,
                     np.ones((4, 2), np.float32), np.zeros(4, np.int64), np.arange(4), "simulator")
