"""Session position and seconds since last view, derived from the logs."""

from __future__ import annotations

import numpy as np

from graphrec_ray.ranking.sessions import session_context


def test_sessions_break_on_gaps_and_per_user() -> None:
    users = np.array([1, 1, 2, 1, 1, 2, 1])
    ts = np.array([0.0, 60.0, 10.0, 2000.0, 2030.0, 5000.0, 100.0])  # unsorted on purpose
    pos, since = session_context(users, ts, gap_s=1800)
    # user 1 in time order: 0, 60, 100 | 2000 (gap 1900 > 1800: new session), 2030
    assert pos.tolist() == [0, 1, 0, 0, 1, 0, 2]
    assert since.tolist() == [-1.0, 60.0, -1.0, 1900.0, 30.0, 4990.0, 40.0]


def test_nan_timestamps_are_unknown_and_skipped() -> None:
    pos, since = session_context(np.array([0, 0, 0]), np.array([10.0, np.nan, 20.0]))
    assert pos.tolist() == [0, 0, 1] and since.tolist() == [-1.0, -1.0, 10.0]
