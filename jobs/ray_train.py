"""Ray Train wiring shared by the retrieval and ranking jobs.

``fit`` runs a per-worker training loop on a ``TorchTrainer`` (DDP across
``TrainerConfig.num_workers``; ``num_workers=0`` is Ray Train's in-process local
mode). Inside the loop, ``save_checkpoint``/``load_checkpoint`` move one ``dict``
of tensors and numbers through Ray Train checkpoints, so an interrupted run
started again with the same ``storage_path`` and ``name`` resumes from its last
checkpoint (Train V2 has no ``trainer.restore``), and ``FailureConfig`` restarts
a killed worker group from it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from graphrec_ray.training import TrainerConfig

STATE_FILE = "state.pt"


PROGRESS_FILE = "progress.jsonl"


def format_progress(label: str, metrics: dict[str, Any]) -> str:
    """One terminal line from a worker's report: ``label: select step 1200 (epoch 4.1) loss 0.31 val_recall@20
    0.104`` (retrieval) or ``label: epoch 3 val_loss/mmoe 0.412`` (ranking)."""
    parts = [f"{label}:"]
    if "phase" in metrics:
        parts.append("refit" if float(metrics["phase"]) >= 1 else "select")
    if "step" in metrics:
        parts.append(f"step {int(metrics['step'])}")
        if "epoch" in metrics:
            parts.append(f"(epoch {float(metrics['epoch']):.1f})")
    elif "epoch" in metrics:
        parts.append(f"epoch {int(metrics['epoch'])}")
    shown = [k for k in metrics if k == "loss" or (k.startswith("val_") and k != "val_s")][:3]  # val_s: seconds
    parts += [f"{k} {float(metrics[k]):.4g}" for k in shown if isinstance(metrics[k], (int, float))]
    return " ".join(parts)


class ProgressRelay:
    """Driver-side progress of a Ray Train run without Ray's logs.

    Ray Train V2 calls user callbacks in its controller process, not in the driver, and the job keeps Ray's worker
    logs off the terminal; so the callback (:meth:`callback`) appends each report of rank 0 to a JSON-lines file
    under the run's storage, and a driver thread (:meth:`__enter__`) shows the latest report: one line rewritten in
    place on a terminal, else a line every ``log_every_s`` seconds and the last one. On a cluster
    the storage path is shared storage (``cluster.yaml``), which the driver can read too.
    """

    def __init__(self, path: Path, label: str, every_s: float = 1.0, log_every_s: float = 15.0) -> None:
        """``every_s``: poll period; ``log_every_s``: at most one line this often when stdout is not a terminal
        (a terminal gets one line rewritten in place)."""
        self.path, self.label, self.every_s, self.log_every_s = path, label, every_s, log_every_s
        self._stop = None  # threading.Event while running
        self._thread = None

    def callback(self) -> Any:
        """The ``ray.train.UserCallback`` that writes the reports (picklable: it holds the path only)."""
        from ray.train import UserCallback

        path = str(self.path)

        class _Write(UserCallback):
            def after_report(self, run_context: Any, metrics: list[dict[str, Any]], checkpoint: Any) -> None:
                if metrics:
                    row = {k: v for k, v in metrics[0].items() if isinstance(v, (int, float, str))}
                    with open(path, "a") as f:
                        f.write(json.dumps(row) + "\n")

        return _Write()

    def _follow(self) -> None:
        import sys

        tty = sys.stdout.isatty()
        offset, shown_at, width = 0, 0.0, 0
        latest = None  # newest report not shown yet
        while True:
            stopping = self._stop.wait(self.every_s)
            if self.path.exists():
                with open(self.path) as f:
                    f.seek(offset)
                    for line in f:
                        if not line.endswith("\n"):
                            break  # being written: read again next time
                        offset += len(line.encode())
                        try:
                            latest = json.loads(line)
                        except ValueError:
                            pass
            now = time.monotonic()
            if latest is not None and (tty or stopping or now - shown_at >= self.log_every_s):
                text = "  " + format_progress(self.label, latest)
                if tty:  # one line, rewritten in place
                    print("\r" + text.ljust(width), end="", flush=True)
                    width = len(text)
                else:
                    print(text, flush=True)
                shown_at, latest = now, None
            if stopping:
                if tty and width:
                    print(flush=True)
                return

    def __enter__(self) -> "ProgressRelay":
        import threading

        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text("")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._follow, name="train-progress", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def worker_progress(progress: bool, tcfg: TrainerConfig) -> bool:
    """Whether rank 0 should draw its own progress bar: only where its output reaches this terminal (in-process
    local mode, or ``--verbose`` streaming Ray's worker logs); elsewhere :class:`ProgressRelay` shows progress."""
    from jobs.common import verbose_logs

    return progress and (tcfg.num_workers == 0 or verbose_logs())


def fit(train_loop: Callable[[dict[str, Any]], None], loop_config: dict[str, Any], tcfg: TrainerConfig,
        storage_path: str | Path, name: str, progress_label: str | None = None) -> Any:
    """Run ``train_loop(loop_config)`` on Ray Train; returns the ``ray.train.Result``.

    Args:
        train_loop: per-worker function; must call ``ray.train.report`` (via :func:`save_checkpoint` or directly).
        loop_config: picklable dict handed to every worker.
        tcfg: workers, resources, failure retries, checkpoints kept.
        storage_path: directory for Ray Train run state and checkpoints (absolute path is used).
        name: run name; the same (storage_path, name) resumes from the latest checkpoint.
        progress_label: show the run's latest report on this (driver) terminal, prefixed with it
            (:class:`ProgressRelay`); None: silent.
    """
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    scaling = ScalingConfig(
        num_workers=tcfg.num_workers,
        use_gpu=tcfg.use_gpu,
        resources_per_worker=None if tcfg.num_workers == 0 else {"CPU": tcfg.cpus_per_worker},
    )
    storage = Path(storage_path).resolve()
    relay = ProgressRelay(storage / name / PROGRESS_FILE, progress_label) if progress_label else None
    run_config = RunConfig(
        name=name,
        storage_path=str(storage),
        failure_config=FailureConfig(max_failures=tcfg.max_failures),
        checkpoint_config=CheckpointConfig(num_to_keep=tcfg.num_to_keep),
        callbacks=[relay.callback()] if relay else None,
    )
    trainer = TorchTrainer(train_loop, train_loop_config=loop_config, scaling_config=scaling, run_config=run_config)
    if tcfg.num_workers == 0:
        # Local mode runs the loop in this process and copies no checkpoint to storage: report() writes them here.
        _LOCAL.update(root=storage / name / "local_checkpoints", keep=tcfg.num_to_keep)
    with relay or contextlib.nullcontext():
        return trainer.fit()


#: where :func:`report` keeps local-mode checkpoints (set by :func:`fit`); the newest ``keep`` are kept.
_LOCAL: dict[str, Any] = {"root": None, "keep": 2}


def world_rank() -> int:
    import ray.train

    return int(ray.train.get_context().get_world_rank())


def world_size() -> int:
    import ray.train

    return int(ray.train.get_context().get_world_size())


_NDARRAY = "__ndarray__"  # marks a numpy array stored as a tensor in a checkpoint


def _to_tensors(obj: Any) -> Any:
    """Numpy arrays -> ``{__ndarray__: tensor}`` (recursively), so checkpoints load with ``weights_only=True``."""
    if isinstance(obj, np.ndarray):
        return {_NDARRAY: torch.from_numpy(np.ascontiguousarray(obj))}
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, dict):
        return {k: _to_tensors(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_tensors(v) for v in obj)
    return obj


def _from_tensors(obj: Any) -> Any:
    if isinstance(obj, dict):
        if set(obj) == {_NDARRAY}:
            return obj[_NDARRAY].numpy()
        return {k: _from_tensors(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_from_tensors(v) for v in obj)
    return obj


def save_state(state: dict[str, Any], path: str | Path) -> None:
    """Write a checkpoint's state: tensors, numpy arrays (as tensors), numbers, strings, lists and dicts."""
    torch.save(_to_tensors(state), path)


def load_state(path: str | Path) -> dict[str, Any]:
    """Read :func:`save_state`'s file with ``weights_only=True``: checkpoints sit on shared storage, and a pickle
    that runs code on load must never be trusted from there."""
    return _from_tensors(torch.load(path, map_location="cpu", weights_only=True))


def report(metrics: dict[str, float], state: dict[str, Any] | None = None) -> None:
    """Report ``metrics`` from every worker; with ``state``, rank 0 also saves it as a checkpoint."""
    import ray.train

    if state is None or world_rank() != 0:
        ray.train.report(metrics)
        return
    if _local_mode():
        # Local mode keeps the reported directory as the checkpoint itself (nothing is copied to storage),
        # so it must outlive this call: numbered folders under the run's storage, the newest `keep` kept.
        root = Path(_LOCAL["root"] or tempfile.mkdtemp(prefix="graphrec-local-ckpt-"))
        root.mkdir(parents=True, exist_ok=True)
        done = sorted(root.glob("checkpoint_*"))
        path = root / f"checkpoint_{(int(done[-1].name.split('_')[1]) + 1) if done else 0:06d}"
        path.mkdir()
        save_state(state, path / STATE_FILE)
        ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(str(path)))
        for old in done[: max(0, len(done) + 1 - int(_LOCAL["keep"]))]:
            shutil.rmtree(old, ignore_errors=True)
        return
    with tempfile.TemporaryDirectory() as tmp:
        save_state(state, os.path.join(tmp, STATE_FILE))
        ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(tmp))


def _local_mode() -> bool:
    from ray.train.v2.api.context import LocalTrainContext

    import ray.train

    return isinstance(ray.train.get_context(), LocalTrainContext)


def load_checkpoint() -> dict[str, Any] | None:
    """The state saved by the latest :func:`report` with ``state`` of this run, or None on a fresh start."""
    import ray.train

    ckpt = ray.train.get_checkpoint()
    if ckpt is None:
        return None
    with ckpt.as_directory() as d:
        return load_state(os.path.join(d, STATE_FILE))


def result_state(result: Any) -> dict[str, Any] | None:
    """Load the state dict of a finished run's latest checkpoint (driver side)."""
    if result.checkpoint is None:
        return None
    with result.checkpoint.as_directory() as d:
        return load_state(os.path.join(d, STATE_FILE))
