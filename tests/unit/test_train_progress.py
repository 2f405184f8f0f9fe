"""Driver-side progress of Ray Train stages (issue 13, "a quiet, honest terminal").

Regression: `graphrec demo` sat silent for the whole of train-retrieval (87 s) and train-ranker (54 s): the workers'
progress bars go to Ray's worker logs, which the job keeps off the terminal."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from jobs.ray_train import ProgressRelay, format_progress


def test_format_progress_retrieval_and_ranking_rows() -> None:
    row = {"phase": 0.0, "step": 1200.0, "epoch": 4.06, "loss": 0.3141, "val_s": 0.009, "val_recall@20": 0.10412,
           "samples": 9.0}
    assert format_progress("train-retrieval lightgcn_ips", row) == (
        "train-retrieval lightgcn_ips: select step 1200 (epoch 4.1) loss 0.3141 val_recall@20 0.1041")
    assert format_progress("r", {"phase": 1.0, "step": 50.0, "epoch": 1.0, "loss": 0.2}).startswith("r: refit step 50")
    assert format_progress("train-ranker", {"epoch": 3.0, "val_loss/mmoe": 0.41234}) == (
        "train-ranker: epoch 3 val_loss/mmoe 0.4123")


def test_relay_prints_the_latest_report_and_the_last_one(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "run" / "progress.jsonl"
    with ProgressRelay(path, "train-ranker", every_s=0.05, log_every_s=3600) as relay:
        assert path.read_text() == ""  # a fresh file per fit: an earlier run's lines are never replayed
        with open(path, "a") as f:
            f.write(json.dumps({"epoch": 0.0, "val_loss/mmoe": 0.5}) + "\n")
        time.sleep(0.3)
        with open(path, "a") as f:
            f.write(json.dumps({"epoch": 1.0, "val_loss/mmoe": 0.4}) + "\n")
            f.write('{"epoch": 2.0, "val_lo')  # half-written line: not shown, not lost
        time.sleep(0.2)
        assert relay is not None
    lines = [ln.strip() for ln in capsys.readouterr().out.splitlines() if ln.strip()]
    # not a terminal: the first report at once, then nothing until the end, which shows the newest complete one
    assert lines == ["train-ranker: epoch 0 val_loss/mmoe 0.5", "train-ranker: epoch 1 val_loss/mmoe 0.4"]


def test_relay_callback_appends_rank0_report(tmp_path: Path) -> None:
    pytest.importorskip("ray.train")
    path = tmp_path / "progress.jsonl"
    cb = ProgressRelay(path, "x").callback()
    cb.after_report(None, [{"step": 3, "loss": 0.1, "name": "m"}, {"step": 3, "loss": 0.9}], None)
    cb.after_report(None, [], None)
    assert [json.loads(x) for x in path.read_text().splitlines()] == [{"step": 3, "loss": 0.1, "name": "m"}]
