"""Recall@K / NDCG@K with exclusion, checked against torchmetrics' retrieval metrics and known answers."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from torchmetrics.retrieval import RetrievalNormalizedDCG, RetrievalRecall

from graphrec_ray.evaluation.ranking_metrics import batch_metrics, evaluate_ranking


def test_known_answer() -> None:
    scores = torch.tensor([[0.9, 0.8, 0.7, 0.6, 0.5]])
    rel = torch.tensor([[False, True, False, False, True]])
    m = batch_metrics(scores, rel, recall_ks=(2, 5), ndcg_ks=(2,))
    assert m["recall@2"].item() == pytest.approx(0.5)
    assert m["recall@5"].item() == pytest.approx(1.0)
    assert m["ndcg@2"].item() == pytest.approx((1 / np.log2(3)) / (1 + 1 / np.log2(3)))


def test_excluded_items_are_skipped_not_counted() -> None:
    # item 0 (top score) is a training positive: excluding it moves item 1 to rank 1
    scores = lambda users: np.array([[0.9, 0.8, 0.1, 0.0]] * len(users))  # noqa: E731
    rel = sp.csr_matrix(np.array([[True, True, False, False]]))
    excl = sp.csr_matrix(np.array([[True, False, False, False]]))
    m = evaluate_ranking(scores, np.array([0]), rel, excl, recall_ks=(1,), ndcg_ks=(1,))
    assert m["recall@1"] == 1.0 and m["ndcg@1"] == 1.0 and m["n_users"] == 1


def test_matches_torchmetrics_on_random_data() -> None:
    rng = np.random.default_rng(0)
    n_users, n_items = 37, 60
    # positive scores: torchmetrics' recall counts only items with preds > 0 as retrieved (ours is sign-free)
    scores = rng.uniform(0.01, 1.0, size=(n_users, n_items)).astype(np.float32)
    rel = rng.random((n_users, n_items)) < 0.1
    rel[3] = False  # a user without relevant items is skipped by both
    excl = rng.random((n_users, n_items)) < 0.2
    ours = evaluate_ranking(lambda u: scores[u], np.arange(n_users), sp.csr_matrix(rel), sp.csr_matrix(excl),
                            recall_ks=(5, 20), ndcg_ks=(5, 20), batch_size=10)
    keep = ~excl  # torchmetrics sees only the non-excluded (user, item) pairs
    uu, ii = np.nonzero(keep)
    preds, target, idx = torch.from_numpy(scores[uu, ii]), torch.from_numpy(rel[uu, ii]), torch.from_numpy(uu)
    for k in (5, 20):
        r = RetrievalRecall(top_k=k, empty_target_action="skip")(preds, target, indexes=idx).item()
        n = RetrievalNormalizedDCG(top_k=k, empty_target_action="skip")(preds, target, indexes=idx).item()
        assert ours[f"recall@{k}"] == pytest.approx(r, abs=1e-6)
        assert ours[f"ndcg@{k}"] == pytest.approx(n, abs=1e-6)
    assert ours["n_users"] == float(((rel & keep).sum(1) > 0).sum())


def test_candidates_restrict_the_ranking() -> None:
    scores = lambda users: np.array([[5.0, 4.0, 3.0, 2.0]] * len(users))  # noqa: E731
    rel = sp.csr_matrix(np.array([[False, False, False, True]]))
    m = evaluate_ranking(scores, np.array([0]), rel, None, candidates=np.array([2, 3]), recall_ks=(1, 2),
                         ndcg_ks=(2,))
    assert m["recall@1"] == 0.0 and m["recall@2"] == 1.0


def test_ips_weighted_metrics_known_answer_and_unit_weights_reduce_to_plain() -> None:
    scores = torch.tensor([[0.9, 0.8, 0.7, 0.6]])
    rel = torch.tensor([[True, False, True, False]])
    w = torch.tensor([1.0, 5.0, 3.0, 1.0])
    m = batch_metrics(scores, rel, recall_ks=(1, 3), ndcg_ks=(2,), item_weights=w, prefix="ips_")
    assert m["ips_recall@1"].item() == pytest.approx(1 / 4)  # hit weight 1 of total relevant weight 4
    assert m["ips_recall@3"].item() == pytest.approx(1.0)
    assert m["ips_ndcg@2"].item() == pytest.approx(1.0 / (3.0 + 1.0 / np.log2(3)))
    plain = batch_metrics(scores, rel, recall_ks=(1, 3), ndcg_ks=(2,))
    ones = batch_metrics(scores, rel, recall_ks=(1, 3), ndcg_ks=(2,), item_weights=torch.ones(4))
    for k in ("recall@1", "recall@3", "ndcg@2"):
        assert ones[k].item() == pytest.approx(plain[k].item())
