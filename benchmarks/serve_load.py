"""Load test of both Serve topologies over HTTP on loopback, paired with a plain process and a no-op graph.

Variants (``outputs/serve_latency.csv``, columns variant, concurrency, p50_ms, p95_ms, p99_ms, rps, failures):

* ``plain``: the same models behind ONE FastAPI/uvicorn process (``graphrec_ray.serving.request_path.recommend``),
  the baseline of the collocated topology;
* ``collocated``: ``serve_app.app.build_graph`` with ``topology=collocated`` (ServeConfig's replicas/CPUs);
  ``collocated_1r``: the same with one replica (how the default replica count was chosen);
* ``graph``: ``topology=graph`` (Ingress -> Retrieval -> Ranking -> Reranking);
* ``noop``: a graph of the same shape whose deployments do nothing (the Serve overhead floor of ``graph``);
  ``noop1``: one no-op ingress deployment (the floor of ``collocated``: one proxy -> replica hop).

The Serve variants run in groups, one local Ray cluster (a child process) per group, each with its own Serve
settings: ``default`` (our configuration) and ``throughput`` (``RAY_SERVE_THROUGHPUT_OPTIMIZED=1``); ``grpc``
(``RAY_SERVE_USE_GRPC_BY_DEFAULT=1``) on request. Within a group every variant is an application of the SAME
cluster (route prefixes ``/noop``, ``/graph``, ``/collocated``...; ``plain`` joins the ``default`` group from its
own process) and the load alternates between them in short blocks, so every ratio is paired: a busy neighbour or
a CPU clock change hits baseline and variant alike. Ratios carry 95% intervals from a bootstrap over the paired
blocks (the block is the sampling unit).

Bounded load: ``--requests`` requests per variant (after a warm-up) from ``--concurrency`` keep-alive
connections, users cycling through known ids plus ~5% unknown (cold start). Goals (issue 12, 2 cores, quiet
machine): collocated p50 <= 2x plain and p99 <= 15 ms at c=1; collocated throughput at c=8 >= 0.5x plain;
graph p50 <= 1.3x noop.

    python benchmarks/serve_load.py --run-dir runs/demo --requests 300   # a real pipeline run (RankerBundle)
    python benchmarks/serve_load.py                                      # synthetic KuaiRec-size run dir

Writes ``outputs/serve_latency.csv`` and ``outputs/serve_load.json`` (ratios with intervals). Each group's
cluster is ``ray.init(num_cpus=8)`` (logical CPUs).
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
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # test helpers (planted run dir, free port) live in tests/
GROUPS = {
    "default": {},
    "throughput": {"RAY_SERVE_THROUGHPUT_OPTIMIZED": "1"},
    "grpc": {"RAY_SERVE_USE_GRPC_BY_DEFAULT": "1"},
}
# route prefix -> ServeConfig overrides of that Serve application (noop is built separately)
SERVE_VARIANTS = {"collocated": ["topology=collocated"], "graph": ["topology=graph"],
                  "collocated_1r": ["topology=collocated", "collocated.num_replicas=1"]}
EMBEDDED_RANKER = "graphrec_ray.ranking.embedding_ranker:EmbeddingRanker.load"


# ------------------------------------------------------------------------------------------------ data


def synthetic_run_dir(root: Path, seen_per_user: int, seed: int = 0) -> Path:
    """KuaiRec-size planted run dir (7,176 users x 10,728 items, d=64) with ``seen_per_user`` seen items."""
    import pyarrow as pa
    import pyarrow.parquet as pq

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


def _noop_app(n_stages: int = 3) -> Any:
    """A no-op ingress calling ``n_stages`` no-op deployments (3: the graph's shape; 0: one hop, the floor of
    the collocated topology)."""
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
        def __init__(self, *stages: Any) -> None:
            self.stages = list(stages)

        @api.get("/recommend/{user_id}")
        async def recommend(self, user_id: str, k: int = 10) -> Any:
            x: Any = np.arange(200)
            for h in self.stages:
                x = await h.remote(x)
            return {"user_id": user_id, "items": [{"item_id": int(i), "p_click": 0.5, "e_value": 0.5,
                                                   "final_score": 1.0} for i in x[:k]]}

    opts = {"ray_actor_options": {"num_cpus": 0.25}, "max_ongoing_requests": 64,
            "logging_config": {"enable_access_log": False}}
    return NoopIngress.options(**opts).bind(*(Stage.options(name=f"Stage{i}", **opts).bind()
                                              for i in range(n_stages)))


def child(group: str, run_dir: str, port: int, overrides: list[str]) -> None:
    """Serve ``group`` on ``port`` (``plain``: one uvicorn process; else ``/noop`` and every entry of
    :data:`SERVE_VARIANTS` as applications of one Ray cluster); print READY; stop when stdin closes."""
    from graphrec_ray.config import load_config
    from graphrec_ray.serving.config import ServeConfig

    cfg = load_config(ServeConfig, ROOT / "configs/serve.yaml", overrides)
    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    if group == "plain":
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

    # 8 logical CPUs: every variant (graph: 4 stages x 2 replicas x 0.2 CPU, collocated 2 x 0.5, the no-op apps) must be
    # placed at once (with 4 the last app waited forever for resources); a private cluster, never joining another
    ray.init(address="local", num_cpus=8, include_dashboard=False, log_to_driver=False)
    try:
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        serve.run(_noop_app(), name="noop", route_prefix="/noop")
        serve.run(_noop_app(0), name="noop1", route_prefix="/noop1")
        variants = [v for v in SERVE_VARIANTS if group == "default" or v != "collocated_1r"]
        for name in variants:
            vcfg = load_config(ServeConfig, ROOT / "configs/serve.yaml", [*overrides, *SERVE_VARIANTS[name]])
            serve.run(build_graph(vcfg, run_dir), name=name, route_prefix=f"/{name}")
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
    from graphrec_ray.serving.request_path import parse_k, parse_user_id, recommend
    from graphrec_ray.serving.versions import load_version

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


def load(port: int, paths: list[str], n: int, concurrency: int) -> tuple[list[float], list[int], float]:
    """``n`` requests over ``concurrency`` keep-alive connections: latencies (s), statuses, wall time (s)."""
    async def go() -> tuple[list[float], list[int], float]:
        lat: list[float] = []
        status: list[int] = []
        t0 = time.perf_counter()
        await asyncio.gather(*(_one_connection(port, paths, c, concurrency, n, lat, status)
                               for c in range(concurrency)))
        return lat, status, time.perf_counter() - t0

    return asyncio.run(go())


def interleaved(targets: dict[str, tuple[int, str]], paths: list[str], n: int, concurrency: int,
                block: int) -> dict[str, dict[str, Any]]:
    """``n`` requests per target in alternating blocks of ``block``; per target p50/p95/p99 (ms), req/s and the
    per-block latencies (s) and wall times (s) for paired intervals.

    ``targets`` maps a variant name to ``(port, path prefix)``; each block replays the next slice of ``paths``.
    """
    for port, prefix in targets.values():  # warm-up: replicas, connections, caches
        load(port, [prefix + p for p in paths[:200]], min(200, n), concurrency)
    acc: dict[str, tuple[list[list[float]], list[int], list[float]]] = {v: ([], [], []) for v in targets}
    for start in range(0, n, block):
        chunk = [paths[(start + i) % len(paths)] for i in range(min(block, n - start))]
        for v, (port, prefix) in targets.items():
            lat, status, wall = load(port, [prefix + p for p in chunk], len(chunk), concurrency)
            acc[v][0].append(lat)
            acc[v][1].extend(status)
            acc[v][2].append(wall)
    out = {}
    for v, (blocks, status, walls) in acc.items():
        ms = np.concatenate(blocks) * 1e3
        out[v] = {"requests": int(ms.size), "errors": int(sum(s != 200 for s in status)),
                  "p50_ms": float(np.percentile(ms, 50)), "p95_ms": float(np.percentile(ms, 95)),
                  "p99_ms": float(np.percentile(ms, 99)), "rps": ms.size / sum(walls),
                  "blocks": [list(b) for b in blocks], "walls": walls}
    return out


def paired_ratio(a: dict[str, Any], b: dict[str, Any], stat: str, n_boot: int = 1000, seed: int = 0) -> Any:
    """Ratio ``stat(a) / stat(b)`` (``p50``, ``p99`` or ``rps``) with a 95% interval over paired blocks.

    Block ``i`` of ``a`` and of ``b`` ran back to back, so blocks are resampled together.
    """
    from graphrec_ray.evaluation.stats import Interval, bootstrap_ratio

    if stat == "rps":  # rps_a / rps_b = sum(wall_b) / sum(wall_a) for equal block sizes
        return bootstrap_ratio(np.asarray(b["walls"]), np.asarray(a["walls"]), seed=seed)
    q = {"p50": 50, "p99": 99}[stat]
    ba, bb = [np.asarray(x) for x in a["blocks"]], [np.asarray(x) for x in b["blocks"]]
    est = float(np.percentile(np.concatenate(ba), q) / np.percentile(np.concatenate(bb), q))
    rng = np.random.default_rng(seed)
    boot = np.empty(n_boot)
    for i in range(n_boot):
        idx = rng.integers(0, len(ba), len(ba))
        boot[i] = (np.percentile(np.concatenate([ba[j] for j in idx]), q)
                   / np.percentile(np.concatenate([bb[j] for j in idx]), q))
    lo, hi = np.percentile(boot, [2.5, 97.5])
    return Interval(est, float(lo), float(hi), 0.95, len(ba))


@contextmanager
def server(group: str, run_dir: Path, args: argparse.Namespace) -> Iterator[int]:
    """Start ``group``'s server (see :func:`child`) in a child process; yields its port once it listens."""
    from tests.net import free_port

    port = free_port()
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", **GROUPS.get(group, {})}
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", group, "--run-dir", str(run_dir),
           "--port", str(port), *args.overrides]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    try:
        while proc.stdout is not None and (line := proc.stdout.readline()):
            if line.strip() == "READY":
                break
        else:
            raise RuntimeError(f"{group}: server exited before it was ready")
        yield port
    finally:
        if proc.stdin is not None:
            proc.stdin.close()  # the child shuts Serve and Ray down
        try:
            proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()


def run_group(group: str, run_dir: Path, paths: list[str], args: argparse.Namespace) -> dict[str, Any]:
    """Results of every variant in ``group`` (plus ``plain`` with ``default``), per concurrency level."""
    with ExitStack() as stack:
        port = stack.enter_context(server(group, run_dir, args))
        names = ["noop", "noop1", *(v for v in SERVE_VARIANTS if group == "default" or v != "collocated_1r")]
        targets = {v: (port, f"/{v}") for v in names}
        if group == "default" and not args.no_plain:
            targets["plain"] = (stack.enter_context(server("plain", run_dir, args)), "")
        return {f"c{c}": interleaved(targets, paths, args.requests, c, args.block * c) for c in args.concurrency}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run-dir", default=None, help="run directory (default: a synthetic KuaiRec-size one)")
    p.add_argument("--groups", nargs="+", default=["default", "throughput"], choices=list(GROUPS))
    p.add_argument("--no-plain", action="store_true", help="skip the one-process FastAPI variant")
    p.add_argument("--requests", type=int, default=1500, help="requests per variant and concurrency level")
    p.add_argument("--block", type=int, default=25, help="requests per connection in each alternating block")
    p.add_argument("--concurrency", type=int, nargs="+", default=[1, 8], help="client connections (each level)")
    p.add_argument("--seen-per-user", type=int, default=300, help="synthetic run dir: seen items per user")
    p.add_argument("--out", default="outputs/serve_load.json")
    p.add_argument("--csv", default="outputs/serve_latency.csv", help="the figures the results report reads")
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
        from graphrec_ray.serving.versions import load_ids

        users = load_ids(run_dir).user_map.raw_ids
        rng = np.random.default_rng(0)
        ids = rng.choice(users, size=950).tolist() + [int(users.max()) + 1 + i for i in range(50)]
        paths = [f"/recommend/{u}?k=10" for u in rng.permutation(ids)]
        results: dict[str, Any] = {}
        for g in args.groups:
            print(f"{g}: starting ...", flush=True)
            results[g] = run_group(g, run_dir, paths, args)
            for c in args.concurrency:
                for v, r in results[g][f"c{c}"].items():
                    print(f"{g + '/' + v:<18} c={c:<3} p50={r['p50_ms']:7.2f} ms  p95={r['p95_ms']:7.2f}  "
                          f"p99={r['p99_ms']:7.2f}  {r['rps']:7.1f} req/s  errors={r['errors']}", flush=True)
    return results, args


def _report(results: dict[str, Any], args: argparse.Namespace) -> None:
    rows, ratios = [], {}
    for g, res in results.items():
        for c in args.concurrency:
            for v, r in res[f"c{c}"].items():
                rows.append({"variant": v if g == "default" else f"{g}:{v}", "concurrency": c,
                             "p50_ms": r["p50_ms"], "p95_ms": r["p95_ms"], "p99_ms": r["p99_ms"], "rps": r["rps"],
                             "failures": r["errors"]})
    for c in args.concurrency:
        print(f"\npaired ratios, concurrency {c} ({args.requests} requests per variant, 95% intervals over blocks):")
        for g, res in results.items():
            level = res[f"c{c}"]
            pairs = [(v, "noop1" if v.startswith("collocated") else "noop") for v in level
                     if v not in ("noop", "noop1", "plain")]
            if "plain" in level:
                pairs += [(v, "plain") for v in level if v.startswith("collocated")]
            pairs += [(a, b) for a, b in (("collocated", "graph"), ("collocated", "collocated_1r"))
                      if a in level and b in level]  # the choice of default topology and replica count
            for v, base in pairs:
                key = f"{g}:{v}/{base}@c{c}"
                ratios[key] = {}
                for stat in ("p50", "p99", "rps"):
                    iv = paired_ratio(level[v], level[base], stat)
                    ratios[key].update(iv.as_dict(f"{stat}_ratio"))
                print(f"  {g + ':' + v + ' / ' + base:<34} p50 {_fmt(ratios[key], 'p50')}  p99 "
                      f"{_fmt(ratios[key], 'p99')}  throughput {_fmt(ratios[key], 'rps')}")
    if "default" in results and "plain" in results["default"][f"c{args.concurrency[0]}"]:
        d = results["default"]
        print("\ngoals (issue 12; 2 cores, quiet machine):")
        if "c1" in d:
            k = "default:collocated/plain@c1"
            print(f"  c=1 collocated p50 {ratios[k]['p50_ratio']:.2f}x plain (<= 2), p99 "
                  f"{d['c1']['collocated']['p99_ms']:.1f} ms (<= 15)")
            print(f"  c=1 graph p50 {ratios['default:graph/noop@c1']['p50_ratio']:.2f}x noop (<= 1.3)")
        if "c8" in d:
            print(f"  c=8 collocated throughput {ratios['default:collocated/plain@c8']['rps_ratio']:.2f}x plain "
                  f"(>= 0.5)")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    slim = {g: {c: {v: {k: x for k, x in r.items() if k not in ("blocks", "walls")} for v, r in lv.items()}
                for c, lv in res.items()} for g, res in results.items()}
    out.write_text(json.dumps({"concurrency": args.concurrency, "requests": args.requests, "block": args.block,
                               "run_dir": str(args.run_dir or "synthetic"), "results": slim,
                               "ratios": ratios}, indent=2) + "\n")
    csv = Path(args.csv)
    csv.parent.mkdir(parents=True, exist_ok=True)
    cols = ["variant", "concurrency", "p50_ms", "p95_ms", "p99_ms", "rps", "failures"]
    csv.write_text(",".join(cols) + "\n" + "".join(
        ",".join(f"{r[c]:.3f}" if isinstance(r[c], float) else str(r[c]) for c in cols) + "\n" for r in rows))
    print(f"wrote {out} and {csv}")


def _fmt(r: dict[str, float], stat: str) -> str:
    k = f"{stat}_ratio"
    return f"{r[k]:.2f}x [{r[k + '/ci_low']:.2f}, {r[k + '/ci_high']:.2f}]"


if __name__ == "__main__":
    raise SystemExit(main())
