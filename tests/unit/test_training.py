"""Early stopping and trainer config validation."""

from __future__ import annotations

import pytest

from graphrec_ray.training import EarlyStopping, TrainerConfig


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
