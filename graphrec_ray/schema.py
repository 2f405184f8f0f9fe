"""Arrow schemas of the files that stages hand to each other.

Raw KuaiRec 2.0 columns are described in :mod:`graphrec_ray.sources.kuairec`; this
module fixes the *processed* schemas written by the preprocessing job and read
by retrieval, ranking, indexing and serving. Bump :data:`SCHEMA_VERSION` on any
change.
"""

from __future__ import annotations

import pyarrow as pa

SCHEMA_VERSION = 1

#: One row per kept interaction, in ``train/val/test.parquet`` and ``eval_small.parquet``.
INTERACTIONS = pa.schema(
    [
        pa.field("user_id", pa.int64(), nullable=False),        # raw KuaiRec user id
        pa.field("video_id", pa.int64(), nullable=False),       # raw KuaiRec video id
        pa.field("user_idx", pa.int32(), nullable=False),       # contiguous, see ids.IdMap (user_map.parquet)
        pa.field("item_idx", pa.int32(), nullable=False),       # contiguous, see ids.IdMap (item_map.parquet)
        pa.field("timestamp", pa.float64(), nullable=True),     # Unix seconds; null only with --allow-no-timestamp
        pa.field("date", pa.int32(), nullable=True),            # yyyymmdd
        pa.field("play_duration", pa.int64(), nullable=False),  # ms
        pa.field("video_duration", pa.int64(), nullable=False), # ms
        pa.field("watch_ratio", pa.float64(), nullable=False),  # play / video duration, raw (unclipped)
        pa.field("label_click", pa.int8(), nullable=False),     # 1 if watch_ratio >= click_threshold (0.5)
        pa.field("label_value", pa.float32(), nullable=False),  # log1p(min(watch_ratio, value_clip))
    ]
)

#: ``quarantine.parquet``: every rejected raw row, as strings, with its reason.
QUARANTINE = pa.schema(
    [
        pa.field("source", pa.string(), nullable=False),   # e.g. "big_matrix.csv"
        pa.field("row_number", pa.int64(), nullable=False), # 0-based data-row number in the source file
        pa.field("reason", pa.string(), nullable=False),   # one stable reason code, e.g. "negative_duration"
        pa.field("raw", pa.string(), nullable=False),      # JSON object of the original fields
    ]
)

#: One source's quarantined rows before preprocessing adds the ``source`` column: :data:`QUARANTINE` without it
#: (nullable while rows are collected).
QUARANTINE_ROWS = pa.schema([f.with_nullable(True) for f in QUARANTINE if f.name != "source"])

#: ``item_propensity.parquet``: exposure propensity estimate per item, for IPS.
ITEM_PROPENSITY = pa.schema(
    [
        pa.field("item_idx", pa.int32(), nullable=False),
        pa.field("video_id", pa.int64(), nullable=False),
        pa.field("train_count", pa.int64(), nullable=False),  # exposures in the training split
        pa.field("propensity", pa.float64(), nullable=False), # smoothed, clipped, in (0, 1]
    ]
)
