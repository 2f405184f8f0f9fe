"""Load test of the Serve graph over HTTP on loopback, side by side with a no-op graph and a plain process.

Variants (each server runs in its own child process; the load generator is this process):

* ``full``: the real graph (Ingress → Retrieval → Ranking → Reranking) from ``serve_app.app.build_graph``;
* ``noop``: a graph of the same shape whose deployments do nothing (the Serve overhead floor, the baseline);
* ``plain``: the same models behind ONE FastAPI/uvicorn process (``graphrec_ray.serving.pipeline.recommend``);
* ``full-throughput`` / ``noop-throughput``: as above with ``RAY_SERVE_THROUGHPUT_OPTIMIZED=1`` (Serve's
  throughput-optimised mode: gRPC between replicas, direct ingress, no separate user-code thread/router loop);
* ``full-grpc``: the real graph with only ``RAY_SERVE_USE_GRPC_BY_DEFAULT=1`` (gRPC between replicas).

Bounded load: ``--requests`` requests (after a warm-up) from ``--concurrency`` keep-alive connections, users
cycling through known ids plus ~5% unknown (cold start). Reports p50/p95/p99 latency and requests/s, and the
ratios against ``noop`` (goals from issue 5: full p50 <= 1.3x noop, throughput >= 0.7x noop, p99 <= 25 ms).

    python benchmarks/serve_load.py                       # synthetic KuaiRec-size run dir, all variants
    python benchmarks/serve_load.py --run-dir runs/demo   # a real pipeline run (RankerBundle)

Writes ``outputs/serve_load.json``. Each Serve variant starts its own local Ray cluster (num_cpus=4 logical).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SERVE_ENV = {
    "full": {}, "noop": {}, "plain": {},
    "full-throughput": {"RAY_SERVE_THROUGHPUT_OPTIMIZED": "1"},
    "noop-throughput": {"RAY_SERVE_THROUGHPUT_OPTIMIZED": "1"},
    "full-grpc": {"RAY_SERVE_USE_GRPC_BY_DEFAULT": "1"},
}
EMBEDDED_RANKER = "graphrec_ray.serving.baseline_ranker:EmbeddingRanker.load"


# ------------------------------------------------------------------------------------------------ data


def synthetic_run_dir(root: Path, seen_per_user: int, seed: int = 0) -> Path:
    """KuaiRec-size planted run dir (7,176 users x 10,728 items, d=64) with ``seen_per_user`` seen items."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    sys.path.insert(0, str(ROOT))
    from tests.unit.serving.planted import make_run_dir

    make_run_dir(root, seed=seed, n_users=7176, n_items=10728, n_clusters=32, dim=64)
    rng = np.random.default_rng(seed)
    train = pq.read_table(root / "preprocess/train.parquet")
    n = 7176 * seen_per_user
    extra = {c: train.column(c).to_numpy()[rng.integers(0, train.num_rows, n)] for c in train.column_names}
    extra["user_idx"] = np.repeat(np.arange(7176, dtype=np.int32), seen_per_user)
    extra["item_idx"] = rng.integers(0, 10728, n).astype(np.int32)
    extra["user_id"] = 1000 + 7 * extra["user_idx"].astype(np.int64)
    extra["video_id"] = 50000 + 3 * extra["item_idx"].astype(np.int64)
    big = pa.concat_tables([train, pa.table(extra, schema=train.schema)])
    pq.write_table(big, root / "preprocess/train.parquet")
    return root


# ------------------------------------------------------------------------------------------------ servers


def _noop_app() -> Any:
    from fastapi import FastAPI
    from ray import serve

    @serve.deployment
    class Stage:
        async def __call__(self, x: Any) -> Any:
            return x

    api = FastAPI()

    @serve.deployment
    @serve.ingress(api)
    class NoopIngress:
        def __init__(self, a: Any, b: Any, c: Any) -> None:
            self.stages = [a, b, c]

        @api.get("/recommend/{user_id}")
        async def recommend(self, user_id: str, k: int = 10) -> Any:
            x: Any = np.arange(200)
            for h in self.stages:
                x = await h.remote(x)
            return {"user_id": user_id, "items": [{"item_id": int(i), "p_click": 0.5, "e_value": 0.5,
                                                   "final_score": 1.0} for i in x[:k]]}

    opts = {"ray_actor_options": {"num_cpus": 0.25}, "max_ongoing_requests": 64,
            "logging_config": {"enable_access_log": False}}
    return NoopIngress.options(**opts).bind(*(Stage.options(name=f"Stage{i}", **opts).bind() for i in range(3)))


def child(variant: str, run_dir: str, port: int, overrides: list[str]) -> None:
    """Serve ``variant`` on ``port``; print READY; stop when stdin closes."""
    from graphrec_ray.config import load_config
    from graphrec_ray.serving.config import ServeConfig

    cfg = load_config(ServeConfig, ROOT / "configs/serve.yaml", overrides)
    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    if variant == "plain":
        import uvicorn

        server = uvicorn.Server(uvicorn.Config(plain_app(cfg, run_dir), host="127.0.0.1", port=port,
                                               log_level="warning", access_log=False))
        threading.Thread(target=lambda: (stop.wait(), setattr(server, "should_exit", True)), daemon=True).start()
        threading.Thread(target=_ready_when_listening, args=(port,), daemon=True).start()
        server.run()
        return
    import ray
    from ray import serve

    from serve_app.app import build_graph

    ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False)
    try:
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        app = _noop_app() if variant.startswith("noop") else build_graph(cfg, run_dir)
        serve.run(app, name="bench", route_prefix="/")
        _ready_when_listening(port)
        stop.wait()
    finally:
        serve.shutdown()
        ray.shutdown()


def plain_app(cfg: Any, run_dir: str) -> Any:
    """The same request path in one FastAPI process (no Ray)."""
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse

    from graphrec_ray.serving.cache import EmbeddingCache
    from graphrec_ray.serving.pipeline import parse_k, parse_user_id, recommend
    from graphrec_ray.serving.versioned import load_version

    import faiss

    faiss.omp_set_num_threads(cfg.faiss_threads)
    version = load_version(run_dir, cfg.ranker_loader, cfg.seen_splits, cfg.cold_start_pool, cfg.prior_strength)
    cache = EmbeddingCache.from_config(cfg.cache)
    api = FastAPI()

    @api.get("/recommend/{user_id}")
    def rec(user_id: str, k: str | None = None) -> Any:
        try:
            uid, kk = parse_user_id(user_id), parse_k(k, cfg.k_default, cfg.k_max)
        except ValueError as exc:
            return JSONResponse(status_code=400, content={"error": str(exc)})
        return recommend(version, uid, kk, cfg, cache)

    return api


def _ready_when_listening(port: int) -> None:
    for _ in range(600):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            print("READY", flush=True)
            return
        except OSError:
            time.sleep(0.1)


# ------------------------------------------------------------------------------------------------ load


async def _one_connection(port: int, paths: list[str], start: int, step: int, n: int,
                          lat: list[float], status: list[int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    i = start
    try:
        while i < n:
            t0 = time.perf_counter()
            writer.write(f"GET {paths[i % len(paths)]} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
            head = await reader.readuntil(b"\r\n\r\n")
            code = int(head.split(b" ", 2)[1])
            length = 0
            chunked = False
            for line in head.split(b"\r\n"):
                low = line.lower()
                if low.startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
                elif low.startswith(b"transfer-encoding:") and b"chunked" in low:
                    chunked = True
            if chunked:
                while True:
                    size = int((await reader.readuntil(b"\r\n")).strip(), 16)
                    await reader.readexactly(size + 2)
                    if size == 0:
                        break
            else:
                await reader.readexactly(length)
            lat.append(time.perf_counter() - t0)
            status.append(code)
            i += step
    finally:
        writer.close()


def load(port: int, paths: list[str], n: int, concurrency: int) -> dict[str, Any]:
    """``n`` requests over ``concurrency`` keep-alive connections; latency percentiles (ms) and req/s."""
    async def go(count: int) -> tuple[list[float], list[int], float]:
        lat: list[float] = []
        status: list[int] = []
        t0 = time.perf_counter()
        await asyncio.gather(*(_one_connection(port, paths, c, concurrency, count, lat, status)
                               for c in range(concurrency)))
        return lat, status, time.perf_counter() - t0

    asyncio.run(go(min(200, n)))  # warm-up: replicas, connections, caches
    lat, status, wall = asyncio.run(go(n))
    ms = np.asarray(lat) * 1e3
    return {"requests": len(lat), "errors": int(sum(s != 200 for s in status)),
            "p50_ms": float(np.percentile(ms, 50)), "p95_ms": float(np.percentile(ms, 95)),
            "p99_ms": float(np.percentile(ms, 99)), "rps": len(lat) / wall}


def run_variant(variant: str, run_dir: Path, paths: list[str], args: argparse.Namespace) -> dict[str, Any]:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", **SERVE_ENV[variant]}
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", variant, "--run-dir", str(run_dir),
           "--port", str(port), *args.overrides]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    try:
        t0 = time.time()
        while proc.stdout is not None and (line := proc.stdout.readline()):
            if line.strip() == "READY":
                break
        else:
            raise RuntimeError(f"{variant}: server exited before it was ready")
        start_s = time.time() - t0
        result = {f"c{c}": load(port, paths, args.requests, c) for c in args.concurrency}
        result["startup_s"] = round(start_s, 1)
    finally:
        if proc.stdin is not None:
            proc.stdin.close()  # child shuts Serve and Ray down
        try:
            proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run-dir", default=None, help="run directory (default: a synthetic KuaiRec-size one)")
    p.add_argument("--variants", nargs="+", default=["noop", "full", "plain", "noop-throughput",
                                                     "full-throughput", "full-grpc"], choices=list(SERVE_ENV))
    p.add_argument("--requests", type=int, default=1500)
    p.add_argument("--concurrency", type=int, nargs="+", default=[1, 8], help="client connections (each level)")
    p.add_argument("--seen-per-user", type=int, default=300, help="synthetic run dir: seen items per user")
    p.add_argument("--out", default="outputs/serve_load.json")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    p.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("overrides", nargs="*", help="ServeConfig key=value overrides for full/plain")
    args = p.parse_args(argv)
    if args.child:
        child(args.child, args.run_dir, args.port, args.overrides)
        return 0
    prefix = f"graphrec-bench-{uuid.uuid4().hex[:8]}"  # private Redis keys, deleted at the end
    args.overrides = [*args.overrides, f"cache.key_prefix={prefix}"]
    try:
        results, args = _run_all(args)
    finally:
        _delete_keys(prefix)
    _report(results, args)
    return 0


def _delete_keys(prefix: str) -> None:
    from graphrec_ray.config import load_config
    from graphrec_ray.serving.cache import make_redis_client
    from graphrec_ray.serving.config import ServeConfig

    client = make_redis_client(load_config(ServeConfig, ROOT / "configs/serve.yaml").cache)
    if client is not None:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=5000))
        for i in range(0, len(keys), 1000):
            client.delete(*keys[i:i + 1000])


def _run_all(args: argparse.Namespace) -> tuple[dict[str, Any], argparse.Namespace]:
    with tempfile.TemporaryDirectory(prefix="graphrec-serve-load-") as tmp:
        if args.run_dir is None:
            print("building a synthetic KuaiRec-size run directory ...", flush=True)
            run_dir = synthetic_run_dir(Path(tmp) / "run", args.seen_per_user)
            args.overrides = [f"ranker_loader={EMBEDDED_RANKER}", *args.overrides]
        else:
            run_dir = Path(args.run_dir).resolve()
        from graphrec_ray.serving.versioned import load_ids

        users = load_ids(run_dir).user_map.raw_ids
        rng = np.random.default_rng(0)
        ids = rng.choice(users, size=950).tolist() + [int(users.max()) + 1 + i for i in range(50)]
        paths = [f"/recommend/{u}?k=10" for u in rng.permutation(ids)]
        results: dict[str, Any] = {}
        for v in args.variants:
            print(f"{v}: starting ...", flush=True)
            results[v] = run_variant(v, run_dir, paths, args)
            for c in args.concurrency:
                r = results[v][f"c{c}"]
                print(f"{v:<16} c={c:<3} p50={r['p50_ms']:7.2f} ms  p95={r['p95_ms']:7.2f}  p99={r['p99_ms']:7.2f}"
                      f"  {r['rps']:7.1f} req/s  errors={r['errors']}", flush=True)
    return results, args


def _report(results: dict[str, Any], args: argparse.Namespace) -> None:
    base = {"full": "noop", "plain": "noop", "full-grpc": "noop", "full-throughput": "noop-throughput",
            "noop-throughput": "noop"}
    ratios: dict[str, Any] = {}
    for c in args.concurrency:
        print(f"\nratios against the no-op graph (same run; concurrency {c}, {args.requests} requests):")
        for v, b in base.items():
            if v in results and b in results:
                rv, rb = results[v][f"c{c}"], results[b][f"c{c}"]
                ratios[f"{v}@c{c}"] = {"baseline": b, "p50_ratio": rv["p50_ms"] / rb["p50_ms"],
                                       "rps_ratio": rv["rps"] / rb["rps"]}
                print(f"  {v:<16} vs {b:<16} p50 {rv['p50_ms'] / rb['p50_ms']:.2f}x   "
                      f"throughput {rv['rps'] / rb['rps']:.2f}x")
        if "full" in results and "noop" in results:
            f, n = results["full"][f"c{c}"], results["noop"][f"c{c}"]
            print(f"  goals for full: p50 {f['p50_ms'] / n['p50_ms']:.2f}x noop (<= 1.3), throughput "
                  f"{f['rps'] / n['rps']:.2f}x noop (>= 0.7), p99 {f['p99_ms']:.1f} ms (<= 25)")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"concurrency": args.concurrency, "requests": args.requests,
                               "run_dir": str(args.run_dir or "synthetic"), "results": results,
                               "ratios": ratios}, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    raise SystemExit(main())
