"""Off-policy estimators of a target policy's value from a stochastic log (Open Bandit Pipeline's definitions).

Single action (one item per round; ``w_i = pi_e(a_i | x_i) / pi_b(a_i | x_i)``, ``q_hat`` a reward model):

* ``ips``: ``mean(w r)`` (Precup et al. 2000);
* ``snips``: ``sum(w r) / sum(w)`` (Swaminathan & Joachims 2015);
* ``dm``: ``mean(sum_a pi_e(a | x) q_hat(x, a))`` (direct method);
* ``dr``: ``dm + mean(w (r - q_hat(x, a_i)))`` (Dudík et al. 2014);
* ``switch_dr``: DR whose correction is kept only where ``w <= tau`` (Wang et al. 2017; OBP's ``lambda_``).

Slates of length ``L`` (reward = sum of the slot rewards ``r_l``; weights from :mod:`logging_policy`):

* ``sips`` (standard IPS): ``sum_l r_l * pi_e(a_1..a_L) / pi_b(a_1..a_L)`` (whole-slate weight);
* ``iips`` (independent IPS, Li et al. 2018): ``sum_l r_l * pi_e(a_l at l) / pi_b(a_l at l)``; unbiased when
  each slot's reward depends only on its own item;
* ``rips`` (reward-interaction IPS, McInerney et al. 2020): ``sum_l r_l * w_{1:l}``, ``w_{1:l} =
  pi_e(a_1..a_l) / pi_b(a_1..a_l)``; unbiased under the cascade assumption (slot ``l`` depends on ``a_1..a_l``);
* ``cascade_dr`` (Kiyohara et al. 2022): ``sum_l [w_{1:l} (r_l - Q_l(a_1..a_l))
  + w_{1:l-1} sum_a pi_e(a | a_1..a_{l-1}) Q_l(a_1..a_{l-1}, a)]``; unbiased under the same assumption for
  any ``Q`` that depends only on the context and ``a_1..a_l``.

Reward model. DM, DR, Switch-DR and Cascade-DR use the ranker's calibrated ``p_click`` as ``q_hat`` (what a
team has at hand; it is never fitted on the log). :func:`cascade_q_hat` turns it into Cascade-DR's ``Q_l`` =
model reward of slot ``l`` plus a model continuation: for a deterministic target the model value of the
target's own remaining list (exact on the only path with weight), for a stochastic one the remaining slots
valued as if each drew from ``pi_e(. | a_1..a_{l-1})`` (a plug-in: it changes variance, never bias).

Intervals. Every estimator is a mean of per-round terms over i.i.d. rounds, so each returns a
:class:`graphrec_ray.evaluation.stats.Interval`: the normal approximation ``mean +- z sd / sqrt(n)`` (SNIPS:
delta method), or with ``interval="bootstrap"`` the percentile bootstrap over rounds of
:func:`graphrec_ray.evaluation.stats.bootstrap_mean` / :func:`~graphrec_ray.evaluation.stats.bootstrap_ratio`.

Example::

    >>> rng = np.random.default_rng(0)
    >>> n, k = 20000, 4
    >>> pb = np.full((n, k), 0.25); pe = np.tile([0.7, 0.1, 0.1, 0.1], (n, 1))
    >>> a = rng.integers(0, k, n); q = np.tile([0.5, 0.2, 0.2, 0.2], (n, 1))
    >>> r = (rng.random(n) < q[np.arange(n), a]).astype(float)
    >>> abs(ips(r, a, pb[np.arange(n), a], pe).estimate - 0.41) < 0.02
    True
"""

from __future__ import annotations

from statistics import NormalDist
from typing import Literal

import numpy as np

from graphrec_ray.evaluation.logging_policy import ClickModel, LoggedSlates, SlatePolicy, examination
from graphrec_ray.evaluation.stats import DEFAULT_LEVEL, Interval, bootstrap_mean, bootstrap_ratio

__all__ = ["ips", "snips", "dm", "dr", "switch_dr", "sips", "iips", "rips", "cascade_dr", "cascade_q_hat",
           "SINGLE_ESTIMATORS", "SLATE_ESTIMATORS", "estimate_single", "estimate_slate"]

IntervalKind = Literal["normal", "bootstrap"]
DEFAULT_SWITCH_TAU = 50.0  # Switch-DR drops corrections with w > 50: ~1% of a uniform-over-20 log's mass
SINGLE_ESTIMATORS = ("ips", "snips", "dm", "dr", "switch_dr")
SLATE_ESTIMATORS = ("sips", "iips", "rips", "cascade_dr")


def _mean_interval(terms: np.ndarray, level: float, interval: IntervalKind, seed: int) -> Interval:
    """Mean of per-round ``terms`` ``(n,)`` with a normal or bootstrap interval."""
    v = np.asarray(terms, dtype=np.float64)
    if v.ndim != 1 or v.size < 2:
        raise ValueError(f"need (n,) per-round terms with n >= 2, got {v.shape}")
    if interval == "bootstrap":
        return bootstrap_mean(v, level=level, seed=seed)
    z = NormalDist().inv_cdf(0.5 + level / 2.0)
    m = float(v.mean())
    half = z * float(v.std(ddof=1)) / np.sqrt(v.size)
    return Interval(m, m - half, m + half, level, int(v.size))


def _rows(n: int) -> np.ndarray:
    return np.arange(n)


# ------------------------------------------------------------------------------------------------ single action


def ips(reward: np.ndarray, action: np.ndarray, pscore: np.ndarray, action_dist: np.ndarray,
        level: float = DEFAULT_LEVEL, interval: IntervalKind = "normal", seed: int = 0) -> Interval:
    """Inverse propensity scoring.

    Args:
        reward: ``(n,)`` observed rewards.
        action: ``(n,)`` int logged actions in ``[0, K)``.
        pscore: ``(n,)`` ``pi_b(a_i | x_i)`` > 0.
        action_dist: ``(n, K)`` target ``pi_e(. | x_i)``.
        level, interval, seed: interval coverage (0.95), ``"normal"`` or ``"bootstrap"``, bootstrap seed.
    """
    w = action_dist[_rows(len(action)), action] / pscore
    return _mean_interval(w * reward, level, interval, seed)


def snips(reward: np.ndarray, action: np.ndarray, pscore: np.ndarray, action_dist: np.ndarray,
          level: float = DEFAULT_LEVEL, interval: IntervalKind = "normal", seed: int = 0) -> Interval:
    """Self-normalised IPS ``sum(w r) / sum(w)`` (arguments as :func:`ips`); interval by the delta method."""
    w = action_dist[_rows(len(action)), action] / pscore
    if interval == "bootstrap":
        return bootstrap_ratio(w * reward, w, level=level, seed=seed)
    est = float((w * reward).sum() / w.sum())
    iv = _mean_interval(w * (reward - est) / w.mean(), level, "normal", seed)
    half = (iv.high - iv.low) / 2.0
    return Interval(est, est - half, est + half, level, int(w.size))


def dm(action_dist: np.ndarray, q_hat: np.ndarray, level: float = DEFAULT_LEVEL,
       interval: IntervalKind = "normal", seed: int = 0) -> Interval:
    """Direct method ``mean_i sum_a pi_e(a | x_i) q_hat(x_i, a)``.

    Args:
        action_dist: ``(n, K)`` target policy per round.
        q_hat: ``(n, K)`` reward model per round and action.
    """
    return _mean_interval((action_dist * q_hat).sum(axis=1), level, interval, seed)


def dr(reward: np.ndarray, action: np.ndarray, pscore: np.ndarray, action_dist: np.ndarray, q_hat: np.ndarray,
       level: float = DEFAULT_LEVEL, interval: IntervalKind = "normal", seed: int = 0) -> Interval:
    """Doubly robust: DM plus the importance-weighted residual of the logged action (arguments as :func:`ips`)."""
    return switch_dr(reward, action, pscore, action_dist, q_hat, tau=np.inf, level=level, interval=interval,
                     seed=seed)


def switch_dr(reward: np.ndarray, action: np.ndarray, pscore: np.ndarray, action_dist: np.ndarray,
              q_hat: np.ndarray, tau: float = DEFAULT_SWITCH_TAU, level: float = DEFAULT_LEVEL,
              interval: IntervalKind = "normal", seed: int = 0) -> Interval:
    """Switch-DR: the DR correction only where ``w <= tau`` (``tau = inf`` is DR, ``tau = 0`` is DM).

    Biased (toward DM) where the target puts mass on actions with ``w > tau``; lower variance in exchange.
    """
    n = len(action)
    w = action_dist[_rows(n), action] / pscore
    q_obs = q_hat[_rows(n), action]
    terms = (action_dist * q_hat).sum(axis=1) + np.where(w <= tau, w * (reward - q_obs), 0.0)
    return _mean_interval(terms, level, interval, seed)


# ------------------------------------------------------------------------------------------------ slates


def sips(rewards: np.ndarray, pscore_slate: np.ndarray, eval_pscore_slate: np.ndarray,
         level: float = DEFAULT_LEVEL, interval: IntervalKind = "normal", seed: int = 0) -> Interval:
    """Standard slate IPS: ``(n, L)`` rewards summed per slate times the whole-slate weight ``(n,)``."""
    w = eval_pscore_slate / pscore_slate
    return _mean_interval(w * rewards.sum(axis=1), level, interval, seed)


def iips(rewards: np.ndarray, pscore_item_position: np.ndarray, eval_pscore_item_position: np.ndarray,
         level: float = DEFAULT_LEVEL, interval: IntervalKind = "normal", seed: int = 0) -> Interval:
    """Independent IPS: each slot weighted by its marginal ratio ``(n, L)``."""
    w = eval_pscore_item_position / pscore_item_position
    return _mean_interval((w * rewards).sum(axis=1), level, interval, seed)


def rips(rewards: np.ndarray, pscore_cascade: np.ndarray, eval_pscore_cascade: np.ndarray,
         level: float = DEFAULT_LEVEL, interval: IntervalKind = "normal", seed: int = 0) -> Interval:
    """Reward-interaction IPS: slot ``l`` weighted by the prefix ratio ``w_{1:l}`` ``(n, L)``."""
    w = eval_pscore_cascade / pscore_cascade
    return _mean_interval((w * rewards).sum(axis=1), level, interval, seed)


def cascade_dr(rewards: np.ndarray, slates: np.ndarray, pscore_cascade: np.ndarray,
               eval_pscore_cascade: np.ndarray, eval_conditional: np.ndarray, q_hat: np.ndarray,
               level: float = DEFAULT_LEVEL, interval: IntervalKind = "normal", seed: int = 0) -> Interval:
    """Cascade doubly robust (Kiyohara et al. 2022; OBP ``SlateCascadeDoublyRobust``).

    Args:
        rewards: ``(n, L)`` slot rewards.
        slates: ``(n, L)`` logged actions.
        pscore_cascade, eval_pscore_cascade: ``(n, L)`` prefix probabilities under logger and target.
        eval_conditional: ``(n, L, K)`` ``pi_e(a | x, a_1..a_{l-1})`` along the logged prefixes.
        q_hat: ``(n, L, K)`` ``Q_l(x, a_1..a_{l-1}, a)`` for every ``a`` (see :func:`cascade_q_hat`).
    """
    n, length = slates.shape
    w = eval_pscore_cascade / pscore_cascade
    w_prev = np.concatenate([np.ones((n, 1)), w[:, :-1]], axis=1)
    q_obs = np.take_along_axis(q_hat, slates[:, :, None], axis=2)[:, :, 0]
    expected = (eval_conditional * q_hat).sum(axis=2)
    terms = (w * (rewards - q_obs) + w_prev * expected).sum(axis=1)
    return _mean_interval(terms, level, interval, seed)


def cascade_q_hat(q_item: np.ndarray, slates: np.ndarray, eval_conditional: np.ndarray, click_model: ClickModel,
                  target_slates: np.ndarray | None = None) -> np.ndarray:
    """Cascade-DR's ``Q_l(x, a_1..a_{l-1}, a)`` ``(n, L, K)`` from a per-item click model ``q_item`` ``(n, K)``.

    ``Q_l = r_l(a) + cont(a) * S_l * F_l``: the modelled reward of putting ``a`` at slot ``l``
    (``"pbm"``: ``examination_l q(a)``; ``"cascade"``: ``S_l q(a)``, ``S_l = prod_{m<l} (1 - q(a_m))`` the
    modelled chance no logged item above was clicked) plus the modelled continuation ``F_l``: the target's own
    remaining list ``target_slates[:, l+1:]`` when it is deterministic (``(n, L)``, rows aligned with
    ``slates``), else ``L - l - 1`` further slots each worth ``m_l = sum_a pi_e(a | prefix) q(a)``. ``cont(a)``
    is ``1 - q(a)`` under the cascade (continue only without a click) and 1 otherwise. ``Q_l`` depends only on
    the context and ``a_1..a_{l-1}, a``, as Cascade-DR's unbiasedness needs.
    """
    n, length = slates.shape
    q = np.asarray(q_item, dtype=np.float64)
    q_logged = np.take_along_axis(q, slates, axis=1)  # (n, L)
    if target_slates is not None:
        q_tgt = np.take_along_axis(q, target_slates[:, :length], axis=1)
    else:
        m = (eval_conditional * q[:, None, :]).sum(axis=2)  # (n, L)
    out = np.empty((n, length, q.shape[1]))
    if click_model == "pbm":
        exam = examination(length)
        for pos in range(length):
            if target_slates is not None:
                future = (q_tgt[:, pos + 1:] * exam[None, pos + 1:]).sum(axis=1)
            else:
                future = m[:, pos] * exam[pos + 1:].sum()
            out[:, pos] = exam[pos] * q + future[:, None]
        return out
    if click_model != "cascade":
        raise ValueError(f"click_model must be 'pbm' or 'cascade', got {click_model!r}")
    survive = np.concatenate([np.ones((n, 1)), np.cumprod(1.0 - q_logged, axis=1)[:, :-1]], axis=1)
    for pos in range(length):
        if target_slates is not None:
            future = 1.0 - np.prod(1.0 - q_tgt[:, pos + 1:], axis=1)
        else:
            future = 1.0 - (1.0 - m[:, pos]) ** (length - pos - 1)
        out[:, pos] = survive[:, pos, None] * (q + (1.0 - q) * future[:, None])
    return out


# ------------------------------------------------------------------------------------------------ drivers


def estimate_single(log: LoggedSlates, target: SlatePolicy, q_item: np.ndarray, tau: float = DEFAULT_SWITCH_TAU,
                    level: float = DEFAULT_LEVEL, interval: IntervalKind = "normal",
                    seed: int = 0) -> dict[str, Interval]:
    """All single-action estimators of ``target`` from a length-1 ``log``.

    Args:
        log: from :func:`graphrec_ray.evaluation.logging_policy.collect_log` with ``length=1``.
        target: target policy over the same ``(U, K)`` candidates.
        q_item: ``(U, K)`` reward model (the ranker's calibrated ``p_click``).
    """
    if log.length != 1:
        raise ValueError(f"single-action estimators need a log of length 1, got {log.length}")
    action = log.slates[:, 0]
    reward = log.rewards[:, 0]
    pscore = log.pscore_item_position[:, 0]
    dist = target.marginal(1)[:, 0][log.rows]
    q = np.asarray(q_item, dtype=np.float64)[log.rows]
    kw = {"level": level, "interval": interval, "seed": seed}
    return {"ips": ips(reward, action, pscore, dist, **kw), "snips": snips(reward, action, pscore, dist, **kw),
            "dm": dm(dist, q, **kw), "dr": dr(reward, action, pscore, dist, q, **kw),
            "switch_dr": switch_dr(reward, action, pscore, dist, q, tau=tau, **kw)}


def estimate_slate(log: LoggedSlates, target: SlatePolicy, q_item: np.ndarray, level: float = DEFAULT_LEVEL,
                   interval: IntervalKind = "normal", seed: int = 0) -> dict[str, Interval]:
    """All slate estimators of ``target`` from ``log`` (arguments as :func:`estimate_single`)."""
    length = log.length
    e_marg = target.marginal(length)[log.rows[:, None], np.arange(length)[None, :], log.slates]
    e_cond, e_prefix = target.conditional_and_prefix(log.rows, log.slates)
    det = target.deterministic_slates(length)
    q = np.asarray(q_item, dtype=np.float64)[log.rows]
    q_hat = cascade_q_hat(q, log.slates, e_cond, log.click_model,  # type: ignore[arg-type]
                          None if det is None else det[log.rows])
    kw = {"level": level, "interval": interval, "seed": seed}
    return {"sips": sips(log.rewards, log.pscore_slate, e_prefix[:, -1], **kw),
            "iips": iips(log.rewards, log.pscore_item_position, e_marg, **kw),
            "rips": rips(log.rewards, log.pscore_cascade, e_prefix, **kw),
            "cascade_dr": cascade_dr(log.rewards, log.slates, log.pscore_cascade, e_prefix, e_cond, q_hat, **kw)}
