"""The shared Ray Train wiring (jobs/ray_train.py): a killed worker is restarted by FailureConfig and the
run resumes from its last checkpoint instead of starting over."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import torch.distributed

from graphrec_ray.training import TrainerConfig
from jobs.ray_train import fit, load_checkpoint, report, result_state, world_rank


def _loop_that_dies_once(config: dict[str, Any]) -> None:
    state = load_checkpoint()
    start = 0 if state is None else state["epoch"] + 1
    history = [] if state is None else state["starts"]
    history = [*history, start] if start not in history else history
    for epoch in range(start, config["epochs"]):
        torch.distributed.barrier()  # as a DDP step would: no rank runs ahead of a dead peer
        report({"epoch": epoch, "start": start}, state={"epoch": epoch, "starts": history})
        marker = Path(config["marker"])
        if epoch == 1 and world_rank() == 1 and not marker.exists():
            marker.write_text("killed")
            # Die a while after reporting, as a worker does mid-epoch: reports reach the controller on its health
            # poll (0.25 s here), and a death in the same instant could beat the epoch's checkpoint to it, in which
            # case restarting from scratch would be right and the test would not test resume.
            time.sleep(1.0)
            os._exit(1)  # a hard worker death (no exception, no clean shutdown)


def test_killed_worker_is_restarted_and_resumes_from_checkpoint(ray_cluster: None, tmp_path: Path) -> None:
    tcfg = TrainerConfig(num_workers=2, cpus_per_worker=0.5, max_failures=1)
    result = fit(_loop_that_dies_once, {"epochs": 4, "marker": str(tmp_path / "marker")}, tcfg,
                 tmp_path / "store", "dies-once")
    assert (tmp_path / "marker").exists()  # the worker really died once
    state = result_state(result)
    assert state is not None and state["epoch"] == 3
    # First attempt started at 0; the restarted group resumed after the last reported checkpoint, not at 0.
    assert state["starts"][0] == 0 and len(state["starts"]) == 2 and state["starts"][1] >= 1
