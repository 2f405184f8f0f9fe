"""The three retrieval evaluation protocols.

(a) **temporal**: rank the whole catalogue for users of the temporal test (or validation) split of
    ``big_matrix``; relevant = that split's interactions with ``watch_ratio >= 0.5``; items the user interacted
    with in training are excluded. Biased: what was shown decides what can be relevant.
(b) **unbiased** (KuaiRec's protocol): ``small_matrix`` is fully observed (every one of its users watched every
    one of its items), so rank all ``small_matrix`` items for its users and call an item relevant when its
    observed watch ratio passes a threshold: ``>= 0.5`` (our click label) and ``> 2.0`` (the dataset authors').
    Training positives are excluded (none on simulator data; a few on real KuaiRec).
(c) **true preference** (simulator only): relevant = true ``P(click) >= threshold`` from the simulator's ground
    truth, over all items, for the ``small_matrix`` users; also ``mean_gain@10`` = mean true click probability of
    the ten recommended items (threshold-free).

Each protocol takes ``score_fn(user_idx (B,)) -> (B, I)`` scores, so it applies to every
:class:`graphrec_ray.retrieval.base.Recommender`.

Every metric comes with its 95% bootstrap interval over users (``<metric>/ci_low``, ``<metric>/ci_high``; pass
``ci=False`` to skip it, e.g. in a per-epoch validation loop). A ``per_user`` dict, when given, is filled with the
per-user values under the same names as the returned metrics, for paired comparisons of models
(:mod:`graphrec_ray.evaluation.compare`).
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import scipy.sparse as sp

from graphrec_ray.evaluation.ranking_metrics import NDCG_KS, RECALL_KS, evaluate_ranking
from graphrec_ray.interactions import Interactions

ScoreFn = Callable[[np.ndarray], np.ndarray]

#: (name suffix, comparison, threshold) of the unbiased protocol's relevance definitions
UNBIASED_RELEVANCE: tuple[tuple[str, str, float], ...] = (("ge0.5", ">=", 0.5), ("gt2.0", ">", 2.0))


def parse_relevance(spec: str) -> tuple[str, str, float]:
    """``">=0.5"`` -> ``("ge0.5", ">=", 0.5)``; ``">2"`` -> ``("gt2.0", ">", 2.0)``."""
    spec = spec.strip()
    for op, tag in ((">=", "ge"), (">", "gt")):
        if spec.startswith(op):
            try:
                v = float(spec[len(op):])
            except ValueError:
                break
            return f"{tag}{v}", op, v
    raise ValueError(f"relevance spec must look like '>=0.5' or '>2.0', got {spec!r}")


def _rows(users: np.ndarray, mat: sp.csr_matrix) -> sp.csr_matrix:
    return sp.csr_matrix(mat[users], dtype=bool)


def temporal_protocol(score_fn: ScoreFn, split: Interactions, exclude: sp.csr_matrix, threshold: float = 0.5,
                      recall_ks: tuple[int, ...] = RECALL_KS, ndcg_ks: tuple[int, ...] = NDCG_KS,
                      item_weights: np.ndarray | None = None, ci: bool = True,
                      per_user: dict[str, np.ndarray] | None = None) -> dict[str, float]:
    """Protocol (a) on a held-out split (validation or test).

    Args:
        score_fn: scores over all items.
        split: the held-out interactions (with watch ratios).
        exclude: ``(U, I)`` CSR of items to exclude per user (training positives; for test also validation ones).
        threshold: relevance is ``watch_ratio >= threshold`` (default 0.5).
        item_weights: optional ``(I,)`` IPS weights ``1/p_i``; adds ``ips_recall@K`` / ``ips_ndcg@K``, the
            exposure-debiased estimates (Yang et al. 2018) that early stopping of IPS models should monitor: plain
            metrics on a biased split reward popularity and pick the epochs where IPS has undone the least bias.
    """
    rel = split.relevant(">=", threshold)
    users = np.unique(rel.user_idx)
    mat = rel.matrix()
    return evaluate_ranking(score_fn, users, _rows(users, mat), _rows(users, exclude), None, recall_ks, ndcg_ks,
                            item_weights=item_weights, ci=ci, per_user=per_user)


def unbiased_protocol(score_fn: ScoreFn, eval_small: Interactions, exclude: sp.csr_matrix,
                      relevance: tuple[tuple[str, str, float], ...] = UNBIASED_RELEVANCE,
                      recall_ks: tuple[int, ...] = RECALL_KS,
                      ndcg_ks: tuple[int, ...] = NDCG_KS, ci: bool = True,
                      per_user: dict[str, np.ndarray] | None = None) -> dict[str, float]:
    """Protocol (b): rank ``small_matrix`` items for ``small_matrix`` users; one metric set per relevance rule.

    Returns:
        keys ``"<name>/recall@10"`` etc. for each ``(name, op, threshold)`` in ``relevance``.
    """
    users = np.unique(eval_small.user_idx)
    items = np.unique(eval_small.item_idx)
    out: dict[str, float] = {}
    for name, op, thr in relevance:
        mat = eval_small.relevant(op, thr).matrix()
        pu: dict[str, np.ndarray] | None = None if per_user is None else {}
        m = evaluate_ranking(score_fn, users, _rows(users, mat), _rows(users, exclude), items, recall_ks, ndcg_ks,
                             ci=ci, per_user=pu)
        out.update({f"{name}/{k}": v for k, v in m.items()})
        if per_user is not None and pu is not None:
            per_user["users"] = pu.pop("users")
            per_user.update({f"{name}/{k}": v for k, v in pu.items()})
    return out


def true_preference_protocol(score_fn: ScoreFn, users: np.ndarray, p_click: np.ndarray, exclude: sp.csr_matrix,
                             threshold: float = 0.5, recall_ks: tuple[int, ...] = RECALL_KS,
                             ndcg_ks: tuple[int, ...] = NDCG_KS, gain_k: int = 10, ci: bool = True,
                             per_user: dict[str, np.ndarray] | None = None) -> dict[str, float]:
    """Protocol (c): relevance from the simulator's true click probabilities.

    Args:
        score_fn: scores over all items.
        users: ``(n,)`` user indices (the ``small_matrix`` users).
        p_click: ``(n, I)`` true click probabilities for ``users`` x all items in ``item_idx`` order (build it with
            ``GroundTruth.p_click(user_map.to_raw(users), item_map.to_raw(arange(I)))``).
        exclude: ``(U, I)`` CSR of training positives.
        threshold: relevant when true ``P(click) >= threshold`` (default 0.5).
    """
    users = np.asarray(users, dtype=np.int64)
    p = np.asarray(p_click, dtype=np.float64)
    row_of = {int(u): r for r, u in enumerate(users)}
    rel = sp.csr_matrix(p >= threshold)

    def gain(batch_users: np.ndarray, items: np.ndarray) -> np.ndarray:
        rows = np.array([row_of[int(u)] for u in batch_users])
        return p[rows[:, None], items]

    return evaluate_ranking(score_fn, users, rel, _rows(users, exclude), None, recall_ks, ndcg_ks,
                            gain_fn=gain, gain_k=gain_k, ci=ci, per_user=per_user)
