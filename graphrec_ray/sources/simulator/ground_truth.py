"""Exact ground truth of the simulator's generative model, read back from ``data_dir/ground_truth/``.

The simulator (:mod:`graphrec_ray.sources.simulator`) draws every watch ratio from this model::

    mu[u, i]  = mu0 + b_user[u] + b_item[i] + scale * <P_user[u], Q_item[i]> / sqrt(d)
    view      = skip with probability p_skip            -> watch_ratio = 0
              = otherwise  log(watch_ratio) ~ Normal(mu[u, i], sigma^2)

so for every (user, item) the truth is closed-form (Phi = standard normal CDF)::

    P(watch_ratio >= t)      = (1 - p_skip) * Phi((mu - log t) / sigma)          (t = 0.5: p_click)
    E[watch_ratio]           = (1 - p_skip) * exp(mu + sigma^2 / 2)
    E[log1p(watch_ratio)]    = (1 - p_skip) * E[softplus(mu + sigma * Z)]        (Gauss-Hermite, 64 nodes)

The 64-node Gauss-Hermite rule integrates the smooth softplus to ~1e-12, far below any sampling
error. Exposure in ``big_matrix`` is an independent Bernoulli per (user, item) with probability
``pi[u, i] = min(1, density * activity[u] * weight[i] * exp(k * a[u, i] / s - k^2 / 2))`` where
``a = scale * <P_user, Q_item> / sqrt(d)`` is the affinity term (std ``s``) and ``k`` is
``exposure_affinity`` (0 by default: exposure then depends on the item only); ``pi`` is 0 on the
``small_matrix`` block, and the item propensity (mean of ``pi`` over all users) is exact too.

Files: ``model.npz`` (ids, factors, biases, exposure terms) and ``params.json`` (scalars).
All public methods take RAW ``user_id`` / ``video_id`` arrays, as written in the CSVs.

Example::

    >>> gt = GroundTruth.load("data/sim")                              # doctest: +SKIP
    >>> gt.p_click(np.array([0, 1]), np.array([10, 11, 12])).shape     # doctest: +SKIP
    (2, 3)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.special import ndtr

from graphrec_ray.errors import DataError

__all__ = ["GroundTruth", "GT_DIR", "log_watch_mean", "affinity", "exposure_probability", "p_watch_at_least",
           "expected_watch_ratio", "expected_log1p_watch_ratio"]

GT_DIR = "ground_truth"
MODEL_FILE = "model.npz"
PARAMS_FILE = "params.json"
_GH_X, _GH_W = np.polynomial.hermite.hermgauss(64)


def log_watch_mean(user_f: np.ndarray, item_f: np.ndarray, user_b: np.ndarray, item_b: np.ndarray,
                   mu0: float, scale: float) -> np.ndarray:
    """``mu`` block: ``(U, d) x (I, d) -> (U, I)`` mean of log watch ratio (see module docstring)."""
    d = user_f.shape[1]
    return mu0 + user_b[:, None] + item_b[None, :] + (scale / np.sqrt(d)) * (user_f @ item_f.T)


def affinity(user_f: np.ndarray, item_f: np.ndarray, scale: float) -> np.ndarray:
    """``(U, d) x (I, d) -> (U, I)`` affinity term ``scale * <p_u, q_i> / sqrt(d)`` of ``mu``."""
    return (scale / np.sqrt(user_f.shape[1])) * (user_f @ item_f.T)


def exposure_probability(activity: np.ndarray, weight: np.ndarray, density: float,
                         aff: np.ndarray | None = None, exposure_affinity: float = 0.0,
                         affinity_std: float = 1.0) -> np.ndarray:
    """``(U, I)`` Bernoulli exposure probability in ``big_matrix`` (small block not masked here).

    ``min(1, density * activity[u] * weight[i] * exp(k * aff / affinity_std - k^2 / 2))``, ``k = exposure_affinity``.
    """
    pi = density * activity[:, None] * weight[None, :]
    if exposure_affinity != 0.0:
        if aff is None:
            raise ValueError("exposure_affinity != 0 needs the affinity block")
        pi = pi * np.exp(exposure_affinity * aff / affinity_std - 0.5 * exposure_affinity ** 2)
    return np.minimum(1.0, pi)


def p_watch_at_least(mu: np.ndarray, sigma: float, p_skip: float, threshold: float) -> np.ndarray:
    """``P(watch_ratio >= threshold)`` elementwise for ``mu`` of any shape; ``threshold > 0``."""
    return (1.0 - p_skip) * ndtr((mu - np.log(threshold)) / sigma)


def expected_watch_ratio(mu: np.ndarray, sigma: float, p_skip: float) -> np.ndarray:
    """``E[watch_ratio]`` elementwise (lognormal mean times the non-skip probability)."""
    return (1.0 - p_skip) * np.exp(mu + 0.5 * sigma * sigma)


def expected_log1p_watch_ratio(mu: np.ndarray, sigma: float, p_skip: float) -> np.ndarray:
    """``E[log1p(watch_ratio)]`` elementwise by 64-node Gauss-Hermite quadrature."""
    mu = np.asarray(mu, dtype=np.float64)
    acc = np.zeros_like(mu)
    for x, w in zip(_GH_X, _GH_W):
        acc += w * np.logaddexp(0.0, mu + np.sqrt(2.0) * sigma * x)
    return (1.0 - p_skip) * acc / np.sqrt(np.pi)


@dataclass(frozen=True)
class GroundTruth:
    """The simulator's true model for one dataset (load with :meth:`load`).

    Attributes:
        user_ids: ``(n_users,)`` int64 sorted raw ids; ``video_ids``: ``(n_items,)`` likewise.
        user_factors: ``(n_users, d)``; ``item_factors``: ``(n_items, d)``; biases ``(n_users,)``/``(n_items,)``.
        activity: ``(n_users,)`` exposure activity; ``exposure_weight``: ``(n_items,)`` promotion weight.
        item_propensity: ``(n_items,)`` true marginal exposure probability in ``big_matrix``.
        small_user_ids / small_video_ids: the fully observed ``small_matrix`` block.
        item_categories: ``(n_items, C)`` float weights of each item's categories (rows sum to 1).
        user_preferences: ``(n_users, C)`` true category preference weights (rows sum to 1).
        params: scalars ``mu0, scale, sigma, p_skip, density, click_threshold, exposure_affinity, affinity_std``.
    """

    user_ids: np.ndarray
    video_ids: np.ndarray
    user_factors: np.ndarray
    item_factors: np.ndarray
    user_bias: np.ndarray
    item_bias: np.ndarray
    activity: np.ndarray
    exposure_weight: np.ndarray
    item_propensity: np.ndarray
    small_user_ids: np.ndarray
    small_video_ids: np.ndarray
    item_categories: np.ndarray
    user_preferences: np.ndarray
    params: dict[str, Any]

    # ------------------------------------------------------------------ io
    @classmethod
    def load(cls, data_dir: str | Path) -> "GroundTruth":
        """Read ``data_dir/ground_truth/{model.npz,params.json}``.

        Raises:
            DataError: no ground truth there (real KuaiRec data has none: it is simulator-only).
        """
        gt = Path(data_dir) / GT_DIR
        if not (gt / MODEL_FILE).is_file() or not (gt / PARAMS_FILE).is_file():
            raise DataError(f"no simulator ground truth in {gt} (real KuaiRec data has none; "
                            f"generate data with `graphrec simulate --out {data_dir}`)")
        params = json.loads((gt / PARAMS_FILE).read_text())
        with np.load(gt / MODEL_FILE) as z:
            arrays = {k: z[k] for k in z.files}
        return cls(params=params, **{f: arrays[f] for f in _ARRAY_FIELDS})

    def save(self, data_dir: str | Path) -> Path:
        """Write ``data_dir/ground_truth/`` (used by the simulator); returns that folder."""
        gt = Path(data_dir) / GT_DIR
        gt.mkdir(parents=True, exist_ok=True)
        np.savez(gt / MODEL_FILE, **{f: getattr(self, f) for f in _ARRAY_FIELDS})
        (gt / PARAMS_FILE).write_text(json.dumps(self.params, indent=2, sort_keys=True) + "\n")
        return gt

    # ------------------------------------------------------------------ ids
    def _index(self, ids: np.ndarray, known: np.ndarray, what: str) -> np.ndarray:
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        pos = np.searchsorted(known, ids)
        pos_c = np.minimum(pos, len(known) - 1)
        bad = known[pos_c] != ids
        if bad.any():
            raise KeyError(f"unknown {what}(s) {ids[bad][:5].tolist()} (not in the simulated data)")
        return pos_c

    def user_index(self, user_ids: np.ndarray) -> np.ndarray:
        """Row positions of raw ``user_ids`` in this model; ``KeyError`` for unknown ids."""
        return self._index(user_ids, self.user_ids, "user_id")

    def item_index(self, video_ids: np.ndarray) -> np.ndarray:
        """Row positions of raw ``video_ids`` in this model; ``KeyError`` for unknown ids."""
        return self._index(video_ids, self.video_ids, "video_id")

    # ------------------------------------------------------------------ truth
    def mu(self, user_ids: np.ndarray, video_ids: np.ndarray) -> np.ndarray:
        """``(U, I)`` float64 mean of log watch ratio for raw id arrays."""
        ui, ii = self.user_index(user_ids), self.item_index(video_ids)
        p = self.params
        return log_watch_mean(self.user_factors[ui], self.item_factors[ii], self.user_bias[ui],
                              self.item_bias[ii], p["mu0"], p["scale"])

    def _blocked(self, user_ids: np.ndarray, video_ids: np.ndarray, fn: Any, block: int = 1024) -> np.ndarray:
        u = np.asarray(user_ids, dtype=np.int64).reshape(-1)
        v = np.asarray(video_ids, dtype=np.int64).reshape(-1)
        out = np.empty((len(u), len(v)), dtype=np.float64)
        for s in range(0, len(u), block):
            out[s:s + block] = fn(self.mu(u[s:s + block], v))
        return out

    def p_watch_at_least(self, user_ids: np.ndarray, video_ids: np.ndarray, threshold: float) -> np.ndarray:
        """``(U, I)`` true ``P(watch_ratio >= threshold)`` (e.g. ``threshold=2.0`` for strong engagement)."""
        if threshold <= 0:
            raise ValueError("threshold must be > 0")
        p = self.params
        return self._blocked(user_ids, video_ids,
                             lambda mu: p_watch_at_least(mu, p["sigma"], p["p_skip"], threshold))

    def p_click(self, user_ids: np.ndarray, video_ids: np.ndarray) -> np.ndarray:
        """``(U, I)`` float64 true click probability ``P(watch_ratio >= 0.5)`` for raw id arrays."""
        return self.p_watch_at_least(user_ids, video_ids, self.params["click_threshold"])

    def e_watch_ratio(self, user_ids: np.ndarray, video_ids: np.ndarray) -> np.ndarray:
        """``(U, I)`` float64 true ``E[watch_ratio]``."""
        p = self.params
        return self._blocked(user_ids, video_ids, lambda mu: expected_watch_ratio(mu, p["sigma"], p["p_skip"]))

    def e_value(self, user_ids: np.ndarray, video_ids: np.ndarray) -> np.ndarray:
        """``(U, I)`` float64 true ``E[log1p(watch_ratio)]`` (the ranker's value target, unclipped)."""
        p = self.params
        return self._blocked(user_ids, video_ids,
                             lambda mu: expected_log1p_watch_ratio(mu, p["sigma"], p["p_skip"]))

    def exposure_prob(self, user_ids: np.ndarray, video_ids: np.ndarray) -> np.ndarray:
        """``(U, I)`` true probability that the pair is exposed in ``big_matrix`` (0 on the small block)."""
        ui, ii = self.user_index(user_ids), self.item_index(video_ids)
        p = self.params
        k = float(p.get("exposure_affinity", 0.0))
        aff = affinity(self.user_factors[ui], self.item_factors[ii], p["scale"]) if k else None
        pi = exposure_probability(self.activity[ui], self.exposure_weight[ii], p["density"], aff, k,
                                  float(p.get("affinity_std", 1.0)))
        small_u = np.isin(self.user_ids[ui], self.small_user_ids)
        small_i = np.isin(self.video_ids[ii], self.small_video_ids)
        pi[np.ix_(small_u, small_i)] = 0.0
        return pi

    def exposure_propensity(self, video_ids: np.ndarray) -> np.ndarray:
        """``(I,)`` true marginal probability that each item is exposed to a user in ``big_matrix``."""
        return self.item_propensity[self.item_index(video_ids)].astype(np.float64)


_ARRAY_FIELDS = ("user_ids", "video_ids", "user_factors", "item_factors", "user_bias", "item_bias", "activity",
                 "exposure_weight", "item_propensity", "small_user_ids", "small_video_ids", "item_categories",
                 "user_preferences")
