"""One-time CSV -> Parquet cache of the raw interaction logs, with every field kept as its original string.

Why: the raw CSV is parsed once here (single pass, streaming, bounded memory); every later preprocessing run —
the plain pass and the Ray Data job alike — reads column-oriented Parquet shards instead, and the shards are the
unit of parallel reading for Ray Data. Fields stay strings so that bad values still reach
:mod:`graphrec_ray.preprocess.validate` and are quarantined with their original text; a ``row_number:int64`` column
(0-based data row in the CSV, header excluded) ties every row to its source line.

Rows with the wrong number of fields cannot be split into columns; they are written to ``_malformed.parquet``
(``row_number, text``) and end up in the quarantine with reason ``malformed_row``.

Layout of ``<cache_root>/<csv stem>/``: ``part-00000.parquet …``, ``_malformed.parquet``, ``_stamp.json``. The
stamp records the CSV's size and modification time; a changed CSV is converted again.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

FORMAT_VERSION = 2  # bump when the cache layout changes (forces re-conversion)
_BLOCK_BYTES = 16 << 20  # CSV read block size

MALFORMED = pa.schema([pa.field("row_number", pa.int64()), pa.field("text", pa.string())])


@dataclass(frozen=True)
class RawCache:
    """A converted CSV.

    Attributes:
        source: CSV file name, e.g. ``"big_matrix.csv"`` (the quarantine's ``source``).
        directory: cache folder of this CSV.
        shards: Parquet shard paths in row order (at least one, possibly empty).
        columns: header columns of the CSV, in file order.
        n_rows: data rows in the CSV, malformed ones included.
        n_malformed: rows with the wrong number of fields.
    """

    source: str
    directory: Path
    shards: tuple[Path, ...]
    columns: tuple[str, ...]
    n_rows: int
    n_malformed: int

    @property
    def malformed_path(self) -> Path:
        return self.directory / "_malformed.parquet"

    def read_malformed(self) -> pa.Table:
        """``(row_number:int64, text:string)`` of the malformed rows, by row number."""
        return pq.read_table(self.malformed_path, schema=MALFORMED)


def _stat_key(csv_path: Path) -> dict[str, int]:
    st = csv_path.stat()
    return {"size": int(st.st_size), "mtime_ns": int(st.st_mtime_ns)}


def _load(directory: Path, source: str, csv_path: Path, shard_rows: int) -> RawCache | None:
    stamp_path = directory / "_stamp.json"
    if not stamp_path.is_file():
        return None
    try:
        stamp = json.loads(stamp_path.read_text())
    except (OSError, ValueError):
        return None
    if (stamp.get("format_version") != FORMAT_VERSION or stamp.get("source_stat") != _stat_key(csv_path)
            or stamp.get("shard_rows") != shard_rows):
        return None
    shards = tuple(directory / s for s in stamp["shards"])
    if not all(p.is_file() for p in shards) or not (directory / "_malformed.parquet").is_file():
        return None
    return RawCache(source, directory, shards, tuple(stamp["columns"]), int(stamp["n_rows"]),
                    int(stamp["n_malformed"]))


def ensure_cache(csv_path: str | Path, cache_root: str | Path, shard_rows: int = 1_000_000,
                 progress: bool = False) -> RawCache:
    """Return the Parquet cache of ``csv_path`` under ``cache_root``, converting the CSV first if needed.

    Args:
        csv_path: a KuaiRec interaction CSV (header line first).
        cache_root: folder holding one sub-folder per CSV.
        shard_rows: rows per Parquet shard (default 1,000,000).
        progress: show a tqdm bar (rows) while converting.

    Raises:
        FileNotFoundError: ``csv_path`` does not exist.
    """
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise FileNotFoundError(csv_path)
    directory = Path(cache_root) / csv_path.stem
    cached = _load(directory, csv_path.name, csv_path, shard_rows)
    if cached is not None:
        return cached
    return convert_csv(csv_path, directory, shard_rows, progress)


def _good_row_numbers(n_good_before: int, n_good: int, skipped: np.ndarray) -> np.ndarray:
    """Row numbers of good rows ``n_good_before .. n_good_before + n_good - 1`` given sorted skipped row numbers.

    Good row ``k`` sits after every skipped row ``j`` with ``skipped[j] - j <= k`` (``skipped[j] - j`` is the
    number of good rows before skipped row ``j``).
    """
    k = np.arange(n_good_before, n_good_before + n_good, dtype=np.int64)
    if skipped.size == 0:
        return k
    before = skipped - np.arange(skipped.size, dtype=np.int64)
    return k + np.searchsorted(before, k, side="right")


def convert_csv(csv_path: str | Path, directory: str | Path, shard_rows: int = 1_000_000,
                progress: bool = False) -> RawCache:
    """Convert one CSV to string Parquet shards (+ ``row_number``) in ``directory`` (replaced atomically)."""
    csv_path, directory = Path(csv_path), Path(directory)
    # An empty line is read as a row of empty fields (validation quarantines it as missing_value), so physical
    # lines and row numbers stay aligned.
    with open(csv_path, "rb") as f:
        header = f.readline().decode("utf-8-sig").strip().split(",")  # -sig: tolerate a UTF-8 BOM
    header = [h.strip() for h in header]
    tmp = directory.with_name(f"{directory.name}.tmp-{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)

    skipped_rows: list[int] = []
    skipped_text: list[str] = []

    def on_invalid(row: pacsv.InvalidRow) -> str:
        # with use_threads=False, row.number is the 1-based physical line (line 1 is the header)
        skipped_rows.append(int(row.number) - 2)
        skipped_text.append(row.text)
        return "skip"

    reader = pacsv.open_csv(
        csv_path,
        read_options=pacsv.ReadOptions(use_threads=False, block_size=_BLOCK_BYTES),
        parse_options=pacsv.ParseOptions(invalid_row_handler=on_invalid, ignore_empty_lines=False),
        convert_options=pacsv.ConvertOptions(column_types={c: pa.string() for c in header},
                                             strings_can_be_null=False, quoted_strings_can_be_null=False),
    )
    schema = pa.schema([*(pa.field(c, pa.string()) for c in header), pa.field("row_number", pa.int64())])
    shards: list[str] = []
    pending: list[pa.RecordBatch] = []
    n_pending = 0
    n_good = 0

    def flush(n: int) -> None:
        """Write the first ``n`` pending rows as the next shard; keep the rest pending."""
        nonlocal pending, n_pending
        name = f"part-{len(shards):05d}.parquet"
        table = pa.Table.from_batches(pending, schema=schema) if pending else schema.empty_table()
        pq.write_table(table.slice(0, n), tmp / name, compression="snappy")
        shards.append(name)
        rest = table.slice(n)
        pending, n_pending = (rest.to_batches() if rest.num_rows else []), rest.num_rows

    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(desc=f"cache {csv_path.name}", unit=" rows", unit_scale=True)
    for batch in reader:
        if batch.num_rows == 0:
            continue
        skipped = np.asarray(sorted(skipped_rows), dtype=np.int64)
        rn = _good_row_numbers(n_good, batch.num_rows, skipped)
        n_good += batch.num_rows
        arrays = [batch.column(c) for c in header] + [pa.array(rn, pa.int64())]
        pending.append(pa.RecordBatch.from_arrays(arrays, schema=schema))
        n_pending += batch.num_rows
        if bar is not None:
            bar.update(batch.num_rows)
        while n_pending >= shard_rows:
            flush(shard_rows)
    if n_pending or not shards:
        flush(n_pending)
    if bar is not None:
        bar.close()

    order = np.argsort(np.asarray(skipped_rows, dtype=np.int64), kind="stable")
    malformed = pa.table({"row_number": pa.array(np.asarray(skipped_rows, dtype=np.int64)[order], pa.int64()),
                          "text": pa.array([skipped_text[i] for i in order], pa.string())}, schema=MALFORMED)
    pq.write_table(malformed, tmp / "_malformed.parquet")
    stamp = {"format_version": FORMAT_VERSION, "source": csv_path.name, "source_stat": _stat_key(csv_path),
             "shard_rows": shard_rows, "shards": shards, "columns": header,
             "n_rows": n_good + len(skipped_rows), "n_malformed": len(skipped_rows)}
    (tmp / "_stamp.json").write_text(json.dumps(stamp, indent=2, sort_keys=True) + "\n")
    if directory.exists():
        shutil.rmtree(directory)
    os.replace(tmp, directory)
    return RawCache(csv_path.name, directory, tuple(directory / s for s in shards), tuple(header),
                    n_good + len(skipped_rows), len(skipped_rows))


def read_rows(cache: RawCache, row_numbers: np.ndarray) -> pa.Table:
    """Raw string rows (all header columns + ``row_number``) for the given row numbers, in ``row_numbers`` order.

    Reads only the shards that hold them; used to quarantine exact duplicates with their original text.
    """
    want = np.asarray(row_numbers, dtype=np.int64)
    parts = []
    for shard in cache.shards:
        t = pq.read_table(shard)
        rn = t.column("row_number").to_numpy()
        if rn.size == 0:
            continue
        sel = np.isin(rn, want)
        if sel.any():
            parts.append(t.filter(pa.array(sel)))
    if not parts:
        return pa.schema([*(pa.field(c, pa.string()) for c in cache.columns),
                          pa.field("row_number", pa.int64())]).empty_table()
    t = pa.concat_tables(parts)
    rn = t.column("row_number").to_numpy()
    pos = {int(r): i for i, r in enumerate(rn)}
    return t.take(pa.array([pos[int(r)] for r in want], pa.int64()))
