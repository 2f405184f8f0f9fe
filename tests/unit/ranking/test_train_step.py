"""Training step details: batch sharding for DDP and the order in which models are stepped."""

from __future__ import annotations

import numpy as np
import torch

from graphrec_ray.ranking.config import RankingConfig
from graphrec_ray.ranking.train import build_models, iterate_batches, train_epoch
from tests.unit.ranking.test_calibrated_training import _events, _world


def test_ranks_get_disjoint_equal_shards() -> None:
    shards = [np.concatenate(list(iterate_batches(103, 10, seed=5, rank=r, world_size=2))) for r in (0, 1)]
    assert len(shards[0]) == len(shards[1]) == 51  # one row dropped so both ranks run the same batches
    assert not set(shards[0]) & set(shards[1])
    assert [len(b) for b in iterate_batches(103, 10, 5, 0, 2)] == [10, 10, 10, 10, 10, 1]



def test_epoch_max_rows_samples_fresh_rows_each_epoch() -> None:
    """Issue 14: with epoch_max_rows an epoch passes over a seeded sample of that many distinct rows, split in
    equal disjoint shards, and the next epoch (next seed) draws other rows, so the budget covers the log before
    repeating; 0 or a cap above the rows means every row, as before."""
    def epoch(seed: int, rank: int, cap: int) -> np.ndarray:
        return np.concatenate(list(iterate_batches(1000, 64, seed, rank, 2, max_rows=cap)))

    e0 = [epoch(7, r, 300) for r in (0, 1)]
    assert len(e0[0]) == len(e0[1]) == 150 and not set(e0[0]) & set(e0[1])
    e1 = np.concatenate([epoch(8, r, 300) for r in (0, 1)])
    overlap = len(set(np.concatenate(e0)) & set(e1))
    assert overlap < 150  # independent 30% samples share ~90 rows; the same sample would share 300
    for cap in (0, 5000):
        assert sorted(np.concatenate([epoch(7, r, cap) for r in (0, 1)])) == list(range(1000))


def test_models_step_in_dict_order_not_set_order() -> None:
    """Regression: train_epoch iterated the `active` *set*; its order differs between processes (string hash
    randomisation), so two DDP workers stepped models in different orders, mismatched their gloo all-reduces
    and aborted (SIGABRT in gloo::transport::tcp::Pair::prepareRead)."""
    builder, truth = _world()
    events, _ = _events(truth, 600, 0)
    cfg = RankingConfig(expert_hidden=(8,), tower_hidden=(4,), batch_size=600)
    models = build_models(cfg, builder.dim)
    names = list(models)
    active = set(names)
    # choose a dict order that differs from this process's set order, so a set-ordered loop would be caught
    if list(active) == names:
        models = dict(reversed(list(models.items())))
    calls: list[str] = []
    for n, m in models.items():
        m.register_forward_hook(lambda *_, n=n: calls.append(n))
    opts = {n: torch.optim.SGD(m.parameters(), lr=0.0) for n, m in models.items()}
    train_epoch(models, opts, builder, events, cfg, epoch=0, active=active)
    assert calls == list(models) and calls != list(active)
