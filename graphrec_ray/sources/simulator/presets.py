"""Simulator configuration and its presets: sizes (``tiny``/``demo``/``full``) and the robustness presets' model
settings (see the package docstring of :mod:`graphrec_ray.sources.simulator`)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from typing import Any, Literal

#: a view is a click when ``watch_ratio >= CLICK_THRESHOLD`` (the preprocess label's default)
CLICK_THRESHOLD = 0.5

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
            if list(lv) != sorted(set(lv)) or 0.0 not in lv or CLICK_THRESHOLD not in lv:
                raise ValueError(f"watch_levels must be increasing and include 0 and {CLICK_THRESHOLD}, got {list(lv)}")
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
