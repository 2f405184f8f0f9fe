"""preprocess_local end to end on tiny files in the exact KuaiRec format, with every quirk and broken rows."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from graphrec_ray.errors import DataError
from graphrec_ray.ids import IdMap
from graphrec_ray.manifest import read_manifest, verify_manifest
from graphrec_ray.preprocess.config import PreprocessConfig
from graphrec_ray.preprocess.stage import preprocess_local
from graphrec_ray.schema import INTERACTIONS, ITEM_PROPENSITY, QUARANTINE
from tests.unit.preprocess.kuairec_rows import HEADER, T0, line, write

OUTPUTS = ("train", "val", "test", "eval_small", "quarantine", "item_propensity", "user_map", "item_map")

# 20 clean views of users 1-4 x videos 10-15, one per minute, watch ratios 0.1 .. 2.0
CLEAN = [(1 + i % 4, 10 + i % 6, 100 * (i + 1), 1000, T0 + 60 * i) for i in range(20)]
BIG_BAD = {  # position in the file -> (line, expected reason); video 99 only appears in broken rows
    20: ("5,99,abc,1000,,,,", "bad_type"),
    21: (line(5, 99, -5, 1000, T0 + 5, wr=-0.005), "negative_duration"),
    22: (line(5, 99, 100, 0, T0 + 6, wr=float("inf")), "zero_video_duration"),
    23: (line(5, 99, 100, 1000, None), "missing_timestamp"),
    24: (line(5, 99, 2_000_000, 1000, T0 + 8), "watch_ratio_out_of_range"),
    25: ("5,99,100", "malformed_row"),
    26: (line(5, 99, 100, 1000, T0 + 9, wr=float("nan")).replace("nan", ""), "nan_watch_ratio"),
}


def big_lines() -> list[str]:
    lines = [line(*r) for r in CLEAN]
    lines += [BIG_BAD[i][0] for i in sorted(BIG_BAD)]
    lines.append(lines[0])  # 27: exact duplicate of row 0
    lines.append(line(1, 10, 400, 1000, T0 + 60 * 20))  # 28: user 1 views video 10 again, later
    lines.append(line(2, 11, 8000, 1000, T0 + 60 * 21))  # 29: watch ratio 8 (> 5): kept, clipped label
    return lines


def small_lines() -> list[str]:
    rows = [line(u, v, 300 * u, 1000, T0 + 7 * u + v, date_float=True) for u in (1, 2) for v in (20, 21, 22)]
    return rows + [line(3, 20, 300, 1000, None)]  # NaN time/date/timestamp, like ~4% of small_matrix


@pytest.fixture()
def data_dir(tmp_path: Path) -> Path:
    d = tmp_path / "kuairec"
    write(d / "big_matrix.csv", big_lines())
    write(d / "small_matrix.csv", small_lines())
    return d


def run(data_dir: Path, out: Path, **kw: object) -> dict:
    cfg = PreprocessConfig(data_dir=str(data_dir), cache_dir=str(data_dir.parent / "cache"), **kw)  # type: ignore[arg-type]
    return preprocess_local(cfg, out)


def read(out: Path, name: str):
    return pq.read_table(out / f"{name}.parquet")


def test_counts_quarantine_and_accounting(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "run" / "preprocess"
    s = run(data_dir, out)
    big, small = s["sources"]["big_matrix.csv"], s["sources"]["small_matrix.csv"]
    assert big["rows_in"] == 30 and small["rows_in"] == 7
    assert big["quarantine_reasons"] == {r: 1 for _, r in BIG_BAD.values()}
    assert big["rows_removed_by_policy"] == {"exact_duplicates": 1}
    assert big["rows_kept"] == 22  # 20 clean + repeated view + outlier
    # issue 10: the small_matrix row without time stays in eval_small (counted), no longer quarantined
    assert small["quarantine_reasons"] == {} and small["rows_kept"] == 7
    assert small["quirks"]["kept_without_timestamp"] == 1 and s["split"]["eval_small_rows_without_timestamp"] == 1
    for src in (big, small):  # rows in = kept + quarantined + removed by policy
        assert src["rows_in"] == src["rows_kept"] + src["rows_quarantined"] + sum(src["rows_removed_by_policy"].values())
    assert big["quirks"]["exact_duplicate_rows"] == 1
    views = Counter((u, v) for u, v, *_ in CLEAN) + Counter([(1, 10), (2, 11)])  # rows 28, 29
    assert big["quirks"]["repeated_view_pairs"] == sum(c > 1 for c in views.values()) == 8
    assert big["quirks"]["repeated_view_extra_rows"] == sum(c - 1 for c in views.values())
    assert big["quirks"]["watch_ratio_above_clip"] == 1
    assert small["quirks"]["missing_timestamp_rows"] == 1

    q = read(out, "quarantine")
    assert q.schema.equals(QUARANTINE)
    rows = q.to_pylist()
    got = {(r["source"], r["row_number"]): r["reason"] for r in rows}
    want = {("big_matrix.csv", i): reason for i, (_, reason) in BIG_BAD.items()}
    assert got == want
    by_row = {r["row_number"]: r for r in rows if r["source"] == "big_matrix.csv"}
    assert json.loads(by_row[20]["raw"]) == dict(zip(HEADER.split(","), "5,99,abc,1000,,,,".split(",")))
    assert json.loads(by_row[25]["raw"]) == {"line": "5,99,100"}
    m = read_manifest(out)
    # default per-user split: users 1-4 have 5-7 rows (< min_user_rows 10), so all stay in training
    assert m["rows"] == {"train": 22, "val": 0, "test": 0, "eval_small": 7, "quarantine": 7}
    assert verify_manifest(out) == []


def test_labels_split_and_schemas(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "run" / "preprocess"
    run(data_dir, out, split="global")  # the global cut: these few users are too small for per-user cuts
    splits = {n: read(out, n) for n in ("train", "val", "test", "eval_small")}
    for t in splits.values():
        assert t.schema.equals(INTERACTIONS)
        ts = t.column("timestamp").drop_null().to_numpy()
        assert (np.diff(ts) >= 0).all()  # sorted by time (rows without time last)
        wr = t.column("watch_ratio").to_numpy()
        assert t.column("label_click").to_pylist() == (wr >= 0.5).astype(int).tolist()
        np.testing.assert_allclose(t.column("label_value").to_numpy(), np.log1p(np.minimum(wr, 5.0)), rtol=1e-6)
    tr, va, te = (splits[n].column("timestamp").to_numpy() for n in ("train", "val", "test"))
    assert tr.max() < va.min() and va.max() < te.min()  # no val/test timestamp before the training cut
    assert tr.size + va.size + te.size == 22
    outlier = splits["test"].to_pylist()[-1]
    assert outlier["watch_ratio"] == 8.0 and outlier["label_value"] == pytest.approx(np.log1p(5.0))
    assert splits["eval_small"].column("date").to_pylist() == [20200705] * 6 + [None]  # "20200705.0" parsed


def test_id_maps_and_propensities(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "run" / "preprocess"
    s = run(data_dir, out)
    users, items = IdMap.load(out / "user_map.parquet"), IdMap.load(out / "item_map.parquet")
    assert users.raw_ids.tolist() == [1, 2, 3, 4]  # user 5 only in broken rows; user 3 of small is in big too
    assert items.raw_ids.tolist() == [10, 11, 12, 13, 14, 15, 20, 21, 22]  # 99 only in broken rows
    assert (s["n_users"], s["n_items"]) == (4, 9)
    for n in ("train", "val", "test", "eval_small"):
        t = read(out, n)
        assert t.column("user_idx").to_pylist() == users.to_idx(t.column("user_id").to_numpy()).tolist()
        assert t.column("item_idx").to_pylist() == items.to_idx(t.column("video_id").to_numpy()).tolist()
    p = read(out, "item_propensity")
    assert p.schema.equals(ITEM_PROPENSITY)
    train_items = read(out, "train").column("video_id").to_numpy()
    counts = np.array([(train_items == v).sum() for v in items.raw_ids])
    assert p.column("train_count").to_pylist() == counts.tolist()
    assert p.column("train_count").to_pylist()[-3:] == [0, 0, 0]  # small-only videos
    want = np.clip(((counts + 1.0) / (counts.max() + 1.0)) ** 0.5, 0.01, 1.0)
    np.testing.assert_allclose(p.column("propensity").to_numpy(), want)


def test_deterministic_bytes_and_independent_of_sharding(data_dir: Path, tmp_path: Path) -> None:
    a, b, c = (tmp_path / x / "preprocess" for x in ("a", "b", "c"))
    run(data_dir, a)
    run(data_dir, b)
    for name in OUTPUTS:
        assert (a / f"{name}.parquet").read_bytes() == (b / f"{name}.parquet").read_bytes(), name
    assert (a / "manifest.json").read_bytes() == (b / "manifest.json").read_bytes()
    cfg = PreprocessConfig(data_dir=str(data_dir), cache_dir=str(tmp_path / "c" / "cache4"), cache_shard_rows=4)
    preprocess_local(cfg, c)  # 8 shards instead of 1: the same files
    for name in OUTPUTS:
        assert (a / f"{name}.parquet").read_bytes() == (c / f"{name}.parquet").read_bytes(), name


def test_duplicate_policies(data_dir: Path, tmp_path: Path) -> None:
    s = run(data_dir, tmp_path / "q" / "preprocess", exact_duplicates="quarantine")
    big = s["sources"]["big_matrix.csv"]
    assert big["quarantine_reasons"]["exact_duplicate"] == 1 and big["rows_removed_by_policy"] == {}
    q = read(tmp_path / "q" / "preprocess", "quarantine").to_pylist()
    (dup,) = [r for r in q if r["reason"] == "exact_duplicate"]
    assert dup["row_number"] == 27 and json.loads(dup["raw"]) == dict(zip(HEADER.split(","), big_lines()[0].split(",")))

    s = run(data_dir, tmp_path / "k" / "preprocess", exact_duplicates="keep")
    assert s["sources"]["big_matrix.csv"]["rows_kept"] == 23

    s = run(data_dir, tmp_path / "l" / "preprocess", repeated_views="keep_last")
    big = s["sources"]["big_matrix.csv"]
    assert big["rows_removed_by_policy"] == {"exact_duplicates": 1, "repeated_views": big["quirks"]["repeated_view_extra_rows"]}
    rows = [read(tmp_path / "l" / "preprocess", n).to_pylist() for n in ("train", "val", "test")]
    pairs = [(r["user_id"], r["video_id"]) for part in rows for r in part]
    assert len(pairs) == len(set(pairs))  # one view per pair
    assert [r["watch_ratio"] for part in rows for r in part if (r["user_id"], r["video_id"]) == (1, 10)] == [0.4]


def test_allow_no_timestamp_keeps_and_splits_deterministically(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "n" / "preprocess"
    s = run(data_dir, out, allow_no_timestamp=True)
    big, small = s["sources"]["big_matrix.csv"], s["sources"]["small_matrix.csv"]
    assert "missing_timestamp" not in big["quarantine_reasons"] and big["quirks"]["kept_without_timestamp"] == 1
    assert small["rows_kept"] == 7 and s["split"]["rows_without_timestamp"] == 1
    placed = [n for n in ("train", "val", "test") if read(out, n).column("timestamp").null_count == 1]
    assert len(placed) == 1
    assert read(out, placed[0]).column("timestamp").to_pylist()[-1] is None  # null timestamps sort last
    assert read(out, "eval_small").column("timestamp").null_count == 1


def test_user_mistakes_are_one_line_errors(data_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="graphrec simulate"):
        run(tmp_path / "nowhere", tmp_path / "x" / "preprocess")
    (data_dir / "small_matrix.csv").write_text("user_id,video_id\n1,2\n")
    with pytest.raises(DataError, match="missing_column"):
        run(data_dir, tmp_path / "y" / "preprocess")


def test_ray_side_functions_without_ray(data_dir: Path, tmp_path: Path) -> None:
    """process_shards / split_sources / split_wide: what the Ray Data tasks and the driver run, on plain Arrow."""
    import pyarrow as pa

    from graphrec_ray.preprocess.stage import batch_kwargs, prepare_inputs, process_shards, split_sources, split_wide

    cfg = PreprocessConfig(data_dir=str(data_dir), cache_dir=str(tmp_path / "cache"), cache_shard_rows=8)
    caches = prepare_inputs(cfg)
    big, small = caches["big_matrix.csv"].shards, caches["small_matrix.csv"].shards
    shards = pa.table({"path": [str(big[2]), str(small[0])], "source_id": [0, 1]})
    block = process_shards(shards, **batch_kwargs(cfg))
    parts = dict(split_sources(block))  # a block mixing both sources is split by filtering
    assert set(parts) == {0, 1}
    v0, q0 = split_wide(parts[0])  # big rows 16..23: 16-19 clean, 20-24 broken (25 malformed is not in a shard)
    assert v0.column("row_number").to_pylist() == [16, 17, 18, 19]
    assert sorted(q0.column("reason").to_pylist()) == sorted(r for i, (_, r) in BIG_BAD.items() if i < 24)
    # a concatenation of two blocks is no longer "valid rows first": the filter path gives the same split
    both = pa.concat_tables([parts[0], parts[0]])
    v, q = split_wide(both)
    assert v.num_rows == 2 * v0.num_rows and q.num_rows == 2 * q0.num_rows
    assert q.column("reason").null_count == 0 and v.column("row_number").to_pylist() == [16, 17, 18, 19] * 2


# ------------------------------------------------------------------------------------------- issue 10
def _late_user_data(root: Path) -> Path:
    """Users 1-3: 20 views each early in the log; user 4: 10 views, all after them (active only late).
    small_matrix: users 1 and 4, one of user 4's rows without time."""
    d = root / "late"
    early = [(u, 10 + k % 6, 500, 1000, T0 + 60 * (20 * (u - 1) + k)) for u in (1, 2, 3) for k in range(20)]
    late = [(4, 10 + k % 6, 500, 1000, T0 + 60 * (60 + k)) for k in range(10)]
    write(d / "big_matrix.csv", [line(*r) for r in early + late])
    small = [line(u, v, 600, 1000, T0 + 9000 + v, date_float=True) for u in (1, 4) for v in (20, 21)]
    write(d / "small_matrix.csv", small + [line(4, 22, 600, 1000, None)])
    return d


@pytest.mark.parametrize("split", ["per_user", "global"])
def test_split_choice_and_eval_users_without_training(split: str, tmp_path: Path) -> None:
    """Issue 10: the global cut leaves a late-only user without training rows; the per-user split (default) does
    not, and no val/test row of a user precedes that user's training rows. The manifest counts both."""
    d = _late_user_data(tmp_path)
    out = tmp_path / split / "preprocess"
    s = run(d, out, **({} if split == "per_user" else {"split": "global"}))
    assert s["config"]["split"] == split
    t = {n: read(out, n).to_pandas() for n in ("train", "val", "test", "eval_small")}
    ev = s["split"]["eval_users"]
    assert ev["eval_small"] == {"users": 2, "without_train": 0 if split == "per_user" else 1}
    assert s["split"]["eval_small_rows_without_timestamp"] == 1 and len(t["eval_small"]) == 5
    if split == "global":
        assert 4 not in set(t["train"]["user_id"]) and s["split"]["val_cut"] is not None
        assert ev["test"]["without_train"] == ev["test"]["users"] == 1          # only user 4 is in test
        return
    assert s["split"]["val_cut"] is None and s["split"]["users_held_out"] == 4
    for u in (1, 2, 3, 4):                                                   # 80/10/10 of each user's rows
        rows = [(t[n]["user_id"] == u).sum() for n in ("train", "val", "test")]
        assert rows == ([16, 2, 2] if u < 4 else [8, 1, 1]), u
        tr = t["train"].loc[t["train"]["user_id"] == u, "timestamp"]
        held = pd.concat([t[n].loc[t[n]["user_id"] == u, "timestamp"] for n in ("val", "test")])
        assert tr.max() < held.min()
    assert ev["val"] == ev["test"] == {"users": 4, "without_train": 0}
    for n in ("train", "val", "test"):                                       # canonical (time) order kept
        assert t[n]["timestamp"].is_monotonic_increasing


def test_small_matrix_rows_without_time_quarantined_when_asked(data_dir: Path, tmp_path: Path) -> None:
    s = run(data_dir, tmp_path / "q" / "preprocess", eval_keep_no_timestamp=False)
    small = s["sources"]["small_matrix.csv"]
    assert small["quarantine_reasons"] == {"missing_timestamp": 1} and small["rows_kept"] == 6
    assert s["split"]["eval_small_rows_without_timestamp"] == 0


def test_side_table_quirks_in_manifest(tmp_path: Path) -> None:
    """Malformed feat literals, unknown user_active_degree values and interaction videos missing from
    item_categories.csv are counted in the manifest (they were counted by the readers and reported nowhere)."""
    import csv

    from graphrec_ray.sources.simulator import SimulatorConfig, simulate

    d = tmp_path / "sim"
    simulate(SimulatorConfig(preset="tiny", seed=4), d, progress=False)
    cats = (d / "item_categories.csv").read_text().splitlines()
    # drop videos 0 and 1 from item_categories, break the feat literal of video 2
    kept = [cats[0]] + [ln for ln in cats[1:] if int(ln.split(",")[0]) not in (0, 1)]
    kept = [ln if not ln.startswith("2,") else '2,"[3, x]"' for ln in kept]
    (d / "item_categories.csv").write_text("\n".join(kept) + "\n")
    with open(d / "user_features.csv") as f:
        users = list(csv.reader(f))
    users[1][1], users[2][1] = "weird_active", ""                               # two unknown levels
    with open(d / "user_features.csv", "w", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows(users)
    want_unknown = sum(r[1] not in ("full_active", "high_active", "middle_active", "low_active") for r in users[1:])
    s = run(d, tmp_path / "run" / "preprocess")
    side = read_manifest(tmp_path / "run" / "preprocess")["side_tables"]
    assert side == s["side_tables"]
    ic = side["item_categories.csv"]
    assert ic["malformed_feat"] == 1 and ic["interaction_videos_missing"] == 2 and ic["rows"] == len(kept) - 1
    rows = sum(int(read(tmp_path / "run" / "preprocess", n).to_pandas()["video_id"].isin([0, 1]).sum())
               for n in ("train", "val", "test", "eval_small"))
    assert ic["interaction_rows_missing"] == rows > 0
    assert side["user_features.csv"]["unknown_user_active_degree"] == want_unknown >= 2
    assert side["social_network.csv"]["malformed_friend_list"] == 0


def test_missing_side_tables_are_reported_not_fatal(data_dir: Path, tmp_path: Path) -> None:
    s = run(data_dir, tmp_path / "m" / "preprocess")
    assert s["side_tables"]["item_categories.csv"] == {"present": False}
    assert s["side_tables"]["user_features.csv"] == {"present": False}
