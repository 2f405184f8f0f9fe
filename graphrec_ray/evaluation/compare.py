"""Model comparisons over several training seeds: paired per-user differences with a bootstrap interval.

A claim "model A beats model B" needs (1) the same evaluation users for both, (2) several training seeds, so a
lucky initialisation does not decide it, and (3) an interval that excludes zero. Per seed, the evaluation
protocols (:mod:`graphrec_ray.evaluation.protocols`, ``per_user=``) give ``(n,)`` per-user values; stacked over
``S >= 3`` seeds they form ``(S, n)`` arrays, and :func:`graphrec_ray.evaluation.stats.paired_difference` averages
each user's difference over seeds, then resamples users.

Files: one ``.npz`` per seed (:func:`save_per_user`), keys ``"<model>|<metric>"`` with ``(n,)`` float64 values
and ``"<model>|<prefix>users"`` with the user indices the metrics under ``<prefix>`` refer to (e.g.
``"lightgcn_ips|test/recall@20"`` and ``"lightgcn_ips|test/users"``).

Example::

    >>> rng = np.random.default_rng(0)
    >>> base = rng.random((3, 300))
    >>> iv = paired_over_seeds(base + 0.05, base, seed=0)
    >>> iv.verdict()
    'better'
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from graphrec_ray.errors import UserError
from graphrec_ray.evaluation.stats import DEFAULT_LEVEL, DEFAULT_N_BOOT, Interval, paired_difference

MIN_SEEDS = 3  # fewer seeds cannot separate a seed effect from a model effect


def paired_over_seeds(a: np.ndarray, b: np.ndarray, min_seeds: int = MIN_SEEDS, level: float = DEFAULT_LEVEL,
                      n_boot: int = DEFAULT_N_BOOT, seed: int = 0) -> Interval:
    """Mean per-user difference ``a - b`` over ``S >= min_seeds`` seeds, with its interval.

    Args:
        a, b: ``(S, n)`` per-seed, per-user values of two models on the same users (NaN users are dropped).
        min_seeds: the least number of seeds accepted (default 3).
        level, n_boot, seed: as in :func:`graphrec_ray.evaluation.stats.paired_difference`.

    Raises:
        UserError: fewer than ``min_seeds`` seeds, or shapes that do not match.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.ndim != 2 or a.shape != b.shape:
        raise UserError(f"paired comparison needs two (S, n) arrays of one shape, got {a.shape} and {b.shape}")
    if a.shape[0] < min_seeds:
        raise UserError(f"a model comparison needs >= {min_seeds} seeds, got {a.shape[0]}")
    return paired_difference(a, b, level, n_boot, seed)


def prefixed(prefix: str, per_user: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``{"recall@10": v, "users": u}`` -> ``{prefix + "recall@10": v, prefix + "users": u}``."""
    return {f"{prefix}{k}": np.asarray(v) for k, v in per_user.items()}


def save_per_user(path: str | Path, models: dict[str, dict[str, np.ndarray]]) -> Path:
    """Write one seed's per-user values ``{model: {key: (n,)}}`` to ``path`` (``.npz``); returns ``path``."""
    arrays = {f"{m}|{k}": np.asarray(v) for m, per in models.items() for k, v in per.items()}
    bad = [k for k in arrays if k.count("|") != 1]
    if bad:
        raise ValueError(f"model and metric names must not contain '|': {bad}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        np.savez(f, **arrays)
    return path


def load_per_user(path: str | Path) -> dict[str, dict[str, np.ndarray]]:
    """Inverse of :func:`save_per_user`."""
    out: dict[str, dict[str, np.ndarray]] = {}
    with np.load(path) as z:
        for key in z.files:
            model, metric = key.split("|", 1)
            out.setdefault(model, {})[metric] = z[key]
    return out


def _users_key(metric: str, per: dict[str, np.ndarray]) -> str | None:
    """The ``<prefix>users`` entry with the longest prefix of ``metric``."""
    parts = metric.split("/")
    for i in range(len(parts) - 1, -1, -1):
        key = "/".join(parts[:i] + ["users"])
        if key in per:
            return key
    return None


def stack_seeds(seeds: list[dict[str, dict[str, np.ndarray]]], models: tuple[str, str],
                metric: str) -> tuple[np.ndarray, np.ndarray]:
    """``(S, n)`` values of ``metric`` for two models over the seeds, on the users all seeds share.

    Users are matched by their ``<prefix>users`` arrays when present (else by position).
    """
    common: np.ndarray | None = None
    for per_seed in seeds:
        for m in models:
            uk = _users_key(metric, per_seed[m])
            if uk is not None:
                u = per_seed[m][uk]
                common = u if common is None else np.intersect1d(common, u)
    rows: dict[str, list[np.ndarray]] = {m: [] for m in models}
    for per_seed in seeds:
        for m in models:
            v = np.asarray(per_seed[m][metric], dtype=np.float64)
            uk = _users_key(metric, per_seed[m])
            if common is not None and uk is not None:
                u = per_seed[m][uk]
                order = np.argsort(u)
                v = v[order[np.searchsorted(u[order], common)]]
            rows[m].append(v)
    return np.stack(rows[models[0]]), np.stack(rows[models[1]])


def compare_seed_files(paths: list[Path], model_a: str, model_b: str, metrics: list[str],
                       min_seeds: int = MIN_SEEDS, seed: int = 0) -> dict[str, Interval]:
    """Paired difference ``model_a - model_b`` for each of ``metrics`` from per-seed files (:func:`save_per_user`).

    Metrics missing for either model in any file are skipped.
    """
    seeds = [load_per_user(p) for p in paths]
    if len(seeds) < min_seeds:
        raise UserError(f"a model comparison needs >= {min_seeds} seed files, got {len(seeds)}")
    out: dict[str, Interval] = {}
    for metric in metrics:
        if all(metric in s.get(model_a, {}) and metric in s.get(model_b, {}) for s in seeds):
            a, b = stack_seeds(seeds, (model_a, model_b), metric)
            out[metric] = paired_over_seeds(a, b, min_seeds, seed=seed)
    return out
