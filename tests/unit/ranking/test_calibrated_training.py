"""End to end on simulator-like data with KNOWN click probabilities: the MMoE is trained through the real
feature builder and training step on negative-downsampled data (``downsample_negatives`` at rate 0.3, as the
job does for ``neg_sample_rate=0.3``), so its raw probabilities are too high; then Platt and isotonic fitted on
(unsampled) validation and the analytic down-sampling correction must each bring held-out ECE below 0.02 and
below the raw ECE."""

from __future__ import annotations

import numpy as np
import torch

from graphrec_ray.calibration.factory import fit_calibrator
from graphrec_ray.calibration.metrics import ece
from graphrec_ray.calibration.platt import sigmoid
from graphrec_ray.ranking.config import RankingConfig
from graphrec_ray.ranking.data import Events, downsample_negatives
from graphrec_ray.ranking.features import DAILY_WIDTH, FeatureBuilder, FeatureSpec
from graphrec_ray.ranking.train import build_models, fit_input_norms, predict, train_epoch, validation_scores

N_USERS, N_ITEMS, DIM = 200, 300, 4


def _world(seed: int = 0) -> tuple[FeatureBuilder, np.ndarray]:
    rng = np.random.default_rng(seed)
    spec = FeatureSpec(emb_dim=DIM, category_vocab=(0,), active_degree_vocab=("x",), user_code_max=(1.0,) * 18,
                       first_day=0, n_days=1)
    ue = rng.normal(size=(N_USERS, DIM)).astype(np.float32)
    ie = rng.normal(size=(N_ITEMS, DIM)).astype(np.float32)
    item_table = np.concatenate([ie, np.zeros((N_ITEMS, 2), np.float32)], axis=1)
    builder = FeatureBuilder(spec, ue, np.zeros((N_USERS, 27), np.float32), item_table,
                             np.zeros((N_ITEMS, 2, DAILY_WIDTH), np.float32))
    true_logit = 0.8 * (ue @ ie.T) / np.sqrt(DIM) + 0.3  # (U, I) planted truth
    return builder, true_logit


def _events(true_logit: np.ndarray, n: int, seed: int) -> tuple[Events, np.ndarray]:
    rng = np.random.default_rng(seed)
    u = rng.integers(0, N_USERS, n)
    i = rng.integers(0, N_ITEMS, n)
    p = sigmoid(true_logit[u, i])
    y = (rng.random(n) < p).astype(np.float32)
    m = len(u)
    ev = Events(user_idx=u.astype(np.int32), item_idx=i.astype(np.int32), user_id=u.astype(np.int64),
                video_id=i.astype(np.int64), timestamp=np.full(m, np.nan), position=np.zeros(m, np.int32),
                since_last=np.full(m, -1.0, np.float32), label_click=y, label_value=y * 0.5)
    return ev, p


def test_platt_calibrates_an_mmoe_trained_on_downsampled_negatives() -> None:
    builder, truth = _world()
    full, _ = _events(truth, 60_000, 1)
    train = downsample_negatives(full, 0.3, seed=0)  # 30% of negatives kept: raw p(click) is inflated
    n_neg = int((full.label_click == 0).sum())
    assert (train.label_click == 1).sum() == (full.label_click == 1).sum()
    assert abs((train.label_click == 0).sum() - 0.3 * n_neg) < 4 * np.sqrt(0.21 * n_neg)
    val, _ = _events(truth, 40_000, 2)
    test, p_true = _events(truth, 60_000, 3)
    cfg = RankingConfig(n_experts=2, expert_hidden=(32, 16), tower_hidden=(8,), batch_size=1024, lr=5e-3,
                        train_baselines=False, id_embedding_dim=0)  # truth is a function of the features
    models = build_models(cfg, builder.dim, *builder.n_ids)
    fit_input_norms(models, builder, train, 10_000, seed=0)
    opts = {n: torch.optim.Adam(m.parameters(), lr=cfg.lr) for n, m in models.items()}
    first = None
    for epoch in range(4):
        train_epoch(models, opts, builder, train, cfg, epoch)
        score = validation_scores(predict(models, builder, val), val, cfg)
        first = first or score
    assert score["val_auc/mmoe"] > first["val_auc/mmoe"] - 0.005 and score["val_auc/mmoe"] > 0.68
    val_logit = predict(models, builder, val)["mmoe_logit"]
    logit = predict(models, builder, test)["mmoe_logit"]
    raw = sigmoid(logit)
    assert ece(raw, p_true) > 0.1  # the distortion was real
    for method in ("platt", "isotonic", "downsampling"):
        calibrated = fit_calibrator(method, val_logit, val.label_click, neg_sample_rate=0.3).predict(logit)
        for targets in (test.label_click, p_true):  # vs observed labels and vs the TRUE probabilities
            e_raw, e_cal = ece(raw, targets), ece(calibrated, targets)
            assert e_cal < 0.02 and e_cal < e_raw, (method, e_raw, e_cal)
        assert np.mean(np.abs(calibrated - p_true)) < 0.05, method
