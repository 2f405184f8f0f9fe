"""OPE job: off-policy estimates of several target policies from simulated stochastic logs, checked against the
exact true values (``run_dir/ope/ope_results.csv`` + ``ope_results.json``, MLflow experiment ``ope``).

Builds the run's decision data once (:func:`graphrec_ray.evaluation.decision_data.build_decision_data`: the
serving path's candidates and calibrated scores for the evaluation users, with their true click probabilities;
cached as ``run_dir/ope/decision_data_k<K>_n<users>_s<seed>.npz``), then runs
:func:`graphrec_ray.evaluation.ope_experiment.run_experiment` with ``configs/ope.yaml``.

Run as ``graphrec ope --run-dir runs/demo``, ``python -m jobs.ope`` or
``ray job submit --working-dir . -- python -m jobs.ope --run-dir /abs/runs/demo``. Everything runs in this
process (numpy only); no Ray cluster is needed.
"""

from __future__ import annotations

import csv
import json
import sys
import time
from pathlib import Path
from typing import Any

from tqdm import tqdm

from graphrec_ray.config import to_dict
from graphrec_ray.errors import DataError
from graphrec_ray.evaluation.ope_experiment import (Bandit, OPEConfig, run_experiment, summarise,
                                                    summarise_by_policy, to_markdown, true_values)
from jobs.common import load_stage_config, make_parser, mlflow_run

DEFAULT_CONFIG = "configs/ope.yaml"
DECISION_K = 50  # candidates fetched per user for the cached decision data (OPE uses the first n_candidates)


def _decision_data(run_dir: Path, out: Path, cfg: OPEConfig, data_dir: str | None) -> Any:
    from graphrec_ray.evaluation.decision_data import DecisionData, build_decision_data

    k = max(cfg.n_candidates, DECISION_K)
    cache = out / f"decision_data_k{k}_n{cfg.n_users or 'all'}_s{cfg.seed}.npz"
    if cache.is_file():
        return DecisionData.load(cache)
    dd = build_decision_data(run_dir, data_dir=data_dir, n_users=cfg.n_users, k_candidates=k, seed=cfg.seed)
    dd.save(cache)
    return dd


def run(cfg: OPEConfig, run_dir: Path, *, data_dir: str | None = None, progress: bool = True,
        track: bool = True) -> dict[str, Any]:
    """Run the OPE experiment on ``run_dir``'s decision data; write ``run_dir/ope/``; return the results dict."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise DataError(f"run directory not found: {run_dir}")
    out = run_dir / "ope"
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    dd = _decision_data(run_dir, out, cfg, data_dir)
    bandit = Bandit.from_decision_data(dd, cfg.n_candidates, cfg.reward)
    steps = len(cfg.settings) * len(cfg.log_sizes) * cfg.n_seeds
    bar = tqdm(total=steps, desc="ope", disable=not progress)
    rows = run_experiment(bandit, cfg, progress=lambda _m: bar.update(1))
    bar.close()
    summary = summarise(rows, cfg.level)
    by_policy = summarise_by_policy(rows)
    with open(out / "ope_results.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(summary[0]))
        w.writeheader()
        w.writerows(summary)
    result = {"run_dir": str(run_dir), "truth_source": dd.truth_source, "reward": cfg.reward,
              "reward_scale": bandit.reward_scale, "n_users": bandit.n_users,
              "n_candidates": int(bandit.p_click.shape[1]), "true_values": true_values(rows), "summary": summary,
              "by_policy": by_policy, "config": to_dict(cfg), "seconds": round(time.perf_counter() - t0, 1)}
    (out / "ope_results.json").write_text(json.dumps(result, indent=2))
    (out / "ope_table.md").write_text(to_markdown(summary))
    if track:
        import mlflow

        with mlflow_run("ope", f"ope-{run_dir.name}", cfg):
            mlflow.log_metrics({f"{r['setting']}/{r['estimator']}/n{r['n_rounds']}/{key}": float(r[key])
                                for r in summary for key in ("rel_error", "coverage", "kendall_tau")})
            mlflow.log_artifact(str(out / "ope_results.json"))
            mlflow.log_artifact(str(out / "ope_table.md"))
    return result


def main(argv: list[str] | None = None) -> int:
    """CLI entry: ``graphrec ope [--config F] [--run-dir R] [--data-dir D] [key=value ...]``."""
    p = make_parser("graphrec ope", "Off-policy estimators checked against the simulator's true policy values.",
                    DEFAULT_CONFIG)
    p.add_argument("--data-dir", default=None, help="raw data directory (default: the one preprocess recorded)")
    p.add_argument("--no-mlflow", action="store_true", help="do not log to MLflow")
    args = p.parse_args(argv)
    cfg = load_stage_config(OPEConfig, args)
    result = run(cfg, Path(args.run_dir), data_dir=args.data_dir, track=not args.no_mlflow)
    print(to_markdown(result["summary"]))
    print(f"wrote {Path(args.run_dir) / 'ope'}/ope_results.csv and ope_results.json ({result['seconds']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
