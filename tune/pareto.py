"""The engagement / value / diversity Pareto sweep of the reranking settings on Ray Tune.

``graphrec pareto --run-dir runs/X`` or ``ray job submit --working-dir . -- python -m tune.pareto --run-dir
/abs/runs/X``:

1. Decision data (:mod:`graphrec_ray.evaluation.decision_data`): retrieval candidates and calibrated ranker
   scores of the evaluation users, computed ONCE with the serving code, plus their true outcomes; saved as
   ``<run_dir>/pareto/decision_data.npz`` and put in the object store with ``tune.with_parameters``.
2. Two searchers through ``ray.tune.Tuner``, each trial evaluation-only
   (:class:`graphrec_ray.evaluation.policy_eval.PolicyEvaluator`: the Serve app's scalarisation + MMR, objectives
   from the truth with 95 % intervals over users):

   * ``grid``: ``tune.grid_search`` over ``w_engagement`` on the simplex (``w_value = 1 - w_engagement``),
     ``lambda_diversity`` and the MMR pool (132 settings by default). A weighted sum only reaches the convex
     part of the front;
   * ``nsga2``: ``OptunaSearch(metric=[...], mode=["max", ...])`` with Optuna's NSGA-II sampler, which also
     reaches the non-convex parts. Its study lives in an Optuna journal file,
     ``<run_dir>/pareto/optuna_journal.log`` (read back with ``optuna.load_study(study_name=...,
     storage=JournalStorage(JournalFileBackend(path)))``; the study name is in the summary).
3. The table of every setting (plus the serving and seed settings as references), the non-dominated flag, the
   knee, the hypervolume against the fixed origin (``moocore``), ``pareto_curve.png`` and paired differences
   knee - serving, written to ``<run_dir>/pareto/`` and ``outputs/``. The users are split (seeded,
   ``holdout_frac``): the trials, front and knee use the selection half; the knee - serving difference is measured
   on the held-out half, so picking the best of ~200 settings does not inflate it. MLflow: one parent run per sweep with every
   trial as a nested child run (params + metrics).
4. ``--pick knee|max-value-at-ctr=<x> --serve-config-out FILE`` writes the chosen weights as the Reranking
   deployment's ``user_config`` into a copy of ``configs/serve_app.yaml``; ``serve deploy FILE`` applies it in
   place.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from graphrec_ray.errors import UserError
from graphrec_ray.evaluation.decision_data import DecisionData, build_decision_data
from graphrec_ray.evaluation.policy_eval import PolicyEvaluator, RerankSetting
from tune.config import ParetoConfig
from tune import results as R

SEARCHERS = ("grid", "nsga2")


# ------------------------------------------------------------------------------------------------ trials


def evaluate_trial(config: dict[str, Any], data: DecisionData, k: int, n_boot: int, seed: int) -> None:
    """Tune function trainable: evaluate one setting on ``data`` and report its objectives once."""
    from ray import tune

    setting = RerankSetting(float(config["w_engagement"]), float(config["w_value"]),
                            float(config["lambda_diversity"]), int(config["pool_size"]))
    result = PolicyEvaluator(data, k=k, n_boot=n_boot, seed=seed).evaluate(setting)
    tune.report(result.metrics())


def grid_space(cfg: ParetoConfig) -> dict[str, Any]:
    """``param_space`` of the grid searcher: ``w_value`` follows ``w_engagement`` on the simplex."""
    from ray import tune

    return {"w_engagement": tune.grid_search(list(cfg.grid_w_engagement)),
            "w_value": tune.sample_from(lambda config: round(1.0 - float(config["w_engagement"]), 6)),
            "lambda_diversity": tune.grid_search(list(cfg.grid_lambda)),
            "pool_size": tune.grid_search([int(p) for p in cfg.grid_pool])}


class SimplexSpace:
    """Define-by-run Optuna space (a class, not a closure, so Tune can pickle the searcher's state):
    ``w_engagement`` in [0, 1] with ``w_value = 1 - w_engagement``, ``lambda_diversity``, ``pool_size``."""

    def __init__(self, lambda_range: tuple[float, float], pool_range: tuple[int, int]) -> None:
        self.lambda_range, self.pool_range = lambda_range, pool_range

    def __call__(self, trial: Any) -> dict[str, float]:
        w = trial.suggest_float("w_engagement", 0.0, 1.0)
        trial.suggest_float("lambda_diversity", *self.lambda_range)
        trial.suggest_int("pool_size", *self.pool_range)
        return {"w_value": round(1.0 - w, 6)}


def nsga2_searcher(cfg: ParetoConfig, journal: Path, study_name: str) -> Any:
    """``OptunaSearch`` with NSGA-II over the same space, its study in an Optuna journal file."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend
    from ray.tune.search.optuna import OptunaSearch

    space = SimplexSpace(cfg.lambda_range, cfg.pool_range)
    journal.parent.mkdir(parents=True, exist_ok=True)
    storage = JournalStorage(JournalFileBackend(str(journal)))
    sampler = optuna.samplers.NSGAIISampler(population_size=cfg.nsga_population, seed=cfg.seed)
    return OptunaSearch(space=space, metric=list(cfg.objectives), mode=["max"] * len(cfg.objectives),
                        sampler=sampler, study_name=study_name, storage=storage)


def _progress_callback(label: str, total: int) -> Any:
    from ray.tune import Callback

    class Progress(Callback):
        """Prints one line every ~10 % of the trials (the terminal shows progress, not Ray's tables)."""

        def __init__(self) -> None:
            self.done, self.t0, self.step = 0, time.perf_counter(), max(1, total // 10)

        def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            self.done += 1
            if self.done % self.step == 0 or self.done == total:
                dt = time.perf_counter() - self.t0
                print(f"  {label}: {self.done}/{total} settings, {dt:.0f} s", flush=True)

    return Progress()


def run_searcher(name: str, cfg: ParetoConfig, data: DecisionData, storage: Path, journal: Path,
                 study_name: str, quiet: bool = False) -> tuple[list[dict[str, Any]], float]:
    """Run one searcher through ``ray.tune.Tuner``; returns its table rows and wall seconds."""
    from ray import tune

    trainable = tune.with_resources(
        tune.with_parameters(evaluate_trial, data=data, k=cfg.k, n_boot=cfg.n_boot, seed=cfg.seed), {"cpu": 1})
    if name == "grid":
        space, total = grid_space(cfg), cfg.grid_size
        tune_cfg = tune.TuneConfig(num_samples=1, max_concurrent_trials=cfg.max_concurrent, reuse_actors=True)
    elif name == "nsga2":
        space, total = {}, cfg.nsga_trials
        tune_cfg = tune.TuneConfig(search_alg=nsga2_searcher(cfg, journal, study_name), num_samples=total,
                                   max_concurrent_trials=cfg.max_concurrent, reuse_actors=True)
    else:
        raise UserError(f"unknown searcher '{name}' (choose from {', '.join(SEARCHERS)})")
    callbacks = [] if quiet else [_progress_callback(name, total)]
    run_cfg = tune.RunConfig(name=f"{name}-{study_name}", storage_path=str(storage.resolve()), verbose=0,
                             callbacks=callbacks)
    t0 = time.perf_counter()
    grid = tune.Tuner(trainable, param_space=space, tune_config=tune_cfg, run_config=run_cfg).fit()
    wall = time.perf_counter() - t0
    rows = []
    for res in grid:
        if res.error is not None or not res.metrics:
            raise RuntimeError(f"{name} trial failed: {res.error}")
        c = res.config
        setting = RerankSetting(float(c["w_engagement"]), float(c["w_value"]), float(c["lambda_diversity"]),
                                int(c["pool_size"]))
        rows.append(R.row_of(name, str(res.metrics.get("trial_id", "")), setting, res.metrics))
    return rows, wall


# ---------------------------------------------------------------------------------------------- MLflow


def log_mlflow(cfg: ParetoConfig, run_dir: Path, table: pd.DataFrame, summary: dict, files: list[Path]) -> str:
    """One parent run (config, summary metrics, output files) with one nested child run per table row."""
    import mlflow
    from mlflow.entities import Metric, Param, RunTag

    from jobs.common import mlflow_run

    with mlflow_run("pareto", f"pareto-{run_dir.name}", cfg, tags={"run_dir": str(run_dir.resolve())}) as parent:
        mlflow.log_metrics({"hypervolume": summary["hypervolume"], "n_settings": summary["n_settings"],
                            "n_non_dominated": summary["n_non_dominated"]})
        for f in files:
            if f.parent == run_dir / "pareto":
                mlflow.log_artifact(str(f))
        client = mlflow.tracking.MlflowClient()
        exp = parent.info.experiment_id
        now = int(time.time() * 1000)
        for _, row in table.iterrows():
            name = f"{row['searcher']}-{row['trial_id']}" if row["trial_id"] else str(row["searcher"])
            child = client.create_run(exp, tags={"mlflow.parentRunId": parent.info.run_id, "mlflow.runName": name})
            params = [Param(c, str(row[c])) for c in ("searcher",) + R.SETTING_COLUMNS]
            metrics = [Metric(c.replace("/", "_"), float(row[c]), now, 0) for c in table.columns
                       if c not in R.SETTING_COLUMNS and isinstance(row[c], (int, float)) and row[c] == row[c]]
            metrics.append(Metric("non_dominated", float(bool(row["non_dominated"])), now, 0))
            client.log_batch(child.info.run_id, metrics=metrics, params=params, tags=[RunTag("knee", str(row["knee"]))])
            client.set_terminated(child.info.run_id)
        return parent.info.run_id


# ------------------------------------------------------------------------------------------------- sweep


def sweep(cfg: ParetoConfig, run_dir: Path, data: DecisionData, searchers: tuple[str, ...], out_dir: Path | None,
          serve_app_yaml: Path, serve_yaml: Path | None, use_mlflow: bool = True, quiet: bool = False) -> dict:
    """Run the searchers on an initialised Ray, write every output; returns the summary dict."""
    full = data
    select, holdout = split_users(data.n_users, cfg.holdout_frac, cfg.seed)
    data = full.subset(select)
    pareto_dir = run_dir / "pareto"
    pareto_dir.mkdir(parents=True, exist_ok=True)
    journal = pareto_dir / "optuna_journal.log"
    study_name = f"pareto-{time.strftime('%Y%m%dT%H%M%S')}-seed{cfg.seed}"
    rows: list[dict[str, Any]] = []
    timing: dict[str, dict[str, float]] = {}
    for name in searchers:
        r, wall = run_searcher(name, cfg, data, pareto_dir / "tune", journal, study_name, quiet)
        rows += r
        timing[name] = {"settings": len(r), "seconds": wall, "settings_per_s": len(r) / wall if wall else 0.0}
        if not quiet:
            print(f"{name}: {len(r)} settings in {wall:.1f} s ({len(r) / wall:.2f} settings/s)", flush=True)
    ev = PolicyEvaluator(data, k=cfg.k, n_boot=cfg.n_boot, seed=cfg.seed)
    serving = R.serving_setting(serve_app_yaml, serve_yaml)
    for name, setting in (("serving", serving), ("seed", R.SEED_SETTING)):
        rows.append(R.row_of(name, "", setting, ev.evaluate(setting).metrics()))
    table = R.mark_front(pd.DataFrame(rows), cfg.objectives)
    ev_holdout = PolicyEvaluator(full.subset(holdout), k=cfg.k, n_boot=cfg.n_boot, seed=cfg.seed) if holdout.size \
        else ev
    summary = R.summarize(table, cfg.objectives)
    knee = R.setting_of(table[table["knee"]].iloc[0])
    summary.update({
        "run_dir": str(run_dir.resolve()), "users": full.n_users, "candidates": data.n_candidates,
        "truth_source": data.truth_source, "k": cfg.k, "timing": timing,
        "serving_setting": serving.__dict__ | {"top_n_serve": serving.pool_size},
        "users_selection": int(select.size), "users_holdout": int(holdout.size),
        "knee_minus_serving": R.compare(ev_holdout, knee, serving, cfg.seed),
        "knee_minus_serving_users": "holdout" if holdout.size else "selection (no holdout: optimistic)",
        "optuna": {"journal": str(journal), "study_name": study_name} if "nsga2" in searchers else None,
        "note": "a weighted-sum grid only reaches the convex part of the front; NSGA-II also covers the rest",
    })
    if "nsga2" in searchers:
        summary["optuna"]["pareto_trials_read_back"] = len(read_study_front(journal, study_name))
    dirs = [pareto_dir] + ([out_dir] if out_dir is not None else [])
    files = R.write_outputs(table, summary, dirs, title=f"Pareto sweep: {run_dir.name} ({data.truth_source} truth)")
    summary["files"] = [str(f) for f in files]
    from graphrec_ray.config import config_hash
    from graphrec_ray.manifest import write_manifest

    write_manifest(pareto_dir, "pareto", config_hash(cfg), ["pareto.csv", "pareto_summary.json", "pareto_curve.png"],
                   {"hypervolume": summary["hypervolume"], "knee": summary["knee"], "truth_source": data.truth_source})
    if use_mlflow:
        summary["mlflow_parent_run"] = log_mlflow(cfg, run_dir, table, summary, files)
    summary["table"] = table
    return summary


def split_users(n_users: int, holdout_frac: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded disjoint ``(selection, holdout)`` row positions, each sorted; ``holdout_frac = 0``: no holdout."""
    n_hold = int(round(n_users * holdout_frac))
    if n_hold and n_users - n_hold < 1:
        raise UserError(f"holdout_frac {holdout_frac} leaves no users to sweep on")
    perm = np.random.default_rng(seed).permutation(n_users)
    return np.sort(perm[n_hold:]), np.sort(perm[:n_hold])


def read_study_front(journal: Path, study_name: str) -> list[Any]:
    """The NSGA-II study's Pareto-optimal trials, read back from its journal file."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    study = optuna.load_study(study_name=study_name, storage=JournalStorage(JournalFileBackend(str(journal))))
    return list(study.best_trials)


def _fmt(row: pd.Series, name: str) -> str:
    return f"{row[name]:.4f} [{row[name + '/ci_low']:.4f}, {row[name + '/ci_high']:.4f}]"


def print_summary(summary: dict) -> None:
    """A few lines: front size, hypervolume, knee and serving with intervals, the paired difference."""
    table: pd.DataFrame = summary["table"]
    hv = ", ".join(f"{k} {v:.4f}" for k, v in summary["hypervolume_by_searcher"].items())
    print(f"front: {summary['n_non_dominated']} non-dominated of {summary['n_settings']} settings on "
          f"{'/'.join(summary['objectives'])}; hypervolume {summary['hypervolume']:.4f} (by searcher: {hv}; "
          f"reference: origin)")
    for label, sel in (("knee", table["knee"]), ("serving", table["searcher"] == "serving"),
                       ("seed", table["searcher"] == "seed")):
        r = table[sel].iloc[0]
        print(f"{label:>7}: w_engagement={r['w_engagement']:.3f} w_value={r['w_value']:.3f} "
              f"lambda={r['lambda_diversity']:.3f} pool={int(r['pool_size'])}  engagement {_fmt(r, 'engagement')}  "
              f"value {_fmt(r, 'value')}  diversity {_fmt(r, 'diversity')}  coverage {r['coverage']:.3f}")
    diffs = "  ".join(f"{k} {v['difference']:+.4f} [{v['ci_low']:+.4f}, {v['ci_high']:+.4f}] {v['verdict']}"
                      for k, v in summary["knee_minus_serving"].items())
    print(f"knee - serving (paired over the {summary['users_holdout'] or summary['users_selection']} "
          f"{summary['knee_minus_serving_users']} users): {diffs}")


# --------------------------------------------------------------------------------------------------- CLI


def quiet_libraries() -> None:
    """Tune's classic reporter at verbose=0 prints nothing (the new one prints tables whatever ``verbose``);
    Optuna logs each study creation at INFO."""

    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    from jobs.common import make_parser

    p = make_parser("graphrec pareto", "Pareto sweep of the reranking weights on Ray Tune", "configs/pareto.yaml")
    p.add_argument("--data-dir", default=None, help="raw data (ground truth, categories); default: the run's")
    p.add_argument("--decision-data", default=None, help="use this decision_data.npz instead of building it")
    p.add_argument("--searchers", default=",".join(SEARCHERS), help="comma list of grid,nsga2 (default: both)")
    p.add_argument("--out-dir", default="outputs", help="also write the outputs here ('' = only the run dir)")
    p.add_argument("--serve-app-config", default="configs/serve_app.yaml",
                   help="Serve config with today's Reranking user_config (template for --serve-config-out)")
    p.add_argument("--serve-config", default="configs/serve.yaml", help="ServeConfig YAML (top_n_serve default)")
    p.add_argument("--pick", default=None, help="knee | max-value-at-ctr=<x>: choose a setting to serve")
    p.add_argument("--serve-config-out", default=None, help="write the picked weights into this Serve config copy")
    p.add_argument("--no-mlflow", action="store_true", help="skip MLflow logging")
    return p.parse_args(argv)


def run(cfg: ParetoConfig, run_dir: Path, data_dir: str | Path | None = None,
        searchers: tuple[str, ...] = SEARCHERS, out_dir: Path | None = Path("outputs"),
        serve_app_yaml: Path = Path("configs/serve_app.yaml"), serve_yaml: Path = Path("configs/serve.yaml"),
        decision_data: str | Path | None = None, ray_address: str | None = None, use_mlflow: bool = True) -> dict:
    """The whole sweep (``graphrec pareto`` and the last stage of ``graphrec demo``); returns the summary (with the
    table under ``"table"``). Starts a private local Ray unless one is running or ``ray_address`` is given."""
    import ray

    from jobs.common import init_ray

    t0 = time.perf_counter()
    if decision_data:
        data = DecisionData.load(decision_data)
    else:
        data = build_decision_data(run_dir, data_dir, cfg.n_users or None, cfg.k_candidates, cfg.seed)
        data.save(run_dir / "pareto" / "decision_data.npz")
    print(f"decision data: {data.n_users} users x {data.n_candidates} candidates ({data.truth_source} truth) "
          f"in {time.perf_counter() - t0:.1f} s", flush=True)
    quiet_libraries()
    started = not ray.is_initialized()
    init_ray(ray_address, num_cpus=cfg.ray_num_cpus)
    try:
        summary = sweep(cfg, run_dir, data, searchers, out_dir, serve_app_yaml, serve_yaml, use_mlflow=use_mlflow)
    finally:
        if started:
            ray.shutdown()
    print_summary(summary)
    return summary


def main(argv: list[str] | None = None) -> int:
    from jobs.common import load_stage_config, outputs_copy_dir

    args = parse_args(argv)
    cfg = load_stage_config(ParetoConfig, args)
    searchers = tuple(s.strip() for s in args.searchers.split(",") if s.strip())
    bad = [s for s in searchers if s not in SEARCHERS]
    if bad or not searchers:
        raise UserError(f"--searchers: unknown '{(bad or [''])[0]}' (choose from {', '.join(SEARCHERS)})")
    if args.pick and not args.serve_config_out:
        raise UserError("--pick needs --serve-config-out FILE (configs/serve_app.yaml itself is never overwritten)")
    if args.pick and args.pick != "knee" and not args.pick.startswith("max-value-at-ctr="):
        raise UserError(f"--pick must be 'knee' or 'max-value-at-ctr=<x>', got '{args.pick}'")
    run_dir = Path(args.run_dir)
    t0 = time.perf_counter()
    out_dir = outputs_copy_dir(args.out_dir)
    summary = run(cfg, run_dir, args.data_dir, searchers, out_dir,
                  Path(args.serve_app_config), Path(args.serve_config), args.decision_data, args.ray_address,
                  use_mlflow=not args.no_mlflow)
    if args.pick:
        table = summary["table"]
        row = table.loc[R.pick(table, args.pick)]
        setting = R.setting_of(row)
        out = R.write_serve_config(args.serve_app_config, args.serve_config_out, setting, run_dir,
                                   note=f"--pick {args.pick}", serve_yaml=args.serve_config)
        print(f"picked ({args.pick}): {setting.user_config() | {'top_n_serve': setting.pool_size}} -> {out}; "
              f"apply in place with: serve deploy {out}")
    print(f"wrote {run_dir / 'pareto'}/{{pareto.csv,pareto_summary.json,pareto_curve.png}}"
          + (f" and {out_dir}/" if out_dir else "") + f" in {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    from jobs.cli import main as cli_main

    sys.exit(cli_main(["pareto"] + sys.argv[1:]))
