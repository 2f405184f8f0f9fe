"""``graphrec serve --run-dir runs/demo``: start the Serve application and block (or smoke-test it and exit).

Runs on the cluster named by ``--ray-address`` / ``RAY_ADDRESS`` (e.g. under ``ray job submit``), else on a new
local cluster. ``--detach`` deploys and returns, leaving the app on a long-lived cluster
(``ray job submit --working-dir . -- python -m serve_app.run --run-dir runs/demo --detach``).
``--smoke N`` sends N ``/recommend`` requests (known users and one unknown) plus ``/health`` and ``/metrics``
over HTTP, prints a summary and exits non-zero if any failed; the app is then shut down.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

from graphrec_ray.errors import UserError
from graphrec_ray.serving.versioned import load_ids, version_id
from jobs.common import init_ray, make_parser

APP_NAME = "graphrec"


def smoke(base_url: str, user_ids: list[int], n: int, k: int = 10, timeout_s: float = 10.0) -> dict:
    """Send ``n`` recommend requests cycling through ``user_ids``; returns counts and latency percentiles (ms)."""
    import httpx

    lat, failures, cold, hits = [], [], 0, 0
    with httpx.Client(base_url=base_url, timeout=timeout_s) as client:
        for i in range(n):
            uid = user_ids[i % len(user_ids)]
            t0 = time.perf_counter()
            r = client.get(f"/recommend/{uid}", params={"k": k})
            lat.append((time.perf_counter() - t0) * 1e3)
            if r.status_code != 200 or len(r.json().get("items", [])) == 0:
                failures.append(f"user {uid}: HTTP {r.status_code} {r.text[:200]}")
                continue
            body = r.json()
            cold += int(body["cold_start"])
            hits += int(body["cache_hit"])
        health = client.get("/health").status_code
        metrics = client.get("/metrics").status_code
    p = np.percentile(lat, [50, 95, 99]) if lat else [float("nan")] * 3
    return {"requests": n, "failures": failures, "cold_start": cold, "cache_hits": hits, "health": health,
            "metrics": metrics, "p50_ms": float(p[0]), "p95_ms": float(p[1]), "p99_ms": float(p[2])}


def main(argv: list[str] | None = None) -> int:
    parser = make_parser("graphrec serve", __doc__.splitlines()[0], "configs/serve.yaml")
    parser.add_argument("--port", type=int, default=None, help="HTTP port (default: ServeConfig.http_port)")
    parser.add_argument("--smoke", type=int, default=0, metavar="N", help="send N requests, print, exit")
    parser.add_argument("--detach", action="store_true",
                        help="deploy and exit, leaving the app running on the cluster (for `ray job submit`)")
    args = parser.parse_args(argv)
    from serve_app.app import build_graph, load_serve_config

    cfg = load_serve_config(args.config, list(args.overrides))
    run_dir = Path(args.run_dir)
    if not run_dir.is_dir():
        raise UserError(f"run directory not found: {run_dir} (run the pipeline first)")
    vid = version_id(run_dir)  # fails early, with a one-line error, on an incomplete run directory
    port = args.port or cfg.http_port

    from ray import serve

    init_ray(args.ray_address)
    serve.start(http_options={"host": cfg.http_host, "port": port})
    serve.run(build_graph(cfg, run_dir), name=APP_NAME, route_prefix="/")
    url = f"http://{'127.0.0.1' if cfg.http_host in ('0.0.0.0', '::') else cfg.http_host}:{port}"
    print(f"graphrec serve: model {vid} from {run_dir} at {url}/recommend/<user_id>?k=10", flush=True)
    if args.detach and args.smoke <= 0:
        return 0
    if args.smoke <= 0:
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            serve.shutdown()
        return 0
    users = load_ids(run_dir).user_map.raw_ids
    sample = [int(u) for u in users[np.linspace(0, len(users) - 1, num=min(20, len(users))).astype(int)]]
    sample.insert(0, int(users.max()) + 1)  # one unknown user first: exercises cold start
    try:
        report = smoke(url, sample, args.smoke)
    finally:
        serve.shutdown()
    print(json.dumps(report, indent=2))
    ok = not report["failures"] and report["health"] == 200 and report["metrics"] == 200
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
