"""POST /feedback on both topologies: the fed-back pair is scored as /recommend scores it (known answer from
the planted EmbeddingRanker: p_click = sigmoid(<e_u, e_i>)), unknown items are a 400, and the calibration
metrics see every event."""

from __future__ import annotations

import asyncio
import json

import numpy as np
import pytest
from pydantic import ValidationError

from serve_app.collocated import Recommender
from serve_app.http_front import make_api
from serve_app.metrics_feedback import Feedback, add_feedback_route
from tests.unit.serving.planted import ITEM_RAW, USER_RAW, Planted, make_run_dir
from tests.unit.serving.test_topologies import _cfg, _graph


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> Planted:
    return make_run_dir(tmp_path_factory.mktemp("fb") / "v1", seed=3)


def _sigmoid(x: float) -> float:
    return float(1.0 / (1.0 + np.exp(-x)))


@pytest.mark.parametrize("topology", ["collocated", "graph"])
def test_feedback_scores_the_pair_and_feeds_the_drift_window(planted: Planted, topology: str) -> None:
    cfg = _cfg(planted.run_dir.parent)
    front = Recommender(cfg, str(planted.run_dir)) if topology == "collocated" else _graph(cfg, planted.run_dir)
    u, i = 4, 17
    want = _sigmoid(float(planted.user_emb[u] @ planted.item_emb[i]))
    a = asyncio.run(front.feedback(Feedback(user_id=int(USER_RAW(u)), item_id=int(ITEM_RAW(i)), clicked=True)))
    assert a["p_click"] == pytest.approx(want, abs=1e-6) and a["model_version"] == front.current_version()
    # the same pair as /recommend scored it, when it is among the served items
    served = asyncio.run(front.recommend(str(int(USER_RAW(u))), "100"))["items"]
    match = [it["p_click"] for it in served if it["item_id"] == int(ITEM_RAW(i))]
    assert match == [] or match[0] == pytest.approx(a["p_click"], abs=1e-6)
    b = asyncio.run(front.feedback(Feedback(user_id=999999, item_id=int(ITEM_RAW(2)), clicked=False)))  # cold
    assert 0.0 < b["p_click"] < 1.0
    assert b["window"]["n"] == 2 and b["window"]["observed_rate"] == 0.5
    assert b["window"]["mean_predicted"] == pytest.approx((a["p_click"] + b["p_click"]) / 2)
    text = front.metrics.render().decode()
    assert 'graphrec_feedback_total{clicked="1"} 1.0' in text and 'graphrec_feedback_total{clicked="0"} 1.0' in text
    assert 'graphrec_requests_total{endpoint="feedback",status="200"} 2.0' in text


@pytest.mark.parametrize("topology", ["collocated", "graph"])
def test_unknown_item_is_a_400(planted: Planted, topology: str) -> None:
    cfg = _cfg(planted.run_dir.parent)
    front = Recommender(cfg, str(planted.run_dir)) if topology == "collocated" else _graph(cfg, planted.run_dir)
    r = asyncio.run(front.feedback(Feedback(user_id=int(USER_RAW(0)), item_id=1, clicked=True)))
    assert r.status_code == 400 and "item_id 1 is not in" in json.loads(r.body)["error"]
    assert front.calibration.summary()[2] == 0


def test_route_and_body_validation() -> None:
    """The route is on the app (make_api + add_feedback_route); malformed bodies fail validation (FastAPI's
    handler of make_api turns that into a 400)."""
    api = add_feedback_route(make_api("t"))
    assert [r.methods for r in api.routes if getattr(r, "path", "") == "/feedback"] == [{"POST"}]
    for body in ({"user_id": 1, "item_id": 2}, {"user_id": "x", "item_id": 2, "clicked": True},
                 {"user_id": 2**70, "item_id": 2, "clicked": True}):
        with pytest.raises(ValidationError):
            Feedback.model_validate(body)
