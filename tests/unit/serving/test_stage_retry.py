"""The graph's ingress retries a stage call once when the stage replica died mid-call (and only then).

Regression (issue 13, "a killed Ranking replica stalls the whole service and returns HTTP 500s"): a request in
flight on a killed stage replica failed with a 500; Serve's router drops the dead replica, so one retry of the
idempotent stage call lands on a live one.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ray.exceptions import RayActorError

from serve_app.deployments import GraphFront
from tests.unit.serving.planted import USER_RAW, make_run_dir
from tests.unit.serving.test_topologies import FakeHandle, _cfg, _graph


class Flaky(FakeHandle):
    """Raises ``exc`` on the first ``fail`` calls of method ``on``, then behaves."""

    def __init__(self, inner: FakeHandle, on: str, exc: BaseException, fail: int = 1) -> None:
        super().__init__(inner.stage, inner.method)
        self.on, self.exc, self.left = on, exc, fail

    def options(self, method_name: str) -> "Flaky":
        f = Flaky(FakeHandle(self.stage, method_name), self.on, self.exc, self.left)
        f._shared = self  # count failures on the original
        return f

    async def remote(self, *args: Any) -> Any:
        root = getattr(self, "_shared", self)
        if self.method == self.on and root.left > 0:
            root.left -= 1
            raise self.exc
        return await super().remote(*args)


def _front(tmp_path, on: str, exc: BaseException, fail: int) -> GraphFront:
    run = make_run_dir(tmp_path / "v1", seed=0)
    cfg = _cfg(tmp_path)
    g = _graph(cfg, run.run_dir)
    handle = Flaky(FakeHandle(g.ranking.stage), on, exc, fail)
    g.ranking = handle.options(method_name="score")
    return g


def test_a_dead_stage_replica_is_retried_once(tmp_path) -> None:
    g = _front(tmp_path, "score", RayActorError(), fail=1)
    body = asyncio.run(g.recommend(str(int(USER_RAW(1)))))
    assert isinstance(body, dict) and len(body["items"]) == 10


def test_two_deaths_in_a_row_are_a_500_and_other_errors_are_not_retried(tmp_path) -> None:
    g = _front(tmp_path, "score", RayActorError(), fail=2)
    assert asyncio.run(g.recommend(str(int(USER_RAW(1))))).status_code == 500
    g = _front(tmp_path / "b", "score", ValueError("bug"), fail=1)
    assert asyncio.run(g.recommend(str(int(USER_RAW(1))))).status_code == 500  # a bug is not retried
