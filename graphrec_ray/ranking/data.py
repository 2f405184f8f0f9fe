"""Ranking samples and the inputs of the feature builder, read from one run directory.

Training samples are the observed interactions of ``train.parquet`` with labels ``label_click``
and ``label_value``; validation and test come from the later temporal splits; ``eval_small``
(the fully observed ``small_matrix``) is the unbiased evaluation set. Session context (position in
session, seconds since the last view) is derived from the logs themselves: over the whole
``big_matrix`` timeline (train + val + test, timestamps only, so a test view knows the user's
previous view even if it is in train) and over ``small_matrix`` on its own.

A view without timestamp but with a ``date`` is placed at noon local time of that date, so its day
(and the item statistics as of the day before) is still right; its session context is unknown.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from graphrec_ray.errors import DataError
from graphrec_ray.ids import IdMap
from graphrec_ray.layout import RunLayout
from graphrec_ray.manifest import read_manifest
from graphrec_ray.ranking.features import LOCAL_UTC_OFFSET_S, FeatureBuilder, FeatureSpec, yyyymmdd_to_epoch_day
from graphrec_ray.ranking.sessions import session_context

SPLITS = ("train", "val", "test", "eval_small")
_COLUMNS = ["user_id", "video_id", "user_idx", "item_idx", "timestamp", "date", "label_click", "label_value"]


@dataclass(frozen=True)
class Events:
    """Columnar ranking samples, all ``(N,)``.

    Attributes:
        user_idx, item_idx: int32 contiguous indices.
        user_id, video_id: int64 raw ids (for the simulator's ground truth).
        timestamp: float64 Unix seconds (NaN when unknown).
        position: int32 0-based position in session.
        since_last: float32 seconds since the user's previous view (-1 unknown).
        label_click: float32 0/1.
        label_value: float32 ``log1p(min(watch_ratio, clip))``.
    """

    user_idx: np.ndarray
    item_idx: np.ndarray
    user_id: np.ndarray
    video_id: np.ndarray
    timestamp: np.ndarray
    position: np.ndarray
    since_last: np.ndarray
    label_click: np.ndarray
    label_value: np.ndarray

    def __len__(self) -> int:
        return int(self.user_idx.shape[0])

    def take(self, rows: np.ndarray | slice) -> "Events":
        """Subset of rows (index array or slice)."""
        return Events(**{f.name: getattr(self, f.name)[rows] for f in fields(self)})

    def features(self, builder: FeatureBuilder, rows: np.ndarray | slice | None = None) -> np.ndarray:
        """``(n, D)`` float32 features of ``rows`` (all when None) via the shared builder."""
        e = self if rows is None else self.take(rows)
        return builder.build(e.user_idx, e.item_idx, e.timestamp, e.position, e.since_last)

    def save(self, directory: str | Path) -> None:
        """One ``<column>.npy`` per column in ``directory`` (created), so :meth:`load` can memory-map them."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        for f in fields(self):
            np.save(d / f"{f.name}.npy", getattr(self, f.name))

    @classmethod
    def load(cls, directory: str | Path, mmap: bool = True) -> "Events":
        """Read what :meth:`save` wrote; memory-mapped by default, so the Ray Train workers on one machine share
        one copy of the training rows in the page cache (full KuaiRec: ~10M rows, ~0.5 GB) and a batch reads
        only its rows."""
        d = Path(directory)
        return cls(**{f.name: np.load(d / f"{f.name}.npy", mmap_mode="r" if mmap else None) for f in fields(cls)})


def _fill_timestamp(ts: np.ndarray, date: np.ndarray) -> np.ndarray:
    """Replace NaN timestamps by noon local time of ``date`` (yyyymmdd) when the date is known."""
    ts = ts.astype(np.float64).copy()
    miss = np.isnan(ts) & ~np.isnan(date)
    if miss.any():
        day = yyyymmdd_to_epoch_day(date[miss].astype(np.int64))
        ts[miss] = day * 86400.0 + 12 * 3600.0 - LOCAL_UTC_OFFSET_S
    return ts


def events_from_tables(tables: list[pa.Table], gap_s: float = 1800.0) -> list[Events]:
    """Build :class:`Events` for each table, with session context computed over all of them together.

    Args:
        tables: ``INTERACTIONS``-schema tables sharing one timeline (e.g. train, val, test).
        gap_s: session break in seconds (default 1800).
    """
    for t in tables:
        missing = [c for c in _COLUMNS if c not in t.column_names]
        if missing:
            raise DataError(f"interactions lack column(s) {missing}")
    sizes = [t.num_rows for t in tables]
    # one column at a time, so at most one column's per-table copies live beside the concatenation (full KuaiRec:
    # 12.5M rows; all columns' copies at once were ~0.8 GB more at the driver's peak)
    cat = {c: np.concatenate([t.column(c).to_numpy(zero_copy_only=False) for t in tables]) if tables else np.array([])
           for c in _COLUMNS}
    date = np.asarray(cat["date"], dtype=np.float64)
    ts = _fill_timestamp(np.asarray(cat["timestamp"], dtype=np.float64), date)
    position, since = session_context(cat["user_idx"], np.asarray(cat["timestamp"], dtype=np.float64), gap_s)
    out, start = [], 0
    for n in sizes:
        sl = slice(start, start + n)
        out.append(Events(user_idx=cat["user_idx"][sl].astype(np.int32), item_idx=cat["item_idx"][sl].astype(np.int32),
                          user_id=cat["user_id"][sl].astype(np.int64), video_id=cat["video_id"][sl].astype(np.int64),
                          timestamp=ts[sl], position=position[sl], since_last=since[sl],
                          label_click=cat["label_click"][sl].astype(np.float32),
                          label_value=cat["label_value"][sl].astype(np.float32)))
        start += n
    return out


def load_events(run_dir: str | Path, gap_s: float = 1800.0, max_train_rows: int = 0) -> dict[str, Events]:
    """Read the four splits of ``run_dir/preprocess`` as :class:`Events` (train, val, test, eval_small).

    ``max_train_rows > 0`` keeps only the first (earliest) training rows.
    """
    layout = RunLayout(Path(run_dir))
    for s in SPLITS:
        if not layout.split(s).is_file():
            raise DataError(f"{layout.split(s)} not found: run `graphrec preprocess --run-dir {run_dir}` first")
    big = [pq.read_table(layout.split(s), columns=_COLUMNS) for s in ("train", "val", "test")]
    train, val, test = events_from_tables(big, gap_s)
    (small,) = events_from_tables([pq.read_table(layout.split("eval_small"), columns=_COLUMNS)], gap_s)
    if max_train_rows > 0:
        train = train.take(slice(0, max_train_rows))
    del big
    pa.default_memory_pool().release_unused()  # arrow's allocator keeps freed tables' pages (~50 B a row) otherwise
    return {"train": train, "val": val, "test": test, "eval_small": small}


def downsample_negatives(events: Events, rate: float, seed: int) -> Events:
    """Keep every positive (``label_click == 1``) and each negative with probability ``rate``; row order kept.

    This is how click models are trained at scale; it multiplies the learned odds by ``1 / rate``, which
    :mod:`graphrec_ray.calibration.downsampling` undoes. ``rate = 1`` returns ``events`` unchanged.

    Args:
        events: ``(N,)`` samples.
        rate: kept fraction of negatives, in ``(0, 1]``.
        seed: sampling seed.
    """
    if not 0.0 < rate <= 1.0:
        raise ValueError(f"negative sampling rate must be in (0, 1], got {rate}")
    if rate == 1.0:
        return events
    keep = (events.label_click > 0.5) | (np.random.default_rng(seed).random(len(events)) < rate)
    return events.take(np.flatnonzero(keep))


def item_duration_ms(run_dir: str | Path, n_items: int) -> np.ndarray:
    """``(n_items,)`` median ``video_duration`` (ms) per ``item_idx`` over all four splits (NaN if never seen)."""
    layout = RunLayout(Path(run_dir))
    parts = [pq.read_table(layout.split(s), columns=["item_idx", "video_duration"]) for s in SPLITS]
    df = pd.concat([p.to_pandas() for p in parts], ignore_index=True)
    med = df.groupby("item_idx")["video_duration"].median()
    del parts, df
    pa.default_memory_pool().release_unused()
    out = np.full(n_items, np.nan)
    out[med.index.to_numpy()] = med.to_numpy()
    return out


def resolve_data_dir(run_dir: str | Path, data_dir: str | Path | None = None) -> Path:
    """``data_dir`` when given, else the raw data folder recorded in ``preprocess/manifest.json``."""
    if data_dir is not None:
        return Path(data_dir)
    layout = RunLayout(Path(run_dir))
    manifest = layout.manifest(layout.preprocess)
    if not manifest.is_file():
        raise DataError(f"{manifest} not found: run `graphrec preprocess --run-dir {run_dir}` first")
    recorded = read_manifest(manifest.parent).get("data_dir")
    if not recorded:
        raise DataError(f"{manifest} names no data_dir; pass data_dir=... to the ranking job")
    return Path(recorded)


def read_side_tables(data_dir: str | Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """``(item_categories, user_features, item_daily_features)`` as DataFrames via the KuaiRec readers."""
    from graphrec_ray.sources.kuairec import read_item_categories, read_item_daily_features, read_user_features

    return (read_item_categories(data_dir).to_pandas(), read_user_features(data_dir).to_pandas(),
            read_item_daily_features(data_dir).to_pandas())


def load_feature_builder(run_dir: str | Path, spec: FeatureSpec | None = None, data_dir: str | Path | None = None,
                         session_gap_s: float = 1800.0) -> FeatureBuilder:
    """The feature builder of a run: retrieval embeddings + maps + raw side tables.

    Args:
        spec: the saved layout (serving); None fits a new one from the side tables (training).
        data_dir: raw data folder; None reads it from ``preprocess/manifest.json``.
    """
    layout = RunLayout(Path(run_dir))
    for p in (layout.user_embeddings, layout.item_embeddings, layout.user_map, layout.item_map):
        if not p.is_file():
            raise DataError(f"{p} not found: run the preprocess and retrieval stages for {run_dir} first")
    user_map, item_map = IdMap.load(layout.user_map), IdMap.load(layout.item_map)
    user_emb, item_emb = np.load(layout.user_embeddings), np.load(layout.item_embeddings)
    cats, users, daily = read_side_tables(resolve_data_dir(run_dir, data_dir))
    if spec is None:
        spec = FeatureSpec.fit(user_emb.shape[1], cats, users, daily, session_gap_s)
    builder = FeatureBuilder.from_sources(spec, user_emb, item_emb, user_map, item_map, cats, users, daily,
                                          item_duration_ms(run_dir, len(item_map)))
    del cats, users, daily
    pa.default_memory_pool().release_unused()
    return builder
