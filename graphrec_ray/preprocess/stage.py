"""The preprocessing transformation, as plain single-process pyarrow code.

``raw KuaiRec CSVs -> (one-time string Parquet cache) -> validate + label per batch -> per source: canonical
order, duplicate policy -> id maps (kept big + small rows) -> repeated-view policy -> temporal split of
big_matrix (per user by default, or global) -> item propensities from train -> Parquet files + manifest`` under
``run_dir/preprocess/``.

``small_matrix`` rows without time/date/timestamp stay in ``eval_small`` (``eval_keep_no_timestamp``; evaluation
needs no time) and are counted. The manifest also reports, for the chosen split, how many evaluation users
(val, test, eval_small) have no training row, and the side tables' quirks (malformed ``feat`` literals,
unknown ``user_active_degree`` values, interaction videos missing from ``item_categories.csv``).

The Ray Data job (``jobs/preprocess.py``) runs the per-batch step (:func:`process_batch`) in parallel with
``map_batches`` and then calls the same :func:`finalize`, so both paths write byte-identical files. This module
is also the Ray-free way for other stages' tests to get processed data (:func:`preprocess_local`).

Row accounting, checked for every source (``RuntimeError`` if violated)::

    rows in = rows kept + rows quarantined + rows removed by the declared duplicate policies
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from graphrec_ray.config import config_hash, to_dict
from graphrec_ray.errors import DataError
from graphrec_ray.ids import IdMap
from graphrec_ray.layout import RunLayout
from graphrec_ray.manifest import write_manifest
from graphrec_ray.preprocess.config import PreprocessConfig
from graphrec_ray.preprocess.duplicates import exact_duplicate_mask, repeated_views, sort_order
from graphrec_ray.preprocess.labels import make_labels
from graphrec_ray.preprocess.propensity import item_counts, item_propensity
from graphrec_ray.preprocess.raw_cache import RawCache, ensure_cache, read_rows
from graphrec_ray.preprocess.split import SPLIT_NAMES, TEST, TRAIN, VAL, assign_by_hash, assign_by_time, assign_per_user, \
    temporal_cuts, users_without_training
from graphrec_ray.preprocess.validate import ALL_REASONS, EXACT_DUPLICATE, MALFORMED_ROW, VALIDATED, raw_json, \
    reason_names, validate_batch
from graphrec_ray.schema import INTERACTIONS, ITEM_PROPENSITY, QUARANTINE, QUARANTINE_ROWS
from graphrec_ray.sources import kuairec as kr
from graphrec_ray.sources.kuairec import BIG_MATRIX, SMALL_MATRIX

#: big_matrix (training logs, biased exposure) first, then small_matrix (fully observed: unbiased evaluation).
SOURCES: tuple[str, ...] = (BIG_MATRIX, SMALL_MATRIX)

#: What :func:`process_batch` returns: valid rows first (``reason`` null), then quarantined rows.
WIDE = pa.schema([*VALIDATED, pa.field("label_click", pa.int8()), pa.field("label_value", pa.float32()),
                  pa.field("reason", pa.string()), pa.field("raw", pa.string())])
LABELLED = pa.schema([*VALIDATED, pa.field("label_click", pa.int8()), pa.field("label_value", pa.float32())])

_PARQUET_OPTS: dict[str, Any] = {"compression": "zstd", "row_group_size": 1 << 20, "write_statistics": True}


# ------------------------------------------------------------------------------------------ per batch (parallel)
def batch_kwargs(cfg: PreprocessConfig, source: str | None = None) -> dict[str, Any]:
    """The plain values :func:`process_batch` needs from the config (what Ray ships to each task).

    With ``source == SMALL_MATRIX`` and ``cfg.eval_keep_no_timestamp`` (default), rows without a timestamp are
    kept (the unbiased evaluation block needs no time); other sources follow ``cfg.allow_no_timestamp``.
    """
    keep_no_ts = cfg.allow_no_timestamp or (source == SMALL_MATRIX and cfg.eval_keep_no_timestamp)
    return {"allow_no_timestamp": keep_no_ts, "watch_ratio_max": cfg.watch_ratio_max,
            "watch_ratio_tolerance": cfg.watch_ratio_tolerance, "click_threshold": cfg.click_threshold,
            "value_clip": cfg.value_clip}


def process_batch(batch: pa.Table, *, allow_no_timestamp: bool = False, watch_ratio_max: float = 1000.0,
                  watch_ratio_tolerance: float = 0.01, click_threshold: float = 0.5,
                  value_clip: float = 5.0, source_id: int | None = None) -> pa.Table:
    """Validate and label one batch of raw string rows (the ``map_batches`` function of the Ray Data job).

    Args:
        batch: ``(n,)`` raw rows, string columns + ``row_number`` (a cache shard or part of one).
        allow_no_timestamp, watch_ratio_max, watch_ratio_tolerance: see :func:`validate.validate_batch`.
        click_threshold, value_clip: see :func:`labels.make_labels` (all defaults as in ``PreprocessConfig``).
        source_id: when given, a constant ``source_id:int8`` column is appended (tags the blocks of a Ray Data
            union of several sources, see :func:`split_sources`).

    Returns:
        ``(n,)`` rows with schema :data:`WIDE`: the valid rows first (labelled, ``reason``/``raw`` null), then
        the quarantined rows (``reason`` code, ``raw`` JSON of the original strings; typed values meaningless).
    """
    out = _process_batch(batch, allow_no_timestamp, watch_ratio_max, watch_ratio_tolerance, click_threshold,
                         value_clip)
    if source_id is not None:
        out = out.append_column("source_id", pa.array(np.full(out.num_rows, source_id, dtype=np.int8), pa.int8()))
    return out


def _process_batch(batch: pa.Table, allow_no_timestamp: bool, watch_ratio_max: float,
                   watch_ratio_tolerance: float, click_threshold: float, value_clip: float) -> pa.Table:
    typed, reason = validate_batch(batch, allow_no_timestamp=allow_no_timestamp, watch_ratio_max=watch_ratio_max,
                                   watch_ratio_tolerance=watch_ratio_tolerance)
    n = typed.num_rows
    bad = np.flatnonzero(reason != 0)
    wr = np.asarray(typed.column("watch_ratio").to_numpy(), dtype=np.float64)
    click, value = make_labels(np.where(reason == 0, wr, 0.0), click_threshold, value_clip)
    wide_cols = [typed.column(f.name) for f in VALIDATED] + [pa.array(click, pa.int8()), pa.array(value, pa.float32())]
    if bad.size == 0:
        return pa.Table.from_arrays(wide_cols + [pa.nulls(n, pa.string()), pa.nulls(n, pa.string())], schema=WIDE)
    good = np.flatnonzero(reason == 0)
    order = pa.array(np.concatenate([good, bad]), pa.int64())
    names = [None] * good.size + reason_names(reason[bad])
    raws = [None] * good.size + raw_json(batch, bad)
    table = pa.Table.from_arrays(wide_cols, schema=LABELLED).take(order)
    return pa.Table.from_arrays([*table.columns, pa.array(names, pa.string()), pa.array(raws, pa.string())],
                                schema=WIDE)


def split_wide(table: pa.Table) -> tuple[pa.Table, pa.Table]:
    """Split a :data:`WIDE` table (or any slice / concatenation of them) into ``(LABELLED, QUARANTINE_ROWS)``.

    Zero-copy when the valid rows form a prefix (what :func:`process_batch` returns, also after Ray Data
    slices its output into blocks); a filter otherwise.
    """
    reason = table.column("reason")
    n_valid = reason.null_count
    if reason.slice(0, n_valid).null_count == n_valid:
        valid, quar = table.slice(0, n_valid), table.slice(n_valid)
    else:
        valid, quar = table.filter(pc.is_null(reason)), table.filter(pc.is_valid(reason))
    return valid.select(LABELLED.names), quar.select(QUARANTINE_ROWS.names)


def process_shards(shards: pa.Table, kwargs_by_source: list[dict[str, Any]] | None = None,
                   **kwargs: Any) -> pa.Table:
    """Read and :func:`process_batch` each cache shard listed in ``shards`` (``path:string, source_id:int``).

    The ``map_batches`` function of the Ray Data job (one shard per call); ``kwargs`` as :func:`batch_kwargs`,
    or per source (``kwargs_by_source[source_id]``, i.e. ``batch_kwargs(cfg, SOURCES[i])``) when given.
    Returns the :data:`WIDE` rows of all listed shards, tagged with ``source_id``.
    """
    outs = [process_batch(pq.read_table(path), **(kwargs_by_source[int(sid)] if kwargs_by_source else kwargs),
                          source_id=int(sid))
            for path, sid in zip(shards.column("path").to_pylist(), shards.column("source_id").to_pylist())]
    pa.default_memory_pool().release_unused()  # long-lived Ray workers: hand parse buffers back to the OS
    if not outs:
        return pa.schema([*WIDE, pa.field("source_id", pa.int8())]).empty_table()
    return pa.concat_tables(outs)


def split_sources(table: pa.Table) -> list[tuple[int, pa.Table]]:
    """Split a block tagged by :func:`process_batch` (``source_id``) into ``[(source_id, rows)]``.

    A block from one branch of a union is constant in ``source_id`` (zero-copy); a mixed block is filtered.
    """
    if table.num_rows == 0:
        return []
    sid = table.column("source_id").to_numpy()
    rest = table.drop_columns(["source_id"])
    if sid.min() == sid.max():
        return [(int(sid[0]), rest)]
    return [(int(i), rest.filter(pa.array(sid == i))) for i in np.unique(sid)]


# ------------------------------------------------------------------------------------------ inputs
def cache_root(cfg: PreprocessConfig) -> Path:
    """Folder of the one-time CSV -> Parquet cache (``cfg.cache_dir`` or ``<data_dir>/_parquet_cache``)."""
    return Path(cfg.cache_dir) if cfg.cache_dir else Path(cfg.data_dir) / "_parquet_cache"


def prepare_inputs(cfg: PreprocessConfig, progress: bool = False) -> dict[str, RawCache]:
    """Check ``cfg.data_dir`` holds both interaction CSVs and return their (possibly new) Parquet caches.

    Raises:
        DataError: the folder or a CSV is missing (one line, pointing to ``graphrec simulate``).
    """
    data_dir = Path(cfg.data_dir)
    if not data_dir.is_dir():
        raise DataError(f"data folder not found: {data_dir} (create one with `graphrec simulate --out {data_dir}` "
                        f"or `graphrec download`)")
    missing = [s for s in SOURCES if not (data_dir / s).is_file()]
    if missing:
        raise DataError(f"{data_dir}: missing {', '.join(missing)} (run `graphrec simulate --out {data_dir}` "
                        f"or `graphrec download`)")
    try:
        return {s: ensure_cache(data_dir / s, cache_root(cfg), cfg.cache_shard_rows, progress) for s in SOURCES}
    except PermissionError as exc:
        raise DataError(f"cannot write the Parquet cache under {cache_root(cfg)} ({exc.strerror}); "
                        f"set cache_dir=<a writable folder>") from None


# ------------------------------------------------------------------------------------------ global steps
@dataclass
class SourceRows:
    """What the per-batch step produced for one source file."""

    valid: pa.Table  # LABELLED rows, any order
    quarantined: pa.Table  # QUARANTINE_ROWS rows, any order
    cache: RawCache


@dataclass
class _Kept:
    table: pa.Table  # LABELLED rows in canonical order after the duplicate policies
    quarantined: list[pa.Table] = field(default_factory=list)
    removed: dict[str, int] = field(default_factory=dict)
    quirks: dict[str, Any] = field(default_factory=dict)


def _malformed_rows(cache: RawCache) -> pa.Table:
    m = cache.read_malformed()
    raws = [json.dumps({"line": t}, ensure_ascii=True) for t in m.column("text").to_pylist()]
    return pa.table({"row_number": m.column("row_number"), "reason": pa.array([MALFORMED_ROW] * m.num_rows,
                     pa.string()), "raw": pa.array(raws, pa.string())}, schema=QUARANTINE_ROWS)


def _apply_exact_duplicates(rows: SourceRows, policy: str) -> _Kept:
    """Canonical order and the exact-duplicate policy, with one copy of the rows (sorted and filtered at once)."""
    order = sort_order(rows.valid) if rows.valid.num_rows else pa.array([], pa.uint64())
    dup = exact_duplicate_mask(rows.valid, order)
    n_dup = int(dup.sum())
    kept = _Kept(LABELLED.empty_table(), [rows.quarantined, _malformed_rows(rows.cache)])
    kept.quirks["exact_duplicate_rows"] = n_dup
    drop = n_dup > 0 and policy in ("drop", "quarantine")
    take = pa.array(np.asarray(order)[~dup]) if drop else order
    if drop and policy == "quarantine":
        rn = rows.valid.column("row_number").take(pa.array(np.asarray(order)[dup])).to_numpy()
        raw = read_rows(rows.cache, rn)
        kept.quarantined.append(pa.table(
            {"row_number": pa.array(rn, pa.int64()), "reason": pa.array([EXACT_DUPLICATE] * n_dup, pa.string()),
             "raw": pa.array(raw_json(raw, np.arange(n_dup)), pa.string())}, schema=QUARANTINE_ROWS))
    elif drop:
        kept.removed["exact_duplicates"] = n_dup
    kept.table = rows.valid.take(take) if rows.valid.num_rows else rows.valid
    rows.valid = LABELLED.empty_table()  # drop our reference to the unsorted rows (peak memory)
    pa.default_memory_pool().release_unused()
    return kept


def _lookup(ids: IdMap, raw: np.ndarray) -> np.ndarray:
    """``ids.to_idx(raw)`` as int32, through a dense table when raw ids are small (KuaiRec's are < 11k)."""
    raw = np.asarray(raw, dtype=np.int64)
    if len(ids) and 0 <= ids.raw_ids[0] and ids.raw_ids[-1] < 1 << 26 and raw.size > 4 * len(ids):
        lut = np.full(int(ids.raw_ids[-1]) + 1, -1, dtype=np.int32)
        lut[ids.raw_ids] = np.arange(len(ids), dtype=np.int32)
        inside = (raw >= 0) & (raw < lut.size)
        return np.where(inside, lut[np.where(inside, raw, 0)], -1).astype(np.int32)
    return ids.to_idx(raw).astype(np.int32)


def _with_indices(t: pa.Table, users: IdMap, items: IdMap) -> pa.Table:
    """Append ``user_idx``/``item_idx`` (int32) to LABELLED rows; every id is in the maps by construction."""
    uidx = _lookup(users, t.column("user_id").to_numpy())
    iidx = _lookup(items, t.column("video_id").to_numpy())
    if (uidx < 0).any() or (iidx < 0).any():
        raise RuntimeError("kept row with an id outside the id maps (a bug)")
    return t.append_column("user_idx", pa.array(uidx, pa.int32())).append_column("item_idx", pa.array(iidx, pa.int32()))


def _apply_repeated_views(kept: _Kept, n_items: int, policy: str) -> None:
    t = kept.table
    key = t.column("user_idx").to_numpy().astype(np.int64) * max(n_items, 1) + t.column("item_idx").to_numpy()
    keep, n_pairs, n_extra = repeated_views(key, t.column("watch_ratio").to_numpy(), policy)
    kept.quirks["repeated_view_pairs"] = n_pairs
    kept.quirks["repeated_view_extra_rows"] = n_extra
    if not keep.all():
        kept.table = t.filter(pa.array(keep))
        kept.removed["repeated_views"] = int((~keep).sum())


def _interactions(t: pa.Table) -> pa.Table:
    """Indexed LABELLED rows -> schema ``INTERACTIONS`` (``row_number`` dropped), one chunk per column."""
    return t.select(INTERACTIONS.names).cast(INTERACTIONS).combine_chunks()


def _write(table: pa.Table, path: Path) -> None:
    pq.write_table(table.combine_chunks(), path, **_PARQUET_OPTS)


def _source_quirks(kept: _Kept, quarantined: pa.Table, value_clip: float) -> dict[str, Any]:
    t = kept.table
    wr = t.column("watch_ratio").to_numpy()
    reasons = Counter(quarantined.column("reason").to_pylist())
    q = dict(kept.quirks)
    q["missing_timestamp_rows"] = int(reasons.get("missing_timestamp", 0) + t.column("timestamp").null_count)
    q["kept_without_timestamp"] = int(t.column("timestamp").null_count)
    q["watch_ratio_above_clip"] = int((wr > value_clip).sum())
    q["watch_ratio_max_kept"] = float(wr.max()) if wr.size else 0.0
    q["zero_play_duration"] = int((t.column("play_duration").to_numpy() == 0).sum())
    return q


def finalize(parts: dict[str, SourceRows], cfg: PreprocessConfig, out_dir: str | Path,
             progress: bool = False) -> dict[str, Any]:
    """Everything after the per-batch step; writes ``out_dir`` (``run_dir/preprocess``) and returns the summary.

    Args:
        parts: per source file name (``big_matrix.csv``, ``small_matrix.csv``) the validated rows, the rows
            quarantined by validation and the source's cache (row counts, malformed rows, raw rows).
        cfg: the stage config.
        out_dir: output folder (created).
        progress: show a tqdm bar over the steps.

    Returns:
        The manifest's content (row counts per split and per quarantine reason, quirk counts, cuts, checksums).

    Raises:
        DataError: a source has no valid row left (e.g. a missing column), or big_matrix has no timestamp.
        RuntimeError: the row accounting does not add up (a bug).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=6, desc="preprocess: finalize", unit=" step")

    def step() -> None:
        if bar is not None:
            bar.update(1)

    kept: dict[str, _Kept] = {}
    quarantine: dict[str, pa.Table] = {}
    for source in SOURCES:
        rows = parts[source]
        k = _apply_exact_duplicates(rows, cfg.exact_duplicates)
        quarantine[source] = pa.concat_tables(k.quarantined).combine_chunks()
        if k.table.num_rows == 0:
            top = Counter(quarantine[source].column("reason").to_pylist()).most_common(1)
            why = f" (most common reason: {top[0][0]}, {top[0][1]} rows)" if top else ""
            raise DataError(f"{source}: no valid rows out of {rows.cache.n_rows}{why}")
        kept[source] = k
    step()

    all_kept = [kept[s].table for s in SOURCES]
    users = IdMap.from_raw(np.concatenate([t.column("user_id").to_numpy() for t in all_kept]))
    items = IdMap.from_raw(np.concatenate([t.column("video_id").to_numpy() for t in all_kept]))
    del all_kept
    for source in SOURCES:
        kept[source].table = _with_indices(kept[source].table, users, items)
        _apply_repeated_views(kept[source], len(items), cfg.repeated_views)
    step()

    # temporal split of big_matrix (rows are in canonical order: timestamp ascending, nulls last)
    big = kept[BIG_MATRIX].table
    ts_col = big.column("timestamp")
    n_ts = big.num_rows - ts_col.null_count
    if n_ts == 0:
        raise DataError(f"{BIG_MATRIX}: no row has a timestamp; the temporal split needs them")
    ts = ts_col.slice(0, n_ts).to_numpy()
    val_cut: float | None = None
    test_cut: float | None = None
    if cfg.split == "global":
        val_cut, test_cut = temporal_cuts(ts, cfg.train_frac, cfg.val_frac, cfg.split_by)
        code = assign_by_time(ts, val_cut, test_cut)
    else:
        code = assign_per_user(big.column("user_idx").slice(0, n_ts).to_numpy(), ts, cfg.train_frac, cfg.val_frac,
                               cfg.split_by, cfg.min_user_rows)
    no_ts = big.slice(n_ts)
    no_ts_code = assign_by_hash(no_ts.column("user_id").to_numpy(), no_ts.column("video_id").to_numpy(),
                                cfg.seed, cfg.train_frac, cfg.val_frac)
    splits: dict[str, pa.Table] = {}
    for c, name in zip((TRAIN, VAL, TEST), SPLIT_NAMES):
        if cfg.split == "global":
            lo, hi = np.searchsorted(code, [c, c + 1])  # codes are non-decreasing along sorted timestamps
            part = [big.slice(int(lo), int(hi - lo))]
        else:  # per user: a filter keeps the canonical (time) order within the split
            part = [big.slice(0, n_ts).filter(pa.array(code == c))]
        if no_ts.num_rows:
            part.append(no_ts.filter(pa.array(no_ts_code == c)))
        splits[name] = _interactions(pa.concat_tables(part))
    splits["eval_small"] = _interactions(kept[SMALL_MATRIX].table)
    split_doc = _split_doc(cfg, splits, code, val_cut, test_cut, big.column("user_idx").slice(0, n_ts).to_numpy())
    step()

    counts = item_counts(splits["train"].column("item_idx").to_numpy(), len(items))
    prop = item_propensity(counts, cfg.propensity_smoothing, cfg.propensity_power, cfg.propensity_clip)
    prop_table = pa.table({"item_idx": pa.array(np.arange(len(items), dtype=np.int32), pa.int32()),
                           "video_id": pa.array(items.raw_ids, pa.int64()),
                           "train_count": pa.array(counts, pa.int64()),
                           "propensity": pa.array(prop, pa.float64())}, schema=ITEM_PROPENSITY)
    step()

    # quarantine, canonical order (source, row_number)
    q_parts = []
    for source in SOURCES:
        q = quarantine[source]
        q = q.take(pa.array(np.argsort(q.column("row_number").to_numpy(), kind="stable"), pa.int64()))
        q_parts.append(pa.table({"source": pa.array([source] * q.num_rows, pa.string()),
                                 "row_number": q.column("row_number"), "reason": q.column("reason"),
                                 "raw": q.column("raw")}, schema=QUARANTINE))
    quarantine_table = pa.concat_tables(q_parts)

    # accounting and counts
    sources_doc: dict[str, Any] = {}
    for source in SOURCES:
        k, q = kept[source], quarantine[source]
        n_in = parts[source].cache.n_rows
        n_kept = k.table.num_rows
        n_removed = sum(k.removed.values())
        if n_in != n_kept + q.num_rows + n_removed:
            raise RuntimeError(f"{source}: row accounting broken: in={n_in} kept={n_kept} "
                               f"quarantined={q.num_rows} removed={n_removed}")
        reasons = Counter(q.column("reason").to_pylist())
        sources_doc[source] = {
            "rows_in": n_in, "rows_kept": n_kept, "rows_quarantined": q.num_rows,
            "rows_removed_by_policy": dict(sorted(k.removed.items())),
            "quarantine_reasons": {r: int(reasons[r]) for r in ALL_REASONS if reasons.get(r)},
            "quirks": _source_quirks(k, q, cfg.value_clip),
        }
    del kept
    step()

    layout = RunLayout(out.parent)  # the file names (``out`` may be any folder)
    names = {name: out / layout.split(name).name for name in (*SPLIT_NAMES, "eval_small")}
    for name, path in names.items():
        _write(splits[name], path)
    _write(quarantine_table, out / layout.quarantine.name)
    _write(prop_table, out / layout.item_propensity.name)
    users.save(out / layout.user_map.name)
    items.save(out / layout.item_map.name)
    files = [p.name for p in names.values()] + [layout.quarantine.name, layout.item_propensity.name,
                                                 layout.user_map.name, layout.item_map.name]
    train_ts = splits["train"].column("timestamp").drop_null().to_numpy()
    extra = {
        "data_dir": str(cfg.data_dir),
        "n_users": len(users), "n_items": len(items),
        "rows": {**{name: splits[name].num_rows for name in names}, "quarantine": quarantine_table.num_rows},
        "quarantine_reasons": {r: int(c) for r, c in sorted(
            Counter(quarantine_table.column("reason").to_pylist()).items())},
        "sources": sources_doc,
        "split": {**split_doc,
                  "train_max_timestamp": float(train_ts.max()) if train_ts.size else None,
                  "rows_without_timestamp": int(no_ts.num_rows),
                  "eval_small_rows_without_timestamp": int(splits["eval_small"].column("timestamp").null_count)},
        "side_tables": side_table_quirks(cfg.data_dir, items.raw_ids, splits),
        "propensity": {"min": float(prop.min()), "max": float(prop.max()),
                       "items_unseen_in_train": int((counts == 0).sum())},
        "policies": {"exact_duplicates": cfg.exact_duplicates, "repeated_views": cfg.repeated_views},
        "config": to_dict(cfg),
    }
    write_manifest(out, "preprocess", config_hash(cfg), files, extra)
    step()
    if bar is not None:
        bar.close()
    return {**extra, "config_hash": config_hash(cfg), "files": sorted(files)}


def _split_doc(cfg: PreprocessConfig, splits: dict[str, pa.Table], code: np.ndarray, val_cut: float | None,
               test_cut: float | None, user_idx: np.ndarray) -> dict[str, Any]:
    """Manifest entry of the split: settings, cuts (global only) and evaluation users without training rows.

    ``eval_users[name] = {"users": distinct users in the split, "without_train": of them, with no train row}``
    for ``val``, ``test`` and ``eval_small`` (the issue-10 figure: a user without training history can only get
    cold-start recommendations).
    """
    train_users = splits["train"].column("user_idx").to_numpy()
    eval_users = {}
    for name in ("val", "test", "eval_small"):
        n, missing = users_without_training(train_users, splits[name].column("user_idx").to_numpy())
        eval_users[name] = {"users": n, "without_train": missing}
    doc: dict[str, Any] = {"kind": cfg.split, "by": cfg.split_by, "train_frac": cfg.train_frac,
                           "val_frac": cfg.val_frac, "val_cut": val_cut, "test_cut": test_cut}
    if cfg.split == "per_user":
        held = np.unique(user_idx[code != TRAIN])
        doc["min_user_rows"] = cfg.min_user_rows
        doc["users_held_out"] = int(held.size)              # users with val/test rows (all have train rows)
        doc["users_train_only"] = int(np.unique(user_idx).size - held.size)   # too few rows (or all tied)
    doc["eval_users"] = eval_users
    return doc


#: ``user_active_degree`` levels of KuaiRec 2.0's user_features.csv; anything else (its literal "UNKNOWN",
#: empty fields, other strings) is counted as unknown.
KNOWN_ACTIVE_DEGREES: tuple[str, ...] = ("full_active", "high_active", "middle_active", "low_active")


def side_table_quirks(data_dir: str | Path, video_ids: np.ndarray, splits: dict[str, pa.Table]) -> dict[str, Any]:
    """Quirk counts of the side tables next to the interaction logs (a missing file is reported, not an error).

    Args:
        data_dir: the raw data folder.
        video_ids: ``(n_items,)`` raw ids of the kept interaction videos (the item map).
        splits: the written interaction tables (to count rows whose video has no categories).

    Returns:
        ``{"item_categories.csv": {"rows", "malformed_feat", "interaction_videos_missing",
        "interaction_rows_missing"}, "user_features.csv": {"rows", "unknown_user_active_degree", "null_<col>"...},
        "social_network.csv": {"rows", "malformed_friend_list"}}``; ``{"present": False}`` for an absent file.
    """
    d = Path(data_dir)

    def item_categories() -> dict[str, Any]:
        cats = kr.read_item_categories(d)
        q = kr.quirk_counts(cats)
        missing = np.setdiff1d(np.asarray(video_ids, dtype=np.int64), cats.column("video_id").to_numpy())
        rows = sum(int(np.isin(t.column("video_id").to_numpy(), missing).sum()) for t in splits.values())
        return {"rows": q.get("rows", cats.num_rows), "malformed_feat": q.get("malformed_feat", 0),
                "interaction_videos_missing": int(missing.size), "interaction_rows_missing": rows}

    def user_features() -> dict[str, Any]:
        uf = kr.read_user_features(d)
        q = dict(kr.quirk_counts(uf))
        q["unknown_user_active_degree"] = sum(1 for v in uf.column("user_active_degree").to_pylist()
                                              if v not in KNOWN_ACTIVE_DEGREES)
        return dict(sorted(q.items()))

    def social_network() -> dict[str, Any]:
        return kr.quirk_counts(kr.read_social_network(d))

    out: dict[str, Any] = {}
    for name, read in ((kr.ITEM_CATEGORIES, item_categories), (kr.USER_FEATURES, user_features),
                       (kr.SOCIAL_NETWORK, social_network)):
        if not (d / name).is_file():
            out[name] = {"present": False}
            continue
        try:
            out[name] = read()
        except DataError as exc:  # a broken side table is reported here; the ranking stage will refuse it
            out[name] = {"error": str(exc)}
    return out


# ------------------------------------------------------------------------------------------ the plain pass
def collect(batches: Iterable[pa.Table]) -> tuple[pa.Table, pa.Table]:
    """Split and concatenate :data:`WIDE` outputs into ``(LABELLED, QUARANTINE_ROWS)`` tables."""
    valid, quar = [], []
    for b in batches:
        v, q = split_wide(b)
        valid.append(v)
        quar.append(q)
    return collect_split(valid, quar)


def collect_split(valid: list[pa.Table], quar: list[pa.Table]) -> tuple[pa.Table, pa.Table]:
    """Concatenate already split parts (empty lists give empty tables of the right schema)."""
    v = pa.concat_tables(valid) if valid else LABELLED.empty_table()
    q = pa.concat_tables(quar) if quar else QUARANTINE_ROWS.empty_table()
    return v, q


def preprocess_local(cfg: PreprocessConfig, out_dir: str | Path, progress: bool = False) -> dict[str, Any]:
    """Run the whole stage in this process (no Ray): the reference path and the benchmark's baseline.

    Args:
        cfg: stage config (``cfg.data_dir`` holds ``big_matrix.csv`` and ``small_matrix.csv``).
        out_dir: output folder, normally ``RunLayout(run_dir).preprocess``.
        progress: tqdm bars for the cache conversion, the shards and the final steps.

    Returns:
        The summary written to ``out_dir/manifest.json`` plus ``config_hash`` and ``files``.
    """
    caches = prepare_inputs(cfg, progress)
    parts: dict[str, SourceRows] = {}
    for source in SOURCES:
        kwargs = batch_kwargs(cfg, source)
        cache = caches[source]
        shards: Iterable[Path] = cache.shards
        if progress:
            from tqdm import tqdm

            shards = tqdm(cache.shards, desc=f"validate {source}", unit=" shard")
        valid, quar = collect(process_batch(pq.read_table(s), **kwargs) for s in shards)
        parts[source] = SourceRows(valid, quar, cache)
    return finalize(parts, cfg, out_dir, progress)
