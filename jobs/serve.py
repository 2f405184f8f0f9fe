"""``graphrec serve --run-dir runs/demo``: start the Serve application and block (or smoke-test it and exit).

Runs on the cluster named by ``--ray-address`` / ``RAY_ADDRESS`` (e.g. under ``ray job submit``), else on a new
local cluster. ``--detach`` deploys and returns, leaving the app on a long-lived cluster
(``ray job submit --working-dir . -- python -m jobs.serve --run-dir runs/demo --detach``).
It refuses an application name already running on the cluster (``--replace`` replaces it) and a port another
program or another Ray cluster already listens on (Ray's proxy would share it and take half the traffic).
``--smoke N`` deploys a private copy under its own application name and route prefix, sends N ``/recommend``
requests (known users and one unknown) plus ``/health`` and ``/metrics`` over HTTP, prints a summary, deletes
that copy by name (never ``serve.shutdown()``: other applications on the cluster keep serving) and exits non-zero
if any request failed.
"""

from __future__ import annotations

import signal
import socket
import sys
import threading
import time
import uuid
from pathlib import Path

import numpy as np

from graphrec_ray.errors import UserError
from graphrec_ray.serving.versions import load_ids, version_id
from jobs.common import cluster_address, init_ray, make_parser, verbose_logs

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


def port_in_use(host: str, port: int, timeout_s: float = 0.5) -> bool:
    """True when something accepts TCP connections on ``host:port`` (``0.0.0.0`` checks loopback)."""
    target = "127.0.0.1" if host in ("0.0.0.0", "", "::") else host
    with socket.socket(socket.AF_INET6 if ":" in target else socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout_s)
        return sock.connect_ex((target, port)) == 0


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host if host not in ("0.0.0.0", "") else "127.0.0.1", 0))
        return int(sock.getsockname()[1])


def check_deployable(app_name: str, apps: set[str], serve_running: bool, host: str, port: int,
                     replace: bool) -> None:
    """Refuse to take over what this command did not create.

    Raises :class:`UserError` when an application called ``app_name`` already runs on the cluster (unless
    ``replace``), or when Serve is not running on this cluster but another program (e.g. a second cluster's Serve
    proxy, which would share the port and take half the traffic) already listens on ``host:port``.
    """
    if app_name in apps and not replace:
        raise UserError(f"an application named '{app_name}' is already running on this Ray cluster; "
                        "pass --replace to replace it or --app-name to run another one beside it")
    if not serve_running and port_in_use(host, port):
        raise UserError(f"port {port} on {host} is already in use by another program or Ray cluster; "
                        "choose another with --port")


def _serve_state() -> tuple[set[str], bool]:
    """(application names, whether a Serve instance runs) on the connected cluster, starting nothing."""
    from ray import serve

    status = serve.status()
    return set(status.applications), bool(status.proxies) or bool(status.applications)


def main(argv: list[str] | None = None) -> int:
    parser = make_parser("graphrec serve", __doc__.splitlines()[0], "configs/serve.yaml")
    parser.add_argument("--port", type=int, default=None, help="HTTP port (default: ServeConfig.http_port)")
    parser.add_argument("--smoke", type=int, default=0, metavar="N",
                        help="deploy a private copy (own app name and route), send N requests, print, delete it")
    parser.add_argument("--detach", action="store_true",
                        help="deploy and exit, leaving the app running on the cluster (for `ray job submit`)")
    parser.add_argument("--app-name", default=APP_NAME, help=f"Serve application name (default: {APP_NAME})")
    parser.add_argument("--replace", action="store_true",
                        help="replace an application of the same name already running on the cluster")
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
    _interrupt_on_sigterm()
    apps, serve_running = _serve_state()
    if args.smoke > 0:
        # A smoke test never touches an app it did not create: private name and route, deleted by name.
        app_name = f"{APP_NAME}-smoke-{uuid.uuid4().hex[:8]}"
        route_prefix = f"/{app_name}"
        if not serve_running and port_in_use(cfg.http_host, port):
            port = free_port(cfg.http_host)
    else:
        app_name, route_prefix = args.app_name, "/"
        check_deployable(app_name, apps, serve_running, cfg.http_host, port, args.replace)
    if not verbose_logs():  # Serve's INFO lines (started, ready, deleting) stay in Ray's logs
        import logging

        logging.getLogger("ray.serve").setLevel(logging.WARNING)
    if not serve_running:
        serve.start(http_options={"host": cfg.http_host, "port": port})
    else:
        port = _proxy_port(port)
    serve.run(build_graph(cfg, run_dir), name=app_name, route_prefix=route_prefix)
    host = "127.0.0.1" if cfg.http_host in ("0.0.0.0", "::") else cfg.http_host
    url = f"http://{host}:{port}{route_prefix.rstrip('/')}"
    if args.smoke <= 0:
        print(f"graphrec serve: model {vid} from {run_dir} at {url}/recommend/<user_id>?k=10", flush=True)
    if args.detach and args.smoke <= 0:
        return 0
    if args.smoke <= 0:
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:  # Ctrl-C, or SIGTERM (timeout, systemd, Kubernetes): see _interrupt_on_sigterm
            pass
        if cluster_address(args.ray_address) is None:
            # init_ray started a private cluster: it and the app end with this process. Deleting first could hang:
            # `timeout` and systemd signal the whole process group, the cluster's GCS included.
            print("graphrec serve: stopped, shutting down its local Ray cluster", flush=True)
            return 0
        if threading.current_thread() is threading.main_thread():  # a repeated SIGTERM must not cut it short
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        serve.delete(app_name)  # only the app this command created; the cluster's other apps keep serving
        print(f"graphrec serve: stopped, deleted app {app_name}", flush=True)
        return 0
    users = load_ids(run_dir).user_map.raw_ids
    sample = [int(u) for u in users[np.linspace(0, len(users) - 1, num=min(20, len(users))).astype(int)]]
    sample.insert(0, int(users.max()) + 1)  # one unknown user first: exercises cold start
    try:
        report = smoke(url, sample, args.smoke)
    finally:
        serve.delete(app_name)  # only the app this command created; the cluster's other apps keep serving
    print(smoke_line(report), flush=True)
    ok = not report["failures"] and report["health"] == 200 and report["metrics"] == 200
    return 0 if ok else 1


def smoke_line(report: dict) -> str:
    """One terminal line from :func:`smoke`'s report (the full report is the function's return value)."""
    fails = report["failures"]
    return (f"serve-smoke: {report['requests']} requests, {len(fails)} failed"
            + (f" ({fails[0]})" if fails else "")
            + f", cold start {report['cold_start']}, cache hits {report['cache_hits']}, health {report['health']}, "
            f"metrics {report['metrics']}, p50 {report['p50_ms']:.1f} ms, p99 {report['p99_ms']:.1f} ms")


def _interrupt_on_sigterm() -> None:
    """Make SIGTERM raise :class:`KeyboardInterrupt` in the main thread, so it takes Ctrl-C's clean-up path.

    Call after :func:`init_ray`: ``ray.init`` installs a SIGTERM handler that calls ``sys.exit(15)`` and its core
    worker then adds a C++ one that prints a stack dump first, so a SIGTERM (how ``timeout``, systemd and Kubernetes
    stop a process) ended ``graphrec serve`` with status 15, Ray internals on the terminal and the application
    still deployed on a shared cluster. This handler replaces both. Outside the main thread (``main`` called from a
    thread) Python cannot set handlers: nothing changes there.
    """

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, handler)


def _proxy_port(default: int) -> int:
    """HTTP port of the Serve proxy already running on the cluster (``default`` if it cannot be read)."""
    try:
        from ray.serve.context import _get_global_client
        from ray.serve.schema import ServeInstanceDetails

        client = _get_global_client(raise_if_no_controller_running=False)
        if client is not None:
            return int(ServeInstanceDetails(**client.get_serve_details()).http_options.port)
    except Exception:  # noqa: BLE001 - private API; fall back to the configured port
        pass
    return default


if __name__ == "__main__":
    sys.exit(main())
