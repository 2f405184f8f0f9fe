"""The simulator's generative model: latent tag factors, biases, exposure weights, the session clock and the
watch-ratio draws (the maths of :mod:`graphrec_ray.sources.simulator.ground_truth`)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from graphrec_ray.sources import kuairec as kr
from graphrec_ray.sources.simulator.presets import SimulatorConfig, Sizes

CATEGORY_NAMES: tuple[str, ...] = (
    "funny", "music", "dance", "food", "pets", "travel", "sports", "games", "beauty", "fashion", "education",
    "tech", "cars", "family", "kids", "movies", "news", "health", "fitness", "art", "diy", "nature", "comedy",
    "drama", "anime", "vlog", "lifestyle", "photography", "science", "history", "farming",
)
# relative view intensity per local hour 0..23: night trough, lunch bump, evening peak.
_HOUR_RHYTHM = np.array([3, 2, 1.5, 1, .8, .8, 1.2, 2, 3, 3.5, 4, 4.5, 5, 4.5, 4, 4, 4.5, 5, 6, 7, 7.5, 7, 6, 4.5])
_DAY_MS = 86_400_000


# ------------------------------------------------------------------------------------------------ model
@dataclass(frozen=True)
class SimModel:
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


def seeded_rng(seed: int, *key: int) -> np.random.Generator:
    """Independent stream for one component/chunk: results don't depend on chunking of other parts."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


def _standardize(x: np.ndarray) -> np.ndarray:
    sd = x.std()
    return (x - x.mean()) / (sd if sd > 0 else 1.0)


def build_model(cfg: SimulatorConfig, sz: Sizes) -> SimModel:
    rng = seeded_rng(cfg.seed, 0)
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
        span_start = seeded_rng(cfg.seed, 7).integers(0, cfg.n_days - span_days + 1)
    if cfg.watch_levels is not None:   # durations in whole 4 ms steps: level * duration is an exact play time
        duration_ms = np.maximum(4, duration_ms // 4 * 4)
    return SimModel(user_f, item_f, user_b, item_b, scale, activity, weight, item_cats, cat_w, prefs, duration_ms,
                  small_users, small_items, span_start, span_days)


# ------------------------------------------------------------------------------------------------ time
def session_offsets(rng: np.random.Generator, users: np.ndarray, play_ms: np.ndarray, cfg: SimulatorConfig,
                     m: SimModel | None = None) -> np.ndarray:
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
class Clock:
    epoch_ms: int                # Unix ms of the window start (local midnight, UTC+8)
    dates: np.ndarray            # (n_days,) int64 yyyymmdd

    @classmethod
    def make(cls, cfg: SimulatorConfig) -> "Clock":
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
def expected_progress(mu: np.ndarray, sigma: float, p_skip: float) -> np.ndarray:
    """``E[min(watch_ratio, 1)]`` (closed form for the lognormal with skips)."""
    from scipy.special import ndtr

    below = np.exp(mu + 0.5 * sigma * sigma) * ndtr((-mu - sigma * sigma) / sigma)
    return (1.0 - p_skip) * (below + ndtr(mu / sigma))


def draw_watch(rng: np.random.Generator, mu: np.ndarray, cfg: SimulatorConfig) -> tuple[np.ndarray, np.ndarray]:
    """(watch ratio from the model, injected-outlier flag) for rows with log-mean ``mu``."""
    wr = np.exp(mu + cfg.sigma * rng.normal(size=mu.shape))
    wr[rng.random(mu.shape) < cfg.p_skip] = 0.0
    outlier = rng.random(mu.shape) < cfg.outlier_rate
    wr[outlier] = np.exp(rng.uniform(np.log(5.5), np.log(600.0), size=int(outlier.sum())))
    if cfg.watch_levels is not None:
        levels = np.asarray(cfg.watch_levels, dtype=np.float64)
        wr = levels[np.searchsorted(levels, wr, side="right") - 1]
    return wr, outlier
