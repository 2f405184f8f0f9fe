"""The factorised scorer equals the MMoE on the full feature matrix, for any user, moment and id setting."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from graphrec_ray.ranking.data import load_feature_builder
from graphrec_ray.ranking.factorized import FactorizedScorer, side_columns
from graphrec_ray.ranking.features import ITEM_SIDE, PAIR_SIDE, USER_SIDE
from graphrec_ray.ranking.mmoe import MMoE


def _model(builder, id_dim: int, seed: int) -> MMoE:  # noqa: ANN001
    torch.manual_seed(seed)
    n_users, n_items = builder.n_ids
    model = MMoE(builder.dim, n_experts=3, expert_hidden=(16, 8), tower_hidden=(4,), n_users=n_users,
                 n_items=n_items, id_dim=id_dim)
    rng = np.random.default_rng(seed)  # a non-trivial normalisation, fitted on real feature rows
    sample = builder.build(rng.integers(0, n_users, 500), rng.integers(0, n_items, 500),
                           1_593_500_000.0 + rng.uniform(0, 3e6, 500), rng.integers(0, 20, 500),
                           rng.uniform(-1, 600, 500))
    model.norm.fit(torch.from_numpy(sample))
    with torch.no_grad():  # id embeddings large enough to matter
        for p in model.ids.parameters():
            p.normal_(0, 0.5)
    return model.eval()


def test_sides_partition_the_feature_blocks(tiny_run: Path) -> None:
    builder = load_feature_builder(tiny_run)
    cols = np.concatenate([side_columns(builder, s) for s in (USER_SIDE, ITEM_SIDE, PAIR_SIDE)])
    assert np.array_equal(np.sort(cols), np.arange(builder.dim))


@pytest.mark.parametrize("id_dim", [0, 3])
def test_factorised_outputs_equal_the_full_model(tiny_run: Path, id_dim: int) -> None:
    builder = load_feature_builder(tiny_run)
    model = _model(builder, id_dim, seed=id_dim)
    scorer = FactorizedScorer(model, builder, chunk=7)  # several chunks while precomputing the item table
    n_users, n_items = builder.n_ids
    rng = np.random.default_rng(1)
    fresh = rng.normal(size=builder.spec.emb_dim).astype(np.float32)
    cases = [(0, 1_593_600_000.0, 0, -1.0, None), (n_users - 1, 1_595_000_000.5, 7, 45.0, None),
             (3, 1_590_000_000.0, 2, 3600.0, fresh),  # before the first daily row, a fresher user embedding
             (5, float("nan"), 0, -1.0, None)]  # unknown time
    for user, ts, pos, gap, emb in cases:
        items = rng.permutation(n_items)[:40]
        got = scorer.outputs(user, items, ts, pos, gap, emb)
        x = torch.from_numpy(builder.build(np.int64(user), items, ts, pos, gap, emb))
        with torch.no_grad():
            want = model(x, torch.full((items.size,), user), torch.from_numpy(items)).numpy()
        assert got.shape == (40, 2)
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
        assert np.abs(want).max() > 0.05  # outputs not trivially zero


def test_item_side_is_precomputed_once(tiny_run: Path) -> None:
    builder = load_feature_builder(tiny_run)
    scorer = FactorizedScorer(_model(builder, 2, seed=5), builder)
    calls = []
    builder_fill = builder.fill_item_side
    object.__setattr__(builder, "fill_item_side", lambda *a: (calls.append(1), builder_fill(*a)))
    scorer.outputs(1, np.arange(10), 1_594_000_000.0)
    assert calls == []  # a request never rebuilds item-side features
