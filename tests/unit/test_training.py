"""Early stopping and trainer config validation."""

from __future__ import annotations

import pytest

from graphrec_ray.training import EarlyStopping, TrainerConfig, global_batch, step_budget, worker_slice


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


def test_steps_per_epoch_caps_the_budget_so_it_stops_growing_with_the_data() -> None:
    """Issue 14: with a fixed batch the budget grew with the positives (22,400 steps of a full-graph propagation at
    full KuaiRec scale, ~6.5 h on 2 cores); with ``steps_per_epoch`` the batch grows instead and the budget stays
    at ``epochs * steps_per_epoch`` from the size where the batch starts to grow."""
    old = [step_budget(n, 2048, 60, 50).total_steps for n in (50_000, 200_000, 760_000)]
    assert old == [1465, 5859, 22266]  # the fixed batch: steps ~ positives
    new = [step_budget(n, 2048, 60, 50, steps_per_epoch=25) for n in (50_000, 200_000, 760_000)]
    assert [b.total_steps for b in new] == [1465, 1500, 1500]  # 50k < 2048 * 25: below the cap nothing changes
    assert [b.global_batch for b in new] == [2048, 8000, 30400]
    assert [b.steps_per_epoch for b in new] == [24, 25, 25]
    assert global_batch(1_000_001, 2048, 25) == 40001  # rounded up: never a 26th full step per pass
    assert global_batch(100, 2048, 25) == 100  # clamped to the data
    with pytest.raises(ValueError):
        global_batch(100, 2048, -1)


@pytest.mark.parametrize("steps_per_epoch", [0, 2])
def test_grown_batch_gives_the_same_steps_and_samples_whatever_the_worker_count(steps_per_epoch: int) -> None:
    """Issue 14: with the batch that grows with the data (``steps_per_epoch=2``: 320 positives -> global batch 160,
    not ``batch_size`` 48) 1, 2 and 3 workers build trainers with the budget's global batch and steps per pass, and
    their slices together are the 1-worker batch at every step. Fails if the batch were resolved per worker (e.g.
    from a worker's share of the data) or if the trainer ignored the budget's batch."""
    from graphrec_ray.retrieval.build import build_trainer
    from graphrec_ray.retrieval.config import RetrievalConfig
    from graphrec_ray.retrieval.fit import budget_for
    from tests.unit.retrieval.planted import planted_communities

    data = planted_communities(users_per=10)  # 320 positives
    cfg = RetrievalConfig(dim=4, batch_size=48, epochs=3, min_steps=0, steps_per_epoch=steps_per_epoch)
    budget = budget_for(cfg, len(data.train))
    assert (budget.global_batch, budget.steps_per_epoch) == ((160, 2) if steps_per_epoch else (48, 6))
    seen: dict[int, list[set[tuple[int, int]]]] = {}
    for world in (1, 2, 3):
        trainers = [build_trainer("mf", cfg, data.train, None, rank=r, world_size=world) for r in range(world)]
        assert {(t.global_batch, t.steps_per_epoch) for t in trainers} == {(budget.global_batch,
                                                                           budget.steps_per_epoch)}
        steps = []
        for _ in range(budget.total_steps):
            rows: set[tuple[int, int]] = set()
            for t in trainers:
                u, i = t._batch()
                rows |= set(zip(u.tolist(), i.tolist()))
                t.step += 1
            steps.append(rows)
        seen[world] = steps
    assert seen[1] == seen[2] == seen[3]
    assert len(seen[1]) == budget.total_steps == (6 if steps_per_epoch else 20)


def test_worker_slice_rejects_a_batch_smaller_than_the_workers() -> None:
    assert worker_slice(10, 2, 3) == slice(6, 10)
    with pytest.raises(ValueError):
        worker_slice(2, 0, 3)
