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
