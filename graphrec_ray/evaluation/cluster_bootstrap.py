"""Bootstrap over users for metrics computed on impressions (rows), e.g. a ranker's AUC, ECE, Brier, log-loss.

Rows of one user are not independent, so the user is the resampling unit (a cluster bootstrap): each replicate
draws ``U`` users with replacement and weights every row by how often its user was drawn. Metrics that are ratios
of row sums (Brier, log-loss, MSE, ECE with the bins fixed on the full sample) are then one matrix product of the
``(B, U)`` draw counts with ``(U, k)`` per-user sums; AUC is recomputed per replicate with row weights on a
presorted score order (O(rows) each).

Example::

    >>> rng = np.random.default_rng(0)
    >>> users = np.repeat(np.arange(300), 20)
    >>> x = rng.normal(size=users.size) + rng.normal(size=300)[users]   # user effect: rows are correlated
    >>> boot = UserBootstrap(users, n_boot=200, seed=0)
    >>> sums = boot.replicate_sums(np.stack([x, np.ones_like(x)], axis=1))
    >>> lo, hi = np.quantile(sums[:, 0] / sums[:, 1], [0.025, 0.975])
    >>> bool(lo < x.mean() < hi)
    True
"""

from __future__ import annotations

import numpy as np

from graphrec_ray.evaluation.stats import DEFAULT_LEVEL, DEFAULT_N_BOOT, Interval


class UserBootstrap:
    """Resampling plan over the users of ``(N,)`` rows: ``n_boot`` replicates of ``U`` users drawn with replacement.

    Args:
        users: ``(N,)`` user id of each row (any integers).
        n_boot: replicates (default 1000).
        seed: resampling seed.

    Attributes:
        inverse: ``(N,)`` position of each row's user in ``0..U-1``.
        counts: ``(B, U)`` float64 draw counts of each user in each replicate (each row sums to ``U``).
    """

    def __init__(self, users: np.ndarray, n_boot: int = DEFAULT_N_BOOT, seed: int = 0) -> None:
        if n_boot < 10:
            raise ValueError(f"n_boot must be >= 10, got {n_boot}")
        uniq, self.inverse = np.unique(np.asarray(users), return_inverse=True)
        self.n_users = int(uniq.size)
        rng = np.random.default_rng(seed)
        self.counts = np.stack([np.bincount(rng.integers(0, self.n_users, self.n_users), minlength=self.n_users)
                                for _ in range(n_boot)]).astype(np.float64)

    @property
    def n_boot(self) -> int:
        return int(self.counts.shape[0])

    def replicate_sums(self, columns: np.ndarray) -> np.ndarray:
        """``(N, k)`` row values -> ``(B, k)`` weighted column sums per replicate."""
        import scipy.sparse as sp

        cols = np.asarray(columns, dtype=np.float64)
        if cols.ndim == 1:
            cols = cols[:, None]
        n = self.inverse.size
        member = sp.csr_matrix((np.ones(n), (self.inverse, np.arange(n))), shape=(self.n_users, n))
        return self.counts @ np.asarray(member @ cols)

    def row_weights(self, b: int) -> np.ndarray:
        """``(N,)`` row weights of replicate ``b``."""
        return self.counts[b][self.inverse]


def weighted_auc(order: np.ndarray, tie_group: np.ndarray, labels: np.ndarray, weights: np.ndarray) -> float:
    """ROC-AUC with row weights (ties count one half), on a presorted score order.

    Args:
        order: ``(N,)`` argsort of the scores, ascending.
        tie_group: ``(N,)`` tie-group id of each SORTED position (0, 0, 1, 2, 2, ...: equal scores share one).
        labels: ``(N,)`` 0/1 labels (original row order).
        weights: ``(N,)`` non-negative row weights (original row order).
    """
    y = labels[order]
    w = weights[order]
    n_groups = int(tie_group[-1]) + 1 if tie_group.size else 0
    pos = np.bincount(tie_group, weights=w * y, minlength=n_groups)
    neg = np.bincount(tie_group, weights=w * (1.0 - y), minlength=n_groups)
    below = np.cumsum(neg) - neg
    total = pos.sum() * neg.sum()
    return float(np.sum(pos * (below + 0.5 * neg)) / total) if total > 0 else float("nan")


def sorted_ties(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(order, tie_group)`` for :func:`weighted_auc`."""
    s = np.asarray(scores, dtype=np.float64)
    order = np.argsort(s, kind="stable")
    ss = s[order]
    tie_group = np.concatenate([[0], np.cumsum(ss[1:] != ss[:-1])]).astype(np.int64) if s.size else np.zeros(0, int)
    return order, tie_group


def percentile_interval(estimate: float, replicates: np.ndarray, level: float = DEFAULT_LEVEL,
                        n: int = 0) -> Interval:
    """Percentile interval of ``(B,)`` replicates (NaN replicates dropped) around ``estimate``."""
    r = np.asarray(replicates, dtype=np.float64)
    r = r[np.isfinite(r)]
    if r.size == 0 or not np.isfinite(estimate):
        return Interval(float(estimate), float("nan"), float("nan"), level, n)
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(r, [alpha, 1.0 - alpha])
    return Interval(float(estimate), float(lo), float(hi), level, n)
