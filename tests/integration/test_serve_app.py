"""The Serve application on the shared local Ray cluster, called over HTTP: the same suite against BOTH
topologies (the module fixture is parametrised; each deploys one app, with 2 replicas of the ingress).

Planted run directories (``tests/unit/serving/planted.py``) give known answers; Redis is reached through a TCP
proxy that the test can cut, to simulate Redis going down mid-test.
"""

from __future__ import annotations

import socket
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Iterator

import httpx
import numpy as np
import pytest

from graphrec_ray.config import load_config
from graphrec_ray.errors import UserError
from graphrec_ray.rerank.mmr import intra_list_diversity
from graphrec_ray.serving.cache import EmbeddingCache, make_redis_client
from graphrec_ray.serving.config import CacheConfig, ServeConfig
from graphrec_ray.serving.request_path import recommend
from graphrec_ray.serving.versions import load_version, version_id
from tests.net import free_port
from tests.unit.serving.planted import ITEM_RAW, RANKER, USER_RAW, Planted, make_run_dir

pytestmark = pytest.mark.integration


class TcpProxy:
    """Forwards 127.0.0.1:<port> to Redis; ``stop()`` refuses new connections and cuts open ones."""

    def __init__(self, target: tuple[str, int] = ("127.0.0.1", 6379)) -> None:
        self.target = target
        self.port = free_port()
        self._server: socket.socket | None = None
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()

    def start(self) -> None:
        srv = socket.socket()
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind(("127.0.0.1", self.port))
        srv.listen(64)
        self._server = srv
        threading.Thread(target=self._accept, args=(srv,), daemon=True).start()

    def _accept(self, srv: socket.socket) -> None:
        while True:
            try:
                client, _ = srv.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            with self._lock:
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a: socket.socket, b: socket.socket) -> None:
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def stop(self) -> None:
        if self._server is not None:
            try:
                self._server.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept() (close alone does not)
            except OSError:
                pass
            self._server.close()
            self._server = None
        with self._lock:
            for c in self._conns:
                try:
                    c.shutdown(socket.SHUT_RDWR)
                    c.close()
                except OSError:
                    pass
            self._conns = []


class App:
    def __init__(self, url: str, cfg: ServeConfig, v1: Planted, v2: Planted, proxy: TcpProxy) -> None:
        self.url, self.cfg, self.v1, self.v2, self.proxy = url, cfg, v1, v2, proxy
        self.versions = {version_id(p.run_dir): load_version(p.run_dir, RANKER) for p in (v1, v2)}

    def get(self, path: str, **params: Any) -> httpx.Response:
        return httpx.get(self.url + path, params=params, timeout=30.0)

    def expected(self, vid: str, raw_user: int, k: int, cfg: ServeConfig | None = None) -> list[dict]:
        """What an uncached in-process run of version ``vid`` answers (scores known exactly)."""
        body = recommend(self.versions[vid], raw_user, k, cfg or self.cfg, EmbeddingCache(None))
        return body["items"]


TOKEN = "integration-test-token"


@pytest.fixture(scope="module", params=["collocated", "graph"])
def app(request: pytest.FixtureRequest, ray_cluster: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    from ray import serve

    from serve_app.app import build_graph

    topology = request.param
    root = tmp_path_factory.mktemp(f"serve-{topology}")
    v1 = make_run_dir(root / "v1", seed=0, embedding_version="emb-v1")
    v2 = make_run_dir(root / "v2", seed=7, embedding_version="emb-v2")
    proxy = TcpProxy()
    proxy.start()
    prefix = f"graphrec-test-E-{uuid.uuid4().hex[:8]}"
    port = free_port()
    cfg = load_config(ServeConfig, None, [
        f"topology={topology}", f"ranker_loader={RANKER}", "lambda_diversity=1.0", f"http_port={port}",
        f"reload_token={TOKEN}", f"reload_root={root}",
        f"cache.url=redis://127.0.0.1:{proxy.port}/0", f"cache.key_prefix={prefix}",
        "cache.reset_timeout_s=1.0", "cache.failure_threshold=2",
        "cache.socket_timeout_ms=200", "cache.connect_timeout_ms=200",  # the test's Python proxy is slow
        # 2 replicas of every deployment (ServeConfig's defaults; reload must reach all), small CPU shares
        "collocated.num_replicas=2", "collocated.num_cpus=0.1", "ingress.num_replicas=2",
        "ingress.num_cpus=0.1", "retrieval.num_cpus=0.1", "ranking.num_cpus=0.1", "reranking.num_cpus=0.1"])
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    serve.run(build_graph(cfg, v1.run_dir), name="graphrec-test", route_prefix="/")
    try:
        yield App(f"http://127.0.0.1:{port}", cfg, v1, v2, proxy)
    finally:
        serve.shutdown()
        proxy.stop()
        client = make_redis_client(CacheConfig(url="redis://127.0.0.1:6379/0"))
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        if keys:
            client.delete(*keys)


def _reload(app: App, run_dir: str | Path, token: str | None = TOKEN) -> httpx.Response:
    headers = {} if token is None else {"X-Reload-Token": token}
    return httpx.post(app.url + "/reload", json={"run_dir": str(run_dir)}, headers=headers, timeout=120)


def _same_items(got: list[dict], want: list[dict]) -> bool:
    """Same item ids in the same order, scores equal to float32 precision."""
    return [g["item_id"] for g in got] == [w["item_id"] for w in want] and all(
        abs(g[f] - w[f]) <= 1e-5 * max(1.0, abs(w[f])) for g, w in zip(got, want)
        for f in ("p_click", "e_value", "final_score"))


def _item_idx(body: dict) -> np.ndarray:
    return (np.array([it["item_id"] for it in body["items"]]) - 50000) // 3


def test_response_schema_and_known_top10_without_seen(app: App) -> None:
    v1 = version_id(app.v1.run_dir)
    for u in (0, 4, 9):
        r = app.get(f"/recommend/{int(USER_RAW(u))}", k=10)
        assert r.status_code == 200, r.text
        body = r.json()
        for key, tp in [("model_version", str), ("cold_start", bool), ("cache_hit", bool), ("items", list),
                        ("retrieval_latency_ms", float), ("ranking_latency_ms", float),
                        ("rerank_latency_ms", float), ("total_latency_ms", float)]:
            assert isinstance(body[key], tp), key
        assert body["model_version"] == v1 and body["cold_start"] is False
        assert body["total_latency_ms"] >= body["retrieval_latency_ms"] + body["ranking_latency_ms"]
        assert len(body["items"]) == 10
        for it in body["items"]:
            assert set(it) == {"item_id", "p_click", "e_value", "final_score"}
            assert it["item_id"] in set(ITEM_RAW(np.arange(120)).tolist())  # raw video ids, not indices
        got = _item_idx(body)
        assert not set(got.tolist()) & app.v1.seen[u]
        np.testing.assert_array_equal(got, app.v1.exact_unseen_top(u, 10))  # lambda=1: pure relevance
        assert _same_items(body["items"], app.expected(v1, int(USER_RAW(u)), 10))


def test_cache_miss_then_hit(app: App) -> None:
    raw = int(USER_RAW(21))
    first = app.get(f"/recommend/{raw}").json()
    second = app.get(f"/recommend/{raw}").json()
    assert first["cache_hit"] is False and second["cache_hit"] is True
    assert first["items"] == second["items"]


def test_unknown_user_gets_cold_start(app: App) -> None:
    body = app.get("/recommend/1001").json()  # between two sparse known ids
    assert body["cold_start"] is True and body["cache_hit"] is False and len(body["items"]) == 10
    pool = set(np.lexsort((np.arange(120), -app.v1.train_count))[: app.cfg.cold_start_pool].tolist())
    assert set(_item_idx(body).tolist()) <= pool
    assert app.get("/recommend/-5").json()["cold_start"] is True


@pytest.mark.parametrize("path,params,needle", [
    ("/recommend/abc", {}, "user_id must be an integer"),
    ("/recommend/1.5", {}, "user_id must be an integer"),
    ("/recommend/" + "9" * 30, {}, "64-bit"),
    ("/recommend/1000", {"k": 0}, "k must be in"),
    ("/recommend/1000", {"k": 101}, "k must be in"),
    ("/recommend/1000", {"k": "ten"}, "k must be an integer"),
])
def test_bad_input_is_a_clear_4xx(app: App, path: str, params: dict, needle: str) -> None:
    r = app.get(path, **params)
    assert 400 <= r.status_code < 500
    assert needle in r.json()["error"]


def test_bad_reload_is_4xx_and_keeps_serving(app: App, tmp_path: Path) -> None:
    before = app.get("/health").json()["model_version"]
    root = app.v1.run_dir.parent
    for body in ({"nope": 1}, {"run_dir": str(root / "missing")}, {"run_dir": str(tmp_path)},
                 {"run_dir": str(root / "v1" / "preprocess")}):
        r = httpx.post(app.url + "/reload", json=body, headers={"X-Reload-Token": TOKEN}, timeout=30)
        assert r.status_code == 400 and "error" in r.json(), r.text
        assert str(root) not in r.text and str(tmp_path) not in r.text  # no server paths echoed
    r = httpx.post(app.url + "/reload", content=b"not json", headers={"X-Reload-Token": TOKEN}, timeout=30)
    assert r.status_code == 400
    assert _reload(app, app.v2.run_dir, token=None).status_code == 401
    assert _reload(app, app.v2.run_dir, token="wrong").status_code == 403
    assert app.get("/health").json()["model_version"] == before


def test_health_and_metrics(app: App) -> None:
    h = app.get("/health")
    assert h.status_code == 200 and h.json()["status"] == "ok" and h.json()["topology"] == app.cfg.topology
    assert "run_dir" not in h.json() and str(app.v1.run_dir) not in h.text
    assert app.get("/recommend/1001").json()["cold_start"]

    def cold_starts(page: str) -> float:
        return sum(float(line.split()[-1]) for line in page.splitlines() if line.startswith("graphrec_cold_start_total"))

    # /metrics is the page of the ONE replica that answered (its first line names it); only the replica that served
    # the cold request counts it. Regression (CI, stop 16): the loop stopped at the first page with any recommend 200,
    # which with 2 ingress replicas could be the other replica's (its recommends came from earlier tests): cold 0.
    pages: dict[str, str] = {}
    for _ in range(30):
        page = app.get("/metrics").text
        pages[page.splitlines()[0]] = page
        if cold_starts(page) >= 1:
            break
    assert all(h.startswith("# graphrec /metrics of ONE replica") for h in pages)
    text = page
    assert cold_starts(text) >= 1, f"no replica counted the cold start; saw {len(pages)} replica page(s)"
    assert 'graphrec_requests_total{endpoint="recommend",status="200"}' in text
    assert 'graphrec_stage_latency_seconds_bucket{le="0.025",stage="ranking"}' in text
    assert "graphrec_cache_hit_ratio" in text


def _ray_export() -> str:
    import ray

    node = ray.nodes()[0]
    return httpx.get(f"http://{node['NodeManagerAddress']}:{node['MetricsExportPort']}/metrics", timeout=10).text


@pytest.mark.slow
def test_metrics_reach_rays_export_from_every_deployment(app: App) -> None:
    """Regression (issue 13): no metric reached Ray's metrics pipeline (only the per-replica /metrics page).
    Ray's agent exports ray_graphrec_* tagged by application and deployment; waits for its report (~10 s)."""
    for raw in (int(USER_RAW(1)), int(USER_RAW(2)), 999999):
        assert app.get(f"/recommend/{raw}").status_code == 200
    deployments = {"Recommender"} if app.cfg.topology == "collocated" else {
        "Ingress", "Retrieval", "Ranking", "Reranking"}
    want = {'ray_graphrec_requests_total{': "Ingress", "ray_graphrec_stage_latency_seconds_bucket{": "Ingress",
            "ray_graphrec_cache_events_total{": "Retrieval", "ray_graphrec_cache_breaker_state{": "Retrieval",
            "ray_graphrec_model_version_info{": "Ingress"}
    text, deadline = "", time.monotonic() + 45
    while time.monotonic() < deadline:
        text = _ray_export()
        lines = [ln for ln in text.splitlines() if 'application="graphrec-test"' in ln]
        starts = {d for d in deployments
                  if any(ln.startswith("ray_graphrec_replica_starts_total{") and f'deployment="{d}"' in ln
                         for ln in lines)}
        found = all(any(ln.startswith(name) and (app.cfg.topology == "collocated" or f'deployment="{dep}"' in ln)
                        for ln in lines) for name, dep in want.items())
        if found and starts == deployments:
            break
        time.sleep(1.0)
    else:
        raise AssertionError(f"missing in Ray's export: {sorted(want)} / starts of {deployments}: "
                             f"{[ln for ln in text.splitlines() if 'graphrec' in ln][:20]}")


def test_feedback_over_http(app: App) -> None:
    item = int(ITEM_RAW(5))
    r = httpx.post(app.url + "/feedback", json={"user_id": int(USER_RAW(3)), "item_id": item, "clicked": True},
                   timeout=30)
    assert r.status_code == 200, r.text
    body = r.json()
    want = app.versions[body["model_version"]].ranking.ranker.score(3, np.array([5]), None)[0][0]
    assert body["p_click"] == pytest.approx(float(want), abs=1e-6) and body["window"]["n"] >= 1
    bad = httpx.post(app.url + "/feedback", json={"user_id": 1, "item_id": 1, "clicked": True}, timeout=30)
    assert bad.status_code == 400 and "not in the served model version" in bad.json()["error"]
    assert httpx.post(app.url + "/feedback", json={"user_id": 1}, timeout=30).status_code == 400


def test_hot_reload_reaches_every_replica_under_concurrent_requests(app: App) -> None:
    """Regression (issue 12): POST /reload switched only the ingress replica that received it; with 2 replicas
    half the traffic stayed on the old version. Now: zero failures, no mixed responses, and once /reload answers
    every replica serves the new version."""
    vids = [version_id(app.v1.run_dir), version_id(app.v2.run_dir)]
    users = [int(USER_RAW(u)) for u in range(0, 30, 2)]
    expected = {(vid, raw): app.expected(vid, raw, 10) for vid in vids for raw in users}
    results: list[tuple[int, dict]] = []
    stop = threading.Event()

    def client(offset: int) -> None:
        with httpx.Client(base_url=app.url, timeout=30) as c:
            i = offset
            while not stop.is_set():
                raw = users[i % len(users)]
                r = c.get(f"/recommend/{raw}")
                results.append((raw, r.json() if r.status_code == 200 else {"status": r.status_code}))
                i += 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.3)
        for target, vid in ((app.v2, vids[1]), (app.v1, vids[0]), (app.v2, vids[1])):
            r = _reload(app, "v2" if target is app.v2 else target.run_dir)  # relative paths resolve in the root
            assert r.status_code == 200, r.text
            sc = app.cfg  # every replica of every deployment follows the board (graph: 2 of each stage)
            n = sc.collocated.num_replicas if sc.topology == "collocated" else sum(
                d.num_replicas for d in (sc.ingress, sc.retrieval, sc.ranking, sc.reranking))
            assert r.json()["model_version"] == vid and r.json()["replicas"] == n
            with httpx.Client(base_url=app.url, timeout=30) as c:  # both replicas now serve it
                after = {c.get(f"/recommend/{users[i % len(users)]}").json()["model_version"] for i in range(12)}
            assert after == {vid}
            time.sleep(0.3)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert len(results) > 20
    failures = [b for _, b in results if "items" not in b]
    assert not failures, failures[:3]
    assert {b["model_version"] for _, b in results} == set(vids)
    for raw, body in results:  # every response is exactly one version's answer, never a mix
        assert _same_items(body["items"], expected[(body["model_version"], raw)])
    assert app.get("/health").json()["model_version"] == vids[1]
    assert _reload(app, app.v1.run_dir).status_code == 200


def test_redis_down_still_200_with_cache_hit_false(app: App) -> None:
    raw = int(USER_RAW(11))
    assert _wait_for_cache_hit(app, raw), "cache never hit while Redis was up"
    app.proxy.stop()  # Redis unreachable: connection refused, open connections cut
    try:
        for _ in range(5):
            r = app.get(f"/recommend/{raw}")
            assert r.status_code == 200
            assert r.json()["cache_hit"] is False and len(r.json()["items"]) == 10
    finally:
        app.proxy.start()
    # the breaker half-opens after reset_timeout_s=1 and closes on the trial's success
    assert _wait_for_cache_hit(app, raw), "cache never recovered after Redis came back"


def _wait_for_cache_hit(app: App, raw: int, timeout_s: float = 10.0) -> bool:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if app.get(f"/recommend/{raw}").json()["cache_hit"]:
            return True
        time.sleep(0.3)
    return False


def test_smoke_helper_of_graphrec_serve(app: App) -> None:
    from jobs.serve import smoke

    report = smoke(app.url, [int(USER_RAW(1)), int(USER_RAW(2)), 1001], 6)
    assert report["failures"] == [] and report["cold_start"] == 2
    assert report["health"] == 200 and report["metrics"] == 200 and report["p50_ms"] > 0


def _serve_args(app: App, *extra: str) -> list[str]:
    """``graphrec serve`` arguments for the planted v2 run on the test cluster (no Redis, small CPU shares)."""
    return ["--run-dir", str(app.v2.run_dir), "--config", "configs/serve.yaml", *extra, f"ranker_loader={RANKER}",
            "cache.url=", "collocated.num_replicas=1", "collocated.num_cpus=0.05", "ingress.num_cpus=0.05", "retrieval.num_cpus=0.05", "ranking.num_cpus=0.05", "reranking.num_cpus=0.05"]


def test_smoke_test_never_touches_the_live_app(app: App, capsys: pytest.CaptureFixture) -> None:
    """Regression (issue 13, item 1): the pipeline's serve smoke test ran `serve.run(name="graphrec")`, replacing
    the live app with the job's model, then `serve.shutdown()`, after which every request failed. It now deploys
    a private copy under its own name and route and deletes only that."""
    from ray import serve

    from jobs.serve import main

    if app.cfg.topology != "collocated":
        pytest.skip("graphrec serve's job logic does not depend on the topology: run once")
    v1 = version_id(app.v1.run_dir)
    assert main(_serve_args(app, "--smoke", "3")) == 0
    assert "0 failed, cold start" in capsys.readouterr().out
    apps = serve.status().applications
    assert "graphrec-test" in apps and not any(a.startswith("graphrec-smoke-") for a in apps)
    assert app.get("/health").json()["model_version"] == v1  # the live app still serves its own model


def test_serve_refuses_an_app_name_already_running(app: App) -> None:
    """Regression (issue 13, item 3): a second `graphrec serve` silently joined the first and took half the
    traffic; it must refuse an application name already running unless told to --replace."""
    from jobs.serve import main

    with pytest.raises(UserError, match="already running"):
        main(_serve_args(app, "--app-name", "graphrec-test"))
    assert app.get("/health").status_code == 200


def test_lower_lambda_via_user_config_increases_diversity(app: App) -> None:
    """Last in the module: it leaves the app at lambda_diversity=0.3 (saves a second redeploy)."""
    from ray import serve

    from serve_app.app import build_graph

    raw, u = int(USER_RAW(5)), 5
    base = _item_idx(app.get(f"/recommend/{raw}").json())
    graph = build_graph(app.cfg, app.v1.run_dir, reranking_user_config={"lambda_diversity": 0.3})
    serve.run(graph, name="graphrec-test", route_prefix="/")  # from Python this rolls the replicas; `serve deploy`
    # of the config YAML would apply the same user_config in place (reconfigure, no restart)
    diverse = _item_idx(app.get(f"/recommend/{raw}").json())
    unit = app.versions[version_id(app.v1.run_dir)].rerank.item_unit
    assert intra_list_diversity(unit[diverse]) > intra_list_diversity(unit[base])
    assert len(set(app.v1.cluster[base].tolist())) == 1 < len(set(app.v1.cluster[diverse].tolist()))
    assert not set(diverse.tolist()) & app.v1.seen[u]
