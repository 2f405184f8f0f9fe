"""Single-task baselines: one MLP per task on the same features, with the MMoE's parameter budget.

"Same budget" here means: the click MLP and the value MLP each have (about) half of the MMoE's
dense (non-embedding) trainable parameters and the same id embeddings, so the pair's dense part costs
what the one MMoE's costs, and both are trained with the same optimiser, batches and epochs.

Example::

    >>> m = SingleTaskMLP(in_dim=8, hidden=(16, 8))
    >>> tuple(m(torch.randn(5, 8)).shape)
    (5,)
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from graphrec_ray.ranking.layers import IdEmbeddings, InputNorm, mlp


class SingleTaskMLP(nn.Module):
    """``InputNorm -> MLP -> scalar``: a click logit or a value regression.

    Args:
        in_dim: feature width ``D``.
        hidden: ReLU widths (default ``(128, 64, 16)``).
        dropout: dropout after each hidden layer (default 0).
        n_users, n_items, id_dim: learned id embeddings as in :class:`~graphrec_ray.ranking.mmoe.MMoE`.
    """

    def __init__(self, in_dim: int, hidden: Sequence[int] = (128, 64, 16), dropout: float = 0.0, n_users: int = 0,
                 n_items: int = 0, id_dim: int = 0) -> None:
        super().__init__()
        self.in_dim, self.hidden = in_dim, tuple(hidden)
        self.norm = InputNorm(in_dim)
        self.ids = IdEmbeddings(n_users, n_items, id_dim)
        self.net = mlp(in_dim + self.ids.out_dim, hidden, 1, dropout)

    def forward(self, x: torch.Tensor, user_idx: torch.Tensor | None = None,
                item_idx: torch.Tensor | None = None) -> torch.Tensor:
        """``(B, D)`` features (+ ``(B,)`` ids) ``-> (B,)``."""
        z = torch.cat([self.norm(x), self.ids(user_idx, item_idx, x.shape[0])], dim=1)
        return self.net(z).squeeze(-1)


def budget_hidden(in_dim: int, budget: int, shape: Sequence[float] = (1.0, 0.5, 0.125)) -> tuple[int, ...]:
    """Widths ``round(w * s)`` for each ``s`` in ``shape`` with ``w`` the largest giving <= ``budget`` parameters.

    Falls back to width-1 layers when even those exceed ``budget``.
    """
    best = tuple(1 for _ in shape)
    lo, hi = 1, 1 << 20
    while lo <= hi:
        w = (lo + hi) // 2
        hidden = tuple(max(1, round(w * s)) for s in shape)
        if mlp_params(in_dim, hidden, 1) <= budget:
            best, lo = hidden, w + 1
        else:
            hi = w - 1
    return best


def mlp_params(in_dim: int, hidden: Sequence[int], out_dim: int) -> int:
    """Parameter count of :func:`graphrec_ray.ranking.layers.mlp` ``(in_dim, hidden, out_dim)``."""
    dims = [in_dim, *hidden, out_dim]
    return sum(a * b + b for a, b in zip(dims[:-1], dims[1:]))
