"""Maximal Marginal Relevance (Carbonell & Goldstein, 1998) over item-embedding cosine similarity.

Greedy selection: at each step pick the remaining candidate ``i`` maximising

``lambda_diversity * rel_i - (1 - lambda_diversity) * max_{j in selected} cos(e_i, e_j)``.

``lambda_diversity = 1`` is pure relevance order; lower values trade relevance for intra-list diversity.
Relevance is used as given (the final scores of :mod:`graphrec_ray.rerank.scalarize` live in ``[0, w_e + w_v]``,
comparable in size to cosine similarities in ``[-1, 1]``).
"""

from __future__ import annotations

import numpy as np


def unit_rows(emb: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Rows of ``emb`` ``(n, d)`` scaled to unit L2 norm (zero rows stay zero), float32."""
    emb = np.asarray(emb, dtype=np.float32)
    norms = np.linalg.norm(emb, axis=1, keepdims=True)
    return (emb / np.maximum(norms, eps)).astype(np.float32)


def mmr_select(relevance: np.ndarray, unit_emb: np.ndarray, n: int, lambda_diversity: float = 0.8,
               top_n_pool: int | None = None) -> np.ndarray:
    """Pick ``n`` positions out of ``K`` candidates by MMR.

    Args:
        relevance: ``(K,)`` relevance scores (higher is better).
        unit_emb: ``(K, d)`` unit-norm candidate embeddings (see :func:`unit_rows`).
        n: how many to pick (capped at the pool size).
        lambda_diversity: in ``[0, 1]``; 1 = relevance only (default 0.8).
        top_n_pool: consider only the ``top_n_pool`` most relevant candidates (``None`` = all ``K``).

    Returns:
        ``(min(n, pool),)`` int64 positions into the candidate arrays, in selection order. Ties in relevance
        keep the input order (stable), so ``lambda_diversity=1`` equals a stable sort by relevance.
    """
    if not 0.0 <= lambda_diversity <= 1.0:
        raise ValueError(f"lambda_diversity must be in [0, 1], got {lambda_diversity}")
    rel = np.asarray(relevance, dtype=np.float64)
    order = np.argsort(-rel, kind="stable")
    if top_n_pool is not None:
        order = order[: max(int(top_n_pool), 0)]
    n = min(int(n), order.size)
    if n <= 0:
        return np.zeros(0, dtype=np.int64)
    if lambda_diversity >= 1.0:
        return order[:n].astype(np.int64)
    pool_rel = rel[order]
    pool_emb = np.asarray(unit_emb, dtype=np.float32)[order]
    max_sim = np.full(order.size, -np.inf)
    chosen = np.zeros(order.size, dtype=bool)
    picks: list[int] = []
    for step in range(n):
        if step == 0:
            score = pool_rel.copy()
        else:
            score = lambda_diversity * pool_rel - (1.0 - lambda_diversity) * max_sim
        score[chosen] = -np.inf
        best = int(np.argmax(score))  # first maximum = most relevant among ties
        picks.append(best)
        chosen[best] = True
        max_sim = np.maximum(max_sim, pool_emb @ pool_emb[best])
    return order[np.asarray(picks, dtype=np.int64)].astype(np.int64)


def intra_list_diversity(unit_emb: np.ndarray) -> float:
    """``1 - mean pairwise cosine similarity`` of a list's ``(n, d)`` unit embeddings (0.0 for n < 2)."""
    e = np.asarray(unit_emb, dtype=np.float64)
    n = e.shape[0]
    if n < 2:
        return 0.0
    sim = e @ e.T
    return float(1.0 - (sim.sum() - np.trace(sim)) / (n * (n - 1)))
