"""Negative samplers never return a training positive; hard negatives come from the top-K non-positives."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from graphrec_ray.retrieval.negatives import (HardNegatives, MixedNegatives, PositiveSet, UniformNegatives,
                                              mine_hard_candidates)


def _positives(seed: int = 0) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    U, I = 40, 30
    dense = rng.random((U, I)) < rng.uniform(0.05, 0.95, size=(U, 1))  # sparse to nearly full users
    dense[:, -1] = False  # every user has a negative
    dense[0, :-1] = True  # user 0 has exactly one non-positive item (29)
    dense[1, :] = False
    return sp.csr_matrix(dense)


def test_positive_set_membership() -> None:
    pos = _positives()
    ps = PositiveSet(pos)
    u, i = np.nonzero(pos.toarray())
    assert ps.contains(u, i).all()
    nu, ni = np.nonzero(~pos.toarray())
    assert not ps.contains(nu, ni).any()


def test_uniform_never_returns_a_positive_and_covers_the_complement() -> None:
    pos = _positives()
    s = UniformNegatives(pos)
    users = np.repeat(np.arange(pos.shape[0]), 200)
    items = s.sample(users, np.random.default_rng(1))
    assert not pos[users, items].any()
    assert set(items[users == 0]) == {29}
    assert len(set(items[users == 1])) == 30  # uniform over all items for a user without positives


def test_uniform_raises_for_user_with_every_item() -> None:
    full = sp.csr_matrix(np.ones((1, 5), dtype=bool))
    with pytest.raises(ValueError):
        UniformNegatives(full).sample(np.array([0]), np.random.default_rng(0))


def test_hard_candidates_are_top_k_non_positives() -> None:
    pos = _positives()
    gen = torch.Generator().manual_seed(0)
    ue, ie = torch.randn(40, 8, generator=gen), torch.randn(30, 8, generator=gen)
    cand = mine_hard_candidates(ue, ie, pos, k=5, batch_size=7)
    scores = (ue @ ie.T).numpy()
    dense = pos.toarray()
    for u in range(40):
        allowed = np.flatnonzero(~dense[u])
        want = allowed[np.argsort(-scores[u, allowed])][:5]
        got = cand[u][cand[u] >= 0]
        assert got.tolist() == want.tolist()
    assert (cand[0] >= 0).sum() == 1  # only one non-positive item exists for user 0


@pytest.mark.parametrize("ratio", [0.0, 0.5, 1.0])
def test_mixed_sampler_never_returns_a_positive(ratio: float) -> None:
    pos = _positives(3)
    uni = UniformNegatives(pos)
    gen = torch.Generator().manual_seed(1)
    cand = mine_hard_candidates(torch.randn(40, 4, generator=gen), torch.randn(30, 4, generator=gen), pos, k=10)
    cand[5] = -1  # a user without candidates falls back to uniform
    mixed = MixedNegatives(uni, HardNegatives(cand, uni), ratio)
    users = np.repeat(np.arange(40), 100)
    items = mixed.sample(users, np.random.default_rng(2))
    assert not pos[users, items].any()
    if ratio == 1.0:  # all hard: inside each user's candidate list
        ok = [items[b] in cand[users[b]] for b in range(users.size) if users[b] != 5]
        assert all(ok)
