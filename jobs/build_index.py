"""Index job: retrieval item embeddings -> FAISS index (``run_dir/index/items.faiss`` + manifest).

The stage is :mod:`graphrec_ray.index.stage`; this job parses arguments and logs the summary to MLflow.

Run as ``graphrec build-index --run-dir runs/demo``, ``python -m jobs.build_index`` or
``ray job submit --working-dir . -- python -m jobs.build_index --config configs/index.yaml``. FAISS runs in
this process (one node); no Ray cluster is needed.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from graphrec_ray.index import stage
from graphrec_ray.index.config import IndexConfig
from graphrec_ray.layout import RunLayout
from jobs.common import load_stage_config, make_parser, mlflow_run

DEFAULT_CONFIG = "configs/index.yaml"


def run(cfg: IndexConfig, run_dir: Path, *, progress: bool = True, track: bool = True) -> dict[str, Any]:
    """The index stage (:func:`graphrec_ray.index.stage.run`) for ``run_dir``, logged to MLflow when ``track``."""
    summary = stage.run(cfg, RunLayout(Path(run_dir)), progress)
    if track:
        import mlflow

        with mlflow_run("build_index", f"index-{cfg.factory}", cfg):
            mlflow.log_metrics({k: float(v) for k, v in summary.items()
                                if isinstance(v, (int, float)) and not isinstance(v, bool)})
    return summary


def main(argv: list[str] | None = None) -> int:
    """CLI entry: ``graphrec build-index [--config F] [--run-dir R] [key=value ...]``."""
    p = make_parser("graphrec build-index", "Build the FAISS item index from retrieval embeddings.", DEFAULT_CONFIG)
    p.add_argument("--no-mlflow", action="store_true", help="do not log to MLflow")
    args = p.parse_args(argv)
    cfg = load_stage_config(IndexConfig, args)
    summary = run(cfg, Path(args.run_dir), track=not args.no_mlflow)
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
