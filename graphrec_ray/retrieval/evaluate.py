"""Every evaluation protocol for one fitted retrieval model: ``val/``, ``test/``, ``unbiased/<rule>/``, ``true/``.

The exported models are refit on training + validation positives (:mod:`graphrec_ray.retrieval.fit`), so their
``val/`` metrics would be scored on data they were trained on; those are left out (``validation=False``) and the
selection run's validation value is reported instead.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from graphrec_ray.evaluation.protocols import (parse_relevance, temporal_protocol, true_preference_protocol,
                                               unbiased_protocol)
from graphrec_ray.retrieval.base import Recommender
from graphrec_ray.retrieval.config import RetrievalConfig
from graphrec_ray.retrieval.data import Interactions, union_matrix


def evaluate(rec: Recommender, cfg: RetrievalConfig, inputs: dict[str, Any], seen: Interactions,
             ground_truth: Any | None = None, item_weights: np.ndarray | None = None,
             validation: bool = False) -> dict[str, float]:
    """All protocols for one fitted recommender.

    Args:
        rec: the fitted model.
        cfg: relevance thresholds (``positive_threshold``, ``unbiased_relevance``, ``true_pref_threshold``).
        inputs: ``{"val", "test", "eval_small", "user_map", "item_map", "n_items"}`` (``load_inputs``).
        seen: the positives ``rec`` was trained on; excluded from every ranking (at test time also the
            validation positives).
        ground_truth: the simulator's ground truth (adds ``true/``), or None.
        item_weights: ``(I,)`` IPS weights; add ``ips_`` metrics to the temporal protocols.
        validation: also score the validation split (only meaningful when ``rec`` never saw it).
    """
    seen_m = seen.matrix()
    thr = cfg.positive_threshold
    out: dict[str, float] = {}
    val_pos = inputs["val"].relevant(">=", thr).matrix()
    if validation:
        for k, v in temporal_protocol(rec.score, inputs["val"], seen_m, thr, item_weights=item_weights).items():
            out[f"val/{k}"] = v
    test_excl = union_matrix(seen_m, val_pos)
    for k, v in temporal_protocol(rec.score, inputs["test"], test_excl, thr, item_weights=item_weights).items():
        out[f"test/{k}"] = v
    rules = tuple(parse_relevance(s) for s in cfg.unbiased_relevance)
    if len(inputs["eval_small"]):
        for k, v in unbiased_protocol(rec.score, inputs["eval_small"], seen_m, rules).items():
            out[f"unbiased/{k}"] = v
    if ground_truth is not None and len(inputs["eval_small"]):
        users = np.unique(inputs["eval_small"].user_idx)
        p = ground_truth.p_click(inputs["user_map"].to_raw(users),
                                 inputs["item_map"].to_raw(np.arange(inputs["n_items"])))
        for k, v in true_preference_protocol(rec.score, users, p, seen_m, cfg.true_pref_threshold).items():
            out[f"true/{k}"] = v
    return out
