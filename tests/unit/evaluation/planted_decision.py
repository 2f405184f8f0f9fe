"""Planted decision data with a known trade-off (shared by the policy-evaluation and Pareto sweep tests)."""

from __future__ import annotations

import numpy as np

from graphrec_ray.evaluation.decision_data import DecisionData
from graphrec_ray.rerank.mmr import unit_rows
from graphrec_ray.rerank.scalarize import DEFAULT_VALUE_SCALE

U, K, D = 40, 30, 16
N_ITEMS = U * K + 10  # every user has its own candidates; 10 items are never candidates


def planted(seed: int = 0) -> DecisionData:
    """Each user's 30 candidates: the 15 most relevant share category 0 and one embedding direction (a
    redundant head); the other 15 have distinct categories and orthogonal directions (a diverse tail).

    Predictions are planted against the truth: p_click ranks the "click" items (even positions) first, e_value
    the "value" items (odd positions); the truth agrees, so w_engagement buys engagement and w_value buys value.
    """
    rng = np.random.default_rng(seed)
    basis = np.linalg.qr(rng.standard_normal((D, D)))[0]
    item_emb = np.zeros((N_ITEMS, D), np.float32)
    cats = np.zeros(N_ITEMS, np.int64)
    item_idx = np.zeros((U, K), np.int64)
    p = np.zeros((U, K), np.float32)
    v = np.zeros((U, K), np.float32)
    perm = rng.permutation(N_ITEMS)
    for u in range(U):
        items = perm[u * K:(u + 1) * K]
        item_idx[u] = items
        for j, i in enumerate(items):
            if j < 15:
                item_emb[i] = basis[0] + 0.01 * rng.standard_normal(D)
                cats[i] = 0
            else:
                item_emb[i] = basis[1 + (j - 15)]
                cats[i] = 1 + (j - 15)
        rel = np.linspace(0.9, 0.3, K)  # head first
        click_item = np.arange(K) % 2 == 0
        p[u] = np.where(click_item, rel, rel - 0.2)
        v[u] = np.where(click_item, rel - 0.2, rel) * DEFAULT_VALUE_SCALE
    true_click = p.astype(np.float64) * 0.9
    true_value = v.astype(np.float64) / DEFAULT_VALUE_SCALE
    return DecisionData(np.arange(U), 1000 + np.arange(U), item_idx, p, v, true_click, true_value,
                        unit_rows(item_emb), cats, 5000 + np.arange(N_ITEMS), "simulator")
