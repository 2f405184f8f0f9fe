"""Top-K ranking metrics with training positives excluded: Recall@K and NDCG@K (binary relevance).

For a user with relevant set :math:`R_u` (after removing excluded items) and ranked list :math:`\\pi_u` over the
candidate items that are not excluded:

.. math::
    \\mathrm{Recall@K} = \\frac{|\\pi_u[:K] \\cap R_u|}{|R_u|}, \\qquad
    \\mathrm{NDCG@K} = \\frac{\\sum_{r=1}^{K} [\\pi_u[r] \\in R_u] / \\log_2(r+1)}
                           {\\sum_{r=1}^{\\min(K, |R_u|)} 1 / \\log_2(r+1)},

averaged over users with :math:`|R_u| > 0` (others are skipped). These are the definitions of torchmetrics'
``RetrievalRecall(top_k=K)`` and ``RetrievalNormalizedDCG(top_k=K)`` with ``empty_target_action="skip"``; a unit
test checks the equality on random data. This module computes them batched on dense score blocks, which is what a
full-catalogue evaluation needs (torchmetrics' per-query grouping is far slower at 10^7 pairs).
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import scipy.sparse as sp
import torch

from graphrec_ray.evaluation.stats import DEFAULT_N_BOOT, bootstrap_mean
from graphrec_ray.interactions import mask_seen_

RECALL_KS = (10, 20, 50, 500)  # Recall cut-offs reported by default
NDCG_KS = (10, 20)  # NDCG cut-offs reported by default


def batch_metrics(scores: torch.Tensor, relevant: torch.Tensor, recall_ks: tuple[int, ...] = RECALL_KS,
                  ndcg_ks: tuple[int, ...] = NDCG_KS, item_weights: torch.Tensor | None = None,
                  prefix: str = "") -> dict[str, torch.Tensor]:
    """Per-user metrics for a dense block.

    Args:
        scores: ``(B, C)`` float scores, ``-inf`` for excluded candidates (they are never counted as hits).
        relevant: ``(B, C)`` bool relevance; relevant-but-excluded entries are ignored.
        recall_ks, ndcg_ks: cut-offs (K larger than C is clamped to C).
        item_weights: optional ``(C,)`` non-negative gains per candidate: a relevant item counts ``w_i`` instead of
            1 in the recall numerator/denominator and as DCG gain (IDCG from the sorted relevant gains). With
            ``w_i = 1 / p_i`` these are the IPS-weighted (unbiased-in-expectation) metrics of Yang et al.
            (RecSys 2018) for a log with exposure bias.
        prefix: prepended to the metric names (e.g. ``"ips_"``).

    Returns:
        ``{"recall@K": (B,), "ndcg@K": (B,), "n_relevant": (B,)}`` float64 tensors; users with no relevant item
        have NaN metrics.
    """
    B, C = scores.shape
    rel = relevant & torch.isfinite(scores)
    n_rel = rel.sum(1).to(torch.float64)
    kmax = min(C, max(recall_ks + ndcg_ks))
    top = torch.topk(scores, kmax, dim=1).indices
    gain = rel.to(torch.float64)
    if item_weights is not None:
        gain = gain * item_weights.to(torch.float64)[None, :]
    hits = torch.gather(gain, 1, top)  # (B, kmax) gains of the ranked items
    total = gain.sum(1)
    out: dict[str, torch.Tensor] = {"n_relevant": n_rel}
    nan = torch.full_like(n_rel, float("nan"))
    has = (n_rel > 0) & (total > 0)
    cum = hits.cumsum(1)
    for k in recall_ks:
        kk = min(k, kmax)
        out[f"{prefix}recall@{k}"] = torch.where(has, cum[:, kk - 1] / total.clamp(min=1e-300), nan)
    disc = 1.0 / torch.log2(torch.arange(2, kmax + 2, dtype=torch.float64))
    ideal = torch.topk(gain, kmax, dim=1).values  # best possible gains, sorted
    for k in ndcg_ks:
        kk = min(k, kmax)
        dcg = (hits[:, :kk] * disc[:kk]).sum(1)
        idcg = (ideal[:, :kk] * disc[:kk]).sum(1)
        out[f"{prefix}ndcg@{k}"] = torch.where(has, dcg / idcg.clamp(min=1e-300), nan)
    return out


def evaluate_ranking(score_fn: Callable[[np.ndarray], np.ndarray | torch.Tensor], users: np.ndarray,
                     relevant: sp.csr_matrix, exclude: sp.csr_matrix | None = None,
                     candidates: np.ndarray | None = None, recall_ks: tuple[int, ...] = RECALL_KS,
                     ndcg_ks: tuple[int, ...] = NDCG_KS, batch_size: int = 512,
                     gain_fn: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
                     gain_k: int = 10, item_weights: np.ndarray | None = None, ci: bool = False,
                     n_boot: int = DEFAULT_N_BOOT, ci_seed: int = 0,
                     per_user: dict[str, np.ndarray] | None = None) -> dict[str, float]:
    """Mean Recall@K / NDCG@K over ``users`` that have at least one relevant, non-excluded candidate.

    Args:
        score_fn: ``(B,) user_idx -> (B, I)`` scores over the whole catalogue (e.g. ``Recommender.score``).
        users: ``(n,)`` user indices to evaluate.
        relevant: ``(n, I)`` bool CSR, row ``r`` for ``users[r]``.
        exclude: ``(n, I)`` bool CSR of items never to rank (the seen items of
            :func:`graphrec_ray.interactions.evaluation_policy`), or None.
        candidates: ``(C,)`` item indices ranked (default: all I items); other items are dropped.
        recall_ks, ndcg_ks: cut-offs (defaults 10/20/50/500 and 10/20).
        batch_size: users per block (default 512).
        gain_fn: optional ``(users (B,), items (B, gain_k)) -> (B, gain_k)`` true gains of the recommended items
            (e.g. true click probabilities); adds ``mean_gain@gain_k`` averaged over all ``users``.
        gain_k: list length for ``gain_fn`` (default 10).
        item_weights: optional ``(I,)`` IPS weights; adds ``ips_recall@K`` / ``ips_ndcg@K`` (see
            :func:`batch_metrics`).
        ci: also emit ``<metric>/ci_low`` and ``<metric>/ci_high``, the 95% percentile-bootstrap interval over
            users (:func:`graphrec_ray.evaluation.stats.bootstrap_mean`) of every metric (default False).
        n_boot: bootstrap resamples when ``ci`` (default 1000).
        ci_seed: resampling seed when ``ci`` (default 0).
        per_user: optional dict filled in place with one ``(n,)`` float64 array per metric, aligned with
            ``users`` (NaN where a user has no relevant item), for paired comparisons
            (:mod:`graphrec_ray.evaluation.compare`); also ``"users"`` (``(n,)`` the user indices).

    Returns:
        ``{"recall@10": ..., "ndcg@10": ..., "n_users": users with a relevant item, ...}``; the mean of a metric
        is the mean of its per-user values over the users where it is not NaN.
    """
    users = np.asarray(users, dtype=np.int64)
    relevant = sp.csr_matrix(relevant, dtype=bool)
    exclude = None if exclude is None else sp.csr_matrix(exclude, dtype=bool)
    w_t = None if item_weights is None else torch.as_tensor(np.asarray(item_weights, dtype=np.float64))
    if candidates is not None:
        candidates = np.asarray(candidates, dtype=np.int64)
        relevant = relevant[:, candidates]
        exclude = None if exclude is None else exclude[:, candidates]
        w_t = None if w_t is None else w_t[torch.from_numpy(candidates)]
    parts: dict[str, list[np.ndarray]] = {}
    n_eval = 0
    for start in range(0, users.size, batch_size):
        stop = min(users.size, start + batch_size)
        s = torch.as_tensor(score_fn(users[start:stop]), dtype=torch.float32)
        if candidates is not None:
            s = s[:, torch.from_numpy(candidates)]
        s = s.clone()
        if exclude is not None:
            mask_seen_(s, exclude[start:stop])
        rel = torch.from_numpy(relevant[start:stop].toarray())
        m = batch_metrics(s, rel, recall_ks, ndcg_ks)
        if w_t is not None:
            m.update({k: v for k, v in batch_metrics(s, rel, recall_ks, ndcg_ks, w_t, "ips_").items()
                      if k != "n_relevant"})
        has = (m.pop("n_relevant") > 0).numpy()
        n_eval += int(has.sum())
        for key, v in m.items():
            parts.setdefault(key, []).append(np.where(has, v.numpy(), np.nan))
        if gain_fn is not None:
            top = torch.topk(s, min(gain_k, s.shape[1]), dim=1).indices.numpy()
            items = top if candidates is None else candidates[top]
            gain = np.asarray(gain_fn(users[start:stop], items), dtype=np.float64).mean(axis=1)
            parts.setdefault(f"mean_gain@{gain_k}", []).append(gain)  # over all users, relevant or not
    values = {k: np.concatenate(v) for k, v in parts.items()}
    out: dict[str, float] = {}
    for key in sorted(values):
        v = values[key][np.isfinite(values[key])]
        out[key] = float(v.mean()) if v.size else float("nan")
    if ci:
        for key in sorted(values):
            out.update(bootstrap_mean(values[key], n_boot=n_boot, seed=ci_seed).as_dict(key))
    if per_user is not None:
        per_user.update(values)
        per_user["users"] = users.copy()
    out["n_users"] = float(n_eval)
    return out
