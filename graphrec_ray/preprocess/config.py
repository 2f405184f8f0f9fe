"""``PreprocessConfig``: every knob of the preprocessing stage (raw logs -> validated, labelled, split Parquet).

Loaded with :func:`graphrec_ray.config.load_config` from ``configs/preprocess.yaml`` (which lists only the
changes from these defaults). The same config drives the plain pass
(:func:`graphrec_ray.preprocess.stage.preprocess_local`) and the Ray Data job (``jobs/preprocess.py``); both
write identical files.

Example::

    >>> from graphrec_ray.config import load_config
    >>> cfg = load_config(PreprocessConfig, None, ["data_dir=data/sim", "value_clip=3.0"])
    >>> cfg.click_threshold, cfg.value_clip
    (0.5, 3.0)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

DuplicatePolicy = Literal["drop", "quarantine", "keep"]
RepeatPolicy = Literal["keep_all", "keep_last", "max_watch_ratio"]
SplitBy = Literal["rows", "time"]
SplitKind = Literal["per_user", "global"]


@dataclass(frozen=True)
class PreprocessConfig:
    """Preprocessing stage config (frozen; unknown keys and wrong types are rejected by the loader).

    Split (``split``, see :mod:`graphrec_ray.preprocess.split`): ``"per_user"`` (default) applies the cut rule to each
    user's own rows, so each user's last ``1 - train_frac`` of interactions by time go to val/test and users
    with fewer than ``min_user_rows`` rows stay wholly in training; ``"global"`` applies it once to all rows
    (today's split before issue 10: users active only late in the log then have no training row at all).

    Cut rule (``split_by``): ``"rows"`` cuts at timestamp quantiles of the rows (the cut is the timestamp of the
    row at position ``floor(train_frac * n)`` in time order; every row with a timestamp equal to or after the cut
    goes to val/test, so no val/test timestamp lies before the training cut); ``"time"`` cuts the time range
    ``[t_min, t_max]`` at the same fractions.
    """

    data_dir: str = "data/sim"  # folder holding big_matrix.csv / small_matrix.csv (real KuaiRec or simulator)
    cache_dir: str = ""  # one-time CSV->Parquet cache; "" = <data_dir>/_parquet_cache (rebuilt if a CSV changes)
    cache_shard_rows: int = 500_000  # rows per cache shard (~50 MB of strings): one Ray Data task per shard
    click_threshold: float = 0.5  # label_click = watch_ratio >= this (KuaiRec convention, issue 2)
    value_clip: float = 5.0  # label_value = log1p(min(watch_ratio, value_clip)); KuaiRec outliers start above 5
    watch_ratio_max: float = 1000.0  # above: quarantined as corrupt; 5 < wr <= this is kept, clipped in label_value
    watch_ratio_tolerance: float = 0.01  # quarantine rows with |wr - play/video| > tol * max(1, wr); < 0 turns it off
    exact_duplicates: DuplicatePolicy = "drop"  # identical rows: keep first, drop (counted) / quarantine / keep all
    repeated_views: RepeatPolicy = "keep_all"  # same (user, video) seen again: each view is a real event by default
    split: SplitKind = "per_user"  # per-user temporal cuts: every active user keeps a training history (issue 10)
    min_user_rows: int = 10  # per_user: users with fewer rows stay in train; 10 gives each held-out user a val+test row
    split_by: SplitBy = "rows"  # "rows": cut at timestamp quantiles of rows; "time": cut the time range
    train_frac: float = 0.8  # fraction of big_matrix before the validation cut (standard 80/10/10)
    val_frac: float = 0.1  # fraction between the validation and test cuts; test gets the rest
    allow_no_timestamp: bool = False  # keep big_matrix rows without timestamp (hash-assigned to a split), not quarantine
    eval_keep_no_timestamp: bool = True  # small_matrix rows without time stay in eval_small: evaluation needs no time
    seed: int = 0  # seed of the hash that assigns timestamp-less rows to splits (only with allow_no_timestamp)
    propensity_smoothing: float = 1.0  # additive (Laplace) smoothing of per-item train counts
    propensity_power: float = 0.5  # p ~ popularity**power (Steck 2011 / Yang et al. 2018 use ~0.5)
    propensity_clip: float = 0.01  # lower clip of propensities, caps IPS weights at 1 / clip = 100
    ray_concurrency: int = 0  # max parallel shard tasks in the Ray Data job; 0 = Ray Data decides from the CPUs

    def __post_init__(self) -> None:
        if not 0.0 < self.train_frac < 1.0 or not 0.0 <= self.val_frac < 1.0:
            raise ValueError("train_frac must be in (0, 1) and val_frac in [0, 1)")
        if self.train_frac + self.val_frac >= 1.0:
            raise ValueError(f"train_frac + val_frac must be < 1 (test gets the rest), got "
                             f"{self.train_frac} + {self.val_frac}")
        if self.value_clip <= 0 or self.watch_ratio_max <= 0:
            raise ValueError("value_clip and watch_ratio_max must be > 0")
        if not 0.0 < self.propensity_clip <= 1.0:
            raise ValueError("propensity_clip must be in (0, 1]")
        if self.propensity_smoothing < 0 or self.propensity_power <= 0:
            raise ValueError("propensity_smoothing must be >= 0 and propensity_power > 0")
        if self.cache_shard_rows <= 0:
            raise ValueError("cache_shard_rows must be > 0")
        if self.ray_concurrency < 0:
            raise ValueError("ray_concurrency must be >= 0")
        if self.min_user_rows < 2:
            raise ValueError(f"min_user_rows must be >= 2 (a held-out user needs a training row), got "
                             f"{self.min_user_rows}")
