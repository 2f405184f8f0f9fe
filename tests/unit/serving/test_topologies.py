"""Both Serve topologies answer identically (plain-Python deployment classes, no Ray), and /reload is closed."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from graphrec_ray.serving.config import ServeConfig
from graphrec_ray.serving.versions import resolve_loader, version_id
from serve_app.loaders import loaders_from
from serve_app.collocated import Recommender
from serve_app.deployments import GraphFront, RankingStage, RerankingStage, RetrievalStage
from serve_app.http_front import BAD_RUN_DIR, TOKEN_HEADER
from serve_app.version_pointer import VersionBoard, follow
from tests.unit.serving.planted import RANKER, USER_RAW, Planted, make_run_dir

LATENCY_KEYS = ("retrieval_latency_ms", "ranking_latency_ms", "rerank_latency_ms", "total_latency_ms")


class FakeHandle:
    """A ``DeploymentHandle`` stand-in: ``options(method_name=m).remote(*a)`` awaits the stage's plain method."""

    METHODS = {"retrieve": lambda s, ref, u: s.retrieve_many([ref], [u])[0],
               "score": lambda s, ref, c, ts: s.score_many([ref], [c], [ts])[0],
               "rerank": None, "warm": lambda s, ref: s.warm(ref)}

    def __init__(self, stage: Any, method: str | None = None) -> None:
        self.stage, self.method = stage, method

    def options(self, method_name: str) -> "FakeHandle":
        return FakeHandle(self.stage, method_name)

    async def remote(self, *args: Any) -> Any:
        fn = self.METHODS[self.method]
        return await self.stage.rerank(*args) if fn is None else fn(self.stage, *args)


class FakeRequest:
    def __init__(self, body: Any, token: str | None) -> None:
        self.headers = {} if token is None else {TOKEN_HEADER: token}
        self._body = body

    async def json(self) -> Any:
        if isinstance(self._body, bytes):
            return json.loads(self._body)
        return self._body


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Planted, Planted]:
    root = tmp_path_factory.mktemp("runs")
    return (make_run_dir(root / "v1", seed=0, embedding_version="emb-v1"),
            make_run_dir(root / "v2", seed=7, embedding_version="emb-v2"))


def _cfg(root: Path, **kw: Any) -> ServeConfig:
    return ServeConfig(ranker_loader=RANKER, reload_token="s3cret", reload_root=str(root), **kw)


def _graph(cfg: ServeConfig, run_dir: Path) -> GraphFront:
    rd = str(run_dir)
    return GraphFront(FakeHandle(RetrievalStage(cfg, rd)), FakeHandle(RankingStage(cfg, rd)),
                      FakeHandle(RerankingStage(cfg, rd)), cfg, rd)


def _strip(body: dict) -> dict:
    assert all(isinstance(body[k], float) and body[k] >= 0 for k in LATENCY_KEYS)
    return {k: v for k, v in body.items() if k not in LATENCY_KEYS}


def test_collocated_and_graph_give_identical_responses(runs: tuple[Planted, Planted]) -> None:
    v1, _ = runs
    cfg = _cfg(v1.run_dir.parent, lambda_diversity=0.5)
    rec, graph = Recommender(cfg, str(v1.run_dir)), _graph(cfg, v1.run_dir)
    assert rec.current_version() == graph.current_version() == version_id(v1.run_dir)
    users = [int(USER_RAW(u)) for u in (0, 3, 17, 29)] + [1001, -5]  # 1001, -5: unknown -> cold start
    for raw in users:
        for k in (None, "1", "7", "100"):
            a = asyncio.run(rec.recommend(str(raw), k))
            b = asyncio.run(graph.recommend(str(raw), k))
            assert isinstance(a, dict) and isinstance(b, dict), (a, b)
            assert _strip(a) == _strip(b)
            n = len(a["items"])
            assert n == int(k or cfg.k_default) if k != "100" else 90 <= n <= 100  # 120 items, some seen
    assert {asyncio.run(rec.recommend("1001"))["cold_start"], asyncio.run(rec.recommend(str(users[0])))["cold_start"]} \
        == {True, False}
    # the same live reranking knobs (Serve user_config) change both the same way
    knobs = {"lambda_diversity": 0.2, "w_value": 3.0}
    rec.reconfigure(knobs)
    graph.reranking.stage.reconfigure(knobs)
    a, b = asyncio.run(rec.recommend(str(users[1]))), asyncio.run(graph.recommend(str(users[1])))
    assert _strip(a) == _strip(b)
    assert a["items"] != asyncio.run(Recommender(cfg, str(v1.run_dir)).recommend(str(users[1])))["items"]
    with pytest.raises(ValueError, match="unknown key 'run_dir'"):
        rec.reconfigure({"run_dir": "x"})


def test_bad_input_is_the_same_400_in_both(runs: tuple[Planted, Planted]) -> None:
    v1, _ = runs
    cfg = _cfg(v1.run_dir.parent)
    for front in (Recommender(cfg, str(v1.run_dir)), _graph(cfg, v1.run_dir)):
        for user, k, needle in (("abc", None, "user_id must be an integer"), ("5", "0", "k must be in")):
            r = asyncio.run(front.recommend(user, k))
            assert r.status_code == 400 and needle in json.loads(r.body)["error"]


def test_health_does_not_echo_server_paths(runs: tuple[Planted, Planted]) -> None:
    """Regression (issue 13): /health answered the served run directory's absolute path."""
    v1, _ = runs
    cfg = _cfg(v1.run_dir.parent)
    for front in (Recommender(cfg, str(v1.run_dir)), _graph(cfg, v1.run_dir)):
        h = asyncio.run(front.health())
        assert h == {"status": "ok", "model_version": version_id(v1.run_dir), "topology": front.topology}
        assert str(v1.run_dir.parent) not in json.dumps(h)


@pytest.mark.parametrize("token,configured,status", [(None, "s3cret", 401), ("nope", "s3cret", 403),
                                                      ("s3cret", "", 403), ("", "", 403)])
def test_reload_needs_the_configured_token(runs: tuple[Planted, Planted], token: str | None, configured: str,
                                           status: int) -> None:
    """Regression (issue 12/13): POST /reload loaded any path for anyone."""
    v1, v2 = runs
    cfg = dataclasses.replace(_cfg(v1.run_dir.parent), reload_token=configured)
    rec = Recommender(cfg, str(v1.run_dir))
    r = asyncio.run(rec.reload(FakeRequest({"run_dir": str(v2.run_dir)}, token)))
    assert r.status_code == status
    assert rec.current_version() == version_id(v1.run_dir)


def test_reload_refuses_paths_outside_the_root_without_saying_whether_they_exist(
        runs: tuple[Planted, Planted], tmp_path: Path) -> None:
    v1, v2 = runs
    rec = Recommender(_cfg(v1.run_dir.parent), str(v1.run_dir))
    outside = make_run_dir(tmp_path / "elsewhere", seed=3).run_dir  # servable, but not under the root
    bodies = [{"run_dir": str(outside)}, {"run_dir": str(v1.run_dir.parent / "missing")},
              {"run_dir": str(v1.run_dir.parent / "v1" / "..")},  # the root itself
              {"run_dir": str(v1.run_dir / ".." / ".." / "elsewhere")}, {"run_dir": "/etc"},
              {"run_dir": str(v1.run_dir / "preprocess")}]  # exists under the root, not servable
    answers = set()
    for body in bodies:
        r = asyncio.run(rec.reload(FakeRequest(body, "s3cret")))
        assert r.status_code == 400
        answers.add(json.loads(r.body)["error"])
    assert answers == {BAD_RUN_DIR}
    assert str(v1.run_dir.parent) not in BAD_RUN_DIR
    for bad in ({"nope": 1}, {"run_dir": 5}, b"not json"):
        assert asyncio.run(rec.reload(FakeRequest(bad, "s3cret"))).status_code == 400
    assert rec.current_version() == version_id(v1.run_dir)


def test_reload_reaches_every_replica_of_both_topologies(runs: tuple[Planted, Planted]) -> None:
    """Regression (issue 12): POST /reload switched only the replica that received it."""
    v1, v2 = runs
    cfg = _cfg(v1.run_dir.parent)
    vid1, vid2 = version_id(v1.run_dir), version_id(v2.run_dir)
    stages = [RetrievalStage(cfg, str(v1.run_dir)), RankingStage(cfg, str(v1.run_dir))]

    async def go() -> None:
        board = VersionBoard(str(v1.run_dir), vid1)
        fronts = [Recommender(cfg, str(v1.run_dir)), Recommender(cfg, str(v1.run_dir)), _graph(cfg, v1.run_dir)]
        followers = []
        for member in [*fronts, *stages]:
            followers.append(await follow(board, member.prepare, member.commit, vid1))
        for f in fronts:
            f.board = board
        r = await fronts[0].reload(FakeRequest({"run_dir": "v2"}, "s3cret"))  # relative to the root
        assert r == {"status": "ok", "previous_version": vid1, "model_version": vid2, "replicas": 5}
        assert [f.current_version() for f in fronts] == [vid2] * 3  # all switched when /reload answers
        assert all(set(s.parts.loaded()) == {vid1, vid2} for s in stages)  # old kept beside the new
        body = (await fronts[2].recommend(str(int(USER_RAW(4)))))
        assert body["model_version"] == vid2
        # a replica that starts after the reload serves the board's version, not the one it was built with
        late = Recommender(cfg, str(v1.run_dir))
        followers.append(await follow(board, late.prepare, late.commit, vid1))
        assert late.current_version() == vid2
        for f in followers:
            f.stop()

    asyncio.run(go())


def test_a_replica_that_cannot_load_aborts_the_reload_everywhere(runs: tuple[Planted, Planted]) -> None:
    v1, v2 = runs
    cfg = _cfg(v1.run_dir.parent)
    vid1 = version_id(v1.run_dir)
    loader = resolve_loader(RANKER)
    calls = {"n": 0}

    def fragile(run_dir: Path) -> Any:  # the second replica's ranker load fails for v2 (say, a corrupt file)
        if Path(run_dir) == v2.run_dir:
            calls["n"] += 1
            raise OSError("truncated checkpoint")
        return loader(run_dir)

    async def go() -> None:
        board = VersionBoard(str(v1.run_dir), vid1)
        fronts = [Recommender(cfg, str(v1.run_dir)), Recommender(cfg, str(v1.run_dir), loaders_from(cfg, fragile))]
        followers = [await follow(board, f.prepare, f.commit, vid1) for f in fronts]
        fronts[0].board = board
        r = await fronts[0].reload(FakeRequest({"run_dir": str(v2.run_dir)}, "s3cret"))
        assert r.status_code == 422
        msg = json.loads(r.body)["error"]
        assert vid1 in msg and "truncated" not in msg and str(v2.run_dir) not in msg
        assert [f.current_version() for f in fronts] == [vid1, vid1] and calls["n"] == 1
        ok = await fronts[0].recommend(str(int(USER_RAW(2))))
        assert ok["model_version"] == vid1
        for f in followers:
            f.stop()

    asyncio.run(go())


def test_board_waits_for_every_live_member_before_committing() -> None:
    """Two-phase order: no member commits before all have prepared; a member gone past its TTL is not awaited."""
    now = [0.0]
    log: list[tuple[str, str]] = []

    async def go() -> None:
        board = VersionBoard("/r/a", "a", member_ttl_s=5.0, clock=lambda: now[0])
        gone = await board.join("gone")  # joined, then never watched again
        assert gone["version"] == "a"
        followers = []
        for name, delay in (("fast", 0.0), ("slow", 0.05)):
            async def prep(rd: str, v: str, name: str = name, delay: float = delay) -> None:
                await asyncio.sleep(delay)
                log.append(("prepare", name))

            async def commit(rd: str, v: str, name: str = name) -> None:
                log.append(("commit", name))
            followers.append(await follow(board, prep, commit, "a"))
        now[0] = 6.0  # "gone" is past its TTL; the followers are watching, so they stay live
        out = await board.propose("/r/b", "b", timeout_s=5.0)
        assert out == {"ok": True, "previous_version": "a", "model_version": "b", "replicas": 2}
        kinds = [k for k, _ in log]
        assert sorted(kinds[:2]) == ["prepare", "prepare"] and sorted(kinds[2:]) == ["commit", "commit"]
        assert board.state()["version"] == "b" and board.state()["pending"] is None
        for f in followers:
            f.stop()

    asyncio.run(go())
    assert np.unique([n for _, n in log]).tolist() == ["fast", "slow"]
