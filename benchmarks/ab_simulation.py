"""A/B simulation throughput: simulated users per second, vectorised simulator vs a plain per-user Python loop.

Both run in this process on the same synthetic feeds (``--users`` users x 50 items, demo-like click rates and
6 categories) and the same seed, and must produce identical sessions (checked on the loop's users). The loop
(:func:`graphrec_ray.evaluation.user_response.simulate_sessions_loop`) is the baseline; the vectorised simulator
(:func:`~graphrec_ray.evaluation.user_response.simulate_sessions`) loops over feed positions only. Also timed: the
exact expectation (:func:`~graphrec_ray.evaluation.user_response.expected_sessions`). Each figure is the median
of ``--repeats`` runs. Writes ``outputs/ab_benchmark.json``.

Run: ``flock /tmp/graphrec-cpu.lock python -m benchmarks.ab_simulation``.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path
from typing import Callable

import numpy as np

from graphrec_ray.evaluation.user_response import (ResponseModel, expected_sessions, simulate_sessions,
                                                   simulate_sessions_loop)


def _median_seconds(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--users", type=int, default=20_000, help="users for the vectorised simulator")
    p.add_argument("--loop-users", type=int, default=2_000, help="users for the per-user loop (the baseline)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="outputs/ab_benchmark.json")
    args = p.parse_args(argv)

    m = ResponseModel()
    rng = np.random.default_rng(args.seed)
    L = m.max_length
    mu = rng.normal(0.3, 0.5, (args.users, 1)) + rng.normal(0.0, 0.5, (args.users, L))  # CTR ~0.85 like demo
    cat = rng.integers(0, 6, (args.users, L))
    n = min(args.loop_users, args.users)

    vec = simulate_sessions(mu[:n], cat[:n], m, args.seed)
    ref = simulate_sessions_loop(mu[:n], cat[:n], m, args.seed)
    identical = all(np.allclose(getattr(vec, f), getattr(ref, f), rtol=1e-12, atol=1e-9)
                    for f in ("impressions", "clicks", "value", "distinct_categories"))
    identical = identical and bool(np.array_equal(vec.end_reason, ref.end_reason))

    t_loop = _median_seconds(lambda: simulate_sessions_loop(mu[:n], cat[:n], m, args.seed), args.repeats)
    t_vec = _median_seconds(lambda: simulate_sessions(mu, cat, m, args.seed), args.repeats)
    t_exact = _median_seconds(lambda: expected_sessions(mu, cat, m), args.repeats)
    res = {
        "loop_users_per_s": n / t_loop,
        "vectorised_users_per_s": args.users / t_vec,
        "exact_expectation_users_per_s": args.users / t_exact,
        "speedup_vectorised_vs_loop": (args.users / t_vec) / (n / t_loop),
        "identical_sessions": identical,
        "users": args.users, "loop_users": n, "feed_length": L, "repeats": args.repeats,
        "mean_session_length": float(vec.impressions.mean()), "ctr": float(vec.clicks.sum() / vec.impressions.sum()),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(), "python": platform.python_version(),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2) + "\n")
    print(f"per-user loop   : {res['loop_users_per_s']:>12,.0f} users/s ({n} users)")
    print(f"vectorised      : {res['vectorised_users_per_s']:>12,.0f} users/s ({args.users} users)  "
          f"x{res['speedup_vectorised_vs_loop']:.1f} vs loop, identical sessions: {identical}")
    print(f"exact (no draws): {res['exact_expectation_users_per_s']:>12,.0f} users/s")
    print(f"wrote {out}")
    return 0 if identical else 1


if __name__ == "__main__":
    raise SystemExit(main())
