"""Calibration drift: mean predicted click probability vs the observed click rate over a window of feedback.

Outcomes arrive with ``POST /feedback {"user_id", "item_id", "clicked"}``; the replica that receives one scores the
same (user, item) pair with the model version it serves now and adds ``(p_click, clicked)`` here. A calibrated
model keeps ``mean(p_click) - mean(clicked)`` near 0; a drifting one moves it away (over-prediction > 0).
"""

from __future__ import annotations

import threading
from collections import deque


class CalibrationWindow:
    """The last ``size`` ``(p_click, clicked)`` pairs and their running sums (thread-safe, O(1) per event).

    Args:
        size: pairs kept (default 1000: the standard error of the observed rate near p = 0.3 is ~0.015).

    Example::

        >>> w = CalibrationWindow(size=2)
        >>> w.add(0.9, True); w.add(0.5, False); w.add(0.1, False)  # the first pair leaves the window
        >>> w.summary()
        (0.3, 0.0, 2)
    """

    def __init__(self, size: int = 1000) -> None:
        if size < 1:
            raise ValueError("size must be >= 1")
        self.size = int(size)
        self._pairs: deque[tuple[float, int]] = deque()
        self._sum_p = 0.0
        self._sum_y = 0
        self._lock = threading.Lock()

    def add(self, p_click: float, clicked: bool) -> None:
        """Add one pair (``p_click`` must lie in [0, 1]), dropping the oldest beyond ``size``."""
        p = float(p_click)
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p_click must be in [0, 1], got {p}")
        y = int(bool(clicked))
        with self._lock:
            self._pairs.append((p, y))
            self._sum_p += p
            self._sum_y += y
            if len(self._pairs) > self.size:
                op, oy = self._pairs.popleft()
                self._sum_p -= op
                self._sum_y -= oy

    def summary(self) -> tuple[float, float, int]:
        """``(mean predicted p_click, observed click rate, n)`` over the window; ``(0.0, 0.0, 0)`` when empty."""
        with self._lock:
            n = len(self._pairs)
            if n == 0:
                return 0.0, 0.0, 0
            return round(self._sum_p / n, 12), self._sum_y / n, n
