"""The request context that the ranker's features see, at training and at serving time."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RequestContext:
    """What is known about the moment of a recommendation request (or a logged view).

    Attributes:
        timestamp: Unix seconds of the request / view (UTC+8 local time is derived by the feature builder,
            as KuaiRec logs are from China).
        position_in_session: 0-based index of this view within the user's current session.
        seconds_since_last_view: seconds since the user's previous view; ``-1.0`` when unknown or none.
    """

    timestamp: float
    position_in_session: int = 0
    seconds_since_last_view: float = -1.0
