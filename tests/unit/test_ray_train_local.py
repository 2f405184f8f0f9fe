"""Ray Train local mode (num_workers=0, no cluster) through jobs/ray_train.py.

Regression: local-mode checkpoints were written to fresh temp folders that were never removed (hundreds of
`graphrec-ckpt-*` folders piled up in /tmp); they now live under the run's storage, newest `num_to_keep` kept.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from graphrec_ray.training import TrainerConfig
from jobs.ray_train import fit, report, result_state


def _loop(config: dict[str, Any]) -> None:
    for epoch in range(config["epochs"]):
        report({"epoch": epoch}, state={"epoch": epoch, "w": 2 * epoch})


def test_local_mode_keeps_newest_checkpoints_under_storage(tmp_path: Path) -> None:
    result = fit(_loop, {"epochs": 5}, TrainerConfig(num_workers=0, num_to_keep=2), tmp_path, "local")
    assert result_state(result) == {"epoch": 4, "w": 8}
    kept = sorted(p.name for p in (tmp_path / "local" / "local_checkpoints").iterdir())
    assert kept == ["checkpoint_000003", "checkpoint_000004"]
