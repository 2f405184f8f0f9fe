"""Kill one replica of each deployment under load; count failed requests and the longest stall (issue 13).

A private local Ray cluster (``--num-cpus`` logical CPUs, default 2 as on a 2-core machine) serves the run
directory with ServeConfig's defaults (``configs/serve.yaml`` plus ``--set`` overrides) for ``--topology``
(``collocated``, ``graph`` or ``both``, one cluster each). ``--concurrency`` keep-alive clients send
``/recommend`` requests (known users, ~5 % unknown) for the whole run. After a quiet baseline window, the script
kills one live replica of each deployment in turn (``ray.kill(..., no_restart=True)`` on the replica actor named
in Ray's GCS, ``SERVE_REPLICA::<app>#<deployment>#<id>``), then waits for Serve to bring the replica count back
and ``--settle-s`` more.

Every request is recorded twice: its FIRST attempt (a client without retries) and the outcome after the client
retry the README documents (one retry on a 5xx or a connection error). Per window (``baseline``, then one per
killed deployment):

* ``failed_first`` / ``failed_retry``: requests that failed without / with the retry;
* ``max_gap_s``: the longest time without any successful response (the service stalled);
* ``max_latency_s``: the longest a client waited for an answer (retry included);
* ``replica_back_s``: seconds from the kill until the deployment had its replicas RUNNING again.

Goals: <= 0.1 % failed without retry, stall <= 1 s, 0 failed with the retry.

    flock /tmp/graphrec-cpu.lock python benchmarks/replica_failure.py --run-dir runs/demo --topology both

Writes ``outputs/replica_failure.csv`` (one row per topology and window) and ``outputs/replica_failure.json``.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
APP = "graphrec-failure"
DEPLOYMENTS = {"collocated": ["Recommender"], "graph": ["Ingress", "Retrieval", "Ranking", "Reranking"]}


@dataclass
class Attempt:
    t0: float  # monotonic send time of the first attempt
    t1: float  # monotonic time of the final answer (after the retry if any)
    first_ok: bool
    final_ok: bool
    first_status: str  # HTTP code or exception class of the first attempt


class Load:
    """``n`` client threads sending ``/recommend/{user}`` with one retry on 5xx / connection errors."""

    def __init__(self, url: str, users: np.ndarray, n: int, seed: int = 0) -> None:
        self.url, self.users, self.n = url, users, n
        self.records: list[Attempt] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, args=(seed + i,), daemon=True) for i in range(n)]

    @staticmethod
    def _once(client: Any, url: str) -> tuple[bool, str]:
        import httpx

        try:
            r = client.get(url)
        except httpx.HTTPError as exc:
            return False, type(exc).__name__
        return r.status_code == 200, str(r.status_code)

    def _run(self, seed: int) -> None:
        import httpx

        rng = np.random.default_rng(seed)
        with httpx.Client(timeout=30.0) as client:
            while not self._stop.is_set():
                user = int(rng.choice(self.users)) if rng.random() > 0.05 else 10**12 + int(rng.integers(1000))
                url = f"{self.url}/recommend/{user}?k=10"
                t0 = time.monotonic()
                ok, status = self._once(client, url)
                final = ok
                if not ok and (status.startswith("5") or not status.isdigit()):  # one retry, as the README says
                    final, _ = self._once(client, url)
                with self._lock:
                    self.records.append(Attempt(t0, time.monotonic(), ok, final, status))

    def start(self) -> None:
        for t in self._threads:
            t.start()

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=60)


def window_stats(records: list[Attempt], start: float, end: float) -> dict[str, Any]:
    """Failures, longest gap without a successful answer and longest wait among requests answered in
    [start, end) (by answer time: a request in flight on the killed replica counts in the kill's window)."""
    inside = [r for r in records if start <= r.t1 < end]
    ok_ends = sorted(r.t1 for r in records if r.final_ok and start <= r.t1 < end)
    edges = [start, *ok_ends, end]
    return {"requests": len(inside),
            "failed_first": sum(not r.first_ok for r in inside),
            "failed_retry": sum(not r.final_ok for r in inside),
            "first_errors": sorted({r.first_status for r in inside if not r.first_ok}),
            "max_gap_s": round(float(np.max(np.diff(edges))) if len(edges) > 1 else end - start, 3),
            "max_latency_s": round(max((r.t1 - r.t0 for r in inside), default=0.0), 3),
            "p99_ms": round(float(np.percentile([(r.t1 - r.t0) * 1e3 for r in inside], 99)), 1) if inside else 0.0}


def replica_actors(deployment: str) -> list[str]:
    """Names of the live replica actors of ``deployment`` in the app (Ray GCS, no dashboard needed)."""
    import ray

    prefix = f"SERVE_REPLICA::{APP}#{deployment}#"
    return sorted(a["name"] for a in ray.util.list_named_actors(all_namespaces=True)
                  if a["name"].startswith(prefix))


def running_replicas(deployment: str) -> int:
    from ray import serve

    st = serve.status().applications[APP].deployments[deployment]
    return int(st.replica_states.get("RUNNING", 0)) if st.status == "HEALTHY" else -1


def wait_replicas(deployment: str, want: int, victim: str, timeout_s: float) -> float | None:
    """Seconds until ``victim`` is gone and ``deployment`` is HEALTHY with ``want`` RUNNING replicas again
    (None on timeout)."""
    t = time.monotonic()
    while time.monotonic() - t < timeout_s:
        live = replica_actors(deployment)
        if victim not in live and len(live) >= want and running_replicas(deployment) >= want:
            return time.monotonic() - t
        time.sleep(0.1)
    return None


def run_topology(args: argparse.Namespace, topology: str) -> list[dict[str, Any]]:
    import ray
    from ray import serve

    from graphrec_ray.ids import IdMap
    from graphrec_ray.layout import RunLayout
    from jobs.common import apply_ray_env_defaults
    from serve_app.app import build_graph, load_serve_config
    from tests.net import free_port

    run_dir = Path(args.run_dir).resolve()
    cfg = load_serve_config(args.config, [f"topology={topology}", *args.set])
    users = IdMap.load(RunLayout(run_dir).user_map).raw_ids
    apply_ray_env_defaults()
    ray.init(address="local", num_cpus=args.num_cpus, include_dashboard=False, log_to_driver=False)  # private
    rows: list[dict[str, Any]] = []
    try:
        port = free_port()
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        serve.run(build_graph(cfg, run_dir), name=APP, route_prefix="/")
        want = {d: len(replica_actors(d)) for d in DEPLOYMENTS[topology]}
        print(f"[{topology}] replicas: {want}", flush=True)
        load = Load(f"http://127.0.0.1:{port}", users, args.concurrency)
        load.start()
        time.sleep(args.warmup_s)
        t_base = time.monotonic()
        time.sleep(args.settle_s)
        windows: list[tuple[str, float, float, float | None]] = [("baseline", t_base, time.monotonic(), None)]
        for dep in DEPLOYMENTS[topology]:
            victim = replica_actors(dep)[0]
            t_kill = time.monotonic()
            ray.kill(ray.get_actor(victim, namespace="serve"), no_restart=True)
            back = wait_replicas(dep, want[dep], victim, args.recover_timeout_s)
            time.sleep(args.settle_s)
            windows.append((dep, t_kill, time.monotonic(), back))
            print(f"[{topology}] killed {victim}; replicas back after {back} s", flush=True)
        load.stop()
        for name, start, end, back in windows:
            row = {"topology": topology, "window": name, "window_s": round(end - start, 1),
                   "concurrency": args.concurrency, "replicas": want.get(name, sum(want.values())),
                   **window_stats(load.records, start, end),
                   "replica_back_s": None if back is None else round(back, 2)}
            rows.append(row)
            print(json.dumps(row), flush=True)
    finally:
        try:
            serve.shutdown()
        finally:
            ray.shutdown()
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run-dir", default="runs/demo")
    ap.add_argument("--config", default="configs/serve.yaml", help="ServeConfig YAML")
    ap.add_argument("--set", action="append", default=[], help="ServeConfig override key=value (repeatable)")
    ap.add_argument("--topology", choices=["collocated", "graph", "both"], default="both")
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--num-cpus", type=float, default=2.0, help="logical CPUs of the private Ray cluster")
    ap.add_argument("--warmup-s", type=float, default=5.0)
    ap.add_argument("--settle-s", type=float, default=8.0, help="load after each recovery (and baseline length)")
    ap.add_argument("--recover-timeout-s", type=float, default=60.0)
    ap.add_argument("--out", default="outputs/replica_failure")
    args = ap.parse_args()
    topologies = ["collocated", "graph"] if args.topology == "both" else [args.topology]
    rows = [r for t in topologies for r in run_topology(args, t)]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out.with_suffix(".csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        for r in rows:
            w.writerow({**r, "first_errors": " ".join(r["first_errors"])})
    out.with_suffix(".json").write_text(json.dumps({"args": vars(args), "rows": rows}, indent=2) + "\n")
    for t in topologies:
        kills = [r for r in rows if r["topology"] == t and r["window"] != "baseline"]
        base = next(r for r in rows if r["topology"] == t and r["window"] == "baseline")
        n = sum(r["requests"] for r in kills)
        print(f"{t}: {sum(r['failed_first'] for r in kills)}/{n} failed without retry "
              f"({100 * sum(r['failed_first'] for r in kills) / max(n, 1):.2f} %), "
              f"{sum(r['failed_retry'] for r in kills)} with one retry; longest stall "
              f"{max(r['max_gap_s'] for r in kills):.2f} s, longest wait {max(r['max_latency_s'] for r in kills):.2f} s "
              f"(baseline window: {base['max_gap_s']:.2f} s / {base['max_latency_s']:.2f} s)")
    print(f"wrote {out.with_suffix('.csv')} and {out.with_suffix('.json')}")


if __name__ == "__main__":
    main()
