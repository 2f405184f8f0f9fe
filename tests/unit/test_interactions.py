"""The one seen-item module (:mod:`graphrec_ray.interactions`): known seen sets per purpose, and the same removal
through retrieval (``Recommender.recommend``), evaluation (the protocols) and serving (``remove_seen``).

Regression for issue 9: seen items were implemented three times (``retrieval/base.py``, ``evaluation/metrics.py``,
``serving/request_path.py``) with two policies that disagreed silently; now each purpose names its policy and all
three removal shapes are checked against the same known answers here.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from graphrec_ray.evaluation.protocols import temporal_protocol
from graphrec_ray.interactions import (SERVING, Interactions, SeenPolicy, evaluation_policy, exclude_seen,
                                       mask_seen_, remove_seen, seen_csr, seen_from)
from graphrec_ray.retrieval.base import EmbeddingRecommender

U, I = 3, 6
THR = 0.5
#: (user, item, watch_ratio); positives have watch_ratio >= 0.5
ROWS = {
    "train": Interactions(np.array([0, 0, 1]), np.array([0, 1, 2]), U, I, np.array([1.0, 0.2, 0.9])),
    "val": Interactions(np.array([0, 2]), np.array([3, 4]), U, I, np.array([0.8, 0.1])),
    "test": Interactions(np.array([0, 1]), np.array([5, 1]), U, I, np.array([0.9, 0.7])),
}
#: scores: user 0 prefers 0 > 1 > 3 > 5 > 2 > 4; user 1 prefers 2 > 1 > 0 > 3 > 4 > 5; user 2 prefers 4 > ... > 0
SCORES = np.array([[6, 5, 2, 4, 1, 3], [4, 5, 6, 3, 2, 1], [1, 2, 3, 4, 6, 5]], dtype=np.float32)


def rows_of(m) -> list[set[int]]:  # noqa: ANN001
    return [set(m[u].indices.tolist()) for u in range(m.shape[0])]


@pytest.mark.parametrize("policy, expected", [
    # evaluation of a train-only fit on test: train + val positives (the non-positive (0, 1) stays rankable)
    (evaluation_policy(("train",), THR, "test"), [{0, 3}, {2}, set()]),
    # ... on val: train positives only
    (evaluation_policy(("train",), THR, "val"), [{0}, {2}, set()]),
    # a refit on train + val, scored on eval_small: the positives it was fit on
    (evaluation_policy(("train", "val"), THR, "eval_small"), [{0, 3}, {2}, set()]),
    # serving: every logged row of every split, any label
    (SERVING, [{0, 1, 3, 5}, {1, 2}, {4}]),
])
def test_seen_sets_per_purpose(policy: SeenPolicy, expected: list[set[int]]) -> None:
    assert rows_of(seen_from(ROWS, policy)) == expected


def test_policies_name_their_splits() -> None:
    assert evaluation_policy(("train",), THR, "test") == SeenPolicy(("train", "val"), THR)
    assert evaluation_policy(("train", "val"), THR, "test") == SeenPolicy(("train", "val"), THR)
    assert SERVING == SeenPolicy(("train", "val", "test"), None)
    with pytest.raises(KeyError, match="test"):
        seen_from({"train": ROWS["train"]}, SERVING)


def test_seen_csr_merges_duplicates_sorts_items_and_is_the_matrix() -> None:
    inter = Interactions(np.array([1, 0, 1, 1, 0]), np.array([4, 2, 0, 4, 2]), 3, 5)
    indptr, items = seen_csr(inter.user_idx, inter.item_idx, 3)
    assert indptr.tolist() == [0, 1, 3, 3] and items.tolist() == [2, 0, 4]
    assert indptr.dtype == np.int64 and items.dtype == np.int32
    m = inter.matrix()
    assert m.shape == (3, 5) and m.dtype == bool and m.nnz == 3
    assert m.indptr.tolist() == indptr.tolist() and m.indices.tolist() == items.tolist()


@pytest.mark.parametrize("policy", [evaluation_policy(("train",), THR, "test"), SERVING])
def test_retrieval_evaluation_and_serving_remove_the_same_items(policy: SeenPolicy) -> None:
    seen = seen_from(ROWS, policy)
    users = np.arange(U)
    rec = EmbeddingRecommender(np.eye(U, dtype=np.float32), SCORES.T.copy())  # score(u) == SCORES[u]
    top, top_scores = rec.recommend(users, k=I, seen=seen)
    indptr, items = seen_csr(*np.nonzero(seen.toarray()), U)
    dense = exclude_seen(SCORES, users, seen)
    block = mask_seen_(torch.from_numpy(SCORES.copy()), seen)
    for u in users:
        retrieval = top[u][np.isfinite(top_scores[u])].tolist()
        serving = remove_seen(np.argsort(-SCORES[u], kind="stable"), items[indptr[u]:indptr[u + 1]]).tolist()
        assert retrieval == serving
        assert set(retrieval) == set(range(I)) - set(seen[u].indices.tolist())
        assert np.isneginf(dense[u]).tolist() == np.isneginf(block[u].numpy()).tolist() == \
            [i in set(seen[u].indices.tolist()) for i in range(I)]


def test_evaluation_ranks_after_removing_train_and_val_positives() -> None:
    # test relevance (watch_ratio >= 0.5): user 0 -> {5}, user 1 -> {1}. After removing the seen positives
    # user 0 ranks 1, 5, 2, 4 (item 1, a non-positive training row, stays) and user 1 ranks 1, 0, 3, 4, 5.
    seen = seen_from(ROWS, evaluation_policy(("train",), THR, "test"))
    m = temporal_protocol(lambda u: SCORES[u], ROWS["test"], seen, THR, recall_ks=(1, 2), ndcg_ks=(2,), ci=False)
    assert m["recall@1"] == pytest.approx(0.5)
    assert m["recall@2"] == pytest.approx(1.0)
    assert m["ndcg@2"] == pytest.approx((1 / np.log2(3) + 1.0) / 2)
    # without the removal the seen items 0 and 2 would come first: recall@1 drops to 0
    none = temporal_protocol(lambda u: SCORES[u], ROWS["test"], sp.csr_matrix((U, I), dtype=bool), THR,
                             recall_ks=(1,), ndcg_ks=(1,), ci=False)
    assert none["recall@1"] == pytest.approx(0.0)


def test_remove_seen_drops_faiss_padding_and_keeps_order() -> None:
    assert remove_seen(np.array([7, -1, 3, 5, 2]), np.array([2, 5], dtype=np.int32)).tolist() == [7, 3]
    assert remove_seen(np.array([4, 1]), np.zeros(0, dtype=np.int32)).tolist() == [4, 1]


def test_load_seen_reads_the_run_directory_under_each_policy(tmp_path) -> None:  # noqa: ANN001
    import pyarrow as pa
    import pyarrow.parquet as pq

    from graphrec_ray.errors import DataError
    from graphrec_ray.interactions import load_seen
    from graphrec_ray.layout import RunLayout

    layout = RunLayout(tmp_path)
    layout.preprocess.mkdir()
    for name, rows in ROWS.items():
        pq.write_table(pa.table({"user_idx": rows.user_idx, "item_idx": rows.item_idx,
                                 "watch_ratio": rows.watch_ratio}), layout.split(name))
    for policy in (SERVING, evaluation_policy(("train",), THR, "test")):
        indptr, items = load_seen(layout, U, policy)
        expected = seen_from(ROWS, policy)
        assert indptr.tolist() == expected.indptr.tolist() and items.tolist() == expected.indices.tolist()
    with pytest.raises(DataError, match="out of range"):
        load_seen(layout, 1)
    with pytest.raises(DataError, match="missing"):
        load_seen(RunLayout(tmp_path / "none"), U)
