"""Session context of each logged view: position in session and seconds since the user's previous view.

A session is a run of one user's views with gaps of at most ``gap_s`` seconds (default 30 min).
Only *earlier* timestamps are used, so these features are known at request time and serving
passes the same two numbers in :class:`graphrec_ray.ranking.context.RequestContext`.

Example::

    >>> import numpy as np
    >>> pos, dt = session_context(np.array([0, 0, 0, 1]), np.array([100.0, 0.0, 5000.0, 7.0]), gap_s=1800)
    >>> pos.tolist(), dt.tolist()
    ([1, 0, 0, 0], [100.0, -1.0, 4900.0, -1.0])
"""

from __future__ import annotations

import numpy as np

UNKNOWN_GAP = -1.0  # seconds_since_last_view of a user's first view (or of a view without timestamp)


def session_context(user_idx: np.ndarray, timestamp: np.ndarray,
                    gap_s: float = 1800.0) -> tuple[np.ndarray, np.ndarray]:
    """Position in session and seconds since last view for ``(N,)`` events in any order.

    Events are ordered per user by timestamp (ties keep input order). A view whose previous view
    is more than ``gap_s`` seconds earlier starts a new session (position 0). Views with a NaN
    timestamp get position 0 and gap ``-1`` and do not break their neighbours' sessions.

    Args:
        user_idx: ``(N,)`` integer user ids.
        timestamp: ``(N,)`` float Unix seconds (NaN allowed).
        gap_s: session break threshold in seconds (default 1800).

    Returns:
        ``position (N,) int32`` (0-based) and ``seconds_since_last_view (N,) float32`` (``-1`` for none).
    """
    u = np.asarray(user_idx, dtype=np.int64)
    ts = np.asarray(timestamp, dtype=np.float64)
    if u.shape != ts.shape or u.ndim != 1:
        raise ValueError("user_idx and timestamp must be 1-D arrays of the same length")
    n = u.size
    position = np.zeros(n, dtype=np.int32)
    since = np.full(n, UNKNOWN_GAP, dtype=np.float32)
    valid = np.flatnonzero(~np.isnan(ts))
    if valid.size == 0:
        return position, since
    order = valid[np.lexsort((ts[valid], u[valid]))]
    su, st = u[order], ts[order]
    same_user = np.empty(order.size, dtype=bool)
    same_user[0] = False
    same_user[1:] = su[1:] == su[:-1]
    gap = np.full(order.size, np.nan)
    gap[1:] = st[1:] - st[:-1]
    has_prev = same_user
    new_session = ~has_prev | (gap > gap_s)
    # position = index - index of the latest session start at or before it
    idx = np.arange(order.size)
    start = np.maximum.accumulate(np.where(new_session, idx, 0))
    position[order] = (idx - start).astype(np.int32)
    since[order] = np.where(has_prev, gap, UNKNOWN_GAP).astype(np.float32)
    return position, since
