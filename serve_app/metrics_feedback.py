"""``POST /feedback``: observed outcomes come back, so the calibration-drift metrics have something to compare.

Body ``{"user_id": <raw user id>, "item_id": <raw item id>, "clicked": true|false}`` (one shown item and whether
it was clicked). The replica that receives it scores the same (user, item) pair with the model version it serves
now (as ``/recommend`` would; an unknown user gets the cold-start prior) and records ``(p_click, clicked)``:
``graphrec_feedback_total{clicked}`` and ``graphrec_feedback_predicted_click_total`` (cluster-wide windows in
PromQL), and the replica's last-``window`` gauges ``graphrec_calibration_{predicted,observed,drift}``
(:mod:`graphrec_ray.serving.telemetry`). Answers 200 ``{"status", "model_version", "p_click", "window"}``, 400 for
a malformed body or an item the served version does not know.

:class:`FeedbackFront` is a mixin for :class:`serve_app.http_front.HttpFront` subclasses; they implement
:meth:`FeedbackFront.predict_click`. :func:`add_feedback_route` adds the route to the app of :func:`make_api`.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from graphrec_ray.serving.drift import CalibrationWindow

logger = logging.getLogger("ray.serve")
INT64 = {"ge": -(2**63), "lt": 2**63}


class Feedback(BaseModel):
    """One outcome: the raw user and item ids of a shown item and whether the user clicked it."""

    model_config = ConfigDict(strict=True)  # JSON types as documented: "clicked": 1 or "yes" is a 400, not True

    user_id: int = Field(description="raw user id (as in /recommend/{user_id})", **INT64)
    item_id: int = Field(description="raw item id of a recommended item", **INT64)
    clicked: bool = Field(description="whether the user clicked the item")


class UnknownItem(ValueError):
    """The served model version has no such item."""


class FeedbackFront:
    """The ``/feedback`` endpoint (uses ``self.metrics`` of :class:`~serve_app.http_front.HttpFront`)."""

    calibration: CalibrationWindow
    metrics: Any

    def init_feedback(self, window: int = 1000) -> None:
        self.calibration = CalibrationWindow(window)

    async def predict_click(self, raw_user: int, raw_item: int) -> tuple[float, str]:
        """``(p_click, model_version)`` of the pair under the served version; raises :class:`UnknownItem`."""
        raise NotImplementedError

    async def feedback(self, body: Feedback) -> Any:
        try:
            p, version = await self.predict_click(body.user_id, body.item_id)
        except UnknownItem:
            self.metrics.count_request("feedback", 400)
            return JSONResponse(status_code=400, content={
                "error": f"item_id {body.item_id} is not in the served model version's catalogue", "status": 400})
        except Exception:  # noqa: BLE001 - a server fault: log it, answer 500 without internals
            logger.exception("feedback failed")
            self.metrics.count_request("feedback", 500)
            return JSONResponse(status_code=500, content={"error": "internal error while scoring feedback",
                                                          "status": 500})
        self.calibration.add(p, body.clicked)
        mean_p, rate, n = self.calibration.summary()
        self.metrics.observe_feedback(p, body.clicked, (mean_p, rate, n))
        self.metrics.count_request("feedback", 200)
        return {"status": "ok", "model_version": version, "p_click": p,
                "window": {"n": n, "mean_predicted": mean_p, "observed_rate": rate, "drift": mean_p - rate}}


def add_feedback_route(api: FastAPI) -> FastAPI:
    """Add ``POST /feedback`` to ``api`` (an app of :func:`serve_app.http_front.make_api`); returns it."""
    api.post("/feedback", summary="Feed back whether a recommended item was clicked (calibration drift)")(
        FeedbackFront.feedback)
    return api
