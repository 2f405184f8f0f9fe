"""Off-policy evaluation checked against the truth: logs from a stochastic logger, several target policies,
every estimator of :mod:`graphrec_ray.evaluation.ope`, and the exact true value of each target.

The problem (a :class:`Bandit`): ``U`` evaluation users, each with the first ``K`` candidates of the serving
request path (:class:`graphrec_ray.evaluation.decision_data.DecisionData`, best first), the ranker's calibrated
``p_click`` and ``e_value`` and the truth. The reward (``reward``) is

* ``"click"``: a click, drawn with the true click probability; reward model = the calibrated ``p_click``;
* ``"value"``: a watch-value unit ``scale * Bernoulli(true_value / scale)`` (``scale`` = the largest true value,
  so its mean is the true expected value ``E[log1p(watch_ratio)]``); reward model = ``e_value / scale``. On the
  demo simulator ~90 % of candidates are clicked (watch ratio >= 0.5), so click values of all policies lie within
  a few percent of each other (and of 1 for lists under the cascade); the value reward separates them.

Policies rank those ``K`` candidates:

* logger: Plackett–Luce over ``logit(p_click)`` at ``logger_temperature`` mixed with ``logger_epsilon`` uniform;
* targets: ``greedy_click`` (top by ``p_click``), ``pl_t<T>`` (Plackett–Luce at each ``target_temperatures``),
  ``greedy_value`` (top by ``e_value``), ``serving`` (the serving reranker: scalarisation + MMR with the
  serving weights, :mod:`graphrec_ray.rerank`), ``uniform`` (random lists).

Two settings: ``single`` (one item per round, reward = click; estimators IPS, SNIPS, DM, DR, Switch-DR) and
``slate`` (``slate_length`` items per round, clicks by ``click_model``; standard/independent/reward-interaction
IPS and Cascade-DR). For every log size and seed a fresh log is drawn; :func:`summarise` turns the per-estimate
rows into the headline table: relative error ``|est - true| / true`` (mean over seeds and targets, with a
bootstrap interval over seeds), relative bias^2 and variance, interval coverage, and Kendall's tau between the
estimated and the true ranking of the targets.

Example::

    >>> bandit = Bandit.synthetic(n_users=30, n_candidates=8, seed=0)
    >>> cfg = OPEConfig(n_candidates=8, slate_length=3, log_sizes=(500,), n_seeds=2)
    >>> rows = run_experiment(bandit, cfg)
    >>> sorted({r["estimator"] for r in rows})[:3]
    ['cascade_dr', 'dm', 'dr']
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Literal

import numpy as np

from graphrec_ray.evaluation.logging_policy import ClickModel, SlatePolicy, collect_log, per_user_true_value
from graphrec_ray.evaluation.ope import DEFAULT_SWITCH_TAU, estimate_single, estimate_slate
from graphrec_ray.evaluation.stats import bootstrap_mean
from graphrec_ray.rerank.mmr import mmr_select
from graphrec_ray.rerank.scalarize import DEFAULT_VALUE_SCALE, scalarize

__all__ = ["OPEConfig", "Bandit", "make_policies", "run_experiment", "summarise", "summarise_by_policy",
           "true_values", "kendall_tau", "to_markdown", "DR_FAMILY"]

DR_FAMILY = ("dr", "switch_dr", "cascade_dr")


@dataclass(frozen=True)
class OPEConfig:
    """Settings of ``graphrec ope`` and ``benchmarks/ope_accuracy.py`` (``configs/ope.yaml``)."""

    n_candidates: int = 20  # action space: each user's first 20 candidates (best first); keeps slate weights finite
    slate_length: int = 5  # slots per logged list: the part of a feed a user sees on the first screen
    click_model: Literal["pbm", "cascade"] = "cascade"  # cascade: slot rewards interact (IIPS is then biased)
    reward: Literal["click", "value"] = "click"  # what a slot pays: a click, or a unit of true watch value
    logger_temperature: float = 1.0  # Plackett–Luce over logit(p_click): item odds decide, as a softmax ranker
    logger_epsilon: float = 0.1  # uniform exploration share: every slate has propensity >= 0.1 / (20*19*..*16)
    target_temperatures: tuple[float, ...] = (0.5, 2.0)  # Plackett–Luce targets sharper / flatter than the logger
    w_engagement: float = 1.0  # serving target's weight of p_click (graphrec_ray/serving/config.py default)
    w_value: float = 1.0  # serving target's weight of normalised e_value (serving default)
    lambda_diversity: float = 0.8  # serving target's MMR trade-off (serving default)
    value_scale: float = DEFAULT_VALUE_SCALE  # e_value mapped to 1.0 (serving default, log1p(5))
    settings: tuple[str, ...] = ("single", "slate")  # which bandit settings to run
    log_sizes: tuple[int, ...] = (10_000, 100_000)  # logged rounds per log (a round = one impression / one list)
    n_seeds: int = 20  # independent logs per size: bias^2, variance and coverage need repeated draws
    switch_tau: float = DEFAULT_SWITCH_TAU  # Switch-DR keeps corrections with importance weight <= tau
    level: float = 0.95  # coverage of every interval
    interval: Literal["normal", "bootstrap"] = "normal"  # normal approximation over i.i.d. rounds (fast)
    n_users: int | None = None  # evaluation users (None = all small_matrix users of the run)
    seed: int = 0  # base seed: log s uses seed + s

    def __post_init__(self) -> None:
        if self.n_candidates < 2 or not 1 <= self.slate_length <= self.n_candidates:
            raise ValueError("need n_candidates >= 2 and 1 <= slate_length <= n_candidates")
        if self.logger_temperature <= 0 or not 0.0 < self.logger_epsilon <= 1.0:
            raise ValueError("the logger must be stochastic with full support: temperature > 0, 0 < epsilon <= 1")
        if any(t <= 0 for t in self.target_temperatures):
            raise ValueError("target_temperatures must be > 0 (greedy_click is the temperature-0 target)")
        if not self.log_sizes or min(self.log_sizes) < 2 or self.n_seeds < 2:
            raise ValueError("need log_sizes >= 2 rounds and n_seeds >= 2")
        if not set(self.settings) <= {"single", "slate"} or not self.settings:
            raise ValueError(f"settings must be a non-empty subset of ['single', 'slate'], got {self.settings}")
        if not 0.0 <= self.lambda_diversity <= 1.0 or not 0.0 < self.level < 1.0:
            raise ValueError("need 0 <= lambda_diversity <= 1 and 0 < level < 1")


@dataclass(frozen=True)
class Bandit:
    """The OPE problem as plain arrays (``U`` users, ``K`` candidates each, best first).

    Attributes:
        p_click: ``(U, K)`` calibrated click probability (the logger's and most targets' scores).
        e_value: ``(U, K)`` predicted value (the serving target's second objective).
        true_reward: ``(U, K)`` true probability of a unit reward (rewards are drawn from it).
        unit_emb: ``(U, K, d)`` unit item embeddings of the candidates (the serving target's MMR).
        q_reward: ``(U, K)`` reward model in [0, 1] for DM / DR (default ``None``: ``p_click``).
        reward_scale: a unit reward is worth this much (values are reported in these units; default 1).
    """

    p_click: np.ndarray
    e_value: np.ndarray
    true_reward: np.ndarray
    unit_emb: np.ndarray
    q_reward: np.ndarray | None = None
    reward_scale: float = 1.0

    def __post_init__(self) -> None:
        shape = np.shape(self.p_click)
        if len(shape) != 2 or np.shape(self.e_value) != shape or np.shape(self.true_reward) != shape:
            raise ValueError("p_click, e_value and true_reward must share one (U, K) shape")
        if np.shape(self.unit_emb)[:2] != shape:
            raise ValueError(f"unit_emb must be (U, K, d) with (U, K) = {shape}")
        if self.q_reward is not None and np.shape(self.q_reward) != shape:
            raise ValueError(f"q_reward must be {shape}")

    @property
    def reward_model(self) -> np.ndarray:
        """``(U, K)`` the DM / DR reward model (``q_reward``, else ``p_click``)."""
        return self.p_click if self.q_reward is None else self.q_reward

    @classmethod
    def from_decision_data(cls, dd: Any, n_candidates: int, reward: str = "click") -> "Bandit":
        """The first ``n_candidates`` candidates of each user of a ``DecisionData``, paying ``reward``."""
        k = min(int(n_candidates), dd.n_candidates)
        items = np.asarray(dd.item_idx)[:, :k]
        p = np.asarray(dd.p_click, dtype=np.float64)[:, :k]
        v = np.asarray(dd.e_value, dtype=np.float64)[:, :k]
        emb = np.asarray(dd.item_unit)[items]
        if reward == "click":
            return cls(p, v, np.asarray(dd.true_click, dtype=np.float64)[:, :k], emb)
        if reward != "value":
            raise ValueError(f"reward must be 'click' or 'value', got {reward!r}")
        true_v = np.asarray(dd.true_value, dtype=np.float64)[:, :k]
        scale = float(true_v.max())
        if scale <= 0:
            raise ValueError("true_value is never positive: nothing to estimate")
        return cls(p, v, np.clip(true_v / scale, 0.0, 1.0), emb, np.clip(v / scale, 0.0, 1.0), scale)

    @classmethod
    def synthetic(cls, n_users: int, n_candidates: int, seed: int, dim: int = 8, model_noise: float = 0.5) -> "Bandit":
        """A seeded bandit: true click ~ U(0.02, 0.6), a reward model off by ``model_noise`` in logit space."""
        rng = np.random.default_rng(seed)
        truth = rng.uniform(0.02, 0.6, size=(n_users, n_candidates))
        logit = np.log(truth / (1 - truth)) + rng.normal(0, model_noise, size=truth.shape)
        emb = rng.normal(size=(n_users, n_candidates, dim))
        emb /= np.linalg.norm(emb, axis=2, keepdims=True)
        return cls(1 / (1 + np.exp(-logit)), rng.uniform(0, 1.5, size=truth.shape), truth, emb.astype(np.float32))

    @property
    def n_users(self) -> int:
        return int(self.p_click.shape[0])


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-4, 1 - 1e-4)
    return np.log(p / (1 - p))


def make_policies(bandit: Bandit, cfg: OPEConfig) -> tuple[SlatePolicy, dict[str, SlatePolicy]]:
    """The logger and the named target policies (see the module docstring)."""
    scores = _logit(bandit.p_click)
    logger = SlatePolicy(scores, cfg.logger_temperature, cfg.logger_epsilon, name="logger")
    final = scalarize(bandit.p_click, bandit.e_value, cfg.w_engagement, cfg.w_value, cfg.value_scale)
    serving = np.stack([mmr_select(final[u], bandit.unit_emb[u], cfg.slate_length, cfg.lambda_diversity)
                        for u in range(bandit.n_users)])
    targets = {"greedy_click": SlatePolicy(scores, 0.0, name="greedy_click")}
    for t in cfg.target_temperatures:
        targets[f"pl_t{t:g}"] = SlatePolicy(scores, t, name=f"pl_t{t:g}")
    targets["greedy_value"] = SlatePolicy(bandit.e_value, 0.0, name="greedy_value")
    targets["serving"] = SlatePolicy(scores, fixed=serving, name="serving")
    targets["uniform"] = SlatePolicy(scores, 1.0, epsilon=1.0, name="uniform")
    return logger, targets


def run_experiment(bandit: Bandit, cfg: OPEConfig,
                   progress: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    """Every estimator for every target, log size and seed, beside the exact true value.

    Returns:
        rows ``{setting, n_rounds, seed, policy, estimator, estimate, ci_low, ci_high, true_value}``.
    """
    logger, targets = make_policies(bandit, cfg)
    rows: list[dict[str, Any]] = []
    for setting in cfg.settings:
        length = 1 if setting == "single" else cfg.slate_length
        clicks: ClickModel = "pbm" if setting == "single" else cfg.click_model  # one slot: both click with p
        truth = {name: bandit.reward_scale * float(per_user_true_value(pol, bandit.true_reward, length, clicks).mean())
                 for name, pol in targets.items()}
        for n_rounds in cfg.log_sizes:
            for s in range(cfg.n_seeds):
                log = collect_log(logger, bandit.true_reward, n_rounds, length, clicks, seed=cfg.seed + s)
                for name, target in targets.items():
                    if setting == "single":
                        est = estimate_single(log, target, bandit.reward_model, cfg.switch_tau, cfg.level,
                                              cfg.interval, seed=s)
                    else:
                        est = estimate_slate(log, target, bandit.reward_model, cfg.level, cfg.interval, seed=s)
                    sc = bandit.reward_scale
                    for estimator, iv in est.items():
                        rows.append({"setting": setting, "n_rounds": int(n_rounds), "seed": s, "policy": name,
                                     "estimator": estimator, "estimate": iv.estimate * sc, "ci_low": iv.low * sc,
                                     "ci_high": iv.high * sc, "true_value": truth[name]})
                if progress is not None:
                    progress(f"{setting} n={n_rounds} seed={s}")
    return rows


def kendall_tau(a: np.ndarray, b: np.ndarray) -> float:
    """Kendall's tau-a between two ``(P,)`` score vectors (ties count 0); 1 = same order, -1 = reversed."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    i, j = np.triu_indices(a.size, k=1)
    if i.size == 0:
        return float("nan")
    return float(np.mean(np.sign(a[i] - a[j]) * np.sign(b[i] - b[j])))


def summarise(rows: list[dict[str, Any]], level: float = 0.95) -> list[dict[str, Any]]:
    """Headline table: one row per (setting, estimator, n_rounds).

    Columns: ``rel_error`` (mean over seeds and targets of ``|est - true| / true``) with ``rel_error_low/high``
    (bootstrap over seeds), ``rel_error_max_policy`` (the worst target's mean), ``rel_bias2`` and ``rel_var``
    (per target over seeds, divided by ``true^2``, averaged over targets), ``coverage`` (share of intervals
    holding the truth), ``kendall_tau`` (mean over seeds of the rank correlation between estimated and true
    values of the targets), ``n_seeds``, ``n_policies``.
    """
    keys = sorted({(r["setting"], r["estimator"], r["n_rounds"]) for r in rows},
                  key=lambda k: (k[0], k[2], k[1]))
    out = []
    for setting, estimator, n_rounds in keys:
        sel = [r for r in rows if (r["setting"], r["estimator"], r["n_rounds"]) == (setting, estimator, n_rounds)]
        policies = sorted({r["policy"] for r in sel})
        seeds = sorted({r["seed"] for r in sel})
        est = np.array([[next(r["estimate"] for r in sel if r["policy"] == p and r["seed"] == s) for p in policies]
                        for s in seeds])  # (S, P)
        lo = np.array([[next(r["ci_low"] for r in sel if r["policy"] == p and r["seed"] == s) for p in policies]
                       for s in seeds])
        hi = np.array([[next(r["ci_high"] for r in sel if r["policy"] == p and r["seed"] == s) for p in policies]
                       for s in seeds])
        true = np.array([next(r["true_value"] for r in sel if r["policy"] == p) for p in policies])  # (P,)
        rel = np.abs(est - true) / true
        per_seed = rel.mean(axis=1)
        iv = bootstrap_mean(per_seed, level=level, seed=0)
        out.append({"setting": setting, "estimator": estimator, "n_rounds": n_rounds,
                    "rel_error": iv.estimate, "rel_error_low": iv.low, "rel_error_high": iv.high,
                    "rel_error_max_policy": float(rel.mean(axis=0).max()),
                    "rel_bias2": float(np.mean(((est.mean(axis=0) - true) / true) ** 2)),
                    "rel_var": float(np.mean(est.var(axis=0, ddof=1) / true ** 2)),
                    "coverage": float(np.mean((lo <= true) & (true <= hi))),
                    "kendall_tau": float(np.mean([kendall_tau(e, true) for e in est])),
                    "n_seeds": len(seeds), "n_policies": len(policies)})
    return out


def summarise_by_policy(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (setting, estimator, n_rounds, policy): true value, mean estimate, relative error, coverage."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["setting"], r["estimator"], r["n_rounds"], r["policy"]), []).append(r)
    out = []
    for (setting, estimator, n_rounds, policy), sel in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][2],
                                                                                             kv[0][1], kv[0][3])):
        est = np.array([r["estimate"] for r in sel])
        true = sel[0]["true_value"]
        out.append({"setting": setting, "estimator": estimator, "n_rounds": n_rounds, "policy": policy,
                    "true_value": true, "mean_estimate": float(est.mean()),
                    "rel_error": float(np.mean(np.abs(est - true)) / true),
                    "coverage": float(np.mean([r["ci_low"] <= true <= r["ci_high"] for r in sel]))})
    return out


def true_values(rows: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """``{setting: {policy: true value}}`` from experiment rows."""
    out: dict[str, dict[str, float]] = {}
    for r in rows:
        out.setdefault(r["setting"], {})[r["policy"]] = r["true_value"]
    return out


def to_markdown(summary: list[dict[str, Any]]) -> str:
    """The headline table as GitHub markdown (one row per setting, estimator and log size)."""
    head = ("| setting | estimator | rounds | rel. error [95% CI] | worst target | rel. bias² | rel. var | "
            "coverage | Kendall τ |")
    lines = [head, "|" + "---|" * 9]
    for r in summary:
        lines.append(f"| {r['setting']} | {r['estimator']} | {r['n_rounds']:,} | {r['rel_error']:.3f} "
                     f"[{r['rel_error_low']:.3f}, {r['rel_error_high']:.3f}] | {r['rel_error_max_policy']:.3f} | "
                     f"{r['rel_bias2']:.2e} | {r['rel_var']:.2e} | {r['coverage']:.2f} | {r['kendall_tau']:.2f} |")
    return "\n".join(lines) + "\n"
