"""KuaiRec 2.0 file specs, the strict list-literal parser and the typed side-table readers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from graphrec_ray.errors import DataError
from graphrec_ray.sources import kuairec as kr


# ------------------------------------------------------------------------------------------- specs
def test_published_column_counts_and_order() -> None:
    assert kr.INTERACTION_COLUMNS == ("user_id", "video_id", "play_duration", "video_duration", "time", "date",
                                      "timestamp", "watch_ratio")
    assert len(kr.USER_FEATURES_COLUMNS) == 31
    assert kr.USER_FEATURES_COLUMNS[13:] == tuple(f"onehot_feat{i}" for i in range(18))
    assert len(kr.ITEM_DAILY_FEATURES_COLUMNS) == 58
    assert len(set(kr.ITEM_DAILY_FEATURES_COLUMNS)) == 58
    assert kr.ITEM_DAILY_FEATURES_COLUMNS[:3] == ("video_id", "date", "author_id")
    assert kr.ITEM_DAILY_FEATURES_COLUMNS[-1] == "cancel_collect_user_num"
    assert kr.ITEM_CATEGORIES_COLUMNS == ("video_id", "feat")
    assert kr.SOCIAL_NETWORK_COLUMNS == ("user_id", "friend_list")
    assert set(kr.USER_FEATURES_TYPES) == set(kr.USER_FEATURES_COLUMNS)
    assert set(kr.ITEM_DAILY_FEATURES_TYPES) == set(kr.ITEM_DAILY_FEATURES_COLUMNS)
    assert kr.INTERACTION_READ_TYPES["date"] == pa.float64()  # small_matrix spells it 20200705.0


# ------------------------------------------------------------------------------------------- parser
@pytest.mark.parametrize("text, expected", [
    ("[27, 9]", [27, 9]), ("[27,9]", [27, 9]), ("[8]", [8]), ("[]", []), (" [ 1 , 2 ] ", [1, 2]),
    ("[1,]", [1]), ("[-3]", [-3]),
])
def test_parse_feat_list_valid(text: str, expected: list[int]) -> None:
    assert kr.parse_feat_list(text) == expected


@pytest.mark.parametrize("text", [
    "[1, 2", "1, 2]", "[1.5]", "[[1]]", "['a']", "[1 2]", "[,]", "", "nan", "[1,,2]", "[0x1F]",
    "__import__('os').system('true')", "[1]; [2]", "[99999999999]",  # last: outside int32
])
def test_parse_feat_list_rejects_malformed(text: str) -> None:
    assert kr.parse_feat_list(text) is None


def test_parse_int_list_none_and_int64_range() -> None:
    assert kr.parse_int_list(None) is None
    assert kr.parse_int_list("[99999999999]") == [99999999999]
    assert kr.parse_int_list("[99999999999999999999]") is None  # beyond int64


# ------------------------------------------------------------------------------------------- layout
def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_check_layout_names_missing_files_and_the_fix(tmp_path: Path) -> None:
    _write(tmp_path / kr.BIG_MATRIX, ",".join(kr.INTERACTION_COLUMNS) + "\n")
    with pytest.raises(DataError) as exc:
        kr.check_layout(tmp_path)
    msg = str(exc.value)
    assert "small_matrix.csv" in msg and "social_network.csv" in msg and "big_matrix.csv" not in msg
    assert "graphrec simulate" in msg and "graphrec download" in msg and "\n" not in msg
    assert kr.check_layout(tmp_path, [kr.BIG_MATRIX]).big_matrix == tmp_path / kr.BIG_MATRIX
    with pytest.raises(DataError, match="does not exist"):
        kr.check_layout(tmp_path / "nope")


def test_check_layout_accepts_the_archive_folder(tmp_path: Path) -> None:
    inner = tmp_path / "KuaiRec 2.0" / "data"
    for name in kr.ALL_FILES:
        _write(inner / name, ",".join(kr.COLUMNS[name]) + "\n")
    assert kr.check_layout(tmp_path).root == inner


# ------------------------------------------------------------------------------------------- readers
def test_read_item_categories_counts_malformed_rows(tmp_path: Path) -> None:
    _write(tmp_path / kr.ITEM_CATEGORIES,
           'video_id,feat\n0,[8]\n1,"[27, 9]"\n2,"[1, 2"\n3,[]\n4,"__import__(\'os\')"\n')
    t = kr.read_item_categories(tmp_path)
    assert t.schema.field("video_id").type == pa.int64()
    assert t.schema.field("feat").type == pa.list_(pa.int32())
    assert t.column("feat").to_pylist() == [[8], [27, 9], None, [], None]
    assert kr.quirk_counts(t) == {"malformed_feat": 2, "rows": 5}


def test_read_social_network(tmp_path: Path) -> None:
    _write(tmp_path / kr.SOCIAL_NETWORK, 'user_id,friend_list\n5352,"[4202,7126]"\n7,[1]\n8,[x]\n')
    t = kr.read_social_network(tmp_path)
    assert t.schema.field("friend_list").type == pa.list_(pa.int64())
    assert t.column("friend_list").to_pylist() == [[4202, 7126], [1], None]
    assert kr.quirk_counts(t)["malformed_friend_list"] == 1


def _user_row(uid: int, onehot: list[str]) -> str:
    head = [str(uid), "high_active", "0", "0", "1", "12", '"(10,50]"', "0", "0", "3", '"[1,5)"', "200", "181-365"]
    return ",".join(head + onehot)


def test_read_user_features_keeps_nan_as_null_and_accepts_float_spelling(tmp_path: Path) -> None:
    row0 = [str(i % 3) for i in range(18)]
    row1 = ["1"] * 4 + [""] + ["2"] * 7 + ["1.0", "", "0.0", "1.0", "1.0", "0.0"]  # NaN column spelled as floats
    _write(tmp_path / kr.USER_FEATURES,
           ",".join(kr.USER_FEATURES_COLUMNS) + "\n" + _user_row(0, row0) + "\n" + _user_row(1, row1) + "\n")
    t = kr.read_user_features(tmp_path)
    assert t.column_names == list(kr.USER_FEATURES_COLUMNS)
    assert t.schema.field("onehot_feat12").type == pa.int64()
    assert t.schema.field("is_video_author").type == pa.int8()
    assert t.column("onehot_feat4").to_pylist() == [1, None]
    assert t.column("onehot_feat12").to_pylist() == [0, 1]
    assert t.column("follow_user_num_range").to_pylist() == ["(10,50]", "(10,50]"]
    q = kr.quirk_counts(t)
    assert q["null_onehot_feat4"] == 1 and q["null_onehot_feat13"] == 1 and q["null_onehot_feat0"] == 0


def test_read_user_features_rejects_non_integer_codes(tmp_path: Path) -> None:
    """Regression: a float like 1.5 in an integer column must not be silently truncated."""
    row = ["1.5"] + ["0"] * 17
    _write(tmp_path / kr.USER_FEATURES, ",".join(kr.USER_FEATURES_COLUMNS) + "\n" + _user_row(0, row) + "\n")
    with pytest.raises(DataError, match="onehot_feat0"):
        kr.read_user_features(tmp_path)


def test_read_item_daily_features_types_and_null_counters(tmp_path: Path) -> None:
    head = ["3", "20200705", "17", "NORMAL", "2020-03-30", "ShortImport", "public", "", "720", "1280", "99", "27",
            "food"]
    counters = ["5"] * 13 + ["0.75"] + ["10"] * 27 + ["", "", "", ""]
    assert len(head) + len(counters) == 58
    counters2 = ["6"] * 13 + ["0.5"] + ["1"] * 27 + ["2.0", "2.0", "0.0", "0.0"]
    text = (",".join(kr.ITEM_DAILY_FEATURES_COLUMNS) + "\n" + ",".join(head + counters) + "\n"
            + ",".join(head[:1] + ["20200706"] + head[2:7] + ["12000.0"] + head[8:] + counters2) + "\n")
    _write(tmp_path / kr.ITEM_DAILY_FEATURES, text)
    t = kr.read_item_daily_features(tmp_path)
    assert t.num_columns == 58
    assert t.schema.field("date").type == pa.int32()
    assert t.column("date").to_pylist() == [20200705, 20200706]
    assert t.schema.field("collect_cnt").type == pa.int64()
    assert t.column("collect_cnt").to_pylist() == [None, 2]
    assert t.column("video_duration").to_pylist() == [None, 12000.0]
    q = kr.quirk_counts(t)
    assert q["null_collect_cnt"] == 1 and q["null_video_duration"] == 1 and q["null_show_cnt"] == 0


def test_missing_column_is_a_one_line_data_error(tmp_path: Path) -> None:
    _write(tmp_path / kr.ITEM_CATEGORIES, "video_id,features\n0,[1]\n")
    with pytest.raises(DataError, match="missing column"):
        kr.read_item_categories(tmp_path)


# ------------------------------------------------------------------------------------------- writer
def test_csv_writer_round_trips_the_published_format(tmp_path: Path) -> None:
    table = pa.table({
        "user_id": pa.array([0, 14], pa.int64()), "video_id": pa.array([3650, 148], pa.int64()),
        "play_duration": pa.array([13838, 4381], pa.int64()), "video_duration": pa.array([10867, 6067], pa.int64()),
        "time": pa.array(["2020-07-05 00:08:23.438", None]),
        "date": pa.array([20200705.0, None]), "timestamp": pa.array([1593878903.438, None]),
        "watch_ratio": pa.array([13838 / 10867, 1.0]),
    })
    path = tmp_path / "m.csv"
    path.write_bytes(kr.csv_header(kr.INTERACTION_COLUMNS) + kr.format_csv_rows(table))
    lines = path.read_text().splitlines()
    assert lines[0] == ",".join(kr.INTERACTION_COLUMNS)
    assert lines[1].startswith("0,3650,13838,10867,2020-07-05 00:08:23.438,20200705.0,1593878903.438,1.2733")
    assert lines[2] == "14,148,4381,6067,,,,1.0"
    back = kr.read_interactions(path)
    assert back.column("timestamp").to_pylist() == [1593878903.438, None]
    assert back.column("watch_ratio").to_pylist() == table.column("watch_ratio").to_pylist()
    assert np.isnan(np.asarray(back.column("date").to_numpy(zero_copy_only=False), dtype=float)[1])


def test_csv_writer_quotes_only_when_needed() -> None:
    t = pa.table({"video_id": pa.array([0, 1], pa.int64()), "feat": pa.array(["[8]", "[27, 9]"])})
    assert kr.format_csv_rows(t) == b'0,[8]\n1,"[27, 9]"\n'
