"""The pipeline job on a real two-node Ray cluster (issue 13, "Cluster and Kubernetes": the pipeline job's Ray Train
workers and Serve replicas land on both nodes).

Run as an operator would: ``ray start --head`` plus a second ``ray start --address=...`` node on this machine (each
one logical CPU, its own ports and temp dir, token auth), ``ray job submit --working-dir . -- python -m
jobs.pipeline ...`` on the tiny simulator preset, then Ray's state API (``ray list nodes/actors``) says where the
work ran. Each Ray Train worker asks for one CPU (``<stage>.trainer.cpus_per_worker=1``), so the two workers of a
training stage can only run one per node; the Serve smoke test's two replicas keep the product's defaults
(0.5 CPU each, fit on one node) and Serve spreads them by itself.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from tests.two_node_cluster import TwoNodeCluster

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
FAST = ["simulate.preset=tiny", "retrieval.dim=16", "retrieval.baselines=[popularity]", "retrieval.epochs=2",
        "ranking.epochs=1", "ranking.expert_hidden=[16]", "ranking.tower_hidden=[8]"]
ONE_CPU_WORKERS = ["retrieval.trainer.num_workers=2", "retrieval.trainer.cpus_per_worker=1",
                   "ranking.trainer.num_workers=2", "ranking.trainer.cpus_per_worker=1"]


def test_pipeline_job_trains_and_serves_on_both_nodes(tmp_path: Path) -> None:
    cluster = TwoNodeCluster(cpus=1)
    try:
        cluster.start()
        nodes = cluster.alive_nodes()
        head = {n["node_id"] for n in nodes if n["is_head_node"]}
        worker = {n["node_id"] for n in nodes if not n["is_head_node"]}
        assert len(head) == 1 and len(worker) == 1
        assert all(TwoNodeCluster.WORKER_RESOURCE in n["resources_total"] for n in nodes if not n["is_head_node"])
        both = head | worker

        run_dir, data_dir = tmp_path / "run", tmp_path / "data"
        runtime_env = {"env_vars": {"MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"}}
        job = cluster.ray("job", "submit", f"--address={cluster.dashboard_url}", "--working-dir", str(ROOT),
                          "--runtime-env-json", json.dumps(runtime_env), "--",
                          "python", "-m", "jobs.pipeline", "--run-dir", str(run_dir), "--data-dir", str(data_dir),
                          "--no-pareto", "--serve-smoke", "10", *FAST, *ONE_CPU_WORKERS, "serve.cache.url=",
                          timeout_s=900, check=False)
        log = job.stdout + job.stderr
        assert job.returncode == 0 and "succeeded" in log, log[-5000:]
        assert (run_dir / "pipeline_summary.json").is_file()  # the job wrote into the absolute run dir

        actors = cluster.actors()
        train = Counter(a["node_id"] for a in actors if a["class_name"] == "RayTrainWorker")
        # two training stages (retrieval, ranking) x 2 workers, one per node in each stage
        assert set(train) == both and all(n >= 2 for n in train.values()), train
        replicas = Counter(a["node_id"] for a in actors if a["class_name"].startswith("ServeReplica:graphrec-smoke"))
        assert sum(replicas.values()) >= 2 and set(replicas) == both, replicas
    finally:
        cluster.stop()
    assert cluster.processes() == []  # nothing of this cluster is left running
