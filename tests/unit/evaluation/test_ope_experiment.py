"""The OPE experiment driver: policies, the headline summary on known rows, and a small end-to-end run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from graphrec_ray.errors import ConfigError
from graphrec_ray.config import load_config
from graphrec_ray.evaluation.ope_experiment import (Bandit, OPEConfig, kendall_tau, make_policies, run_experiment,
                                                    summarise, summarise_by_policy, to_markdown)


def test_kendall_tau_known_values() -> None:
    assert kendall_tau(np.array([1, 2, 3]), np.array([10, 20, 30])) == 1.0
    assert kendall_tau(np.array([1, 2, 3]), np.array([3, 2, 1])) == -1.0
    assert kendall_tau(np.array([1, 2, 3]), np.array([1, 3, 2])) == pytest.approx(1 / 3)


def test_summary_of_hand_made_rows() -> None:
    rows = []
    for seed, (ea, eb) in enumerate([(1.1, 1.8), (0.9, 2.2)]):
        for policy, est, true in (("a", ea, 1.0), ("b", eb, 2.0)):
            rows.append({"setting": "single", "n_rounds": 10, "seed": seed, "policy": policy, "estimator": "ips",
                         "estimate": est, "ci_low": est - 0.15, "ci_high": est + 0.15, "true_value": true})
    (row,) = summarise(rows)
    assert row["rel_error"] == pytest.approx(0.1)  # every estimate is 10 % off
    assert row["rel_bias2"] == pytest.approx(0.0)  # symmetric errors: unbiased on average
    assert row["rel_var"] == pytest.approx(0.02)  # var of (1.1, 0.9) = 0.02 (ddof 1); (1.8, 2.2)/2 the same
    assert row["coverage"] == pytest.approx(0.5)  # +-0.15 covers a's 0.1 error, not b's 0.2
    assert row["kendall_tau"] == 1.0
    assert {r["policy"]: r["rel_error"] for r in summarise_by_policy(rows)} == pytest.approx({"a": 0.1, "b": 0.1})
    assert "| single | ips | 10 |" in to_markdown([row])


def test_policies_include_the_serving_reranker_and_a_stochastic_full_support_logger() -> None:
    bandit = Bandit.synthetic(n_users=10, n_candidates=8, seed=0)
    cfg = OPEConfig(n_candidates=8, slate_length=3, lambda_diversity=1.0)
    logger, targets = make_policies(bandit, cfg)
    assert logger.deterministic_slates(3) is None and logger.marginal(3).min() > 0
    # lambda_diversity = 1: the serving list is the top 3 by the scalarised score
    final = bandit.p_click + np.clip(bandit.e_value / cfg.value_scale, 0, 1)
    np.testing.assert_array_equal(targets["serving"].deterministic_slates(3),
                                  np.argsort(-final, axis=1, kind="stable")[:, :3])
    assert set(targets) >= {"greedy_click", "pl_t0.5", "pl_t2", "greedy_value", "serving", "uniform"}


def test_config_rejects_a_deterministic_logger_and_unknown_keys() -> None:
    with pytest.raises(ConfigError, match="stochastic"):
        load_config(OPEConfig, None, ["logger_epsilon=0"])
    with pytest.raises(ConfigError, match="unknown key"):
        load_config(OPEConfig, None, ["n_seed=3"])
    repo = Path(__file__).resolve().parents[3]
    assert load_config(OPEConfig, repo / "configs" / "ope.yaml") == OPEConfig()  # the shipped file = defaults


def test_dr_family_beats_plain_ips_on_a_synthetic_bandit() -> None:
    """With a reasonable reward model, DR's error is below IPS's and its intervals hold the truth."""
    bandit = Bandit.synthetic(n_users=50, n_candidates=8, seed=1, model_noise=0.3)
    cfg = OPEConfig(n_candidates=8, slate_length=3, log_sizes=(3000,), n_seeds=8, settings=("single",))
    summary = {r["estimator"]: r for r in summarise(run_experiment(bandit, cfg))}
    assert summary["dr"]["rel_error"] < summary["ips"]["rel_error"]
    assert summary["dr"]["coverage"] >= 0.8
    assert summary["dm"]["coverage"] < 0.5  # DM's interval ignores its model's bias


def test_value_reward_keeps_the_true_mean_and_reports_in_value_units() -> None:
    """reward=value draws scale * Bernoulli(true_value / scale): its true policy value is the mean true value."""
    from graphrec_ray.evaluation.decision_data import DecisionData

    rng = np.random.default_rng(0)
    u, k, n_items = 12, 8, 30
    items = np.stack([rng.choice(n_items, size=k, replace=False) for _ in range(u)])
    unit = rng.normal(size=(n_items, 3)).astype(np.float32)
    true_value = rng.uniform(0.2, 1.6, size=(u, k))
    dd = DecisionData(user_idx=np.arange(u), user_raw=np.arange(u), item_idx=items,
                      p_click=rng.uniform(0.1, 0.9, size=(u, k)).astype(np.float32),
                      e_value=rng.uniform(0, 1.5, size=(u, k)).astype(np.float32), true_click=np.full((u, k), 0.9),
                      true_value=true_value, item_unit=unit, item_category=np.zeros(n_items, dtype=np.int64),
                      item_raw=np.arange(n_items), truth_source="simulator")
    bandit = Bandit.from_decision_data(dd, k, reward="value")
    assert bandit.reward_scale == pytest.approx(true_value.max())
    cfg = OPEConfig(n_candidates=k, slate_length=2, reward="value", log_sizes=(50,), n_seeds=2, settings=("single",))
    rows = run_experiment(bandit, cfg)
    uniform = next(r for r in rows if r["policy"] == "uniform")
    assert uniform["true_value"] == pytest.approx(true_value.mean())
