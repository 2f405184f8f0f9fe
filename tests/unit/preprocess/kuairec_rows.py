"""Tiny interaction files in the exact KuaiRec 2.0 format, for the preprocessing tests.

``line(...)`` formats one row as the published CSVs do (pandas ``to_csv``): integer ms durations, ``time`` as
Beijing local time ``"2020-07-05 05:27:48.378"``, ``date`` yyyymmdd, ``timestamp`` float seconds, NaN empty.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

HEADER = "user_id,video_id,play_duration,video_duration,time,date,timestamp,watch_ratio"
T0 = 1593878400.0  # 2020-07-05 00:00:00 +08:00 is 1593878400 - 8 h; any base works for the tests
_TZ = dt.timezone(dt.timedelta(hours=8))


def line(user: int, video: int, play: int, vdur: int, ts: float | None, wr: float | None = None,
         date_float: bool = False) -> str:
    """One CSV data line; ``wr`` defaults to ``play / vdur``; ``ts=None`` writes empty time/date/timestamp."""
    if wr is None:
        wr = play / vdur
    if ts is None:
        time_s = date_s = ts_s = ""
    else:
        local = dt.datetime.fromtimestamp(ts, _TZ)
        time_s = local.strftime("%Y-%m-%d %H:%M:%S.") + f"{local.microsecond // 1000:03d}"
        date_s = local.strftime("%Y%m%d") + (".0" if date_float else "")
        ts_s = repr(float(ts))
    return f"{user},{video},{play},{vdur},{time_s},{date_s},{ts_s},{wr!r}"


def write(path: Path, lines: list[str], header: str = HEADER) -> Path:
    """Write ``header`` + ``lines`` (newline-terminated) to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join([header, *lines]) + "\n")
    return path
