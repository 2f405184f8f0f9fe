"""Where each stage reads and writes inside one run directory.

A run directory holds everything one pipeline run produced, one sub-folder per
stage, each with a ``manifest.json`` (see :mod:`graphrec_ray.manifest`)::

    runs/<name>/
      preprocess/  train.parquet val.parquet test.parquet eval_small.parquet
                   quarantine.parquet item_propensity.parquet
                   user_map.parquet item_map.parquet manifest.json
      retrieval/   user_embeddings.npy item_embeddings.npy manifest.json metrics.json checkpoints/
      ranking/     model.pt calibrator.json metrics.csv metrics.md reliability.png manifest.json
      index/       items.faiss manifest.json
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class RunLayout:
    """Paths of one run directory (nothing is created until a stage writes)."""

    root: Path

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

    # ranking outputs
    @property
    def ranker_model(self) -> Path:
        return self.ranking / "model.pt"

    @property
    def calibrator(self) -> Path:
        return self.ranking / "calibrator.json"

    # index outputs
    @property
    def faiss_index(self) -> Path:
        return self.index / "items.faiss"
