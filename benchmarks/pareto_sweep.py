"""Pareto sweep throughput: grid settings per second through Ray Tune vs the same evaluations in a plain loop.

One process, the same decision data (the demo run's ``small_matrix`` users, built once or read from
``--decision-data``) and the same settings (the default 132-point grid of ``configs/pareto.yaml``, selection half
of the users as in ``graphrec pareto``). The baseline is a plain Python loop over
:meth:`graphrec_ray.evaluation.policy_eval.PolicyEvaluator.evaluate`; the Tune run is the sweep's own
:func:`tune.pareto.run_searcher` (``tune.with_parameters``, 2 concurrent trials on a private local Ray). The
ratio ``loop settings/s / Tune settings/s`` is Tune's overhead on this machine; the goal is >= 100 settings in
<= 5 minutes through Tune. Both must give the same objectives (checked). Writes ``outputs/pareto_benchmark.json``.

Run: ``flock /tmp/graphrec-cpu.lock python -m benchmarks.pareto_sweep --run-dir runs/demo``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path


from graphrec_ray.config import load_config
from graphrec_ray.evaluation.decision_data import DecisionData, build_decision_data
from graphrec_ray.evaluation.policy_eval import PolicyEvaluator, RerankSetting
from tune.config import ParetoConfig


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run-dir", default="runs/demo")
    p.add_argument("--decision-data", default=None, help="decision_data.npz to use instead of building it")
    p.add_argument("--config", default="configs/pareto.yaml")
    p.add_argument("--out", default="outputs/pareto_benchmark.json")
    args = p.parse_args(argv)

    import ray

    from jobs.common import init_ray
    from tune.pareto import quiet_libraries, run_searcher, split_users

    cfg = load_config(ParetoConfig, args.config)
    t0 = time.perf_counter()
    full = (DecisionData.load(args.decision_data) if args.decision_data
            else build_decision_data(args.run_dir, None, cfg.n_users or None, cfg.k_candidates, cfg.seed))
    build_s = time.perf_counter() - t0
    select, _ = split_users(full.n_users, cfg.holdout_frac, cfg.seed)
    data = full.subset(select)
    settings = [RerankSetting(w, round(1.0 - w, 6), lam, pool)
                for w in cfg.grid_w_engagement for lam in cfg.grid_lambda for pool in cfg.grid_pool]

    t0 = time.perf_counter()
    ev = PolicyEvaluator(data, k=cfg.k, n_boot=cfg.n_boot, seed=cfg.seed)
    loop = {s: ev.evaluate(s).metrics() for s in settings}
    loop_s = time.perf_counter() - t0

    quiet_libraries()
    init_ray(None, num_cpus=cfg.ray_num_cpus)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            rows, tune_fit_s = run_searcher("grid", cfg, data, Path(tmp) / "tune", Path(tmp) / "j.log", "bench",
                                            quiet=True)
            tune_s = time.perf_counter() - t0
    finally:
        ray.shutdown()
    # same objectives through Tune as in the loop
    worst = 0.0
    for r in rows:
        ref = loop[RerankSetting(r["w_engagement"], r["w_value"], r["lambda_diversity"], r["pool_size"])]
        worst = max(worst, max(abs(r[k] - ref[k]) for k in ("engagement", "value", "diversity")))
    n = len(settings)
    out = {
        "benchmark": "pareto_sweep", "machine": platform.platform(), "cpus": os.cpu_count(),
        "users": data.n_users, "candidates": data.n_candidates, "settings": n, "decision_data_s": build_s,
        "loop_s": loop_s, "loop_settings_per_s": n / loop_s,
        "tune_s": tune_s, "tune_fit_s": tune_fit_s, "tune_settings_per_s": n / tune_s,
        "tune_overhead_ratio": (n / loop_s) / (n / tune_s),
        "goal_100_settings_in_300s": bool(n >= 100 and tune_s <= 300.0),
        "max_abs_objective_difference_tune_vs_loop": worst,
    }
    path = Path(args.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(f"{n} settings on {data.n_users} users x {data.n_candidates} candidates: loop {loop_s:.1f} s "
          f"({n / loop_s:.1f}/s), Tune {tune_s:.1f} s ({n / tune_s:.1f}/s); Tune overhead ratio "
          f"{out['tune_overhead_ratio']:.2f}x; goal >=100 in <=300 s: {out['goal_100_settings_in_300s']}; "
          f"max |Tune - loop| {worst:.2e}; wrote {path}")
    return 0 if worst < 1e-9 else 1


if __name__ == "__main__":
    raise SystemExit(main())
