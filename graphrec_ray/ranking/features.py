"""The ranker's feature builder: ONE code path for training samples and serving requests.

A feature vector describes one (user, item, moment) triple. Item- and user-side blocks are
precomputed once into tables (:meth:`FeatureBuilder.from_sources`), so building features for a
training batch or for 500 serving candidates is a few gathers plus the context block.

Blocks, in order (``d`` = retrieval embedding dim, ``C`` = number of item categories,
``A`` = number of ``user_active_degree`` levels); with KuaiRec, ``d = 64``, ``C = 31``, ``A = 4``
give ``D = 2*64 + (4 + 26) + (1 + 31) + 10 + 1 + 12 = 213``:

==============  ============  =====================================================================
block           width         content
==============  ============  =====================================================================
user_emb        d             retrieval user embedding (or the ``user_emb`` handed in at serving)
user_profile    A + 26        ``user_features.csv``: one-hot ``user_active_degree``;
                              ``is_lowactive_period``, ``is_live_streamer``, ``is_video_author``;
                              log1p of ``follow_user_num``, ``fans_user_num``, ``friend_user_num``,
                              ``register_days``; ``onehot_feat0..17`` codes divided by their max
                              (``user_code_max`` in the spec); a "profile present" flag
item_emb        d             retrieval item embedding
item_static     1 + C         log1p(item duration in seconds); category multi-hot
                              (``item_categories.csv``, vocabulary ``category_vocab`` in the spec)
item_daily      10            ``item_daily_features.csv`` AS OF THE DAY BEFORE the event (latest
                              row dated strictly before the event's local date, no look-ahead):
                              log1p of show, play, like, comment, share counts; play/show,
                              complete_play/play, valid_play/play, like/play (clipped to [0, 1]);
                              a "stats present" flag
cross           1             inner product user_emb . item_emb (the retrieval score)
context         12            local time is UTC+8 (KuaiRec is from China): sin, cos of the hour of
                              day; day-of-week one-hot (7, Monday first); log1p(position in
                              session); log1p(seconds since last view) (0 when unknown); a
                              "previous view known" flag
==============  ============  =====================================================================

Raw magnitudes are only log/ratio transformed here; standardisation is part of the model
(:class:`graphrec_ray.ranking.layers.InputNorm`), so the spec holds no fitted statistics
besides vocabularies. ``feature_spec.json`` (:meth:`FeatureSpec.to_dict`) records all of this.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from graphrec_ray.errors import DataError
from graphrec_ray.ids import IdMap
from graphrec_ray.sources.kuairec import TIMEZONE_OFFSET_S

LOCAL_UTC_OFFSET_S = TIMEZONE_OFFSET_S  # KuaiRec timestamps are Unix seconds; local time is UTC+8
SECONDS_PER_DAY = 86400

USER_BINARY = ("is_lowactive_period", "is_live_streamer", "is_video_author")
USER_COUNTS = ("follow_user_num", "fans_user_num", "friend_user_num", "register_days")
USER_CODES = tuple(f"onehot_feat{k}" for k in range(18))
DAILY_COUNTS = ("show_cnt", "play_cnt", "like_cnt", "comment_cnt", "share_cnt")
DAILY_RATIOS = (("play_cnt", "show_cnt"), ("complete_play_cnt", "play_cnt"), ("valid_play_cnt", "play_cnt"),
                ("like_cnt", "play_cnt"))
DAILY_WIDTH = len(DAILY_COUNTS) + len(DAILY_RATIOS) + 1
CONTEXT_WIDTH = 12
FEATURE_SPEC_VERSION = 1
FEATURE_SPEC_FILE = "feature_spec.json"  # written by FeatureBuilder.save beside its tables
#: Blocks by what they depend on, for scorers that compute each side once (``graphrec_ray.ranking.factorized``):
USER_SIDE = ("user_emb", "user_profile", "context")  # the user and the moment: equal for one request's candidates
ITEM_SIDE = ("item_emb", "item_static")  # the item alone: fixed within a model version
PAIR_SIDE = ("item_daily", "cross")  # item AND request: item stats as of the request's day, user . item
#: One line per block, copied into ``feature_spec.json`` (see the table in the module docstring).
BLOCK_DOCS = {
    "user_emb": "retrieval user embedding (or the user_emb passed at serving)",
    "user_profile": "user_features.csv: one-hot user_active_degree (active_degree_vocab); is_lowactive_period, "
                    "is_live_streamer, is_video_author; log1p follow/fans/friend_user_num, register_days; "
                    "onehot_feat0..17 / user_code_max; profile-present flag",
    "item_emb": "retrieval item embedding",
    "item_static": "log1p(median video_duration in seconds); category multi-hot (category_vocab)",
    "item_daily": "item_daily_features.csv as of the latest date strictly before the event's local (UTC+8) date: "
                  "log1p show/play/like/comment/share counts; play/show, complete_play/play, valid_play/play, "
                  "like/play clipped to [0,1]; stats-present flag",
    "cross": "inner product user_emb . item_emb (retrieval score)",
    "context": "UTC+8 hour of day sin, cos; day-of-week one-hot (Mon..Sun); log1p(position in session); "
               "log1p(seconds since last view, 0 if unknown); previous-view-known flag",
}


def local_epoch_day(timestamp: np.ndarray) -> np.ndarray:
    """Days since 1970-01-01 in local time (UTC+8) for ``(N,)`` Unix seconds; NaN gives -1."""
    ts = np.asarray(timestamp, dtype=np.float64)
    day = np.floor((np.nan_to_num(ts, nan=0.0) + LOCAL_UTC_OFFSET_S) / SECONDS_PER_DAY).astype(np.int64)
    return np.where(np.isnan(ts), -1, day)


def yyyymmdd_to_epoch_day(date: np.ndarray) -> np.ndarray:
    """``(N,)`` integer dates like 20200705 to days since 1970-01-01."""
    uniq, inverse = np.unique(np.asarray(date, dtype=np.int64), return_inverse=True)
    iso = np.array([f"{x // 10000:04d}-{x // 100 % 100:02d}-{x % 100:02d}" for x in uniq], dtype="datetime64[D]")
    return iso.astype(np.int64)[inverse.reshape(-1)]


def parse_categories(value: Any) -> list[int]:
    """A ``feat`` cell (list/array from :func:`graphrec_ray.sources.kuairec.read_item_categories`, a JSON
    text like ``"[8, 27]"``, an int, or null) as a list of ints."""
    if isinstance(value, str):
        value = json.loads(value.strip() or "[]")
    if isinstance(value, (int, np.integer)):
        return [int(value)]
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return []
    return [int(v) for v in value]


def _require(df: pd.DataFrame, columns: tuple[str, ...] | list[str], name: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise DataError(f"{name} lacks column(s) {missing}")


@dataclass(frozen=True)
class FeatureSpec:
    """Vocabularies and sizes that fix the feature layout; saved as ``feature_spec.json``.

    Attributes:
        emb_dim: retrieval embedding dimension ``d``.
        category_vocab: sorted category ids of the multi-hot block.
        active_degree_vocab: sorted ``user_active_degree`` levels.
        user_code_max: max of each ``onehot_feat*`` code (divisor, at least 1).
        first_day: local epoch day of the earliest ``item_daily_features`` row.
        n_days: number of days covered by ``item_daily_features``.
        session_gap_s: session break used for position in session (documentation for serving callers).
    """

    emb_dim: int
    category_vocab: tuple[int, ...]
    active_degree_vocab: tuple[str, ...]
    user_code_max: tuple[float, ...]
    first_day: int
    n_days: int
    session_gap_s: float = 1800.0
    blocks: tuple[tuple[str, int, int], ...] = field(init=False)

    def __post_init__(self) -> None:
        widths = [("user_emb", self.emb_dim), ("user_profile", len(self.active_degree_vocab) + 26),
                  ("item_emb", self.emb_dim), ("item_static", 1 + len(self.category_vocab)),
                  ("item_daily", DAILY_WIDTH), ("cross", 1), ("context", CONTEXT_WIDTH)]
        blocks, start = [], 0
        for name, w in widths:
            blocks.append((name, start, start + w))
            start += w
        object.__setattr__(self, "blocks", tuple(blocks))

    @property
    def dim(self) -> int:
        """Total feature dimension ``D``."""
        return self.blocks[-1][2]

    def block(self, name: str) -> slice:
        """Column slice of block ``name`` in a ``(N, D)`` feature matrix."""
        for n, s, e in self.blocks:
            if n == name:
                return slice(s, e)
        raise KeyError(name)

    @classmethod
    def fit(cls, emb_dim: int, item_categories: pd.DataFrame, user_features: pd.DataFrame,
            item_daily: pd.DataFrame, session_gap_s: float = 1800.0) -> "FeatureSpec":
        """Derive the vocabularies from the raw side tables (done once, at training time)."""
        _require(item_categories, ["video_id", "feat"], "item_categories")
        _require(user_features, ["user_id", "user_active_degree", *USER_BINARY, *USER_COUNTS, *USER_CODES],
                 "user_features")
        _require(item_daily, ["video_id", "date"], "item_daily_features")
        cats = sorted({c for v in item_categories["feat"] for c in parse_categories(v)})
        levels = sorted(str(x) for x in user_features["user_active_degree"].fillna("UNKNOWN").unique())
        code_max = tuple(float(max(1.0, np.nan_to_num(user_features[c].max(), nan=1.0))) for c in USER_CODES)
        days = yyyymmdd_to_epoch_day(np.unique(item_daily["date"].to_numpy()))
        first, n_days = (int(days.min()), int(days.max() - days.min() + 1)) if days.size else (0, 0)
        return cls(emb_dim=int(emb_dim), category_vocab=tuple(cats), active_degree_vocab=tuple(levels),
                   user_code_max=code_max, first_day=first, n_days=n_days, session_gap_s=float(session_gap_s))

    def to_dict(self) -> dict[str, Any]:
        """JSON form with the documented block layout (``feature_spec.json``)."""
        return {"version": FEATURE_SPEC_VERSION, "dim": self.dim, "emb_dim": self.emb_dim,
                "category_vocab": list(self.category_vocab), "active_degree_vocab": list(self.active_degree_vocab),
                "user_code_max": list(self.user_code_max), "first_day": self.first_day, "n_days": self.n_days,
                "session_gap_s": self.session_gap_s, "local_utc_offset_s": LOCAL_UTC_OFFSET_S,
                "blocks": [{"name": n, "start": s, "end": e, "width": e - s, "content": BLOCK_DOCS[n]}
                           for n, s, e in self.blocks]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "FeatureSpec":
        if d.get("version") != FEATURE_SPEC_VERSION:
            raise DataError(f"feature spec version {d.get('version')} != {FEATURE_SPEC_VERSION}")
        spec = cls(emb_dim=int(d["emb_dim"]), category_vocab=tuple(int(x) for x in d["category_vocab"]),
                   active_degree_vocab=tuple(str(x) for x in d["active_degree_vocab"]),
                   user_code_max=tuple(float(x) for x in d["user_code_max"]), first_day=int(d["first_day"]),
                   n_days=int(d["n_days"]), session_gap_s=float(d["session_gap_s"]))
        if spec.dim != int(d["dim"]):
            raise DataError(f"feature spec dim {d['dim']} does not match its blocks ({spec.dim})")
        return spec

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> "FeatureSpec":
        return cls.from_dict(json.loads(Path(path).read_text()))


def user_profile_table(spec: FeatureSpec, user_map: IdMap, user_features: pd.DataFrame) -> np.ndarray:
    """``(n_users, A + 26)`` float32 user_profile block by ``user_idx``; users without a row are zeros."""
    _require(user_features, ["user_id", "user_active_degree", *USER_BINARY, *USER_COUNTS, *USER_CODES],
             "user_features")
    out = np.zeros((len(user_map), len(spec.active_degree_vocab) + 26), dtype=np.float32)
    idx = user_map.to_idx(user_features["user_id"].to_numpy())
    keep = idx >= 0
    uf, idx = user_features[keep], idx[keep]
    a = len(spec.active_degree_vocab)
    level = uf["user_active_degree"].fillna("UNKNOWN").astype(str).to_numpy()
    lvl_pos = {v: k for k, v in enumerate(spec.active_degree_vocab)}
    codes = np.array([lvl_pos.get(v, -1) for v in level], dtype=np.int64)
    hit = codes >= 0
    out[idx[hit], codes[hit]] = 1.0
    col = a
    for c in USER_BINARY:
        out[idx, col] = np.nan_to_num(uf[c].to_numpy(dtype=np.float64), nan=0.0)
        col += 1
    for c in USER_COUNTS:
        out[idx, col] = np.log1p(np.clip(np.nan_to_num(uf[c].to_numpy(dtype=np.float64), nan=0.0), 0, None))
        col += 1
    for c, m in zip(USER_CODES, spec.user_code_max):
        out[idx, col] = np.clip(np.nan_to_num(uf[c].to_numpy(dtype=np.float64), nan=0.0) / m, -1.0, 1.0)
        col += 1
    out[idx, col] = 1.0
    return out


def item_static_table(spec: FeatureSpec, item_map: IdMap, item_categories: pd.DataFrame,
                      item_duration_ms: np.ndarray) -> np.ndarray:
    """``(n_items, 1 + C)`` float32 item_static block by ``item_idx``.

    Args:
        item_duration_ms: ``(n_items,)`` duration per ``item_idx`` in ms (NaN/negative count as 0).
    """
    _require(item_categories, ["video_id", "feat"], "item_categories")
    dur = np.asarray(item_duration_ms, dtype=np.float64)
    if dur.shape != (len(item_map),):
        raise ValueError(f"item_duration_ms must have shape ({len(item_map)},), got {dur.shape}")
    out = np.zeros((len(item_map), 1 + len(spec.category_vocab)), dtype=np.float32)
    out[:, 0] = np.log1p(np.clip(np.nan_to_num(dur, nan=0.0), 0, None) / 1000.0)
    cat_pos = {c: k for k, c in enumerate(spec.category_vocab)}
    idx = item_map.to_idx(item_categories["video_id"].to_numpy())
    for i, feat in zip(idx, item_categories["feat"]):
        if i < 0:
            continue
        for c in parse_categories(feat):
            k = cat_pos.get(c)
            if k is not None:
                out[i, 1 + k] = 1.0
    return out


def item_daily_table(spec: FeatureSpec, item_map: IdMap, item_daily: pd.DataFrame) -> np.ndarray:
    """``(n_items, n_days + 1, 10)`` float32 item_daily block: ``[:, k]`` = stats as of local day ``first_day + k``.

    Row ``k`` holds the latest statistics dated strictly before day ``first_day + k`` (forward
    filled over missing days), so row 0 is all zeros and row ``n_days`` holds the last day's stats.
    """
    _require(item_daily, ["video_id", "date", *DAILY_COUNTS, *{c for pair in DAILY_RATIOS for c in pair}],
             "item_daily_features")
    n_items, n_days = len(item_map), spec.n_days
    dense = np.zeros((n_items, n_days, DAILY_WIDTH), dtype=np.float32)
    present = np.zeros((n_items, n_days), dtype=bool)
    idx = item_map.to_idx(item_daily["video_id"].to_numpy())
    day = yyyymmdd_to_epoch_day(item_daily["date"].to_numpy()) - spec.first_day
    keep = (idx >= 0) & (day >= 0) & (day < n_days)
    df = item_daily[keep]
    idx, day = idx[keep], day[keep]
    vals = np.zeros((len(df), DAILY_WIDTH), dtype=np.float32)
    counts = {c: np.clip(np.nan_to_num(df[c].to_numpy(dtype=np.float64), nan=0.0), 0, None)
              for c in {*DAILY_COUNTS, *{c for pair in DAILY_RATIOS for c in pair}}}
    for k, c in enumerate(DAILY_COUNTS):
        vals[:, k] = np.log1p(counts[c])
    for k, (num, den) in enumerate(DAILY_RATIOS):
        vals[:, len(DAILY_COUNTS) + k] = np.clip(counts[num] / np.maximum(counts[den], 1.0), 0.0, 1.0)
    vals[:, -1] = 1.0
    dense[idx, day] = vals
    present[idx, day] = True
    for k in range(1, n_days):  # forward fill: a day without a row keeps the last known stats
        miss = ~present[:, k]
        dense[miss, k] = dense[miss, k - 1]
    asof = np.zeros((n_items, n_days + 1, DAILY_WIDTH), dtype=np.float32)
    asof[:, 1:] = dense
    return asof


def context_block(timestamp: np.ndarray, position: np.ndarray, since_last: np.ndarray) -> np.ndarray:
    """``(N, 12)`` float32 context block from ``(N,)`` Unix seconds, positions and seconds since last view.

    A NaN timestamp gives zeros for the time-of-day and day-of-week columns; a negative
    ``since_last`` means unknown (column 0, flag 0).
    """
    ts = np.asarray(timestamp, dtype=np.float64)
    n = ts.size
    out = np.zeros((n, CONTEXT_WIDTH), dtype=np.float32)
    ok = ~np.isnan(ts)
    local = ts[ok] + LOCAL_UTC_OFFSET_S
    hour = np.mod(local, SECONDS_PER_DAY) / 3600.0
    angle = hour * (2.0 * np.pi / 24.0)
    out[ok, 0] = np.sin(angle)
    out[ok, 1] = np.cos(angle)
    dow = (np.floor(local / SECONDS_PER_DAY).astype(np.int64) + 3) % 7  # 1970-01-01 was a Thursday
    out[np.flatnonzero(ok), 2 + dow] = 1.0
    out[:, 9] = np.log1p(np.clip(np.asarray(position, dtype=np.float64), 0, None))
    gap = np.asarray(since_last, dtype=np.float64)
    known = gap >= 0
    out[:, 10] = np.where(known, np.log1p(np.clip(gap, 0, None)), 0.0)
    out[:, 11] = known
    return out


@dataclass(frozen=True)
class FeatureBuilder:
    """Precomputed tables plus :meth:`build`; the only way features are made, offline or online.

    Attributes:
        spec: layout and vocabularies.
        user_emb: ``(n_users, d)`` float32.
        user_profile: ``(n_users, A + 26)`` float32.
        item_table: ``(n_items, d + 1 + C)`` float32, item_emb then item_static.
        item_daily: ``(n_items, n_days + 1, 10)`` float32, see :func:`item_daily_table`.
    """

    spec: FeatureSpec
    user_emb: np.ndarray
    user_profile: np.ndarray
    item_table: np.ndarray
    item_daily: np.ndarray

    @classmethod
    def from_sources(cls, spec: FeatureSpec, user_emb: np.ndarray, item_emb: np.ndarray, user_map: IdMap,
                     item_map: IdMap, item_categories: pd.DataFrame, user_features: pd.DataFrame,
                     item_daily: pd.DataFrame, item_duration_ms: np.ndarray) -> "FeatureBuilder":
        """Precompute every user- and item-side block from raw side tables and retrieval embeddings."""
        user_emb = np.ascontiguousarray(user_emb, dtype=np.float32)
        item_emb = np.ascontiguousarray(item_emb, dtype=np.float32)
        if user_emb.shape != (len(user_map), spec.emb_dim) or item_emb.shape != (len(item_map), spec.emb_dim):
            raise DataError(f"embeddings {user_emb.shape}/{item_emb.shape} do not match maps "
                            f"({len(user_map)} users, {len(item_map)} items) and dim {spec.emb_dim}")
        item_table = np.concatenate([item_emb, item_static_table(spec, item_map, item_categories, item_duration_ms)],
                                    axis=1)
        return cls(spec, user_emb, user_profile_table(spec, user_map, user_features), np.ascontiguousarray(item_table),
                   item_daily_table(spec, item_map, item_daily))

    @property
    def dim(self) -> int:
        return self.spec.dim

    @property
    def n_ids(self) -> tuple[int, int]:
        """``(n_users, n_items)`` of the tables (sizes of the id spaces)."""
        return int(self.user_emb.shape[0]), int(self.item_table.shape[0])

    _ARRAYS = ("user_emb", "user_profile", "item_table", "item_daily")

    @classmethod
    def file_names(cls) -> list[str]:
        """Names of the files :meth:`save` writes (relative to its directory)."""
        return [FEATURE_SPEC_FILE, *(f"features_{n}.npy" for n in cls._ARRAYS)]

    def save(self, directory: str | Path) -> list[str]:
        """Write ``feature_spec.json`` and one ``.npy`` per table into ``directory``; returns the file names."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        self.spec.save(d / FEATURE_SPEC_FILE)
        for name in self._ARRAYS:
            np.save(d / f"features_{name}.npy", getattr(self, name))
        return self.file_names()

    @classmethod
    def load(cls, directory: str | Path, mmap: bool = True) -> "FeatureBuilder":
        """Read what :meth:`save` wrote (tables memory-mapped by default, shared by co-located workers)."""
        d = Path(directory)
        spec = FeatureSpec.load(d / FEATURE_SPEC_FILE)
        arrays = [np.load(d / f"features_{n}.npy", mmap_mode="r" if mmap else None) for n in cls._ARRAYS]
        return cls(spec, *arrays)

    def day_index(self, timestamp: np.ndarray) -> np.ndarray:
        """Row of :attr:`item_daily` for ``(N,)`` event times: local day - first_day, clipped to ``[0, n_days]``."""
        day = local_epoch_day(timestamp)
        k = np.clip(day - self.spec.first_day, 0, self.spec.n_days)
        return np.where(day < 0, 0, k)

    def build(self, user_idx: np.ndarray, item_idx: np.ndarray, timestamp: np.ndarray, position: np.ndarray,
              since_last: np.ndarray, user_emb: np.ndarray | None = None) -> np.ndarray:
        """Feature matrix ``(N, D)`` float32 for ``N`` (user, item, moment) triples.

        Args:
            user_idx, item_idx: ``(N,)`` contiguous indices (or scalars, broadcast).
            timestamp: ``(N,)`` Unix seconds (or scalar).
            position: ``(N,)`` 0-based position in session (or scalar).
            since_last: ``(N,)`` seconds since the user's previous view, ``-1`` unknown (or scalar).
            user_emb: optional ``(d,)`` or ``(N, d)`` user embedding replacing the stored one
                (serving may pass a fresher one); the ``cross`` block uses it too.
        """
        item_idx = np.asarray(item_idx, dtype=np.int64).reshape(-1)
        n = item_idx.size
        user_idx = np.broadcast_to(np.asarray(user_idx, dtype=np.int64), (n,))
        ts = np.broadcast_to(np.asarray(timestamp, dtype=np.float64), (n,))
        ue = self.user_embedding(user_idx, user_emb)
        out = np.empty((n, self.spec.dim), dtype=np.float32)
        self.fill_user_side(out, user_idx, ts, position, since_last, ue)
        self.fill_item_side(out, item_idx)
        self.fill_pair_side(out, item_idx, ts, ue)
        return out

    def user_embedding(self, user_idx: np.ndarray, user_emb: np.ndarray | None = None) -> np.ndarray:
        """``(N, d)`` user embeddings: the stored rows of ``user_idx`` ``(N,)``, or ``user_emb`` broadcast."""
        if user_emb is None:
            return self.user_emb[user_idx]
        return np.broadcast_to(np.asarray(user_emb, dtype=np.float32), (len(user_idx), self.spec.emb_dim))

    def fill_user_side(self, out: np.ndarray, user_idx: np.ndarray, timestamp: np.ndarray, position: np.ndarray,
                       since_last: np.ndarray, ue: np.ndarray) -> None:
        """Write the :data:`USER_SIDE` blocks of ``out`` ``(N, D)`` (``ue``: :meth:`user_embedding`)."""
        n, spec = out.shape[0], self.spec
        out[:, spec.block("user_emb")] = ue
        out[:, spec.block("user_profile")] = self.user_profile[user_idx]
        out[:, spec.block("context")] = context_block(np.broadcast_to(timestamp, (n,)),
                                                      np.broadcast_to(position, (n,)),
                                                      np.broadcast_to(since_last, (n,)))

    def fill_item_side(self, out: np.ndarray, item_idx: np.ndarray) -> None:
        """Write the :data:`ITEM_SIDE` blocks of ``out`` ``(N, D)`` for ``item_idx`` ``(N,)``."""
        out[:, self.spec.block("item_emb").start:self.spec.block("item_static").stop] = self.item_table[item_idx]

    def fill_pair_side(self, out: np.ndarray, item_idx: np.ndarray, timestamp: np.ndarray, ue: np.ndarray) -> None:
        """Write the :data:`PAIR_SIDE` blocks of ``out`` ``(N, D)`` (values from :meth:`pair_side`)."""
        pair, start = self.pair_side(item_idx, timestamp, ue), 0
        for name in PAIR_SIDE:
            cols = self.spec.block(name)
            out[:, cols] = pair[:, start:start + cols.stop - cols.start]
            start += cols.stop - cols.start

    def pair_side(self, item_idx: np.ndarray, timestamp: np.ndarray, ue: np.ndarray) -> np.ndarray:
        """``(N, P)`` the :data:`PAIR_SIDE` blocks side by side, in that order: item stats as of the event's
        day (``item_daily``), then ``user_emb . item_emb`` (``cross``)."""
        out = np.empty((item_idx.size, DAILY_WIDTH + 1), dtype=np.float32)
        out[:, :DAILY_WIDTH] = self.item_daily[item_idx, self.day_index(timestamp)]
        out[:, DAILY_WIDTH] = np.einsum("nd,nd->n", ue, self.item_table[item_idx, :self.spec.emb_dim])
        return out
