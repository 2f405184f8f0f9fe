"""``graphrec demo``: the whole pipeline on one Ray cluster, on the embedded default or your data.

Stages, in order, each reading its own ``configs/<stage>.yaml``::

    simulate → preprocess (Ray Data) → train-retrieval (Ray Train) → build-index (FAISS)
             → train-ranker (Ray Train) → serve smoke test (Ray Serve over HTTP)
             → Pareto sweep of the reranking weights (Ray Tune; ``--no-pareto`` skips it)

Usage::

    graphrec demo                                   # simulator data in data/sim, run in runs/demo
    graphrec demo --data-dir /data/KuaiRec --no-simulate   # real KuaiRec 2.0 files
    graphrec demo retrieval.epochs=5 simulate.seed=7       # per-stage overrides: <stage>.<key>=<value>
    ray job submit --working-dir . -- python -m jobs.pipeline --run-dir /abs/runs/demo --data-dir /abs/data/sim

The simulator runs only when ``data_dir`` has no data written with the same simulator config; it never
writes into a folder holding data it did not write (use ``--no-simulate`` for such data).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable

from graphrec_ray.config import config_hash, load_config
from graphrec_ray.errors import UserError
from graphrec_ray.layout import RunLayout
from graphrec_ray.sources.kuairec import ALL_FILES, check_layout
from graphrec_ray.stage_key import code_version, file_identity, mark_done, mark_started, stage_key, why_not_done
from jobs.common import init_ray, pipeline_run

STAGES = ("simulate", "preprocess", "retrieval", "index", "ranking", "serve", "pareto")
#: stage names as printed (and accepted by --force)
FORCEABLE = ("preprocess", "train-retrieval", "build-index", "train-ranker", "serve-smoke", "pareto")
#: the demo's small Pareto sweep (5 x 2 x 2 = 20 grid settings + 20 NSGA-II trials, well under a minute on 2 cores);
#: `graphrec pareto` runs the full one (configs/pareto.yaml); `pareto.<key>=<value>` overrides these
DEMO_PARETO = ["grid_w_engagement=[0.0,0.25,0.5,0.75,1.0]", "grid_lambda=[0.6,1.0]", "grid_pool=[20,100]",
               "nsga_trials=20", "nsga_population=10"]
SMOKE_KEY_FILE = ".serve_smoke_key"  # in run_dir: the key of the last passed smoke test


def _stage_configs() -> dict[str, tuple[str, Callable[[], type]]]:
    """stage -> (default YAML, lazy config class); imported lazily so --help stays instant."""

    def sim() -> type:
        from graphrec_ray.sources.simulator import SimulatorConfig
        return SimulatorConfig

    def pre() -> type:
        from graphrec_ray.preprocess.config import PreprocessConfig
        return PreprocessConfig

    def ret() -> type:
        from graphrec_ray.retrieval.config import RetrievalConfig
        return RetrievalConfig

    def idx() -> type:
        from graphrec_ray.index.config import IndexConfig
        return IndexConfig

    def rank() -> type:
        from graphrec_ray.ranking.config import RankingConfig
        return RankingConfig

    def par() -> type:
        from tune.config import ParetoConfig
        return ParetoConfig

    return {"simulate": ("configs/simulate.yaml", sim), "preprocess": ("configs/preprocess.yaml", pre),
            "retrieval": ("configs/retrieval.yaml", ret), "index": ("configs/index.yaml", idx),
            "ranking": ("configs/ranking.yaml", rank), "pareto": ("configs/pareto.yaml", par)}


def split_overrides(items: list[str]) -> dict[str, list[str]]:
    """``["retrieval.epochs=3", "serve.k=5"]`` -> ``{"retrieval": ["epochs=3"], "serve": ["k=5"]}``."""
    out: dict[str, list[str]] = {s: [] for s in STAGES}
    for item in items:
        stage, _, rest = item.partition(".")
        if stage not in out or not rest or "=" not in rest:
            raise UserError(f"override '{item}' must look like <stage>.<key>=<value> with stage in {', '.join(STAGES)}")
        out[stage].append(rest)
    return out


def load_stage(stage: str, overrides: list[str], config_dir: Path) -> Any:
    path, cls = _stage_configs()[stage]
    yaml_path = config_dir / Path(path).name
    return load_config(cls(), yaml_path if yaml_path.is_file() else None, overrides)


def run(run_dir: Path, data_dir: Path, overrides: dict[str, list[str]], *, simulate: bool = True,
        serve_smoke: int = 20, config_dir: Path = Path("configs"), ray_address: str | None = None,
        force: tuple[str, ...] = (), pareto: bool = True, until: str | None = None) -> dict[str, Any]:
    """Run every stage into ``run_dir``; returns per-stage summaries and seconds.

    ``until`` (one of :data:`FORCEABLE`) stops after that stage (benchmarks of the early stages at large sizes).

    A stage whose key (config, upstream manifests, code version; :mod:`graphrec_ray.stage_key`) matches a finished
    run in ``run_dir`` and whose files verify is skipped; ``force`` names stages to rerun anyway. Ray starts only
    when some stage has to run. MLflow: one parent run (experiment ``pipeline``) with a child run per stage.
    """
    import mlflow

    params = {"run_dir": Path(run_dir).resolve(), "data_dir": Path(data_dir).resolve(), "simulate": simulate,
              "force": ",".join(force), **{f"override.{k}": " ".join(v) for k, v in overrides.items() if v}}
    with pipeline_run(f"pipeline-{Path(run_dir).name}", params) as parent:
        out = _run_stages(run_dir, data_dir, overrides, simulate=simulate, serve_smoke=serve_smoke,
                          config_dir=config_dir, ray_address=ray_address, force=force, pareto=pareto,
                          until=until)
        client = mlflow.MlflowClient()
        for name, seconds in out["seconds"].items():
            client.log_metric(parent, f"seconds.{name}", seconds)
        client.set_tag(parent, "skipped", ",".join(out["skipped"]) or "-")
    return {**out, "mlflow_run_id": parent}


def _run_stages(run_dir: Path, data_dir: Path, overrides: dict[str, list[str]], *, simulate: bool,
                serve_smoke: int, config_dir: Path, ray_address: str | None,
                force: tuple[str, ...], pareto: bool = True, until: str | None = None) -> dict[str, Any]:
    unknown = set(force) - set(FORCEABLE)
    if unknown:
        raise UserError(f"--force takes stages among {', '.join(FORCEABLE)}; got {', '.join(sorted(unknown))}")
    if until is not None and until not in FORCEABLE:
        raise UserError(f"--until takes a stage among {', '.join(FORCEABLE)}; got {until}")
    import jobs.build_index
    import jobs.preprocess
    import jobs.simulate
    import jobs.train_ranker
    import jobs.train_retrieval

    run_dir, data_dir = Path(run_dir).resolve(), Path(data_dir).resolve()
    timings: dict[str, float] = {}
    summaries: dict[str, Any] = {}

    def step(title: str, fn: Callable[[], Any], name: str | None = None) -> Any:
        name = name or title
        print(f"\n=== {title} ===", flush=True)
        t0 = time.perf_counter()
        out = fn()
        timings[name] = round(time.perf_counter() - t0, 2)
        summaries[name] = out
        print(f"=== {name}: {timings[name]:.1f}s ===", flush=True)
        return out

    if simulate:
        sim_cfg = load_stage("simulate", overrides["simulate"], config_dir)
        if jobs.simulate.holds_foreign_data(data_dir):  # real KuaiRec or anyone's data: never overwritten
            raise UserError(f"{data_dir} holds data the simulator did not write: pass --no-simulate to use it, "
                            "or choose another --data-dir for simulator data")
        if jobs.simulate.simulator_stamp(data_dir) == config_hash(sim_cfg):
            print(f"simulate: reusing {data_dir} (same simulator config)")
        else:
            step("simulate", lambda: jobs.simulate.run(sim_cfg, data_dir))

    layout = RunLayout(run_dir)
    code = code_version(Path(__file__).resolve().parents[1])
    raw_root = check_layout(data_dir).root  # also the real archive's nested data/ folder
    raw_files = file_identity(raw_root / name for name in ALL_FILES)
    skipped: list[str] = []

    def stage(name: str, stage_dir: Path, cfg: Any, upstream: list[Path], fn: Callable[[], Any],
              extra: Any = None) -> None:
        """Run ``fn`` unless ``stage_dir`` holds a finished run with the same key (and ``name`` not forced)."""
        key = stage_key(name, config_hash(cfg), upstream, code, extra)
        reason = "forced" if name in force else why_not_done(stage_dir, key)
        if reason is None:
            print(f"=== {name}: up to date (key {key}), skipped ===", flush=True)
            skipped.append(name)
            return
        init_ray(ray_address)
        mark_started(stage_dir)
        step(f"{name} ({reason})", fn, name)
        mark_done(stage_dir, key)

    def finish() -> dict[str, Any]:
        summary = {"run_dir": str(run_dir), "data_dir": str(data_dir), "seconds": timings, "skipped": skipped}
        (run_dir / "pipeline_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        return {**summary, "stages": summaries}

    pre_cfg = load_stage("preprocess", [f"data_dir={data_dir}", *overrides["preprocess"]], config_dir)
    stage("preprocess", layout.preprocess, pre_cfg, [], lambda: jobs.preprocess.run(pre_cfg, run_dir),
          extra=raw_files)
    if until == "preprocess":
        return finish()
    ret_cfg = load_stage("retrieval", overrides["retrieval"], config_dir)
    stage("train-retrieval", layout.retrieval, ret_cfg, [layout.preprocess],
          lambda: jobs.train_retrieval.run(ret_cfg, run_dir, progress=True))
    if until == "train-retrieval":
        return finish()
    idx_cfg = load_stage("index", overrides["index"], config_dir)
    stage("build-index", layout.index, idx_cfg, [layout.retrieval], lambda: jobs.build_index.run(idx_cfg, run_dir))
    if until == "build-index":
        return finish()
    rank_cfg = load_stage("ranking", overrides["ranking"], config_dir)
    stage("train-ranker", layout.ranking, rank_cfg, [layout.preprocess, layout.retrieval],
          lambda: jobs.train_ranker.run(rank_cfg, run_dir))
    if until == "train-ranker":
        return finish()
    if serve_smoke > 0:
        import jobs.serve
        from graphrec_ray.serving.versions import version_id

        serve_yaml = config_dir / "serve.yaml"
        serve_args = ["--run-dir", str(run_dir), "--smoke", str(serve_smoke), "--config", str(serve_yaml),
                      *overrides["serve"]]
        smoke_key = stage_key("serve-smoke", version_id(run_dir), [], code,
                              [serve_args, serve_yaml.read_text() if serve_yaml.is_file() else None])
        smoke_file = run_dir / SMOKE_KEY_FILE
        if "serve-smoke" not in force and smoke_file.is_file() and smoke_file.read_text().strip() == smoke_key:
            print(f"=== serve-smoke: this model version passed it already (key {smoke_key}), skipped ===")
            skipped.append("serve-smoke")
        else:
            init_ray(ray_address)
            smoke_file.unlink(missing_ok=True)
            rc = step("serve-smoke", lambda: jobs.serve.main(serve_args))
            if rc != 0:
                raise UserError("serve smoke test failed (see the report above)")
            smoke_file.write_text(smoke_key + "\n")
    if until == "serve-smoke":
        return finish()
    if pareto:
        import tune.pareto

        par_cfg = load_stage("pareto", [*DEMO_PARETO, *overrides["pareto"]], config_dir)
        stage("pareto", run_dir / "pareto", par_cfg, [layout.retrieval, layout.index, layout.ranking],
              lambda: tune.pareto.run(par_cfg, run_dir, data_dir=data_dir, ray_address=ray_address,
                                      serve_app_yaml=config_dir / "serve_app.yaml",
                                      serve_yaml=config_dir / "serve.yaml"))
    return finish()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="graphrec demo", description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n".join(__doc__.splitlines()[2:]))
    p.add_argument("--run-dir", default="runs/demo", help="run directory (default: runs/demo)")
    p.add_argument("--data-dir", default="data/sim", help="raw KuaiRec-layout data folder (default: data/sim)")
    p.add_argument("--no-simulate", action="store_true", help="use the files already in --data-dir (real KuaiRec)")
    p.add_argument("--serve-smoke", type=int, default=20, metavar="N",
                   help="requests of the final Serve smoke test; 0 skips serving (default: 20)")
    p.add_argument("--config-dir", default="configs", help="folder of the stage YAMLs (default: configs)")
    p.add_argument("--no-pareto", action="store_true", help="skip the final Pareto sweep (graphrec pareto runs it)")
    p.add_argument("--ray-address", default=None, help="Ray cluster address (default: local or the job's)")
    p.add_argument("--force", action="append", default=[], metavar="STAGE", choices=FORCEABLE,
                   help="rerun STAGE even when it is up to date (repeatable); finished stages are otherwise skipped")
    p.add_argument("--verbose", action="store_true",
                   help="stream Ray's worker and actor logs to the terminal (default: kept in Ray's log folder)")
    p.add_argument("overrides", nargs="*", metavar="stage.key=value")
    args = p.parse_args(argv)
    if args.verbose:
        os.environ["GRAPHREC_VERBOSE"] = "1"
    out = run(Path(args.run_dir), Path(args.data_dir), split_overrides(args.overrides),
              simulate=not args.no_simulate, serve_smoke=args.serve_smoke, config_dir=Path(args.config_dir),
              ray_address=args.ray_address, force=tuple(args.force), pareto=not args.no_pareto)
    from graphrec_ray.evaluation.report import build_report

    report = build_report(out["run_dir"], Path(out["run_dir"]) / "report")  # inside the run: safe under a job
    total = sum(out["seconds"].values())
    skipped = f"; up to date: {', '.join(out['skipped'])}" if out["skipped"] else ""
    print(f"\n=== pipeline done: {total:.0f}s{skipped} ===")
    ran = ", ".join(f"{k} {v:.0f} s" for k, v in out["seconds"].items())
    print(f"stages:    {ran or 'none run (all up to date)'}")
    tracking = os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path('mlruns').resolve()}/mlflow.db"
    lines = [("results", f"{report['files'][1]}  (graphrec report --run-dir {args.run_dir})"),
             ("serve it", f"graphrec serve --run-dir {args.run_dir}   then GET /recommend/<user_id>?k=10"),
             ("MLflow", f"mlflow ui --backend-store-uri {tracking}   (pipeline run {out['mlflow_run_id']})"),
             ("dashboard", "http://127.0.0.1:8265 on a `ray start --head --port=6380` cluster "
                           "(GRAPHREC_DASHBOARD=1 for local runs)"),
             ("Ray logs", "/tmp/ray/session_latest/logs   (--verbose streams them here)")]
    pareto_png = Path(out["run_dir"]) / "pareto" / "pareto_curve.png"
    if pareto_png.is_file():
        lines.insert(1, ("Pareto", f"{pareto_png}  (full sweep: graphrec pareto --run-dir {args.run_dir})"))
    for label, text in lines:
        print(f"{label + ':':<11}{text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
