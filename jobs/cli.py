"""The ``graphrec`` command: one subcommand per pipeline stage.

Each subcommand is a module in ``jobs/`` (or ``serve_app/``) exposing
``main(argv: list[str] | None) -> int``; modules are imported only when their
subcommand runs, so ``graphrec --help`` is instant. User mistakes
(:class:`graphrec_ray.errors.UserError`) print one line, never a traceback.
"""

from __future__ import annotations

import importlib
import sys

from graphrec_ray.errors import UserError

#: subcommand -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "simulate": ("jobs.simulate", "write a seeded KuaiRec-layout dataset with ground truth"),
    "download": ("jobs.download", "download and verify the real KuaiRec 2.0 archive (needs internet)"),
    "preprocess": ("jobs.preprocess", "validate, label, split raw logs with Ray Data"),
    "train-retrieval": ("jobs.train_retrieval", "train LightGCN / baselines on Ray Train and evaluate"),
    "tune-retrieval": ("tune.retrieval_search", "Ray Tune search of retrieval hyperparameters on validation data"),
    "build-index": ("jobs.build_index", "build the FAISS item index from retrieval embeddings"),
    "train-ranker": ("jobs.train_ranker", "train the MMoE ranker on Ray Train and calibrate it"),
    "serve": ("jobs.serve", "start the Ray Serve application for a run directory"),
    "kuberay": ("jobs.kuberay", "write the KubeRay RayService manifest (kuberay.yaml) from `serve build`"),
    "demo": ("jobs.pipeline", "run the whole pipeline on the embedded default (simulator data)"),
    "report": ("graphrec_ray.evaluation.report", "results table and calibration curve from a run's artifacts"),
    "ope": ("jobs.ope", "off-policy estimators (IPS..Cascade-DR) checked against the simulator's true policy values"),
    "ab": ("jobs.ab_test", "mock A/B test of reranking policies on simulated users, true effects beside estimates"),
    "pareto": ("tune.pareto", "Ray Tune sweep of the reranking weights: Pareto front, knee, pick a setting to serve"),
}


def _usage() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: graphrec <command> [--help] [options]", "", "commands:"]
    lines += [f"  {name:<{width}}  {desc}" for name, (_, desc) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"graphrec: unknown command '{name}'\n\n{_usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[name][0])
    try:
        return int(module.main(rest) or 0)
    except UserError as exc:
        print(f"graphrec {name}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"graphrec {name}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
