"""Mock A/B job: reranking policies on simulated users of a finished run, with the true effect beside each estimate.

Builds the run's decision data once (:func:`graphrec_ray.evaluation.decision_data.build_decision_data`: the
serving request path's candidates and calibrated scores for the ``small_matrix`` users, with the truth), takes
each candidate's true log-mean watch ratio from the simulator's ground truth, and runs
:func:`graphrec_ray.evaluation.ab.run_ab`. Writes ``<out>/ab_results.csv`` and ``.json`` (per arm and per
difference; ``<out>`` defaults to ``<run_dir>/ab``), ``ab_coverage.csv`` (bias, RMSE and interval coverage of the
true differences over ``coverage_replications`` reruns), ``ab_results.md`` (both tables), copies them to
``outputs/`` (only for the default ``<out>``), and logs one MLflow run.

Run as ``graphrec ab --run-dir runs/demo``, with a Pareto point as an extra arm:
``graphrec ab --run-dir runs/demo --arm name=pareto,w_engagement=0.4,w_value=1.0,lambda_diversity=0.6``, or
``ray job submit --working-dir . -- python -m jobs.ab_test --run-dir /abs/runs/demo``. Everything runs in this
process (numpy; no Ray cluster is needed).
"""

from __future__ import annotations

import csv
import dataclasses
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from graphrec_ray.config import ConfigError, from_mapping, to_dict
from graphrec_ray.errors import DataError
from graphrec_ray.evaluation.ab import ABConfig, ArmSpec, PolicyInputs, coverage_study, mu_from_p_click, run_ab
from jobs.common import load_stage_config, make_parser, mlflow_run, outputs_copy_dir

DEFAULT_CONFIG = "configs/ab.yaml"
OUT_SUBDIR = "ab"


def parse_arm(text: str) -> ArmSpec:
    """``"name=pareto,w_engagement=0.4,w_value=1,lambda_diversity=0.6"`` -> :class:`ArmSpec` (strict keys)."""
    data: dict[str, Any] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        if "=" not in part:
            raise ConfigError(f"--arm '{text}': '{part}' must look like key=value")
        k, v = part.split("=", 1)
        data[k.strip()] = yaml.safe_load(v) if k.strip() != "name" else v.strip()
    if "name" not in data:
        raise ConfigError(f"--arm '{text}': needs name=...")
    return from_mapping(ArmSpec, data, source="--arm")


def _decision_data(run_dir: Path, out: Path, data_dir: str | None, cfg: ABConfig, tag: str) -> Any:
    from graphrec_ray.evaluation.decision_data import DecisionData, build_decision_data

    cache = out / f"decision_data_{tag}_k{cfg.k_candidates}_n{cfg.n_eval_users or 'all'}_s{cfg.seed}.npz"
    # a stage rerun after the cache was written (newer manifest) makes the cache stale
    stamps = [p.stat().st_mtime for p in run_dir.glob("*/manifest.json")]
    if cfg.decision_cache and cache.is_file() and cache.stat().st_mtime >= max(stamps, default=0.0):
        return DecisionData.load(cache)
    dd = build_decision_data(run_dir, data_dir=data_dir, n_users=cfg.n_eval_users, k_candidates=cfg.k_candidates,
                             seed=cfg.seed)
    dd.save(cache)
    return dd


def _data_dir(run_dir: Path, data_dir: str | None) -> Path | None:
    if data_dir:
        return Path(data_dir)
    from graphrec_ray.layout import RunLayout
    from graphrec_ray.manifest import read_manifest

    pre = read_manifest(RunLayout(run_dir).preprocess)
    recorded = pre.get("data_dir") or pre.get("config", {}).get("data_dir")
    return Path(recorded) if recorded else None


def policy_inputs(dd: Any, cfg: ABConfig, data_dir: Path | None) -> tuple[PolicyInputs, ABConfig, str]:
    """``(PolicyInputs, cfg with the simulator's sigma/p_skip/threshold, how mu was obtained)``."""
    from graphrec_ray.sources.simulator.ground_truth import GroundTruth

    if dd.truth_source == "simulator" and data_dir is not None:
        gt = GroundTruth.load(data_dir)
        p = gt.params
        cfg = dataclasses.replace(cfg, response=dataclasses.replace(
            cfg.response, sigma=float(p["sigma"]), p_skip=float(p["p_skip"]),
            click_threshold=float(p["click_threshold"])))
        items = dd.item_raw[dd.item_idx]
        mu = np.stack([gt.mu(dd.user_raw[r:r + 1], items[r])[0] for r in range(dd.n_users)])
        source = "simulator ground truth (exact mu)"
    else:
        mu = mu_from_p_click(dd.true_click, cfg.response)
        source = f"{dd.truth_source}: mu inverted from true_click under the response model's sigma/p_skip"
    return (PolicyInputs(dd.item_idx, dd.p_click, dd.e_value, mu, dd.item_unit, dd.item_category), cfg, source)


def write_results(rows_arms: list[dict[str, Any]], rows_diff: list[dict[str, Any]], meta: dict[str, Any],
                  out: Path) -> tuple[Path, Path]:
    """``out/ab_results.csv`` (one row per arm x metric and per difference x metric, column ``kind``) and
    ``out/ab_results.json`` (``meta``, ``arms``, ``differences``)."""
    out.mkdir(parents=True, exist_ok=True)
    rows = [{"kind": "arm", **r} for r in rows_arms] + [{"kind": "difference", **r} for r in rows_diff]
    cols: list[str] = []
    for r in rows:
        cols += [c for c in r if c not in cols]
    csv_path, json_path = out / "ab_results.csv", out / "ab_results.json"
    with open(csv_path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=cols)
        w.writeheader()
        w.writerows(rows)
    json_path.write_text(json.dumps({"meta": meta, "arms": rows_arms, "differences": rows_diff}, indent=2,
                                    default=float) + "\n")
    return csv_path, json_path


def summary_table(rows_arms: list[dict[str, Any]], rows_diff: list[dict[str, Any]]) -> str:
    """Markdown: per arm estimate [interval] (truth); per difference bootstrap interval, p, truth, CUPED cut."""
    metrics = list(dict.fromkeys(r["metric"] for r in rows_arms))
    arms = list(dict.fromkeys(r["arm"] for r in rows_arms))
    by = {(r["arm"], r["metric"]): r for r in rows_arms}
    lines = ["| arm | " + " | ".join(metrics) + " |", "|---" * (len(metrics) + 1) + "|"]
    for a in arms:
        cells = [f"{by[a, m]['estimate']:.4g} [{by[a, m]['ci_low']:.4g}, {by[a, m]['ci_high']:.4g}] "
                 f"(true {by[a, m]['true']:.4g})" for m in metrics]
        lines.append(f"| {a} | " + " | ".join(cells) + " |")
    lines += ["", "| difference | metric | estimate [95% bootstrap] | p | verdict | true | CUPED cut | n/arm @MDE |",
              "|---|---|---|---|---|---|---|---|"]
    for r in rows_diff:
        cut = r.get("cuped_variance_cut")
        lines.append(f"| {r['arm']} - {r['control']} | {r['metric']} | {r['estimate']:.4g} "
                     f"[{r['boot_ci_low']:.4g}, {r['boot_ci_high']:.4g}] | {r['p_value']:.3g} ({r['test']}) | "
                     f"{r['verdict']} | {r['true_difference']:.4g} | "
                     f"{'' if cut is None else f'{cut:.0%}'} | {r['n_per_arm_for_mde']} |")
    return "\n".join(lines)


def write_coverage(rows: list[dict[str, Any]], out: Path) -> Path:
    """``out/ab_coverage.csv``: one row per treatment x metric from :func:`coverage_study`."""
    cols: list[str] = []
    for r in rows:
        cols += [c for c in r if c not in cols]
    path = out / "ab_coverage.csv"
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=cols)
        w.writeheader()
        w.writerows(rows)
    return path


def coverage_table(rows: list[dict[str, Any]]) -> str:
    """Markdown: bias, RMSE and interval coverage of the true difference over the replications."""
    n = rows[0]["replications"] if rows else 0
    lines = [f"Over {n} replications (new randomisation and draws each; truth exact):", "",
             "| difference | metric | true | bias | RMSE | bootstrap cover | test cover | reject | "
             "CUPED RMSE | CUPED cover | CUPED cut |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        cu = (f"{r['cuped_rmse']:.4g} | {r['cuped_coverage']:.0%} | {r['cuped_variance_cut']:.0%}"
              if "cuped_rmse" in r else " | | ")
        lines.append(f"| {r['arm']} - {r['control']} | {r['metric']} | {r['true_difference']:.4g} | {r['bias']:.3g} | "
                     f"{r['rmse']:.3g} | {r['boot_coverage']:.0%} | {r['test_coverage']:.0%} ({r['test']}) | "
                     f"{r['reject_rate']:.0%} | {cu} |")
    return "\n".join(lines)


def run(cfg: ABConfig, run_dir: Path, out: Path | None = None, data_dir: str | None = None,
        track: bool = True, copy_to: Path | None = Path("outputs")) -> dict[str, Any]:
    """Run the A/B simulation (and its coverage study) for ``run_dir``.

    Returns:
        ``{"meta", "arms", "differences", "coverage", "table"}``; files as in the module docstring.
    """
    t0 = time.perf_counter()
    run_dir = Path(run_dir)
    out = Path(out) if out is not None else run_dir / OUT_SUBDIR
    out.mkdir(parents=True, exist_ok=True)
    ddir = _data_dir(run_dir, data_dir)
    dd = _decision_data(run_dir, out, data_dir, cfg, "main")
    inp, cfg, mu_source = policy_inputs(dd, cfg, ddir)
    inputs = {"main": inp}
    notes: list[str] = []
    arms = list(cfg.arms)
    if any(a.retrieval == "second" for a in arms):
        if not cfg.second_run_dir:
            skipped = [a.name for a in arms if a.retrieval == "second"]
            arms = [a for a in arms if a.retrieval != "second"]
            notes.append(f"skipped arms {skipped}: the run has no second retrieval model (second_run_dir is empty)")
        else:
            dd2 = _decision_data(Path(cfg.second_run_dir), out, data_dir, cfg, "second")
            if not np.array_equal(dd2.user_idx, dd.user_idx):
                raise DataError(f"{cfg.second_run_dir} evaluates other users than {run_dir}; need the same split")
            inputs["second"] = policy_inputs(dd2, cfg, ddir)[0]
    if len(arms) < 2:
        raise DataError(f"fewer than two arms left to compare ({notes})")
    cfg = dataclasses.replace(cfg, arms=tuple(arms))
    t1 = time.perf_counter()
    res = run_ab(inputs, dd.user_raw, cfg)
    t2 = time.perf_counter()
    coverage = coverage_study(inputs, dd.user_raw, cfg, cfg.coverage_replications) if cfg.coverage_replications else []
    t3 = time.perf_counter()
    meta = {"run_dir": str(run_dir), "truth_source": dd.truth_source, "mu_source": mu_source,
            "n_eval_users": dd.n_users, "n_candidates": dd.n_candidates, "n_simulated_users": res.n_simulated_users,
            "truth_method": "exact: recursion over patience levels on each evaluation user's fixed feed "
                            "(user_response.expected_sessions), equal weight per evaluation user",
            "notes": notes, "config": to_dict(cfg), "decision_data_s": round(t1 - t0, 2),
            "simulation_s": round(t2 - t1, 2), "coverage_study_s": round(t3 - t2, 2)}
    csv_path, json_path = write_results(res.arms, res.differences, meta, out)
    table = summary_table(res.arms, res.differences)
    files = [csv_path, json_path, out / "ab_results.md"]
    if coverage:
        files.append(write_coverage(coverage, out))
        table += "\n\n" + coverage_table(coverage)
    (out / "ab_results.md").write_text(table + "\n")
    if copy_to is not None:
        copy_to.mkdir(parents=True, exist_ok=True)
        for p in files:
            shutil.copy(p, copy_to / p.name)
    if track:
        import mlflow

        with mlflow_run("ab_test", f"ab-{run_dir.name}", cfg, tags={"run_dir": str(run_dir)}):
            metrics: dict[str, float] = {}
            for r in res.arms:
                metrics[f"{r['arm']}.{r['metric']}"] = r["estimate"]
                metrics[f"{r['arm']}.{r['metric']}.true"] = r["true"]
            for r in res.differences:
                key = f"{r['arm']}_vs_{r['control']}.{r['metric']}"
                metrics.update({key: r["estimate"], f"{key}.ci_low": r["boot_ci_low"],
                                f"{key}.ci_high": r["boot_ci_high"], f"{key}.true": r["true_difference"]})
                if r.get("cuped_variance_cut") is not None:
                    metrics[f"{key}.cuped_variance_cut"] = r["cuped_variance_cut"]
            for r in coverage:
                key = f"{r['arm']}_vs_{r['control']}.{r['metric']}"
                metrics.update({f"{key}.boot_coverage": r["boot_coverage"], f"{key}.rmse": r["rmse"]})
            mlflow.log_metrics({k: float(v) for k, v in metrics.items() if np.isfinite(v)})
            for f in files:
                mlflow.log_artifact(str(f))
    return {"meta": meta, "arms": res.arms, "differences": res.differences, "coverage": coverage, "table": table}


def main(argv: list[str] | None = None) -> int:
    """CLI entry: ``graphrec ab [--config F] [--run-dir R] [--arm name=..,w_engagement=..] [key=value ...]``."""
    p = make_parser("graphrec ab", "Mock A/B test of reranking policies on simulated users.", DEFAULT_CONFIG)
    p.add_argument("--arm", action="append", default=[],
                   help="extra arm, e.g. name=pareto,w_engagement=0.4,w_value=1.0,lambda_diversity=0.6 (repeatable)")
    p.add_argument("--out", default=None,
                   help=f"output folder (default: <run-dir>/{OUT_SUBDIR}, copied to outputs/; --out is not copied)")
    p.add_argument("--data-dir", default=None,
                   help="raw data with ground_truth/ (default: from the preprocess manifest)")
    p.add_argument("--no-mlflow", action="store_true", help="do not log to MLflow")
    args = p.parse_args(argv)
    cfg = load_stage_config(ABConfig, args)
    if args.arm:
        try:
            cfg = dataclasses.replace(cfg, arms=cfg.arms + tuple(parse_arm(a) for a in args.arm))
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    run_dir = Path(args.run_dir)
    if not run_dir.is_dir():
        raise DataError(f"run directory not found: {run_dir}")
    # the default output (<run_dir>/ab) is copied to outputs/; an explicit --out is a side experiment: left there
    copy_to = None if args.out else outputs_copy_dir("outputs")
    result = run(cfg, run_dir, Path(args.out) if args.out else None, args.data_dir, track=not args.no_mlflow,
                 copy_to=copy_to)
    print(result["table"])
    for n in result["meta"]["notes"]:
        print(f"note: {n}")
    where = Path(args.out) if args.out else run_dir / OUT_SUBDIR
    print(f"wrote {where}/ab_results.{{csv,json,md}}, ab_coverage.csv{f' (+ {copy_to}/)' if copy_to else ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
