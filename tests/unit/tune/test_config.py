"""ParetoConfig: the checked-in YAML, the demo's small sweep, rejected values."""

from __future__ import annotations

from pathlib import Path

import pytest

from graphrec_ray.config import load_config
from graphrec_ray.errors import ConfigError
from tune.config import ParetoConfig

ROOT = Path(__file__).resolve().parents[3]


def test_default_sweep_has_at_least_100_grid_settings() -> None:
    cfg = load_config(ParetoConfig, ROOT / "configs/pareto.yaml")
    assert cfg.grid_size == 132 and cfg.nsga_trials == 60


def test_demo_stage_is_a_small_sweep_and_takes_pipeline_overrides() -> None:
    from jobs.pipeline import DEMO_PARETO, load_stage, split_overrides

    cfg = load_stage("pareto", DEMO_PARETO, ROOT / "configs")
    assert cfg.grid_size + cfg.nsga_trials == 40
    over = split_overrides(["pareto.nsga_trials=4"])["pareto"]
    assert load_stage("pareto", [*DEMO_PARETO, *over], ROOT / "configs").nsga_trials == 4


@pytest.mark.parametrize("bad", ["objectives=[engagement]", "objectives=[engagement,clicks]", "holdout_frac=1.0",
                                 "grid_lambda=[1.5]", "grid_pool=[]", "lambda_range=[0.8,0.2]", "unknown_key=1"])
def test_bad_values_are_config_errors(bad: str) -> None:
    with pytest.raises(ConfigError):
        load_config(ParetoConfig, None, [bad])
