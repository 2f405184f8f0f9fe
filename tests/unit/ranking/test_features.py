"""The feature builder on tables with planted values: every block lands where the spec says, daily stats
are as of the previous local day (no look-ahead), time context is in UTC+8."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from graphrec_ray.ids import IdMap
from graphrec_ray.ranking.features import DAILY_COUNTS, FeatureBuilder, FeatureSpec, USER_CODES, context_block

DAYS = [20200705, 20200706, 20200708]  # no row on 07-07: forward-filled


def _sources() -> dict:
    user_map, item_map = IdMap.from_raw(np.array([100, 200])), IdMap.from_raw(np.array([7, 8, 9]))
    cats = pd.DataFrame({"video_id": [7, 8, 9], "feat": [[3], [1, 3], []]})
    users = pd.DataFrame({"user_id": [100, 200], "user_active_degree": ["high_active", None],
                          "is_lowactive_period": [0, 1], "is_live_streamer": [1, 0], "is_video_author": [0, 0],
                          "follow_user_num": [np.e - 1, 0], "fans_user_num": [0, 0], "friend_user_num": [0, 0],
                          "register_days": [0, 0], **{c: [2.0, 4.0] for c in USER_CODES}})
    rows = []
    for k, d in enumerate(DAYS):  # item 8 has show_cnt = e^(k+1) - 1 so log1p(show) = k + 1
        rows.append({"video_id": 8, "date": d, "show_cnt": np.expm1(k + 1), "play_cnt": 10, "like_cnt": 5,
                     "comment_cnt": 0, "share_cnt": 0, "complete_play_cnt": 4, "valid_play_cnt": 20})
    daily = pd.DataFrame(rows)
    return dict(user_map=user_map, item_map=item_map, cats=cats, users=users, daily=daily)


@pytest.fixture()
def builder() -> FeatureBuilder:
    s = _sources()
    spec = FeatureSpec.fit(4, s["cats"], s["users"], s["daily"])
    ue = np.arange(8, dtype=np.float32).reshape(2, 4)
    ie = np.ones((3, 4), dtype=np.float32)
    return FeatureBuilder.from_sources(spec, ue, ie, s["user_map"], s["item_map"], s["cats"], s["users"],
                                       s["daily"], np.array([1000.0, np.expm1(2) * 1000, np.nan]))


def _ts(local: str) -> float:
    """Unix seconds of a Beijing-time (UTC+8) wall clock string."""
    t = dt.datetime.fromisoformat(local).replace(tzinfo=dt.timezone(dt.timedelta(hours=8)))
    return t.timestamp()


def test_spec_layout_and_vocabularies(builder: FeatureBuilder) -> None:
    spec = builder.spec
    assert spec.category_vocab == (1, 3)
    assert spec.active_degree_vocab == ("UNKNOWN", "high_active")
    assert spec.n_days == 4  # 07-05 .. 07-08
    widths = {n: e - s for n, s, e in spec.blocks}
    assert widths == {"user_emb": 4, "user_profile": 28, "item_emb": 4, "item_static": 3, "item_daily": 10,
                      "cross": 1, "context": 12}
    assert spec.dim == sum(widths.values()) == 62
    assert FeatureSpec.from_dict(spec.to_dict()) == spec


def test_item_daily_is_as_of_previous_local_day(builder: FeatureBuilder) -> None:
    spec = builder.spec
    show = spec.block("item_daily").start  # log1p(show_cnt) column
    flag = spec.block("item_daily").stop - 1
    cases = [("2020-07-05 23:59:00", 0.0, 0.0),   # first day: nothing before it
             ("2020-07-06 00:01:00", 1.0, 1.0),   # just after local midnight: 07-05 stats (UTC is still 07-05)
             ("2020-07-07 12:00:00", 2.0, 1.0),   # 07-06 stats, never 07-07's (none) or later
             ("2020-07-08 08:00:00", 2.0, 1.0),   # 07-07 had no row: forward-filled 07-06
             ("2020-07-09 08:00:00", 3.0, 1.0),   # 07-08 stats
             ("2020-09-01 08:00:00", 3.0, 1.0)]   # after the table ends: last known stats
    for when, expected_show, expected_flag in cases:
        x = builder.build(0, np.array([1]), _ts(when), 0, -1.0)
        assert x[0, show] == pytest.approx(expected_show, abs=1e-5), when
        assert x[0, flag] == expected_flag, when
    x = builder.build(0, np.array([0]), _ts("2020-07-09 08:00:00"), 0, -1.0)  # item without daily rows
    assert np.all(x[0, spec.block("item_daily")] == 0)
    ratios = builder.build(0, np.array([1]), _ts("2020-07-09 08:00:00"), 0, -1.0)[0, spec.block("item_daily")][5:9]
    np.testing.assert_allclose(ratios, [np.clip(10 / np.expm1(3), 0, 1), 0.4, 1.0, 0.5], rtol=1e-5)  # valid/play clipped


def test_context_block_uses_beijing_time() -> None:
    ts = _ts("2020-07-05 06:00:00")  # a Sunday, 06:00 local (22:00 UTC on Saturday)
    c = context_block(np.array([ts]), np.array([3]), np.array([59.0]))[0]
    assert c[0] == pytest.approx(1.0, abs=1e-6) and c[1] == pytest.approx(0.0, abs=1e-6)  # sin/cos of 6h
    assert c[2:9].tolist() == [0, 0, 0, 0, 0, 0, 1]  # Monday-first one-hot: Sunday
    assert c[9] == pytest.approx(np.log1p(3)) and c[10] == pytest.approx(np.log1p(59.0)) and c[11] == 1
    unknown = context_block(np.array([np.nan]), np.array([0]), np.array([-1.0]))[0]
    assert np.all(unknown == 0)


def test_user_item_blocks_and_embedding_override(builder: FeatureBuilder) -> None:
    spec = builder.spec
    x = builder.build(np.array([0, 1]), np.array([1, 2]), _ts("2020-07-06 10:00:00"), np.array([0, 1]),
                      np.array([-1.0, 5.0]))
    np.testing.assert_array_equal(x[:, spec.block("user_emb")], [[0, 1, 2, 3], [4, 5, 6, 7]])
    prof = x[:, spec.block("user_profile")]
    assert prof[0, :2].tolist() == [0, 1] and prof[1, :2].tolist() == [1, 0]  # high_active / missing -> UNKNOWN
    assert prof[0, 2:5].tolist() == [0, 1, 0]  # is_lowactive_period, is_live_streamer, is_video_author
    assert prof[0, 5] == pytest.approx(1.0)  # log1p(follow_user_num = e - 1)
    assert prof[0, 9] == pytest.approx(2.0 / 4.0) and prof[0, -1] == 1  # code / max code; profile present
    static = x[:, spec.block("item_static")]
    assert static[0].tolist() == pytest.approx([2.0, 1.0, 1.0])  # log1p(duration s), categories {1, 3}
    assert static[1].tolist() == [0.0, 0.0, 0.0]  # unknown duration, no category
    assert x[:, spec.block("cross")].ravel().tolist() == [6.0, 22.0]  # <u, 1>
    over = builder.build(0, np.array([1, 2]), 0.0, 0, -1.0, user_emb=np.full(4, 0.5, np.float32))
    assert np.all(over[:, spec.block("user_emb")] == 0.5) and over[0, spec.block("cross")][0] == 2.0


def test_save_load_round_trip(builder: FeatureBuilder, tmp_path) -> None:
    builder.save(tmp_path)
    back = FeatureBuilder.load(tmp_path)
    args = (np.array([1, 0]), np.array([2, 1]), np.array([_ts("2020-07-07 01:00:00")] * 2), np.array([1, 2]),
            np.array([3.0, -1.0]))
    np.testing.assert_array_equal(back.build(*args), builder.build(*args))


def test_missing_column_is_a_data_error() -> None:
    from graphrec_ray.errors import DataError

    s = _sources()
    with pytest.raises(DataError, match="show_cnt"):
        spec = FeatureSpec.fit(4, s["cats"], s["users"], s["daily"])
        FeatureBuilder.from_sources(spec, np.zeros((2, 4)), np.zeros((3, 4)), s["user_map"], s["item_map"],
                                    s["cats"], s["users"], s["daily"].drop(columns=["show_cnt"]), np.zeros(3))
    assert DAILY_COUNTS[0] == "show_cnt"
