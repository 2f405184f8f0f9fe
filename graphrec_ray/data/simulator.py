"""Seeded KuaiRec-layout simulator with exact ground truth (the embedded default data source).

Generative model (all draws from one seed; see :mod:`graphrec_ray.data.ground_truth` for the maths):

* **Categories.** ``n_categories`` tags with Zipf-like popularity; each item has a primary tag and,
  sometimes, one or two more (these are ``item_categories.feat``). Each tag has a latent centre in
  ``R^dim``; an item's factor is the weighted mean of its tags' centres plus noise.
* **Users** prefer a few tags (Dirichlet weights, ``pref_concentration``); a user's factor is the
  preference-weighted mean of tag centres plus noise.
* **Watch ratio.** ``log(watch_ratio) ~ Normal(mu[u, i], sigma^2)`` with
  ``mu = mu0 + b_user + b_item + scale * <p_u, q_i> / sqrt(dim)``; ``b_item`` is the item's appeal
  (longer videos get lower ratios); a view is an instant skip (ratio 0) with probability ``p_skip``.
  Hence true ``P(watch_ratio >= 0.5)``, ``E[watch_ratio]`` and ``E[log1p(watch_ratio)]`` are exact.
* **Exposure** in ``big_matrix`` is Bernoulli per (user, item) with probability
  ``min(1, density * activity_u * weight_i)``, where ``log weight_i = exposure_bias * promo_i`` and the
  promotion latent ``promo_i`` correlates only ``appeal_exposure_corr`` with appeal. Raising
  ``exposure_bias`` concentrates exposure on promoted items, so models fit on observed data
  over-rate them; ``exposure_bias = 0`` is uniform exposure. ``exposure_affinity > 0`` adds
  missing-not-at-random exposure (a recommender showing users what they already like), which
  biases click labels in ``big_matrix`` upwards relative to the unbiased ``small_matrix``.
* **small_matrix** is a fully observed block ``small_users x small_items`` (random subsets);
  ``big_matrix`` never exposes those pairs.
* **Time.** Views fall into sessions over 2020-07-05 .. 2020-09-05 (Beijing time) with a daily
  rhythm (evening peak, night trough); within a session views follow each other by play time plus
  a short gap.
* **Quirks** as in the real files, in small proportions: empty time/date/timestamp in
  ``small_matrix`` (``small_nan_time_rate``), exact duplicate rows and repeated (user, video) views in
  ``big_matrix``, injected very large watch ratios (``outlier_rate``; the lognormal also gives natural
  values above 5), zero ``video_duration`` rows (watch_ratio ``inf``), and instant skips (play 0).

**Robustness presets** (issue 10; demo size, each with ground truth): ``bursty`` (each user active in a
random ``active_fraction = 0.2`` of the window), ``popularity_strong`` / ``popularity_weak``
(``exposure_bias`` 2.5 / 0.5), ``rating_like`` (watch ratios floored to :data:`RATING_LEVELS`; clicks and
``P(click)`` unchanged, ``E[watch_ratio]`` of the truth is the latent unfloored one), ``sparse`` (density
0.012, ``activity_std`` 1.0). A model setting left ``None`` takes the preset's value
(:data:`PRESET_MODELS`), else the demo's; a value given in the config wins.

Side tables follow from the model: ``item_categories`` from the tags, ``item_daily_features``
counters drawn from each item's true exposure and engagement rates (``collect_*`` empty before
2020-07-18 as in the real file, some empty ``video_duration`` / ``video_tag_name``),
``user_features`` from activity and preferences (``onehot_feat1/2`` encode the top tags; some
``onehot`` fields empty), ``social_network`` linking users with similar tastes.

Writes the six CSVs in the published format plus ``ground_truth/`` (``model.npz``, ``params.json``,
``summary.json``, ``config.json``). Work is chunked over users (``chunk_users``) with vectorised
numpy and pyarrow formatting, so memory stays bounded at the ``full`` preset.

Example::

    >>> from graphrec_ray.data.simulator import SimulatorConfig, simulate
    >>> summary = simulate(SimulatorConfig(preset="tiny", seed=1), "/tmp/sim", progress=False)  # doctest: +SKIP
    >>> summary["rows"]["small_matrix.csv"]                                                       # doctest: +SKIP
    300
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from graphrec_ray.config import to_dict
from graphrec_ray.data import kuairec as kr
from graphrec_ray.data.ground_truth import (
    GroundTruth,
    affinity,
    expected_watch_ratio,
    exposure_probability,
    log_watch_mean,
    p_watch_at_least,
)

__all__ = ["SimulatorConfig", "PRESETS", "PRESET_MODELS", "ROBUSTNESS_PRESETS", "RATING_LEVELS", "Sizes",
           "resolve_sizes", "resolve_model", "simulate", "CATEGORY_NAMES"]

Preset = Literal["tiny", "demo", "full", "bursty", "popularity_strong", "popularity_weak", "rating_like", "sparse"]


@dataclass(frozen=True)
class Sizes:
    """Resolved dataset sizes (from a preset, with per-field overrides)."""

    n_users: int
    n_items: int
    small_users: int
    small_items: int
    density: float


#: preset -> sizes. ``full`` matches KuaiRec 2.0 (7,176 x 10,728, ~12.5M big_matrix rows, small 1,411 x 3,327).
PRESETS: dict[str, Sizes] = {
    "tiny": Sizes(n_users=60, n_items=80, small_users=15, small_items=20, density=0.25),
    "demo": Sizes(n_users=1000, n_items=1500, small_users=200, small_items=400, density=0.1),
    "full": Sizes(n_users=7176, n_items=10728, small_users=1411, small_items=3327, density=0.222),
    # robustness presets: demo size (scale them with n_users / n_items / small_* / density)
    "bursty": Sizes(n_users=1000, n_items=1500, small_users=200, small_items=400, density=0.1),
    "popularity_strong": Sizes(n_users=1000, n_items=1500, small_users=200, small_items=400, density=0.1),
    "popularity_weak": Sizes(n_users=1000, n_items=1500, small_users=200, small_items=400, density=0.1),
    "rating_like": Sizes(n_users=1000, n_items=1500, small_users=200, small_items=400, density=0.1),
    "sparse": Sizes(n_users=1000, n_items=1500, small_users=200, small_items=400, density=0.012),
}

#: Watch-ratio levels of the ``rating_like`` preset: a drawn ratio is floored to the highest level not above
#: it. 0.5 is a level, so the click label ``watch_ratio >= 0.5`` (and ``P(click)`` in the ground truth) is
#: unchanged by the flooring; ``E[watch_ratio]`` / ``E[log1p]`` of the ground truth describe the latent,
#: unfloored ratio.
RATING_LEVELS: tuple[float, ...] = (0.0, 0.25, 0.5, 1.0, 2.0)

#: The robustness presets (issue 10): data that does not look like the default simulator.
ROBUSTNESS_PRESETS: tuple[str, ...] = ("bursty", "popularity_strong", "popularity_weak", "rating_like", "sparse")

#: preset -> model settings it changes from the demo model (a field left ``None`` in the config takes the
#: preset's value here, else the demo value in :data:`_MODEL_DEFAULTS`; a value set in the config wins).
PRESET_MODELS: dict[str, dict[str, Any]] = {
    "bursty": {"active_fraction": 0.2},                   # each user active ~13 of the 63 days
    "popularity_strong": {"exposure_bias": 2.5},          # exposure Gini well above demo's
    "popularity_weak": {"exposure_bias": 0.5},            # near-flat exposure
    "rating_like": {"watch_levels": RATING_LEVELS, "outlier_rate": 0.0},   # five discrete levels, no outliers
    "sparse": {"activity_std": 1.0},                      # many users with a handful of views (with density 0.012)
}
_MODEL_DEFAULTS: dict[str, Any] = {"exposure_bias": 1.5, "activity_std": 0.5, "active_fraction": 1.0,
                                   "watch_levels": None, "outlier_rate": 0.0005}


@dataclass(frozen=True)
class SimulatorConfig:
    """Configuration of :func:`simulate` (``configs/simulate.yaml`` lists changes only)."""

    preset: Preset = "demo"                  # sizes: tiny (unit tests), demo (2-core demo), full (KuaiRec scale)
    seed: int = 20200705                     # one seed drives every draw; same seed -> same bytes
    n_users: int | None = None               # override the preset's user count
    n_items: int | None = None               # override the preset's item count
    small_users: int | None = None           # override the fully observed block's users
    small_items: int | None = None           # override the fully observed block's items
    density: float | None = None             # override the preset's base exposure rate per (user, item)
    n_categories: int = 31                   # KuaiRec 2.0 has 31 tag ids (0..30) in item_categories.feat
    dim: int = 16                            # latent factor dimension of the true model
    pref_concentration: float = 0.3          # Dirichlet concentration of user tag preferences (low = picky users)
    item_noise: float = 0.6                  # item factor noise around its tags' centre (item individuality)
    user_noise: float = 0.4                  # user factor noise around the preferred tags' centre
    affinity_std: float = 0.4                # std of the user-item affinity term in log watch ratio
    user_bias_std: float = 0.15              # std of per-user log-watch-ratio bias
    item_bias_std: float = 0.2               # std of per-item appeal (part of mu)
    duration_effect: float = 0.1             # appeal drop per std of log video duration (long videos finish less)
    mu0: float = -0.42                       # base mean of log watch ratio: ~70% clicks, ~5% above 2 (KuaiRec)
    sigma: float = 0.45                      # std of log watch ratio given (user, item): per-view noise
    p_skip: float = 0.01                     # share of instant skips (play_duration 0) in every view
    exposure_bias: float | None = None       # std of log exposure weight (None: preset's, demo 1.5); 0 = uniform
    appeal_exposure_corr: float = 0.2        # correlation of the promotion latent with true appeal (weak)
    exposure_affinity: float = 0.0           # MNAR strength: exposure also rises with the user's affinity (0 = item-only)
    activity_std: float | None = None        # log-std of per-user activity (None: preset's, demo 0.5)
    active_fraction: float | None = None     # share of the window each user is active in, at a random offset
                                             # (None: preset's, demo 1.0 = whole window; bursty 0.2)
    watch_levels: tuple[float, ...] | None = None   # floor watch ratios to these levels (must include 0 and 0.5);
                                             # None: preset's (continuous; rating_like RATING_LEVELS)
    repeat_view_rate: float = 0.03           # expected extra views per exposed pair in big_matrix
    duplicate_row_rate: float = 0.003        # share of big_matrix rows written twice, byte-identical
    outlier_rate: float | None = None        # share of rows with an injected watch ratio in [5.5, 600]
                                             # (None: preset's, demo 0.0005; rating_like 0)
    zero_duration_rate: float = 0.0002       # share of big_matrix rows with video_duration 0 (watch_ratio inf)
    small_nan_time_rate: float = 0.039       # share of small_matrix rows with empty time/date/timestamp (3.9%)
    small_blocked_rate: float = 0.0          # share of small-block pairs left out (KuaiRec: 0.4% blocked)
    social_user_rate: float = 0.066          # share of users listed in social_network.csv (472 / 7176)
    session_mean_len: float = 20.0           # mean views per session
    start_date: str = "2020-07-05"           # first local (UTC+8) day of the log window
    n_days: int = 63                         # window length in days (to 2020-09-05)
    traffic_multiplier: float = 50.0         # platform traffic per simulated user, for item_daily_features
    chunk_users: int = 256                   # users per generation chunk: bounds memory; part of the seed layout

    def __post_init__(self) -> None:
        for name in ("n_users", "n_items", "small_users", "small_items"):
            v = getattr(self, name)
            if v is not None and v < 1:
                raise ValueError(f"{name} must be >= 1, got {v}")
        for name in ("p_skip", "appeal_exposure_corr", "repeat_view_rate", "duplicate_row_rate", "outlier_rate",
                     "zero_duration_rate", "small_nan_time_rate", "small_blocked_rate", "social_user_rate"):
            v = getattr(self, name)
            if v is not None and not 0.0 <= v < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {v}")
        if self.active_fraction is not None and not 0.0 < self.active_fraction <= 1.0:
            raise ValueError(f"active_fraction must be in (0, 1], got {self.active_fraction}")
        if self.activity_std is not None and self.activity_std < 0:
            raise ValueError(f"activity_std must be >= 0, got {self.activity_std}")
        if self.watch_levels is not None:
            lv = self.watch_levels
            if list(lv) != sorted(set(lv)) or 0.0 not in lv or _CLICK not in lv:
                raise ValueError(f"watch_levels must be increasing and include 0 and {_CLICK}, got {list(lv)}")
        if self.sigma <= 0 or self.dim < 1 or self.n_categories < 2 or self.n_days < 1 or self.chunk_users < 1:
            raise ValueError("sigma, dim, n_categories (>=2), n_days and chunk_users must be positive")
        dt.date.fromisoformat(self.start_date)


def resolve_model(cfg: SimulatorConfig) -> SimulatorConfig:
    """``cfg`` with every ``None`` model setting replaced by its preset's value (else the demo value).

    Example::

        >>> resolve_model(SimulatorConfig(preset="popularity_strong")).exposure_bias
        2.5
        >>> resolve_model(SimulatorConfig(preset="popularity_strong", exposure_bias=1.0)).exposure_bias
        1.0
    """
    preset = PRESET_MODELS.get(cfg.preset, {})
    changes = {k: preset.get(k, v) for k, v in _MODEL_DEFAULTS.items() if getattr(cfg, k) is None}
    return dataclasses.replace(cfg, **changes)


def resolve_sizes(cfg: SimulatorConfig) -> Sizes:
    """Preset sizes with the config's overrides applied; the small block must fit inside."""
    p = PRESETS[cfg.preset]
    s = Sizes(
        n_users=cfg.n_users or p.n_users,
        n_items=cfg.n_items or p.n_items,
        small_users=cfg.small_users or p.small_users,
        small_items=cfg.small_items or p.small_items,
        density=p.density if cfg.density is None else cfg.density,
    )
    if s.small_users > s.n_users or s.small_items > s.n_items:
        raise ValueError(f"small block {s.small_users}x{s.small_items} exceeds {s.n_users}x{s.n_items}")
    if not 0.0 < s.density <= 1.0:
        raise ValueError(f"density must be in (0, 1], got {s.density}")
    return s


CATEGORY_NAMES: tuple[str, ...] = (
    "funny", "music", "dance", "food", "pets", "travel", "sports", "games", "beauty", "fashion", "education",
    "tech", "cars", "family", "kids", "movies", "news", "health", "fitness", "art", "diy", "nature", "comedy",
    "drama", "anime", "vlog", "lifestyle", "photography", "science", "history", "farming",
)
# relative view intensity per local hour 0..23: night trough, lunch bump, evening peak.
_HOUR_RHYTHM = np.array([3, 2, 1.5, 1, .8, .8, 1.2, 2, 3, 3.5, 4, 4.5, 5, 4.5, 4, 4, 4.5, 5, 6, 7, 7.5, 7, 6, 4.5])
_DAY_MS = 86_400_000
_CLICK = 0.5


# ------------------------------------------------------------------------------------------------ model
@dataclass(frozen=True)
class _Model:
    user_f: np.ndarray          # (U, d)
    item_f: np.ndarray          # (I, d)
    user_b: np.ndarray          # (U,)
    item_b: np.ndarray          # (I,)
    scale: float
    activity: np.ndarray        # (U,)
    weight: np.ndarray          # (I,) exposure weight, mean 1
    item_cats: list[list[int]]  # tags per item, primary first
    cat_weights: np.ndarray     # (I, C)
    prefs: np.ndarray           # (U, C)
    duration_ms: np.ndarray     # (I,) int64
    small_users: np.ndarray     # sorted user indices
    small_items: np.ndarray     # sorted item indices
    span_start: np.ndarray      # (U,) int64 first active day of each user
    span_days: np.ndarray       # (U,) int64 number of active days (n_days unless active_fraction < 1)


def _rng(seed: int, *key: int) -> np.random.Generator:
    """Independent stream for one component/chunk: results don't depend on chunking of other parts."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


def _standardize(x: np.ndarray) -> np.ndarray:
    sd = x.std()
    return (x - x.mean()) / (sd if sd > 0 else 1.0)


def _build_model(cfg: SimulatorConfig, sz: Sizes) -> _Model:
    rng = _rng(cfg.seed, 0)
    C, d, U, I = cfg.n_categories, cfg.dim, sz.n_users, sz.n_items
    cat_pop = rng.permutation((np.arange(C) + 1.0) ** -0.8)
    cat_pop /= cat_pop.sum()
    centres = rng.normal(size=(C, d))
    primary = rng.choice(C, size=I, p=cat_pop)
    n_extra = rng.choice(3, size=I, p=[0.6, 0.3, 0.1])
    extra = rng.choice(C, size=(I, 2), p=cat_pop)
    item_cats: list[list[int]] = []
    cat_w = np.zeros((I, C))
    for i in range(I):
        cats = [int(primary[i])]
        for c in extra[i, : n_extra[i]]:
            if int(c) not in cats:
                cats.append(int(c))
        item_cats.append(cats)
        cat_w[i, cats[0]] = 1.0
        for c in cats[1:]:
            cat_w[i, c] = 0.5
    cat_w /= cat_w.sum(axis=1, keepdims=True)
    item_f = cat_w @ centres + cfg.item_noise * rng.normal(size=(I, d))
    prefs = rng.dirichlet(np.full(C, cfg.pref_concentration), size=U)
    user_f = prefs @ centres + cfg.user_noise * rng.normal(size=(U, d))
    # normalise the affinity term to the requested std on a fixed sample of pairs.
    su, si = rng.integers(0, U, 4000), rng.integers(0, I, 4000)
    raw_aff = np.einsum("nd,nd->n", user_f[su], item_f[si]) / np.sqrt(d)
    scale = float(cfg.affinity_std / max(raw_aff.std(), 1e-12))
    duration_ms = np.clip(np.rint(np.exp(rng.normal(np.log(14_000), 0.7, size=I))), 2_000, 600_000).astype(np.int64)
    appeal = cfg.item_bias_std * rng.normal(size=I)
    item_b = appeal - cfg.duration_effect * _standardize(np.log(duration_ms))
    user_b = cfg.user_bias_std * rng.normal(size=U)
    rho = cfg.appeal_exposure_corr
    promo = rho * _standardize(item_b) + np.sqrt(1.0 - rho * rho) * rng.normal(size=I)
    weight = np.exp(cfg.exposure_bias * promo)
    weight /= weight.mean()
    activity = np.exp(cfg.activity_std * rng.normal(size=U) - 0.5 * cfg.activity_std ** 2)
    small_users = np.sort(rng.choice(U, size=sz.small_users, replace=False))
    small_items = np.sort(rng.choice(I, size=sz.small_items, replace=False))
    span_days = np.full(U, cfg.n_days, dtype=np.int64)
    span_start = np.zeros(U, dtype=np.int64)
    if cfg.active_fraction < 1.0:   # own stream: the demo model's draws above stay byte-identical
        span_days[:] = max(1, int(round(cfg.active_fraction * cfg.n_days)))
        span_start = _rng(cfg.seed, 7).integers(0, cfg.n_days - span_days + 1)
    if cfg.watch_levels is not None:   # durations in whole 4 ms steps: level * duration is an exact play time
        duration_ms = np.maximum(4, duration_ms // 4 * 4)
    return _Model(user_f, item_f, user_b, item_b, scale, activity, weight, item_cats, cat_w, prefs, duration_ms,
                  small_users, small_items, span_start, span_days)


# ------------------------------------------------------------------------------------------------ time
def _session_offsets(rng: np.random.Generator, users: np.ndarray, play_ms: np.ndarray, cfg: SimulatorConfig,
                     m: _Model | None = None) -> np.ndarray:
    """Local ms offsets from the window start for rows of ``users`` (sorted ascending), session by session.

    With ``cfg.active_fraction < 1`` session days fall in each user's active span (``m.span_*``).
    """
    n = len(users)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    _, user_pos, counts = np.unique(users, return_inverse=True, return_counts=True)
    n_sess = np.maximum(1, np.rint(counts / cfg.session_mean_len)).astype(np.int64)
    sess_base = np.cumsum(n_sess) - n_sess
    gsess = sess_base[user_pos] + np.floor(rng.random(n) * n_sess[user_pos]).astype(np.int64)
    total = int(n_sess.sum())
    if m is not None and cfg.active_fraction < 1.0:
        user_of_sess = np.repeat(np.unique(users), n_sess)
        day = m.span_start[user_of_sess] + np.floor(rng.random(total) * m.span_days[user_of_sess]).astype(np.int64)
    else:
        day = rng.integers(0, cfg.n_days, total)
    hour = rng.choice(24, size=total, p=_HOUR_RHYTHM / _HOUR_RHYTHM.sum())
    start = ((day * 24 + hour) * 3600 * 1000 + np.floor(rng.random(total) * 3_600_000)).astype(np.int64)
    order = np.lexsort((rng.random(n), gsess))
    gaps = (np.minimum(play_ms, 300_000) + rng.exponential(4000.0, size=n).astype(np.int64) + 200)[order]
    excl = np.cumsum(gaps) - gaps
    gs = gsess[order]
    first = np.ones(n, dtype=bool)
    first[1:] = gs[1:] != gs[:-1]
    first_idx = np.maximum.accumulate(np.where(first, np.arange(n), 0))
    t = (start[gs] + excl - excl[first_idx]) % (cfg.n_days * _DAY_MS)   # a late session may wrap (rare)
    out = np.empty(n, dtype=np.int64)
    out[order] = t
    return out


@dataclass(frozen=True)
class _Clock:
    epoch_ms: int                # Unix ms of the window start (local midnight, UTC+8)
    dates: np.ndarray            # (n_days,) int64 yyyymmdd

    @classmethod
    def make(cls, cfg: SimulatorConfig) -> "_Clock":
        start = dt.date.fromisoformat(cfg.start_date)
        local_midnight = dt.datetime(start.year, start.month, start.day, tzinfo=dt.timezone.utc)
        epoch_ms = int(local_midnight.timestamp() * 1000) - kr.TIMEZONE_OFFSET_S * 1000
        days = [start + dt.timedelta(days=k) for k in range(cfg.n_days)]
        return cls(epoch_ms, np.array([d.year * 10000 + d.month * 100 + d.day for d in days], dtype=np.int64))

    def _time_text(self, day: np.ndarray, ms_of_day: np.ndarray) -> pa.Array:
        """``"2020-07-05 00:08:23.438"`` strings, composed from integer parts (3x faster than strftime)."""
        prefix = pa.array([f"{d // 10000:04d}-{d // 100 % 100:02d}-{d % 100:02d} " for d in self.dates.tolist()])

        def pad(x: np.ndarray, width: int) -> pa.Array:
            return pc.utf8_lpad(pc.cast(pa.array(x), pa.string()), width, "0")

        hms = pc.binary_join_element_wise(pad(ms_of_day // 3_600_000, 2), pad(ms_of_day // 60_000 % 60, 2),
                                          pad(ms_of_day // 1000 % 60, 2), ":")
        stamp = pc.binary_join_element_wise(prefix.take(pa.array(day)), hms, "")
        return pc.binary_join_element_wise(stamp, pad(ms_of_day % 1000, 3), ".")

    def columns(self, offset_ms: np.ndarray, valid: np.ndarray | None = None) -> tuple[pa.Array, pa.Array, pa.Array]:
        """(time, date, timestamp) arrays; rows with ``valid == False`` are null (NaN in the CSV)."""
        mask = None if valid is None else pa.array(~valid)
        day = np.minimum(offset_ms // _DAY_MS, len(self.dates) - 1)
        time = self._time_text(day, offset_ms - day * _DAY_MS)
        date = self.dates[day]
        ts = (offset_ms + self.epoch_ms) / 1000.0
        if mask is None:
            return time, pa.array(date), pa.array(ts)
        time = pc.if_else(mask, pa.scalar(None, pa.string()), time)
        return time, pa.array(date.astype(np.float64), mask=~valid), pa.array(ts, mask=~valid)


# ------------------------------------------------------------------------------------------------ views
def _expected_progress(mu: np.ndarray, sigma: float, p_skip: float) -> np.ndarray:
    """``E[min(watch_ratio, 1)]`` (closed form for the lognormal with skips)."""
    from scipy.special import ndtr

    below = np.exp(mu + 0.5 * sigma * sigma) * ndtr((-mu - sigma * sigma) / sigma)
    return (1.0 - p_skip) * (below + ndtr(mu / sigma))


def _draw_watch(rng: np.random.Generator, mu: np.ndarray, cfg: SimulatorConfig) -> tuple[np.ndarray, np.ndarray]:
    """(watch ratio from the model, injected-outlier flag) for rows with log-mean ``mu``."""
    wr = np.exp(mu + cfg.sigma * rng.normal(size=mu.shape))
    wr[rng.random(mu.shape) < cfg.p_skip] = 0.0
    outlier = rng.random(mu.shape) < cfg.outlier_rate
    wr[outlier] = np.exp(rng.uniform(np.log(5.5), np.log(600.0), size=int(outlier.sum())))
    if cfg.watch_levels is not None:
        levels = np.asarray(cfg.watch_levels, dtype=np.float64)
        wr = levels[np.searchsorted(levels, wr, side="right") - 1]
    return wr, outlier


def _interaction_table(users: np.ndarray, items: np.ndarray, play: np.ndarray, vdur: np.ndarray,
                       cols: tuple[pa.Array, pa.Array, pa.Array]) -> pa.Table:
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = play / vdur.astype(np.float64)
    time, date, ts = cols
    return pa.table({"user_id": users.astype(np.int64), "video_id": items.astype(np.int64),
                     "play_duration": play.astype(np.int64), "video_duration": vdur.astype(np.int64),
                     "time": time, "date": date, "timestamp": ts, "watch_ratio": ratio})


class _Stats:
    """Counters of what was written (for the summary and the tests)."""

    def __init__(self, n_items: int) -> None:
        self.c: dict[str, int] = {}
        self.exposures = np.zeros(n_items, dtype=np.int64)
        self.exp_show = np.zeros(n_items)
        self.exp_rates = {k: np.zeros(n_items) for k in ("p03", "p05", "p1", "p2", "wr", "prog")}

    def add(self, key: str, n: int) -> None:
        self.c[key] = self.c.get(key, 0) + int(n)


def _big_chunks(cfg: SimulatorConfig, m: _Model, sz: Sizes, clock: _Clock, stats: _Stats) -> Iterator[bytes]:
    small_u = np.zeros(sz.n_users, dtype=bool)
    small_u[m.small_users] = True
    small_i = np.zeros(sz.n_items, dtype=bool)
    small_i[m.small_items] = True
    for k, a in enumerate(range(0, sz.n_users, cfg.chunk_users)):
        b = min(a + cfg.chunk_users, sz.n_users)
        rng = _rng(cfg.seed, 1, k)
        mu = log_watch_mean(m.user_f[a:b], m.item_f, m.user_b[a:b], m.item_b, cfg.mu0, m.scale)
        aff = affinity(m.user_f[a:b], m.item_f, m.scale) if cfg.exposure_affinity else None
        pi = exposure_probability(m.activity[a:b], m.weight, sz.density, aff, cfg.exposure_affinity,
                                  cfg.affinity_std)
        pi[np.ix_(small_u[a:b], small_i)] = 0.0
        # platform-level expected engagement per item (for item_daily_features)
        stats.exp_show += pi.sum(axis=0)
        for key, thr in (("p03", 0.3), ("p05", _CLICK), ("p1", 1.0), ("p2", 2.0)):
            stats.exp_rates[key] += (pi * p_watch_at_least(mu, cfg.sigma, cfg.p_skip, thr)).sum(axis=0)
        stats.exp_rates["wr"] += (pi * expected_watch_ratio(mu, cfg.sigma, cfg.p_skip)).sum(axis=0)
        stats.exp_rates["prog"] += (pi * _expected_progress(mu, cfg.sigma, cfg.p_skip)).sum(axis=0)
        uu, ii = np.nonzero(rng.random(pi.shape) < pi)
        stats.add("big_exposed_pairs", len(uu))
        n_views = 1 + rng.poisson(cfg.repeat_view_rate, size=len(uu))
        stats.add("big_repeat_views", int((n_views - 1).sum()))
        mu_rows = np.repeat(mu[uu, ii], n_views)
        uu, ii = np.repeat(uu + a, n_views), np.repeat(ii, n_views)
        wr, outlier = _draw_watch(rng, mu_rows, cfg)
        vdur = m.duration_ms[ii].copy()
        play = np.rint(wr * vdur).astype(np.int64)
        zero = rng.random(len(uu)) < cfg.zero_duration_rate
        vdur[zero] = 0
        play[zero] = np.maximum(play[zero], 1)
        stats.add("big_injected_outliers", outlier.sum())
        stats.add("big_zero_duration", zero.sum())
        stats.add("big_skips", (play == 0).sum())
        offs = _session_offsets(rng, uu, play, cfg, m)
        order = np.lexsort((offs, uu))
        uu, ii, play, vdur, offs = uu[order], ii[order], play[order], vdur[order], offs[order]
        dup = rng.random(len(uu)) < cfg.duplicate_row_rate
        rep = 1 + dup.astype(np.int64)
        stats.add("big_duplicate_rows", dup.sum())
        uu, ii, play, vdur, offs = (np.repeat(x, rep) for x in (uu, ii, play, vdur, offs))
        np.add.at(stats.exposures, ii, 1)
        table = _interaction_table(uu, ii, play, vdur, clock.columns(offs))
        stats.add("big_rows", table.num_rows)
        stats.add("big_clicks", int((play >= _CLICK * vdur)[vdur > 0].sum()))
        stats.add("big_ratio_above_5", int((play > 5 * vdur)[vdur > 0].sum()))
        yield kr.format_csv_rows(table)


def _small_chunks(cfg: SimulatorConfig, m: _Model, sz: Sizes, clock: _Clock, stats: _Stats) -> Iterator[bytes]:
    users = m.small_users
    for k, a in enumerate(range(0, len(users), cfg.chunk_users)):
        us = users[a:a + cfg.chunk_users]
        rng = _rng(cfg.seed, 2, k)
        mu = log_watch_mean(m.user_f[us], m.item_f[m.small_items], m.user_b[us], m.item_b[m.small_items],
                            cfg.mu0, m.scale)
        keep = rng.random(mu.shape) >= cfg.small_blocked_rate
        r, c = np.nonzero(keep)
        stats.add("small_blocked_pairs", keep.size - len(r))
        uu, ii = us[r], m.small_items[c]
        wr, outlier = _draw_watch(rng, mu[r, c], cfg)
        vdur = m.duration_ms[ii]
        play = np.rint(wr * vdur).astype(np.int64)
        offs = _session_offsets(rng, uu, play, cfg, m)
        valid = rng.random(len(uu)) >= cfg.small_nan_time_rate
        # rows without a time go last within each user, as in the published file
        order = np.lexsort((offs, ~valid, uu))
        uu, ii, play, vdur, offs, valid = (x[order] for x in (uu, ii, play, vdur, offs, valid))
        stats.add("small_injected_outliers", outlier.sum())
        stats.add("small_nan_time", (~valid).sum())
        stats.add("small_skips", (play == 0).sum())
        table = _interaction_table(uu, ii, play, vdur, clock.columns(offs, valid))
        stats.add("small_rows", table.num_rows)
        stats.add("small_clicks", int((play >= _CLICK * vdur).sum()))
        stats.add("small_ratio_above_5", int((play > 5 * vdur).sum()))
        yield kr.format_csv_rows(table)


# ------------------------------------------------------------------------------------------------ side tables
def _item_categories(m: _Model) -> pa.Table:
    feats = ["[" + ", ".join(str(c) for c in cats) + "]" for cats in m.item_cats]
    return pa.table({"video_id": np.arange(len(feats), dtype=np.int64), "feat": pa.array(feats)})


def _bucket(values: np.ndarray, edges: list[float], labels: list[str]) -> list[str]:
    return [labels[j] for j in np.searchsorted(np.asarray(edges), values, side="left")]


def _user_features(cfg: SimulatorConfig, m: _Model, n_friends: np.ndarray) -> pa.Table:
    rng = _rng(cfg.seed, 3)
    U = len(m.activity)
    q = np.argsort(np.argsort(-m.activity)) / max(U - 1, 1)   # 0 = most active
    degree = np.where(q < 0.6, "full_active", np.where(q < 0.85, "high_active",
                      np.where(q < 0.98, "middle_active", "UNKNOWN")))
    follow = np.floor(np.exp(rng.normal(3.5, 1.2, U))).astype(np.int64) * (rng.random(U) > 0.05)
    fans = np.floor(np.exp(rng.normal(1.5, 1.6, U))).astype(np.int64) * (rng.random(U) > 0.2)
    friends = n_friends + rng.poisson(3.0, U) * (rng.random(U) > 0.3)
    register = rng.integers(15, 2500, U)
    top = np.argsort(-m.prefs, axis=1)
    cards = [2, 7, 31, 1000, 40, 8, 1500, 1200, 50, 10, 80, 10, 3, 2, 2, 2, 2, 2]
    nan_rate = {4: 0.028, 12: 0.011, 13: 0.01, 14: 0.01, 15: 0.01, 16: 0.01, 17: 0.01}
    cols: dict[str, Any] = {
        "user_id": np.arange(U, dtype=np.int64),
        "user_active_degree": pa.array(degree.tolist()),
        "is_lowactive_period": (q > 0.95).astype(np.int64),
        "is_live_streamer": (rng.random(U) < 0.02).astype(np.int64),
        "is_video_author": (rng.random(U) < 0.3).astype(np.int64),
        "follow_user_num": follow,
        "follow_user_num_range": pa.array(_bucket(follow, [0, 10, 50, 100, 150, 250, 500],
                                                  ["0", "(0,10]", "(10,50]", "(50,100]", "(100,150]", "(150,250]",
                                                   "(250,500]", "500+"])),
        "fans_user_num": fans,
        "fans_user_num_range": pa.array(_bucket(fans, [0, 9, 99, 999, 4999, 9999, 99999],
                                                ["0", "[1,10)", "[10,100)", "[100,1k)", "[1k,5k)", "[5k,1w)",
                                                 "[1w,10w)", "[10w,100w)"])),
        "friend_user_num": friends,
        "friend_user_num_range": pa.array(_bucket(friends, [0, 4, 29, 59, 119, 249],
                                                  ["0", "[1,5)", "[5,30)", "[30,60)", "[60,120)", "[120,250)",
                                                   "250+"])),
        "register_days": register,
        "register_days_range": pa.array(_bucket(register, [30, 60, 90, 180, 365, 730],
                                                ["15-30", "31-60", "61-90", "91-180", "181-365", "366-730",
                                                 "730+"])),
    }
    for j, card in enumerate(cards):
        if j == 1:
            v = top[:, 0] % card                 # informative: the user's favourite tag (mod 7)
        elif j == 2:
            v = top[:, 1] % card                 # informative: the second favourite tag
        else:
            v = rng.integers(0, card, U)
        v = v.astype(np.float64)
        if j in nan_rate:
            v[rng.random(U) < nan_rate[j]] = np.nan
            cols[f"onehot_feat{j}"] = pa.array(v, from_pandas=True)   # float column: written "1.0", NaN empty
        else:
            cols[f"onehot_feat{j}"] = v.astype(np.int64)
    return pa.table({c: cols[c] for c in kr.USER_FEATURES_COLUMNS})


def _social_network(cfg: SimulatorConfig, m: _Model) -> tuple[pa.Table, np.ndarray]:
    rng = _rng(cfg.seed, 4)
    U = len(m.activity)
    n_social = max(2, int(round(cfg.social_user_rate * U)))
    members = np.sort(rng.choice(U, size=min(n_social, U), replace=False))
    p = m.prefs[members]
    sim = (p / np.linalg.norm(p, axis=1, keepdims=True)) @ (p / np.linalg.norm(p, axis=1, keepdims=True)).T
    np.fill_diagonal(sim, -np.inf)
    logits = 4.0 * sim
    prob = np.exp(logits - logits.max(axis=1, keepdims=True))
    prob /= prob.sum(axis=1, keepdims=True)
    adj = np.zeros((len(members), len(members)), dtype=bool)
    for r in range(len(members)):
        k = min(1 + rng.poisson(0.8), len(members) - 1)
        adj[r, rng.choice(len(members), size=k, replace=False, p=prob[r])] = True
    adj |= adj.T
    lists = ["[" + ", ".join(str(int(members[c])) for c in np.nonzero(adj[r])[0]) + "]" for r in range(len(members))]
    n_friends = np.zeros(U, dtype=np.int64)
    n_friends[members] = adj.sum(axis=1)
    return pa.table({"user_id": members.astype(np.int64), "friend_list": pa.array(lists)}), n_friends


_UPLOAD_TYPES = ("ShortImport", "Web", "Kmovie", "ShortCamera", "LongImport", "PhotoCopy", "LongCamera",
                 "PictureSet", "FollowShoot", "LipsSync")
_OTHER_RATES = {  # per-play base rates of the minor counters
    "comment_stay_duration": 0.0, "comment_cnt": 0.004, "direct_comment_cnt": 0.003, "reply_comment_cnt": 0.001,
    "delete_comment_cnt": 0.0001, "comment_like_cnt": 0.002, "follow_cnt": 0.003, "cancel_follow_cnt": 0.0003,
    "share_cnt": 0.002, "download_cnt": 0.0005, "report_cnt": 0.0002, "reduce_similar_cnt": 0.001,
    "collect_cnt": 0.003, "cancel_collect_cnt": 0.0003,
}


def _item_daily_chunks(cfg: SimulatorConfig, m: _Model, sz: Sizes, clock: _Clock, stats: _Stats,
                       block_items: int = 2000) -> Iterator[bytes]:
    """One row per (item, day); counters drawn from the item's true platform-level rates."""
    rng_static = _rng(cfg.seed, 5)
    I, D = sz.n_items, cfg.n_days
    author = rng_static.integers(0, max(1, I // 3), I)
    video_type = np.where(rng_static.random(I) < 0.03, "AD", "NORMAL")
    start = dt.date.fromisoformat(cfg.start_date)
    upload_off = rng_static.integers(1, 365, I)
    upload_dt = [(start - dt.timedelta(days=int(o))).isoformat() for o in upload_off]
    upload_type = rng_static.choice(np.array(_UPLOAD_TYPES), size=I)
    visible = np.where(rng_static.random(I) < 0.99, "public", "friend_visible")
    wh = np.array([[720, 1280], [1080, 1920], [544, 960], [720, 720], [1280, 720]])
    shape = wh[rng_static.choice(len(wh), size=I, p=[0.6, 0.2, 0.1, 0.05, 0.05])]
    music = rng_static.integers(0, 100_000, I)
    tag_id = np.array([c[0] for c in m.item_cats], dtype=np.int64)
    tag_name_missing = rng_static.random(I) < 0.09
    # platform-level per-show rates from the true model (exposure-weighted over users)
    show = np.maximum(stats.exp_show, 1e-9)
    rate = {k: np.clip(v / show, 0.0, 1.0) for k, v in stats.exp_rates.items() if k != "wr"}
    progress = rate["prog"]
    mean_wr = stats.exp_rates["wr"] / show
    weekend = np.array([(start + dt.timedelta(days=d)).weekday() >= 5 for d in range(D)])
    for k, a in enumerate(range(0, I, block_items)):
        b = min(a + block_items, I)
        rng = _rng(cfg.seed, 6, k)
        items = np.repeat(np.arange(a, b), D)
        day = np.tile(np.arange(D), b - a)
        lam = cfg.traffic_multiplier * stats.exp_show[items] / D * np.where(weekend[day], 1.15, 0.95)
        show_cnt = rng.poisson(lam)
        play_cnt = rng.binomial(show_cnt, 1.0 - cfg.p_skip)
        valid = rng.binomial(show_cnt, rate["p05"][items])
        complete = rng.binomial(valid, np.clip(rate["p1"][items] / np.maximum(rate["p05"][items], 1e-12), 0, 1))
        long_play = rng.binomial(complete, np.clip(rate["p2"][items] / np.maximum(rate["p1"][items], 1e-12), 0, 1))
        short_play = rng.binomial(show_cnt, 1.0 - rate["p03"][items])
        engaged = rate["p2"][items]
        like = rng.binomial(play_cnt, np.clip(0.01 + 0.08 * engaged, 0, 1))

        def users_of(cnt: np.ndarray) -> np.ndarray:
            return cnt - rng.binomial(cnt, 0.03)

        cols: dict[str, Any] = {
            "video_id": items.astype(np.int64), "date": clock.dates[day].astype(np.int64),
            "author_id": author[items], "video_type": pa.array(video_type[items].tolist()),
            "upload_dt": pa.array([upload_dt[i] for i in items]), "upload_type": pa.array(upload_type[items].tolist()),
            "visible_status": pa.array(visible[items].tolist()),
            "video_duration": pa.array(m.duration_ms[items].astype(np.float64), mask=rng.random(len(items)) < 0.031),
            "video_width": shape[items, 0].astype(np.int64), "video_height": shape[items, 1].astype(np.int64),
            "music_id": music[items], "video_tag_id": tag_id[items],
            "video_tag_name": pa.array([CATEGORY_NAMES[t % len(CATEGORY_NAMES)] for t in tag_id[items]],
                                       mask=tag_name_missing[items]),
            "show_cnt": show_cnt, "show_user_num": users_of(show_cnt), "play_cnt": play_cnt,
            "play_user_num": users_of(play_cnt),
            "play_duration": np.rint(play_cnt * mean_wr[items] * m.duration_ms[items]).astype(np.int64),
            "complete_play_cnt": complete, "complete_play_user_num": users_of(complete),
            "valid_play_cnt": valid, "valid_play_user_num": users_of(valid),
            "long_time_play_cnt": long_play, "long_time_play_user_num": users_of(long_play),
            "short_time_play_cnt": short_play, "short_time_play_user_num": users_of(short_play),
            "play_progress": np.where(show_cnt > 0, np.round(progress[items], 6), 0.0),
            "comment_stay_duration": rng.poisson(play_cnt * 50.0 * (0.5 + engaged)),
            "like_cnt": like, "like_user_num": users_of(like), "click_like_cnt": like - rng.binomial(like, 0.2),
        }
        cols["double_click_cnt"] = like - cols["click_like_cnt"]
        cols["cancel_like_cnt"] = rng.binomial(like, 0.02)
        cols["cancel_like_user_num"] = users_of(cols["cancel_like_cnt"])
        for name in kr.DAILY_COUNTER_COLUMNS:
            if name in cols:
                continue
            if name.endswith("_user_num"):
                cols[name] = users_of(cols[name.replace("_user_num", "_cnt")])
                continue
            base = _OTHER_RATES.get(name, 0.001)
            cnt = rng.binomial(play_cnt, np.clip(base * (0.5 + engaged), 0, 1))
            cols[name] = cnt
        collect_missing = day < 13                      # collect_* not logged before 2020-07-18 (~20% of rows)
        for name in ("collect_cnt", "collect_user_num", "cancel_collect_cnt", "cancel_collect_user_num"):
            cols[name] = pa.array(cols[name].astype(np.float64), mask=collect_missing)
        # order counters so that *_user_num follow their *_cnt (computed above in any order)
        table = pa.table({c: cols[c] for c in kr.ITEM_DAILY_FEATURES_COLUMNS})
        stats.add("item_daily_rows", table.num_rows)
        stats.add("item_daily_null_collect_cnt", int(collect_missing.sum()))
        yield kr.format_csv_rows(table)


# ------------------------------------------------------------------------------------------------ driver
def _write(path: Path, columns: tuple[str, ...], chunks: Iterator[bytes] | list[bytes]) -> None:
    with open(path, "wb") as f:
        f.write(kr.csv_header(columns))
        for chunk in chunks:
            f.write(chunk)


def _top_decile_share(x: np.ndarray) -> float:
    x = np.sort(np.asarray(x, dtype=np.float64))[::-1]
    k = max(1, int(round(0.1 * len(x))))
    return float(x[:k].sum() / max(x.sum(), 1e-12))


def _gini(x: np.ndarray) -> float:
    x = np.sort(np.asarray(x, dtype=np.float64))
    n = len(x)
    if n == 0 or x.sum() <= 0:
        return 0.0
    return float((2 * np.arange(1, n + 1) - n - 1).dot(x) / (n * x.sum()))


def simulate(cfg: SimulatorConfig, out_dir: str | Path, progress: bool = True) -> dict[str, Any]:
    """Write a KuaiRec-layout dataset with ground truth into ``out_dir``; return a summary.

    Args:
        cfg: sizes, model and quirk settings (see :class:`SimulatorConfig`); same config -> same bytes.
        out_dir: created if missing; the six CSVs go there and the truth to ``out_dir/ground_truth/``.
        progress: show tqdm bars over user chunks.

    Returns:
        JSON-friendly dict: ``sizes``, ``rows`` per file, ``quirks`` (counts of each injected quirk),
        ``click_rate`` (big/small), ``exposure`` (top-decile share and Gini of exposures vs of true
        appeal, correlation of exposure with appeal). Also written to ``ground_truth/summary.json``.
    """
    from tqdm.auto import tqdm

    cfg = resolve_model(cfg)
    sz = resolve_sizes(cfg)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model = _build_model(cfg, sz)
    clock = _Clock.make(cfg)
    stats = _Stats(sz.n_items)
    n_big = -(-sz.n_users // cfg.chunk_users)
    n_small = -(-sz.small_users // cfg.chunk_users)
    bar = dict(disable=not progress, unit="chunk", leave=False)
    _write(out / kr.BIG_MATRIX, kr.INTERACTION_COLUMNS,
           tqdm(_big_chunks(cfg, model, sz, clock, stats), total=n_big, desc="big_matrix", **bar))
    _write(out / kr.SMALL_MATRIX, kr.INTERACTION_COLUMNS,
           tqdm(_small_chunks(cfg, model, sz, clock, stats), total=n_small, desc="small_matrix", **bar))
    social, n_friends = _social_network(cfg, model)
    _write(out / kr.SOCIAL_NETWORK, kr.SOCIAL_NETWORK_COLUMNS, [kr.format_csv_rows(social)])
    _write(out / kr.ITEM_CATEGORIES, kr.ITEM_CATEGORIES_COLUMNS, [kr.format_csv_rows(_item_categories(model))])
    _write(out / kr.USER_FEATURES, kr.USER_FEATURES_COLUMNS, [kr.format_csv_rows(_user_features(cfg, model, n_friends))])
    _write(out / kr.ITEM_DAILY_FEATURES, kr.ITEM_DAILY_FEATURES_COLUMNS,
           tqdm(_item_daily_chunks(cfg, model, sz, clock, stats), desc="item_daily_features", **bar))

    item_prop = stats.exp_show / sz.n_users
    gt = GroundTruth(
        user_ids=np.arange(sz.n_users, dtype=np.int64), video_ids=np.arange(sz.n_items, dtype=np.int64),
        user_factors=model.user_f, item_factors=model.item_f, user_bias=model.user_b, item_bias=model.item_b,
        activity=model.activity, exposure_weight=model.weight, item_propensity=item_prop,
        small_user_ids=model.small_users.astype(np.int64), small_video_ids=model.small_items.astype(np.int64),
        item_categories=model.cat_weights, user_preferences=model.prefs,
        params={"mu0": cfg.mu0, "scale": model.scale, "sigma": cfg.sigma, "p_skip": cfg.p_skip,
                "density": sz.density, "click_threshold": _CLICK, "start_date": cfg.start_date,
                "exposure_affinity": cfg.exposure_affinity, "affinity_std": cfg.affinity_std,
                "n_days": cfg.n_days, "timezone_offset_s": kr.TIMEZONE_OFFSET_S},
    )
    if cfg.active_fraction < 1.0:   # only when set: the demo's params.json keeps its bytes
        gt.params["active_fraction"] = cfg.active_fraction
    if cfg.watch_levels is not None:
        gt.params["watch_levels"] = list(cfg.watch_levels)
    gt_dir = gt.save(out)
    appeal = stats.exp_rates["p05"] / np.maximum(stats.exp_show, 1e-12)   # exposure-weighted true click rate
    c = stats.c
    summary: dict[str, Any] = {
        "preset": cfg.preset, "seed": cfg.seed,
        "sizes": {"n_users": sz.n_users, "n_items": sz.n_items, "small_users": sz.small_users,
                  "small_items": sz.small_items, "density": sz.density},
        "rows": {kr.BIG_MATRIX: c.get("big_rows", 0), kr.SMALL_MATRIX: c.get("small_rows", 0),
                 kr.ITEM_CATEGORIES: sz.n_items, kr.USER_FEATURES: sz.n_users,
                 kr.ITEM_DAILY_FEATURES: c.get("item_daily_rows", 0), kr.SOCIAL_NETWORK: social.num_rows},
        "quirks": {
            "small_nan_time_rows": c.get("small_nan_time", 0),
            "small_blocked_pairs": c.get("small_blocked_pairs", 0),
            "big_duplicate_rows": c.get("big_duplicate_rows", 0),
            "big_repeat_views": c.get("big_repeat_views", 0),
            "injected_outliers": c.get("big_injected_outliers", 0) + c.get("small_injected_outliers", 0),
            "watch_ratio_above_5": c.get("big_ratio_above_5", 0) + c.get("small_ratio_above_5", 0),
            "big_zero_video_duration": c.get("big_zero_duration", 0),
            "zero_play_duration": c.get("big_skips", 0) + c.get("small_skips", 0),
            "item_daily_null_collect_cnt": c.get("item_daily_null_collect_cnt", 0),
        },
        "big_exposed_pairs": c.get("big_exposed_pairs", 0),
        "click_rate": {"big_matrix": c.get("big_clicks", 0) / max(c.get("big_rows", 1), 1),
                       "small_matrix": c.get("small_clicks", 0) / max(c.get("small_rows", 1), 1)},
        "exposure": {
            "top_decile_share_exposures": _top_decile_share(stats.exposures),
            "top_decile_share_appeal": _top_decile_share(appeal),
            "gini_exposures": _gini(stats.exposures),
            "gini_appeal": _gini(appeal),
            "corr_exposure_appeal": float(np.corrcoef(item_prop, model.item_b)[0, 1]) if sz.n_items > 1 else 0.0,
        },
    }
    (gt_dir / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    (gt_dir / "config.json").write_text(json.dumps(to_dict(cfg), indent=2, sort_keys=True) + "\n")
    return summary
