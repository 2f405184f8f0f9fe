"""Where each stage reads and writes inside one run directory.

A run directory holds everything one pipeline run produced, one sub-folder per
stage, each with a ``manifest.json`` (see :mod:`graphrec_ray.manifest`)::

    runs/<name>/
      preprocess/  train.parquet val.parquet test.parquet eval_small.parquet
                   quarantine.parquet item_propensity.parquet
                   user_map.parquet item_map.parquet manifest.json
      retrieval/   user_embeddings.npy item_embeddings.npy manifest.json metrics.json search.json
                   per_user/seed=<seed>.npz checkpoints/
      ranking/     model.pt calibrator.json feature_spec.json serving_tables/ metrics.csv metrics.md
                   reliability.png calibration_curves.json history.json baselines.pt
                   calibrator_single_task.json manifest.json prepared/ ray_train/
      index/       items.faiss manifest.json

Every file name lives here (the class constants name files *inside* a stage folder, for readers that get a folder,
e.g. the report's several ``ranking*`` folders); stages and tools take paths from a :class:`RunLayout`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from graphrec_ray.manifest import MANIFEST_NAME


@dataclass(frozen=True)
class RunLayout:
    """Paths of one run directory (nothing is created until a stage writes)."""

    root: Path

    # file names inside a stage folder
    RETRIEVAL_METRICS: ClassVar[str] = "metrics.json"
    SEARCH: ClassVar[str] = "search.json"  # graphrec tune-retrieval's choice
    PER_USER: ClassVar[str] = "per_user"  # one seed=<seed>.npz per training seed (graphrec report)
    RANKING_METRICS: ClassVar[str] = "metrics.csv"
    RANKING_METRICS_MD: ClassVar[str] = "metrics.md"
    RELIABILITY_PLOT: ClassVar[str] = "reliability.png"
    CALIBRATION_CURVES: ClassVar[str] = "calibration_curves.json"
    HISTORY: ClassVar[str] = "history.json"
    BASELINES: ClassVar[str] = "baselines.pt"
    SINGLE_TASK_CALIBRATOR: ClassVar[str] = "calibrator_single_task.json"
    PREPARED: ClassVar[str] = "prepared"  # feature tables and samples the ranker's workers memory-map

    @property
    def preprocess(self) -> Path:
        return self.root / "preprocess"

    @property
    def retrieval(self) -> Path:
        return self.root / "retrieval"

    @property
    def ranking(self) -> Path:
        return self.root / "ranking"

    @property
    def index(self) -> Path:
        return self.root / "index"

    def manifest(self, stage_dir: Path) -> Path:
        """``<stage_dir>/manifest.json`` (``stage_dir`` e.g. ``layout.retrieval``)."""
        return stage_dir / MANIFEST_NAME

    # preprocess outputs
    def split(self, name: str) -> Path:
        """``name`` in ``train``, ``val``, ``test``, ``eval_small``."""
        return self.preprocess / f"{name}.parquet"

    @property
    def quarantine(self) -> Path:
        return self.preprocess / "quarantine.parquet"

    @property
    def item_propensity(self) -> Path:
        return self.preprocess / "item_propensity.parquet"

    @property
    def user_map(self) -> Path:
        return self.preprocess / "user_map.parquet"

    @property
    def item_map(self) -> Path:
        return self.preprocess / "item_map.parquet"

    # retrieval outputs
    @property
    def user_embeddings(self) -> Path:
        return self.retrieval / "user_embeddings.npy"

    @property
    def item_embeddings(self) -> Path:
        return self.retrieval / "item_embeddings.npy"

    @property
    def retrieval_metrics(self) -> Path:
        return self.retrieval / self.RETRIEVAL_METRICS

    @property
    def search(self) -> Path:
        return self.retrieval / self.SEARCH

    @property
    def per_user_dir(self) -> Path:
        return self.retrieval / self.PER_USER

    def per_user(self, seed: int) -> Path:
        """Per-user metrics of training seed ``seed``."""
        return self.per_user_dir / f"seed={seed}.npz"

    @property
    def retrieval_checkpoints(self) -> Path:
        return self.retrieval / "checkpoints"

    # ranking outputs
    @property
    def ranker_model(self) -> Path:
        return self.ranking / "model.pt"

    @property
    def calibrator(self) -> Path:
        return self.ranking / "calibrator.json"

    @property
    def ranking_metrics(self) -> Path:
        return self.ranking / self.RANKING_METRICS

    @property
    def ranking_metrics_md(self) -> Path:
        return self.ranking / self.RANKING_METRICS_MD

    @property
    def reliability_plot(self) -> Path:
        return self.ranking / self.RELIABILITY_PLOT

    @property
    def calibration_curves(self) -> Path:
        return self.ranking / self.CALIBRATION_CURVES

    @property
    def ranking_history(self) -> Path:
        return self.ranking / self.HISTORY

    @property
    def ranker_baselines(self) -> Path:
        return self.ranking / self.BASELINES

    @property
    def single_task_calibrator(self) -> Path:
        return self.ranking / self.SINGLE_TASK_CALIBRATOR

    @property
    def ranking_prepared(self) -> Path:
        return self.ranking / self.PREPARED

    @property
    def ranking_ray_train(self) -> Path:
        return self.ranking / "ray_train"

    # index outputs
    @property
    def faiss_index(self) -> Path:
        return self.index / "items.faiss"
