"""IPS-weighted BPR loss: known values, clipping, gradient check in float64."""

from __future__ import annotations

import inspect
import math

import numpy as np
import pytest
import torch

from graphrec_ray.retrieval.losses import ips_bpr_loss, ips_weights, propensity_from_counts


def test_known_value_with_weights_and_l2() -> None:
    pos = torch.tensor([2.0, 0.0])
    neg = torch.tensor([0.0, 0.0])
    w = torch.tensor([1.0, 10.0])
    ego = torch.tensor([4.0, 2.0])
    got = ips_bpr_loss(pos, neg, w, ego_sq=ego, reg=0.1)
    want = -(1.0 * math.log(1 / (1 + math.exp(-2.0))) + 10.0 * math.log(0.5)) / 2 + 0.5 * 0.1 * 3.0
    assert got.item() == pytest.approx(want, rel=1e-6)


def test_ips_clip_is_applied_once_in_ips_weights_not_again_in_the_loss() -> None:
    """Regression, issue 9 item 4 "IPS clip applied twice": ``ips_bpr_loss`` used to clamp the weights at
    ``clip_max`` again after ``ips_weights`` had clipped (and normalised) them. The clip now lives only in
    ``ips_weights``; the loss is linear in the weights it is given."""
    p = np.array([1.0, 0.1, 0.001])
    w = ips_weights(p, clip_max=50.0)
    assert w.tolist() == pytest.approx([1.0, 10.0, 50.0])  # the one clip: 1/0.001 = 1000 -> 50
    pos, neg = torch.zeros(3), torch.zeros(3)
    got = ips_bpr_loss(pos, neg, torch.from_numpy(w))
    assert got.item() == pytest.approx(math.log(2.0) * (1.0 + 10.0 + 50.0) / 3, rel=1e-6)
    big = torch.tensor([1000.0, 1000.0, 1000.0])  # weights given to the loss are used as given, never clamped
    assert ips_bpr_loss(pos, neg, big).item() == pytest.approx(1000.0 * math.log(2.0), rel=1e-6)
    assert "clip_max" not in inspect.signature(ips_bpr_loss).parameters


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
    assert torch.autograd.gradcheck(lambda p, n, e: ips_bpr_loss(p, n, w, e, 0.3), (pos, neg, ego))


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
