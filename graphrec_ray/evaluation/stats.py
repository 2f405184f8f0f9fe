"""Confidence intervals for per-user metrics: percentile bootstrap over users, paired differences, ratios.

Every quality claim in this project is a mean over users (Recall@K of a user, the true click rate of the list a
user was served, ...). The users are the sampling unit, so intervals resample users with replacement
(Efron & Tibshirani, 1993, ch. 13) and comparisons of two models on the same users bootstrap the per-user
*difference* (paired), which cancels the between-user variance both models share.

Several training seeds: pass ``(S, n)`` arrays; each user's value is first averaged over the seeds, then users
are resampled, so the interval covers seed noise averaged out and user sampling noise.

Example::

    >>> rng = np.random.default_rng(0)
    >>> iv = bootstrap_mean(rng.normal(1.0, 1.0, 400), seed=0)
    >>> iv.low < 1.0 < iv.high
    True
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DEFAULT_LEVEL = 0.95  # two-sided coverage of every reported interval
DEFAULT_N_BOOT = 1000  # bootstrap resamples: percentile-interval ends stable to ~1% of the width
_CHUNK = 1 << 22  # resample indices drawn in chunks of at most this many entries (memory bound)


@dataclass(frozen=True)
class Interval:
    """A point estimate with a two-sided confidence interval ``[low, high]`` at ``level``.

    Attributes:
        estimate: the statistic on the full sample.
        low, high: percentile-bootstrap interval ends.
        level: coverage (default 0.95).
        n: number of users (sampling units) behind it.
    """

    estimate: float
    low: float
    high: float
    level: float = DEFAULT_LEVEL
    n: int = 0

    def excludes_zero(self) -> bool:
        """True when the whole interval lies on one side of zero (a significant difference)."""
        return bool(self.low > 0.0 or self.high < 0.0)

    def verdict(self, better: str = "better", worse: str = "worse") -> str:
        """``better`` / ``worse`` when the interval excludes zero, else ``"not significant"``."""
        if self.low > 0.0:
            return better
        if self.high < 0.0:
            return worse
        return "not significant"

    def as_dict(self, key: str) -> dict[str, float]:
        """``{key: estimate, key/ci_low: low, key/ci_high: high}`` for ``metrics.json``."""
        return {key: self.estimate, f"{key}/ci_low": self.low, f"{key}/ci_high": self.high}

    def __str__(self) -> str:
        return f"{self.estimate:.4f} [{self.low:.4f}, {self.high:.4f}]"


def _per_user(values: np.ndarray) -> np.ndarray:
    """``(n,)`` or ``(S, n)`` -> ``(n,)`` float64: seed-averaged per-user values, NaN users dropped."""
    v = np.asarray(values, dtype=np.float64)
    if v.ndim == 2:
        v = v.mean(axis=0)
    if v.ndim != 1:
        raise ValueError(f"values must be (n,) or (S, n), got shape {np.shape(values)}")
    return v[np.isfinite(v)]


def _boot_means(columns: list[np.ndarray], n_boot: int, seed: int) -> list[np.ndarray]:
    """Bootstrap means ``(n_boot,)`` of each ``(n,)`` column under the same user resamples."""
    n = columns[0].size
    rng = np.random.default_rng(seed)
    out = [np.empty(n_boot) for _ in columns]
    step = max(1, _CHUNK // max(n, 1))
    for start in range(0, n_boot, step):
        stop = min(n_boot, start + step)
        idx = rng.integers(0, n, size=(stop - start, n))
        for col, res in zip(columns, out):
            res[start:stop] = col[idx].mean(axis=1)
    return out


def _percentile(boot: np.ndarray, estimate: float, level: float, n: int) -> Interval:
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(boot, [alpha, 1.0 - alpha])
    return Interval(float(estimate), float(lo), float(hi), level, n)


def _check(level: float, n_boot: int) -> None:
    if not 0.0 < level < 1.0 or n_boot < 10:
        raise ValueError(f"need 0 < level < 1 and n_boot >= 10, got level={level}, n_boot={n_boot}")


def bootstrap_mean(values: np.ndarray, level: float = DEFAULT_LEVEL, n_boot: int = DEFAULT_N_BOOT,
                   seed: int = 0) -> Interval:
    """Mean of per-user ``values`` with a percentile-bootstrap interval over users.

    Args:
        values: ``(n,)`` per-user values, or ``(S, n)`` per seed and user (averaged over seeds first); NaN users
            (e.g. no relevant item) are dropped.
        level: two-sided coverage (default 0.95).
        n_boot: resamples (default 1000).
        seed: resampling seed.

    Returns:
        :class:`Interval`; all-NaN when no user is left.
    """
    _check(level, n_boot)
    v = _per_user(values)
    if v.size == 0:
        return Interval(float("nan"), float("nan"), float("nan"), level, 0)
    (boot,) = _boot_means([v], n_boot, seed)
    return _percentile(boot, float(v.mean()), level, v.size)


def paired_difference(a: np.ndarray, b: np.ndarray, level: float = DEFAULT_LEVEL, n_boot: int = DEFAULT_N_BOOT,
                      seed: int = 0) -> Interval:
    """Mean of ``a - b`` over the same users, bootstrapped over users (paired comparison of two models).

    Args:
        a, b: ``(n,)`` or ``(S, n)`` per-user values of the two models on the same users in the same order (with
            ``(S, n)``, seed ``s`` of ``a`` is paired with seed ``s`` of ``b``). Users where either is NaN are
            dropped.

    Returns:
        :class:`Interval` of ``mean(a) - mean(b)``; :meth:`Interval.verdict` says "better" only when it excludes 0.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"paired values need the same shape, got {a.shape} and {b.shape}")
    return bootstrap_mean(a - b, level, n_boot, seed)


def bootstrap_ratio(numerator: np.ndarray, denominator: np.ndarray, level: float = DEFAULT_LEVEL,
                    n_boot: int = DEFAULT_N_BOOT, seed: int = 0) -> Interval:
    """``sum(numerator) / sum(denominator)`` (e.g. clicks / impressions) with users resampled as whole units.

    Args:
        numerator, denominator: ``(n,)`` per-user totals; users with a zero denominator still count in the sums.
    """
    _check(level, n_boot)
    num = np.asarray(numerator, dtype=np.float64)
    den = np.asarray(denominator, dtype=np.float64)
    if num.shape != den.shape or num.ndim != 1:
        raise ValueError(f"numerator and denominator must be (n,) of one shape, got {num.shape}, {den.shape}")
    if num.size == 0 or den.sum() <= 0:
        return Interval(float("nan"), float("nan"), float("nan"), level, int(num.size))
    bn, bd = _boot_means([num, den], n_boot, seed)
    return _percentile(bn / np.maximum(bd, 1e-300), float(num.sum() / den.sum()), level, int(num.size))


def per_user_intervals(per_user: dict[str, np.ndarray], level: float = DEFAULT_LEVEL,
                       n_boot: int = DEFAULT_N_BOOT, seed: int = 0) -> dict[str, float]:
    """``{name: (n,) values}`` -> flat ``{name, name/ci_low, name/ci_high}`` for a metrics file."""
    out: dict[str, float] = {}
    for name, values in per_user.items():
        out.update(bootstrap_mean(values, level, n_boot, seed).as_dict(name))
    return out
