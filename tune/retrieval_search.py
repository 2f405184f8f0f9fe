"""``graphrec tune-retrieval``: Ray Tune search of the retrieval hyperparameters on validation data only.

``graphrec tune-retrieval --run-dir runs/X [--config configs/retrieval_search.yaml] [key=value ...]``

1. Loads the preprocessed training and validation splits of ``runs/X`` (never test or ``small_matrix``) and puts
   them in the object store (``tune.with_parameters``).
2. ``ray.tune.Tuner`` with ``OptunaSearch`` (TPE, seeded) over lr, reg, step budget (``epochs``), positive
   threshold, IPS clip and power and hard-negative ratio (:class:`RetrievalSearchConfig`); each trial is the
   selection phase of the retrieval stage (:func:`graphrec_ray.retrieval.search.run_trial`), one CPU, reporting
   every validation point; the objective is validation Recall@20 at the trial's selected step.
3. Writes ``runs/X/retrieval/search.json`` (the chosen values, the selected number of steps, every trial) and logs
   the search to MLflow. ``graphrec train-retrieval`` then applies the chosen values (``use_search``, default on)
   and refits the searched model on training + validation positives for the chosen steps; the values also go to
   the retrieval manifest and its MLflow run.

Budget on 2 cores (demo scale, ~8k training positives at threshold 2, ~80k at 0.5): 12 trials, 2 at a time,
~20-60 s each, about 4-6 minutes in all. The retrieval base config (``--retrieval-config``) supplies every
field that is not searched (dim, layers, batch, min_steps, patience, ...).
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from graphrec_ray.config import load_config
from graphrec_ray.errors import UserError
from graphrec_ray.interactions import Interactions
from graphrec_ray.layout import RunLayout
from graphrec_ray.retrieval.config import RetrievalConfig
from graphrec_ray.retrieval.search import RetrievalSearchConfig, run_trial, trial_config

DEFAULT_CONFIG = "configs/retrieval_search.yaml"


def trainable(config: dict[str, Any], base: RetrievalConfig, search: RetrievalSearchConfig, train: Interactions,
              val: Interactions) -> None:
    """Tune function trainable: one trial; ``tune.report`` at every validation point."""
    import torch
    from ray import tune

    torch.set_num_threads(1)
    run_trial(trial_config(base, search, config), train, val, report=tune.report)


def param_space(search: RetrievalSearchConfig) -> dict[str, Any]:
    """Tune search space from :meth:`RetrievalSearchConfig.space`."""
    from ray import tune

    out: dict[str, Any] = {}
    for name, (kind, b) in search.space().items():
        if kind == "choice" or b[0] == b[1]:
            out[name] = tune.choice(list(b)) if kind == "choice" else b[0]
        elif kind == "loguniform":
            out[name] = tune.loguniform(*b)
        elif kind == "int":
            out[name] = tune.randint(int(b[0]), int(b[1]) + 1)
        else:
            out[name] = tune.uniform(*b)
    return out


def search(search_cfg: RetrievalSearchConfig, base: RetrievalConfig, run_dir: Path) -> dict[str, Any]:
    """Run the search on a connected Ray cluster; returns (and writes) ``search.json``'s content."""
    from ray import tune
    from ray.tune.search.optuna import OptunaSearch

    from graphrec_ray.retrieval.stage import load_inputs

    layout = RunLayout(run_dir)
    inputs = load_inputs(layout.preprocess)
    fn = tune.with_resources(tune.with_parameters(trainable, base=base, search=search_cfg, train=inputs["train"],
                                                  val=inputs["val"]), {"cpu": 1})
    algo = OptunaSearch(metric="selected_val", mode="max", seed=search_cfg.seed)
    tune_cfg = tune.TuneConfig(search_alg=algo, num_samples=search_cfg.num_samples,
                               max_concurrent_trials=search_cfg.max_concurrent)
    storage = (layout.retrieval / "search").resolve()
    run_cfg = tune.RunConfig(name=f"search-{int(time.time())}", storage_path=str(storage), verbose=0)
    t0 = time.perf_counter()
    grid = tune.Tuner(fn, param_space=param_space(search_cfg), tune_config=tune_cfg, run_config=run_cfg).fit()
    wall = time.perf_counter() - t0
    trials = []
    for res in grid:
        if res.error is not None or not res.metrics:
            raise RuntimeError(f"retrieval search trial failed: {res.error}")
        trials.append({"params": {k: res.config[k] for k in search_cfg.space()},
                       "selected_val": float(res.metrics["selected_val"]),
                       "selected_step": int(res.metrics["selected_step"]),
                       "points": int(res.metrics.get("training_iteration", 0))})
    trials.sort(key=lambda t: -t["selected_val"])
    best = trials[0]
    doc = {"model": search_cfg.model, "params": best["params"], "steps": best["selected_step"],
           "val_metric": base.val_metric, "val_relevance": search_cfg.val_relevance, "val": best["selected_val"],
           "trials": trials, "wall_s": wall, "search_config": asdict(search_cfg)}
    layout.retrieval.mkdir(parents=True, exist_ok=True)
    layout.search.write_text(json.dumps(doc, indent=2, sort_keys=True, default=float) + "\n")
    return doc


def log_mlflow(search_cfg: RetrievalSearchConfig, doc: dict[str, Any], path: Path) -> None:
    """One MLflow run: the search config, the chosen values and steps, the best validation value, search.json."""
    import mlflow

    from jobs.common import mlflow_run

    if search_cfg.tracking_uri:
        mlflow.set_tracking_uri(search_cfg.tracking_uri)
    with mlflow_run(search_cfg.experiment, "tune-retrieval", search_cfg, tags={"stage": "retrieval-search"}):
        mlflow.log_params({f"chosen.{k}": v for k, v in doc["params"].items()})
        mlflow.log_param("chosen.steps", doc["steps"])
        mlflow.log_metrics({"val_selected": doc["val"], "search_wall_s": doc["wall_s"],
                            "trials": float(len(doc["trials"]))})
        mlflow.log_artifact(str(path))


def main(argv: list[str] | None = None) -> int:
    import ray

    from graphrec_ray.retrieval.stage import load_inputs
    from jobs.common import init_ray, load_stage_config, make_parser

    parser = make_parser("graphrec tune-retrieval",
                         "Ray Tune search of retrieval hyperparameters on validation data", DEFAULT_CONFIG)
    parser.add_argument("--retrieval-config", default="configs/retrieval.yaml",
                        help="base retrieval config for every field that is not searched")
    parser.add_argument("--no-mlflow", action="store_true", help="skip MLflow logging")
    args = parser.parse_args(argv)
    search_cfg = load_stage_config(RetrievalSearchConfig, args)
    if not Path(args.retrieval_config).is_file():
        raise UserError(f"config file not found: {args.retrieval_config}")
    base = load_config(RetrievalConfig, args.retrieval_config, [])
    run_dir = Path(args.run_dir)
    load_inputs(RunLayout(run_dir).preprocess)  # fail with one line before starting Ray
    started = not ray.is_initialized()
    init_ray(args.ray_address, num_cpus=search_cfg.ray_num_cpus)
    try:
        doc = search(search_cfg, base, run_dir)
    finally:
        if started:
            ray.shutdown()
    path = RunLayout(run_dir).search
    if not args.no_mlflow:
        log_mlflow(search_cfg, doc, path)
    print(f"{len(doc['trials'])} trials in {doc['wall_s']:.0f} s; best validation {doc['val_metric']} "
          f"{doc['val']:.4f} at {doc['steps']} steps with {doc['params']}")
    print(f"wrote {path}; `graphrec train-retrieval --run-dir {run_dir}` applies it (use_search=false to ignore)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
