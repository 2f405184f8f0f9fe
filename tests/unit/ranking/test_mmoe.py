"""MMoE: gates are per-task softmaxes, output/tower shapes, batched experts equal per-expert MLPs; budget match."""

from __future__ import annotations

import torch

from graphrec_ray.ranking.layers import mlp, n_params
from graphrec_ray.ranking.mmoe import MMoE, ParallelExperts
from graphrec_ray.ranking.single_task import SingleTaskMLP, budget_hidden, mlp_params


def test_gates_sum_to_one_per_task_and_shapes() -> None:
    torch.manual_seed(0)
    m = MMoE(in_dim=10, n_experts=5, expert_hidden=(12, 6), tower_hidden=(4,))
    out, gates = m(torch.randn(7, 10), return_gates=True)
    assert out.shape == (7, 2) and gates.shape == (7, 2, 5)
    torch.testing.assert_close(gates.sum(-1), torch.ones(7, 2))
    assert (gates > 0).all()
    assert not torch.allclose(gates[:, 0], gates[:, 1])  # one gate per task, not shared
    assert all(t[-1].out_features == 1 and t[0].in_features == 6 for t in m.towers)


def test_parallel_experts_equal_separate_mlps() -> None:
    torch.manual_seed(1)
    pe = ParallelExperts(in_dim=5, n_experts=3, hidden=(8, 4, 2))
    x = torch.randn(6, 5)
    got = pe(x)
    for e in range(3):
        ref = mlp(5, (8,))
        ref[0].weight.data = pe.first.weight.data[e * 8:(e + 1) * 8]
        ref[0].bias.data = pe.first.bias.data[e * 8:(e + 1) * 8]
        h = ref(x)
        for w, b in zip(pe.weights, pe.biases):
            h = torch.relu(h @ w[e] + b[e])
        torch.testing.assert_close(got[:, e], h)


def test_single_task_budget_is_half_the_mmoe() -> None:
    m = MMoE(in_dim=120)
    hidden = budget_hidden(120, n_params(m) // 2)
    st = SingleTaskMLP(120, hidden)
    assert st(torch.randn(3, 120)).shape == (3,)
    assert 0.9 * n_params(m) / 2 <= n_params(st) <= n_params(m) / 2
    assert mlp_params(120, hidden, 1) == n_params(st.net)


def test_mmoe_learns_two_planted_tasks() -> None:
    """Task 0 depends on x0 only, task 1 on x1 only: both towers must fit their own target."""
    torch.manual_seed(2)
    x = torch.randn(2048, 6)
    y_click = (x[:, 0] > 0).float()
    y_value = 0.5 * x[:, 1]
    m = MMoE(6, n_experts=3, expert_hidden=(16,), tower_hidden=(8,))
    opt = torch.optim.Adam(m.parameters(), lr=1e-2)
    for _ in range(120):
        out = m(x)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(out[:, 0], y_click) + \
            torch.nn.functional.mse_loss(out[:, 1], y_value)
        opt.zero_grad()
        loss.backward()
        opt.step()
    out = m(x).detach()
    assert ((out[:, 0] > 0).float() == y_click).float().mean() > 0.95
    assert torch.nn.functional.mse_loss(out[:, 1], y_value) < 0.02
