"""User-embedding fetch latency: Redis (through EmbeddingCache) vs the in-process table.

Measures, in one process on loopback, the p50/p95/p99 of fetching ONE user's embedding (d=64 float32), the
serving pattern of ``/recommend``:

* ``table``: ``EmbeddingCache`` with no Redis: a NumPy row copy (the fail-open path; the baseline);
* ``redis_get``: a bare ``GET`` of the binary value through the redis-py client (``Redis.get``), plus decoding;
* ``conn_mget``: the same key by ``MGET`` on a held redis-py connection, plus decoding (the round-trip floor);
* ``cache_mget``: ``EmbeddingCache.get_many`` for one user, hit path (MGET on its ``DirectReader`` connection
  + breaker + decode + stats);
* ``cache_mget_16``: a batch of 16 users in one MGET (what a batched retrieval call does), per user.

    python benchmarks/cache_fetch.py [--url redis://127.0.0.1:6379/0] [--n 5000]

Goal from issue 5: Redis fetch p50 <= 0.15 ms. Writes ``outputs/cache_fetch.json``; keys use a private prefix
and are deleted at the end.
"""

from __future__ import annotations

import argparse
import json
import time
import uuid
from pathlib import Path

import numpy as np

from graphrec_ray.serving.cache import EmbeddingCache
from graphrec_ray.serving.config import CacheConfig


def percentiles_ms(samples: list[float], per: int = 1) -> dict[str, float]:
    a = np.asarray(samples) * 1e3 / per
    return {"p50_ms": float(np.percentile(a, 50)), "p95_ms": float(np.percentile(a, 95)),
            "p99_ms": float(np.percentile(a, 99)), "mean_ms": float(a.mean())}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url", default="redis://127.0.0.1:6379/0")
    p.add_argument("--n", type=int, default=5000, help="fetches per variant")
    p.add_argument("--users", type=int, default=7176, help="table rows (KuaiRec users)")
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--out", default="outputs/cache_fetch.json")
    args = p.parse_args(argv)
    rng = np.random.default_rng(0)
    table = rng.standard_normal((args.users, args.dim)).astype(np.float32)
    users = rng.integers(0, args.users, args.n)
    prefix = f"graphrec-bench-{uuid.uuid4().hex[:8]}"
    local = EmbeddingCache(None)
    remote = EmbeddingCache.from_config(CacheConfig(url=args.url, key_prefix=prefix, socket_timeout_ms=100.0))
    version = "bench"
    remote.warm(version, table)
    results: dict[str, dict] = {}
    try:
        def run(name: str, fn, per: int = 1) -> None:  # noqa: ANN001
            for u in users[:200]:
                fn(u)  # warm-up: connections, caches
            samples = []
            for u in users:
                t0 = time.perf_counter()
                fn(u)
                samples.append(time.perf_counter() - t0)
            results[name] = percentiles_ms(samples, per)

        run("table", lambda u: local.get_many(version, np.array([u]), table))
        client = remote.client
        run("redis_get", lambda u: np.frombuffer(client.get(remote.key(version, int(u))), dtype="<f4"))
        conn = client.connection_pool.make_connection()

        def conn_mget(u: int) -> np.ndarray:
            conn.send_command("MGET", remote.key(version, int(u)))
            return np.frombuffer(conn.read_response()[0], dtype="<f4")

        run("conn_mget", conn_mget)
        run("cache_mget", lambda u: remote.get_many(version, np.array([u]), table))
        batch = rng.integers(0, args.users, (args.n, 16))
        it = iter(range(10**9))
        run("cache_mget_16", lambda u: remote.get_many(version, batch[next(it) % args.n], table), per=16)
        assert remote.stats.errors == 0 and remote.stats.misses == 0, remote.stats
    finally:
        remote.delete_version(version)
    base = results["table"]["p50_ms"]
    print(f"{'variant':<14} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}  p50 vs table")
    for name, r in results.items():
        print(f"{name:<14} {r['p50_ms']:8.4f} {r['p95_ms']:8.4f} {r['p99_ms']:8.4f}  {r['p50_ms'] / base:8.1f}x")
    goal = results["cache_mget"]["p50_ms"] <= 0.15
    print(f"goal p50 <= 0.15 ms for a Redis fetch through the cache: {'met' if goal else 'NOT met'} "
          f"({results['cache_mget']['p50_ms']:.4f} ms)")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"dim": args.dim, "n": args.n, "results": results, "goal_p50_ms": 0.15,
                               "goal_met": goal}, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
