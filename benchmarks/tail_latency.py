"""Where the c=1 tail of the collocated topology goes: the Serve hop vs our request path, GC, metrics, encoding.

Two parts, both on the same run directory and ServeConfig (``configs/serve.yaml`` + ``--set``):

1. **Served** (a private local Ray cluster, ``--num-cpus`` logical CPUs): ``--requests`` sequential requests
   (c=1) to ``serve_app`` with ``topology=collocated``; per request the client latency and the server's own
   ``total_latency_ms`` / per-stage times from the response body. ``hop`` = client - server total: the Serve
   proxy, the replica's ASGI handling, our FastAPI route (parsing, metrics, JSON encoding) and loopback HTTP.
2. **In process** (no Ray): the same requests through :class:`serve_app.collocated.Recommender.recommend`
   (baseline: ``prometheus`` metrics only) vs with the Ray metrics backend, the cost of FastAPI's JSON encoding
   of one body, and every garbage collection during the run (``gc.callbacks``: count and pause per generation).

    flock /tmp/graphrec-cpu.lock python benchmarks/tail_latency.py --run-dir runs/demo

Writes ``outputs/tail_latency.json`` and prints the percentiles, the ratio of the served p99 to the in-process p99
and the share of the served p99 that is the hop.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def pct(a: np.ndarray) -> dict[str, float]:
    return {k: round(float(np.percentile(a, q)), 3) for k, q in (("p50", 50), ("p90", 90), ("p99", 99))} | {
        "max": round(float(a.max()), 3)}


def served(args: argparse.Namespace, users: np.ndarray) -> dict[str, Any]:
    import httpx
    import ray
    from ray import serve

    from jobs.common import apply_ray_env_defaults
    from serve_app.app import build_graph, load_serve_config
    from tests.net import free_port

    cfg = load_serve_config(args.config, ["topology=collocated", *args.set])
    apply_ray_env_defaults()
    ray.init(address="local", num_cpus=args.num_cpus, include_dashboard=False, log_to_driver=False)  # private
    try:
        port = free_port()
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        serve.run(build_graph(cfg, Path(args.run_dir).resolve()), name="graphrec-tail", route_prefix="/")
        rng = np.random.default_rng(0)
        rows = []
        with httpx.Client(timeout=30) as client:
            for i in range(args.requests + args.warmup):
                t = time.perf_counter()
                b = client.get(f"http://127.0.0.1:{port}/recommend/{int(rng.choice(users))}?k=10").json()
                if i >= args.warmup:
                    rows.append(((time.perf_counter() - t) * 1e3, b["total_latency_ms"], b["retrieval_latency_ms"],
                                 b["ranking_latency_ms"], b["rerank_latency_ms"]))
    finally:
        try:
            serve.shutdown()
        finally:
            ray.shutdown()
    a = np.asarray(rows)
    out = {n: pct(a[:, j]) for j, n in enumerate(("client", "server_total", "retrieval", "ranking", "rerank"))}
    out["hop"] = pct(a[:, 0] - a[:, 1])
    return out


def in_process(args: argparse.Namespace, users: np.ndarray) -> dict[str, Any]:
    from fastapi.encoders import jsonable_encoder
    from fastapi.responses import JSONResponse

    from graphrec_ray.serving.telemetry import ServingMetrics
    from serve_app.app import load_serve_config
    from serve_app.collocated import Recommender
    from serve_app.metrics_ray import RayBackend

    cfg = load_serve_config(args.config, ["topology=collocated", *args.set])
    rec = Recommender(cfg, str(Path(args.run_dir).resolve()))
    loop = asyncio.new_event_loop()
    pauses: dict[int, list[float]] = {0: [], 1: [], 2: []}
    start: dict[str, float] = {}

    def on_gc(phase: str, info: dict) -> None:
        if phase == "start":
            start["t"] = time.perf_counter()
        else:
            pauses[info["generation"]].append((time.perf_counter() - start["t"]) * 1e3)

    out: dict[str, Any] = {}
    body: Any = None
    for label, backends in (("prometheus", ()), ("prometheus+ray", (RayBackend(),))):
        rec.metrics = ServingMetrics(backends)
        ts = []
        gc.callbacks.append(on_gc)
        for i in range(args.requests + args.warmup):
            t = time.perf_counter()
            body = loop.run_until_complete(rec.recommend(str(int(users[i % len(users)]))))
            if i >= args.warmup:
                ts.append((time.perf_counter() - t) * 1e3)
        gc.callbacks.remove(on_gc)
        out[label] = pct(np.asarray(ts))
    out["gc"] = {f"gen{g}": {"collections": len(p), "max_ms": round(max(p, default=0.0), 3)} for g, p in pauses.items()}
    t = time.perf_counter()
    gc.collect()
    out["gc"]["full_collect_ms"] = round((time.perf_counter() - t) * 1e3, 1)
    out["gc"]["tracked_objects"] = len(gc.get_objects())
    n = 500
    t = time.perf_counter()
    for _ in range(n):
        JSONResponse(jsonable_encoder(body))
    out["json_encode_ms"] = round((time.perf_counter() - t) * 1e3 / n, 3)
    t = time.perf_counter()
    for _ in range(n):
        rec.metrics.observe_recommend(1, 1, 1, 3, True, False)
        rec.metrics.count_request("recommend", 200)
        rec.sync_cache_metrics()
    out["metrics_per_request_ms"] = round((time.perf_counter() - t) * 1e3 / n, 3)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run-dir", default="runs/demo")
    ap.add_argument("--config", default="configs/serve.yaml")
    ap.add_argument("--set", action="append", default=[], help="ServeConfig override key=value (repeatable)")
    ap.add_argument("--requests", type=int, default=800)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--num-cpus", type=float, default=2.0)
    ap.add_argument("--out", default="outputs/tail_latency.json")
    args = ap.parse_args()
    from graphrec_ray.ids import IdMap
    from graphrec_ray.layout import RunLayout

    users = IdMap.load(RunLayout(Path(args.run_dir)).user_map).raw_ids
    res = {"args": vars(args), "in_process": in_process(args, users), "served": served(args, users)}
    s, p = res["served"], res["in_process"]
    res["served_p99_over_in_process_p99"] = round(s["client"]["p99"] / p["prometheus+ray"]["p99"], 2)
    res["hop_share_of_served_p99"] = round(s["hop"]["p99"] / s["client"]["p99"], 2)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(res, indent=2) + "\n")
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
