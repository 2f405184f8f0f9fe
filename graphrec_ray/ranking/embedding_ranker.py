"""A dependency-free ranker from retrieval embeddings, with the ``RankerBundle`` serving API.

Used when no trained ranker is available (and by the serving tests, where its scores are known exactly):

``p_click = sigmoid(scale * <e_u, e_i> + bias)``, ``e_value = value_max * p_click``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from graphrec_ray.layout import RunLayout
from graphrec_ray.manifest import MANIFEST_NAME
from graphrec_ray.ranking.context import RequestContext
from graphrec_ray.rerank.scalarize import DEFAULT_VALUE_SCALE


class EmbeddingRanker:
    """Scores candidates by a logistic link on the retrieval inner product.

    Args:
        user_emb: ``(n_users, d)`` float32.
        item_emb: ``(n_items, d)`` float32.
        version: version string reported to serving.
        scale: slope of the logistic link (default 1.0).
        bias: intercept of the logistic link (default 0.0).
        value_max: ``e_value`` when ``p_click = 1`` (default ``log1p(5)``).
    """

    def __init__(self, user_emb: np.ndarray, item_emb: np.ndarray, version: str, scale: float = 1.0,
                 bias: float = 0.0, value_max: float = DEFAULT_VALUE_SCALE) -> None:
        self.user_emb = np.asarray(user_emb, dtype=np.float32)
        self.item_emb = np.asarray(item_emb, dtype=np.float32)
        self.version = version
        self.scale, self.bias, self.value_max = float(scale), float(bias), float(value_max)

    @classmethod
    def load(cls, run_dir: Path) -> "EmbeddingRanker":
        """Read ``retrieval/{user,item}_embeddings.npy``; version ``dot-{embedding_version}``."""
        layout = RunLayout(Path(run_dir))
        doc = json.loads((layout.retrieval / MANIFEST_NAME).read_text())
        return cls(np.load(layout.user_embeddings), np.load(layout.item_embeddings),
                   f"dot-{doc.get('embedding_version', 'unknown')}")

    def score(self, user_idx: int, item_idx: np.ndarray, ctx: RequestContext,
              user_emb: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(p_click, e_value)``, each ``(K,)`` float32, for ``item_idx`` ``(K,)``; ``ctx`` is unused."""
        u = self.user_emb[user_idx] if user_emb is None else np.asarray(user_emb, dtype=np.float32)
        logits = self.scale * (self.item_emb[np.asarray(item_idx, dtype=np.int64)] @ u) + self.bias
        p = (1.0 / (1.0 + np.exp(-logits))).astype(np.float32)
        return p, (self.value_max * p).astype(np.float32)
