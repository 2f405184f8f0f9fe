"""Early stopping and trainer config validation."""

from __future__ import annotations

import pytest

from graphrec_ray.training import EarlyStopping, TrainerConfig, step_budget, worker_slice


def test_early_stopping_patience_and_state_round_trip() -> None:
    es = EarlyStopping(patience=2, min_delta=0.01)
    flags = [es.update(v) for v in (0.10, 0.20, 0.205, 0.19)]
    assert flags == [True, True, False, False]  # 0.205 is within min_delta of 0.20
    assert es.should_stop and es.best == 0.20 and es.best_epoch == 1
    clone = EarlyStopping(patience=2, min_delta=0.01)
    clone.load_state_dict(es.state_dict())
    assert clone.state_dict() == es.state_dict()


def test_patience_zero_never_stops() -> None:
    es = EarlyStopping(patience=0)
    for v in (1.0, 0.5, 0.4, 0.3):
        es.update(v)
    assert not es.should_stop


def test_trainer_config_rejects_bad_values() -> None:
    with pytest.raises(ValueError):
        TrainerConfig(num_workers=-1)
    with pytest.raises(ValueError):
        TrainerConfig(checkpoint_every=0)


def test_step_budget_scales_with_data_and_respects_min_and_max() -> None:
    b = step_budget(10_000, 1000, epochs=5, min_steps=20)
    assert (b.global_batch, b.steps_per_epoch, b.total_steps) == (1000, 10, 50)
    assert step_budget(20_000, 1000, epochs=5, min_steps=20).total_steps == 100  # twice the data, twice the steps
    assert step_budget(1_000, 1000, epochs=5, min_steps=20).total_steps == 20  # tiny data: min_steps floor
    assert step_budget(10_000, 1000, epochs=5, min_steps=20, max_steps=30).total_steps == 30
    assert step_budget(100, 1000, epochs=3).global_batch == 100  # batch clamped to the data
    pts = step_budget(10_000, 1000, epochs=5, max_evals=4).eval_points()
    assert pts[-1] == 50 and len(pts) <= 5 and pts == sorted(set(pts))


def test_worker_count_gives_the_same_optimiser_steps_over_the_same_samples() -> None:
    """Issue 14: the step budget counts optimiser steps of a fixed global batch, so 1, 2 or 3 workers take the same
    number of steps for the same data, and at every step the workers' slices together are the 1-worker batch."""
    from graphrec_ray.retrieval.build import build_trainer
    from graphrec_ray.retrieval.config import RetrievalConfig
    from tests.unit.retrieval.planted import planted_communities

    data = planted_communities(users_per=10)  # 320 positives
    cfg = RetrievalConfig(dim=4, batch_size=96, epochs=3, min_steps=0)
    budgets = set()
    batches: dict[int, list[set[tuple[int, int]]]] = {}
    for world in (1, 2, 3):
        trainers = [build_trainer("mf", cfg, data.train, None, rank=r, world_size=world) for r in range(world)]
        budgets.add(step_budget(len(data.train), cfg.batch_size, cfg.epochs).total_steps)
        assert {t.steps_per_epoch for t in trainers} == {320 // 96}
        per_step = []
        for _ in range(7):  # crosses two epoch boundaries
            rows: set[tuple[int, int]] = set()
            n = 0
            for t in trainers:
                u, i = t._batch()
                rows |= set(zip(u.tolist(), i.tolist()))
                n += u.size
                t.step += 1
            assert n == 96
            per_step.append(rows)
        batches[world] = per_step
    assert len(budgets) == 1
    assert batches[1] == batches[2] == batches[3]


def test_worker_slice_rejects_a_batch_smaller_than_the_workers() -> None:
    assert worker_slice(10, 2, 3) == slice(6, 10)
    with pytest.raises(ValueError):
        worker_slice(2, 0, 3)
