"""Every evaluation protocol for one fitted retrieval model: ``val/``, ``test/``, ``unbiased/<rule>/``, ``true/``.

The exported models are refit on training + validation positives (:mod:`graphrec_ray.retrieval.fit`), so their
``val/`` metrics would be scored on data they were trained on; those are left out (``validation=False``) and the
selection run's validation value is reported instead.

Which items each protocol excludes is the evaluation seen-item policy of :mod:`graphrec_ray.interactions`
(:func:`~graphrec_ray.interactions.evaluation_policy`): the positives of the splits the model was fit on, plus the
validation positives when scoring ``test``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from graphrec_ray.evaluation.protocols import (parse_relevance, temporal_protocol, true_preference_protocol,
                                               unbiased_protocol)
from graphrec_ray.interactions import Interactions, evaluation_policy, mask_seen_, seen_from
from graphrec_ray.retrieval.base import Recommender
from graphrec_ray.retrieval.config import RetrievalConfig


def evaluate(rec: Recommender, cfg: RetrievalConfig, inputs: dict[str, Any], fit_splits: tuple[str, ...],
             ground_truth: Any | None = None, item_weights: np.ndarray | None = None,
             validation: bool = False, per_user: dict[str, np.ndarray] | None = None) -> dict[str, float]:
    """All protocols for one fitted recommender.

    Args:
        rec: the fitted model.
        cfg: relevance thresholds (``positive_threshold``, ``unbiased_relevance``, ``true_pref_threshold``).
        inputs: ``{"val", "test", "eval_small", "user_map", "item_map", "n_items"}`` (``load_inputs``).
        fit_splits: the splits ``rec`` was trained on (``("train",)``, or ``("train", "val")`` for a refit); their
            positives are excluded from every ranking, at test time also the validation positives
            (:func:`graphrec_ray.interactions.evaluation_policy`).
        ground_truth: the simulator's ground truth (adds ``true/``), or None.
        item_weights: ``(I,)`` IPS weights; add ``ips_`` metrics to the temporal protocols.
        validation: also score the validation split (only meaningful when ``rec`` never saw it).
        per_user: optional dict filled with the per-user values of the reported protocols, keys prefixed like
            the metrics (``test/recall@20``, ``unbiased/gt2.0/ndcg@10``, ``true/...``; ``<protocol>/users`` the
            user indices), for paired comparisons over seeds (:mod:`graphrec_ray.evaluation.compare`).
    """
    parts: dict[str, dict[str, np.ndarray]] = {"test": {}, "unbiased": {}, "true": {}}
    thr = cfg.positive_threshold

    def seen_for(target: str) -> Any:
        return seen_from(inputs, evaluation_policy(fit_splits, thr, target))

    seen_m = seen_for("eval_small")
    out: dict[str, float] = {}
    if validation:
        for k, v in temporal_protocol(rec.score, inputs["val"], seen_for("val"), thr,
                                      item_weights=item_weights).items():
            out[f"val/{k}"] = v
    test_excl = seen_for("test")
    for k, v in temporal_protocol(rec.score, inputs["test"], test_excl, thr, item_weights=item_weights,
                                  per_user=parts["test"]).items():
        out[f"test/{k}"] = v
    rules = tuple(parse_relevance(s) for s in cfg.unbiased_relevance)
    if len(inputs["eval_small"]):
        for k, v in unbiased_protocol(rec.score, inputs["eval_small"], seen_m, rules,
                                      per_user=parts["unbiased"]).items():
            out[f"unbiased/{k}"] = v
    if ground_truth is not None and len(inputs["eval_small"]):
        users = np.unique(inputs["eval_small"].user_idx)
        p = ground_truth.p_click(inputs["user_map"].to_raw(users),
                                 inputs["item_map"].to_raw(np.arange(inputs["n_items"])))
        for k, v in true_preference_protocol(rec.score, users, p, seen_m, cfg.true_pref_threshold,
                                             per_user=parts["true"]).items():
            out[f"true/{k}"] = v
    if per_user is not None:
        per_user.update({f"{proto}/{k}": v for proto, vals in parts.items() for k, v in vals.items()})
    return out


def per_user_unbiased(score_fn: Any, eval_small: Interactions, seen: Interactions, op: str = ">=",
                      threshold: float = 0.5, k: int = 20) -> dict[str, np.ndarray]:
    """Per-user Recall@k / NDCG@k of the unbiased protocol (``small_matrix`` users x items), for intervals.

    Args:
        score_fn: ``(B,) -> (B, I)`` scores.
        eval_small: the fully observed matrix; relevant = ``watch_ratio op threshold``.
        seen: positives the model trained on (excluded).
        op, threshold: relevance rule (default ``>= 0.5``, the click label).
        k: cut-off (default 20).

    Returns:
        ``{"users": (n,), "recall@k": (n,), "ndcg@k": (n,)}``; NaN for users with no relevant item (the same users
        for every model, so arrays of two models pair up for ``paired_difference``).
    """
    import torch

    from graphrec_ray.evaluation.ranking_metrics import batch_metrics

    users = np.unique(eval_small.user_idx)
    items = np.unique(eval_small.item_idx)
    rel = eval_small.relevant(op, threshold).matrix()[users][:, items]
    excl = seen.matrix()[users][:, items]
    s = torch.as_tensor(np.asarray(score_fn(users))[:, items], dtype=torch.float32).clone()
    mask_seen_(s, excl)
    m = batch_metrics(s, torch.from_numpy(rel.toarray()), recall_ks=(k,), ndcg_ks=(k,))
    return {"users": users, f"recall@{k}": m[f"recall@{k}"].numpy(), f"ndcg@{k}": m[f"ndcg@{k}"].numpy()}


def per_user_true(score_fn: Any, users: np.ndarray, p_click: np.ndarray, seen: Interactions,
                  threshold: float = 0.5, k: int = 20) -> dict[str, np.ndarray]:
    """Per-user Recall@k / NDCG@k against the simulator's true preferences (``p_click >= threshold``).

    Args:
        users: ``(n,)``; p_click: ``(n, I)`` true click probabilities over all items.
    """
    import torch

    from graphrec_ray.evaluation.ranking_metrics import batch_metrics

    users = np.asarray(users, dtype=np.int64)
    s = torch.as_tensor(np.asarray(score_fn(users)), dtype=torch.float32).clone()
    mask_seen_(s, seen.matrix()[users])
    m = batch_metrics(s, torch.from_numpy(np.asarray(p_click) >= threshold), recall_ks=(k,), ndcg_ks=(k,))
    return {"users": users, f"recall@{k}": m[f"recall@{k}"].numpy(), f"ndcg@{k}": m[f"ndcg@{k}"].numpy()}
