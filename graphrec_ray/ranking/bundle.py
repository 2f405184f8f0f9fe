"""``RankerBundle``: the serving side of the ranker (features + MMoE + calibration, in-process).

Loads everything once (user/item feature tables are precomputed at load time by the same
:class:`~graphrec_ray.ranking.features.FeatureBuilder` the trainer used), then scores one user's
candidates per call::

    bundle = RankerBundle.load(Path("runs/demo"))
    p_click, e_value = bundle.score(user_idx=3, item_idx=np.array([5, 9, 11]),
                                    ctx=RequestContext(timestamp=1.5940e9, position_in_session=2,
                                                       seconds_since_last_view=35.0))
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from graphrec_ray.calibration.factory import Calibrator, load_calibrator
from graphrec_ray.errors import DataError
from graphrec_ray.layout import RunLayout
from graphrec_ray.manifest import read_manifest
from graphrec_ray.ranking.context import RequestContext
from graphrec_ray.ranking.factorized import FactorizedScorer
from graphrec_ray.ranking.features import FEATURE_SPEC_FILE, FeatureBuilder, FeatureSpec
from graphrec_ray.ranking.mmoe import CLICK, VALUE, MMoE

#: folder under ``ranking/`` holding every feature table serving needs (so a run serves without the raw data)
SERVING_TABLES = "serving_tables"


def save_serving_tables(builder: FeatureBuilder, ranking_dir: str | Path) -> list[str]:
    """Write the feature builder's tables to ``ranking_dir/serving_tables/``; returns names for the manifest.

    Serving reads these (checked against the ranking manifest's checksums), never the raw KuaiRec side tables,
    so a run directory copied to another machine serves as is.
    """
    names = builder.save(Path(ranking_dir) / SERVING_TABLES)
    return [f"{SERVING_TABLES}/{n}" for n in names]


def load_serving_tables(ranking_dir: str | Path, manifest: dict) -> FeatureBuilder:
    """The feature builder saved by :func:`save_serving_tables`, after verifying its files' checksums."""
    from graphrec_ray.manifest import sha256_file

    ranking_dir = Path(ranking_dir)
    listed = manifest.get("files", {})
    for name in FeatureBuilder.file_names():
        rel = f"{SERVING_TABLES}/{name}"
        if rel not in listed:
            raise DataError(f"{ranking_dir / rel} is not listed in the ranking manifest")
        if sha256_file(ranking_dir / rel) != listed[rel]["sha256"]:
            raise DataError(f"{ranking_dir / rel} does not match its checksum in the ranking manifest")
    return FeatureBuilder.load(ranking_dir / SERVING_TABLES)


def save_model(model: MMoE, hparams: dict, path: str | Path) -> None:
    """``model.pt``: ``{"hparams": ..., "state_dict": ...}`` (see :func:`load_model`)."""
    torch.save({"hparams": hparams, "state_dict": model.state_dict()}, path)


def load_model(path: str | Path) -> MMoE:
    """Rebuild the MMoE from ``model.pt`` in eval mode."""
    from graphrec_ray.ranking.train import make_model

    blob = torch.load(path, map_location="cpu", weights_only=True)
    model = make_model("mmoe", blob["hparams"])
    model.load_state_dict(blob["state_dict"])
    assert isinstance(model, MMoE)
    return model.eval()


class RankerBundle:
    """Calibrated multi-task scorer for one run.

    Attributes:
        version: ``"ranker-<first 12 hex of model.pt sha256>"``; changes whenever the model does.
        builder: the shared feature builder.
        model: the MMoE (eval mode).
        calibrator: maps click logits to calibrated probabilities.
    """

    def __init__(self, builder: FeatureBuilder, model: MMoE, calibrator: Calibrator, version: str) -> None:
        if model.in_dim != builder.dim:
            raise DataError(f"model expects {model.in_dim} features, the feature builder makes {builder.dim}")
        if model.ids.dim and (model.ids.user.num_embeddings, model.ids.item.num_embeddings) != builder.n_ids:
            raise DataError(f"model id tables do not match the run's id maps {builder.n_ids}")
        self.builder, self.model, self.calibrator, self.version = builder, model.eval(), calibrator, version
        self.scorer = FactorizedScorer(self.model, builder)  # item side of the first layer, precomputed

    @classmethod
    def load(cls, run_dir: Path, data_dir: Path | None = None, torch_threads: int = 1) -> "RankerBundle":
        """Read ``ranking/`` only: model, calibrator, manifest and the feature tables in ``serving_tables/``.

        Runs trained before those tables were saved rebuild them from ``retrieval/`` embeddings,
        ``preprocess/`` maps and the raw side tables, which then need ``data_dir`` (default: the one recorded).

        ``torch_threads > 0`` sets torch's (process-wide) intra-op threads; the default 1 is fastest
        for 500-candidate batches on a shared CPU (2 threads were ~8x slower under contention).
        """
        from graphrec_ray.ranking.data import load_feature_builder

        if torch_threads > 0:
            torch.set_num_threads(torch_threads)
        layout = RunLayout(Path(run_dir))
        if not layout.ranker_model.is_file():
            raise DataError(f"{layout.ranker_model} not found: run `graphrec train-ranker --run-dir {run_dir}` first")
        manifest = read_manifest(layout.ranking)
        if (layout.ranking / SERVING_TABLES).is_dir() and data_dir is None:
            builder = load_serving_tables(layout.ranking, manifest)
        else:
            spec = FeatureSpec.load(layout.ranking / FEATURE_SPEC_FILE)
            src = data_dir if data_dir is not None else manifest.get("data_dir")
            builder = load_feature_builder(run_dir, spec, src, spec.session_gap_s)
        sha = manifest["files"][layout.ranker_model.name]["sha256"]
        return cls(builder, load_model(layout.ranker_model), load_calibrator(layout.calibrator), f"ranker-{sha[:12]}")

    def features(self, user_idx: int, item_idx: np.ndarray, ctx: RequestContext,
                 user_emb: np.ndarray | None = None) -> np.ndarray:
        """``(K, D)`` float32 features of the ``K`` candidates (what :meth:`score` feeds the model)."""
        return self.builder.build(np.int64(user_idx), item_idx, ctx.timestamp, ctx.position_in_session,
                                  ctx.seconds_since_last_view, user_emb)

    def score(self, user_idx: int, item_idx: np.ndarray, ctx: RequestContext,
              user_emb: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Calibrated click probability and predicted value for ``K`` candidates of one user.

        Args:
            user_idx: contiguous user index.
            item_idx: ``(K,)`` contiguous item indices.
            ctx: request time and session context.
            user_emb: optional ``(d,)`` user embedding replacing the stored one.

        Returns:
            ``p_click (K,)`` float32 calibrated in [0, 1], ``e_value (K,)`` float32 = predicted
            ``E[log1p(watch_ratio)]``.
        """
        item_idx = np.asarray(item_idx, dtype=np.int64).reshape(-1)
        if item_idx.size == 0:
            return np.zeros(0, np.float32), np.zeros(0, np.float32)
        n_users, n_items = self.builder.n_ids
        if not 0 <= int(user_idx) < n_users or item_idx.min() < 0 or item_idx.max() >= n_items:
            raise IndexError(f"user_idx must be in [0, {n_users}) and item_idx in [0, {n_items})")
        out = self.scorer.outputs(int(user_idx), item_idx, ctx.timestamp, ctx.position_in_session,
                                  ctx.seconds_since_last_view, user_emb)
        p = np.clip(self.calibrator.predict(out[:, CLICK]), 0.0, 1.0).astype(np.float32)
        return p, out[:, VALUE].astype(np.float32)

