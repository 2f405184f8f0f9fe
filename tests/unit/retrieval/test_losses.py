"""IPS-weighted BPR loss: known values, clipping, gradient check in float64."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from graphrec_ray.retrieval.losses import ips_bpr_loss, ips_weights, propensity_from_counts


def test_known_value_with_clipping_and_l2() -> None:
    pos = torch.tensor([2.0, 0.0])
    neg = torch.tensor([0.0, 0.0])
    w = torch.tensor([1.0, 50.0])
    ego = torch.tensor([4.0, 2.0])
    got = ips_bpr_loss(pos, neg, w, clip_max=10.0, ego_sq=ego, reg=0.1)
    want = -(1.0 * math.log(1 / (1 + math.exp(-2.0))) + 10.0 * math.log(0.5)) / 2 + 0.5 * 0.1 * 3.0
    assert got.item() == pytest.approx(want, rel=1e-6)


def test_unit_weights_equal_plain_bpr() -> None:
    pos, neg = torch.randn(64), torch.randn(64)
    plain = -torch.nn.functional.logsigmoid(pos - neg).mean()
    assert torch.allclose(ips_bpr_loss(pos, neg, torch.ones(64)), plain)
    assert torch.allclose(ips_bpr_loss(pos, neg, None), plain)


def test_gradcheck_float64() -> None:
    gen = torch.Generator().manual_seed(0)
    pos = torch.randn(16, dtype=torch.float64, generator=gen, requires_grad=True)
    neg = torch.randn(16, dtype=torch.float64, generator=gen, requires_grad=True)
    ego = torch.rand(16, dtype=torch.float64, generator=gen, requires_grad=True)
    w = torch.rand(16, dtype=torch.float64, generator=gen) * 20  # some above the clip
    assert torch.autograd.gradcheck(lambda p, n, e: ips_bpr_loss(p, n, w, 8.0, e, 0.3), (pos, neg, ego))


def test_ips_weights_clip_and_normalise() -> None:
    p = np.array([1.0, 0.5, 0.01, 0.0])
    w = ips_weights(p, clip_max=10.0)
    assert w.tolist() == pytest.approx([1.0, 2.0, 10.0, 10.0])  # p=0 is floored to the smallest positive p
    counts = np.array([3, 1, 0, 0])
    wn = ips_weights(p, clip_max=10.0, normalize_counts=counts)
    assert np.dot(wn, counts) / counts.sum() == pytest.approx(1.0)
    assert wn[2] / wn[0] == pytest.approx(10.0)


def test_propensity_from_counts_is_monotone_in_unit_interval() -> None:
    p = propensity_from_counts(np.array([0, 3, 99]), power=0.5)
    assert p[-1] == 1.0 and np.all(np.diff(p) > 0) and p[0] > 0
