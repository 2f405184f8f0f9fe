"""``graphrec demo``: the whole pipeline on one Ray cluster, on the embedded default or your data.

Stages, in order, each reading its own ``configs/<stage>.yaml``::

    simulate → preprocess (Ray Data) → train-retrieval (Ray Train) → build-index (FAISS)
             → train-ranker (Ray Train) → serve smoke test (Ray Serve over HTTP)

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
from jobs.common import init_ray

STAGES = ("simulate", "preprocess", "retrieval", "index", "ranking", "serve")


def _stage_configs() -> dict[str, tuple[str, Callable[[], type]]]:
    """stage -> (default YAML, lazy config class); imported lazily so --help stays instant."""

    def sim() -> type:
        from graphrec_ray.data.simulator import SimulatorConfig
        return SimulatorConfig

    def pre() -> type:
        from graphrec_ray.data.config import PreprocessConfig
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

    return {"simulate": ("configs/simulate.yaml", sim), "preprocess": ("configs/preprocess.yaml", pre),
            "retrieval": ("configs/retrieval.yaml", ret), "index": ("configs/index.yaml", idx),
            "ranking": ("configs/ranking.yaml", rank)}


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
        serve_smoke: int = 20, config_dir: Path = Path("configs"), ray_address: str | None = None) -> dict[str, Any]:
    """Run every stage into ``run_dir``; returns per-stage summaries and seconds."""
    import jobs.build_index
    import jobs.preprocess
    import jobs.simulate
    import jobs.train_ranker
    import jobs.train_retrieval

    run_dir, data_dir = Path(run_dir).resolve(), Path(data_dir).resolve()
    timings: dict[str, float] = {}
    summaries: dict[str, Any] = {}

    def step(name: str, fn: Callable[[], Any]) -> Any:
        print(f"\n=== {name} ===", flush=True)
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
    elif not (data_dir / "big_matrix.csv").is_file():
        raise UserError(f"no big_matrix.csv in {data_dir}: run `graphrec download` or drop --no-simulate")

    init_ray(ray_address)
    pre_cfg = load_stage("preprocess", [f"data_dir={data_dir}", *overrides["preprocess"]], config_dir)
    step("preprocess", lambda: jobs.preprocess.run(pre_cfg, run_dir))
    ret_cfg = load_stage("retrieval", overrides["retrieval"], config_dir)
    step("train-retrieval", lambda: jobs.train_retrieval.run(ret_cfg, run_dir))
    idx_cfg = load_stage("index", overrides["index"], config_dir)
    step("build-index", lambda: jobs.build_index.run(idx_cfg, run_dir))
    rank_cfg = load_stage("ranking", overrides["ranking"], config_dir)
    step("train-ranker", lambda: jobs.train_ranker.run(rank_cfg, run_dir))
    if serve_smoke > 0:
        import jobs.serve

        serve_args = ["--run-dir", str(run_dir), "--smoke", str(serve_smoke),
                      "--config", str(config_dir / "serve.yaml"), *overrides["serve"]]
        rc = step("serve-smoke", lambda: jobs.serve.main(serve_args))
        if rc != 0:
            raise UserError("serve smoke test failed (see the report above)")
    summary = {"run_dir": str(run_dir), "data_dir": str(data_dir), "seconds": timings}
    (run_dir / "pipeline_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return {**summary, "stages": summaries}


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
    p.add_argument("--ray-address", default=None, help="Ray cluster address (default: local or the job's)")
    p.add_argument("--verbose", action="store_true",
                   help="stream Ray's worker and actor logs to the terminal (default: kept in Ray's log folder)")
    p.add_argument("overrides", nargs="*", metavar="stage.key=value")
    args = p.parse_args(argv)
    if args.verbose:
        os.environ["GRAPHREC_VERBOSE"] = "1"
    out = run(Path(args.run_dir), Path(args.data_dir), split_overrides(args.overrides),
              simulate=not args.no_simulate, serve_smoke=args.serve_smoke, config_dir=Path(args.config_dir),
              ray_address=args.ray_address)
    print("\n=== pipeline done ===")
    print(json.dumps({"run_dir": out["run_dir"], "seconds": out["seconds"]}, indent=2))
    print(f"serve it: graphrec serve --run-dir {args.run_dir}   (then GET /recommend/<user_id>?k=10)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
