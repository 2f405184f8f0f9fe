"""LightGCN (He et al., SIGIR 2020, https://arxiv.org/abs/2002.02126) with exact, fast propagation.

With ego embeddings :math:`E^{(0)} \\in \\mathbb R^{(U+I) \\times d}` and the symmetric-normalised bipartite
adjacency :math:`\\tilde A` (see :mod:`graphrec_ray.graph.bipartite`), the final embeddings are

.. math::
    E = P(\\tilde A) E^{(0)}, \\qquad P(\\tilde A) = \\sum_{l=0}^{L} \\alpha_l \\tilde A^{l},
    \\qquad \\alpha_l = 1/(L+1),

and a user-item score is the inner product :math:`e_u^\\top e_i`. This is the same function as PyG's
``LightGCN.get_embedding`` (``LGConv`` layers with ``gcn_norm`` and no self loops) on the homogeneous graph.

Why it is fast:

* :math:`\\tilde A` is bipartite, so one layer is two products with the ``(U, I)`` block
  :math:`\\tilde R` (``x_u' = R~ x_i``, ``x_i' = R~^T x_u``), never a ``(U+I)^2`` operator, and no per-edge
  message tensor ``(2E, d)`` is materialised (PyG's scatter path builds one per layer, plus ``gcn_norm`` each
  layer).
* :math:`P(\\tilde A)` is symmetric, so the backward pass is the same propagation applied to the incoming
  gradient: :math:`\\partial L / \\partial E^{(0)} = P(\\tilde A)\\, \\partial L / \\partial E`. A custom
  ``autograd.Function`` does exactly that, without autograd's bookkeeping through sparse ops (no gradient w.r.t.
  the adjacency, no transposed CSR products).
* ``R~`` is stored as CSR (CPU, sparse graphs) or dense (GPU, dense graphs): see ``normalized_adjacency``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from graphrec_ray.graph.bipartite import NormalizedAdjacency


def propagate(adj: NormalizedAdjacency, x_users: Tensor, x_items: Tensor,
              alpha: Tensor | tuple[float, ...]) -> tuple[Tensor, Tensor]:
    """Exact LightGCN propagation without autograd: ``P(A~) [x_u; x_i]``.

    Args:
        adj: normalised adjacency of the training graph.
        x_users: ``(U, d)``; x_items: ``(I, d)``.
        alpha: ``(L+1,)`` layer weights (a tuple of floats avoids a device sync, e.g. inside CUDA graph capture).

    Returns:
        ``(U, d)``, ``(I, d)`` final embeddings.
    """
    a = alpha.tolist() if isinstance(alpha, Tensor) else list(alpha)
    out_u, out_i = x_users * a[0], x_items * a[0]
    for layer in range(1, len(a)):
        x_users, x_items = adj.user_from_items(x_items), adj.item_from_users(x_users)
        out_u = out_u.add_(x_users, alpha=a[layer]) if layer > 1 else out_u + a[layer] * x_users
        out_i = out_i.add_(x_items, alpha=a[layer]) if layer > 1 else out_i + a[layer] * x_items
    return out_u, out_i


class _Propagate(torch.autograd.Function):
    """``P(A~)`` as an autograd op whose backward is ``P(A~)`` again (the operator is symmetric)."""

    @staticmethod
    def forward(ctx: Any, x_users: Tensor, x_items: Tensor, adj: NormalizedAdjacency,
                alpha: tuple[float, ...]) -> tuple[Tensor, Tensor]:
        ctx.adj, ctx.alpha = adj, alpha
        return propagate(adj, x_users, x_items, alpha)

    @staticmethod
    def backward(ctx: Any, g_users: Tensor, g_items: Tensor) -> tuple[Tensor, Tensor, None, None]:
        gu, gi = propagate(ctx.adj, g_users.contiguous(), g_items.contiguous(), ctx.alpha)
        return gu, gi, None, None


class LightGCN(nn.Module):
    """LightGCN over a user-item bipartite graph.

    Args:
        n_users: U.
        n_items: I.
        dim: embedding size d (default 64).
        num_layers: propagation depth L (default 3, as in the paper).
        init_std: standard deviation of the normal ego-embedding initialisation (default 0.1, the paper's code).
        seed: seed of the initialisation (default 0).

    The ego embeddings are one ``nn.Embedding(U + I, d)`` (users first, then items), laid out like PyG's
    ``LightGCN.embedding`` so weights can be copied across.
    """

    def __init__(self, n_users: int, n_items: int, dim: int = 64, num_layers: int = 3, init_std: float = 0.1,
                 seed: int = 0) -> None:
        super().__init__()
        self.n_users, self.n_items, self.dim, self.num_layers = n_users, n_items, dim, num_layers
        self.embedding = nn.Embedding(n_users + n_items, dim)
        self.register_buffer("alpha", torch.full((num_layers + 1,), 1.0 / (num_layers + 1)))
        self._alpha = (1.0 / (num_layers + 1),) * (num_layers + 1)  # host copy: no device sync per step
        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            self.embedding.weight.copy_(torch.randn(n_users + n_items, dim, generator=gen) * init_std)

    def get_embedding(self, adj: NormalizedAdjacency) -> tuple[Tensor, Tensor]:
        """Final embeddings ``(U, d)``, ``(I, d)`` (differentiable w.r.t. the ego embeddings)."""
        w = self.embedding.weight
        return _Propagate.apply(w[: self.n_users], w[self.n_users:], adj, self._alpha)

    def forward(self, adj: NormalizedAdjacency, users: Tensor, pos: Tensor,
                neg: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """BPR inputs for a batch.

        Args:
            adj: normalised adjacency.
            users, pos, neg: ``(B,)`` int64 user / positive item / negative item indices.

        Returns:
            ``s_pos (B,)``, ``s_neg (B,)`` scores and ``ego_sq (B,)`` = squared norms of the three ego embeddings.
        """
        eu, ei = self.get_embedding(adj)
        # index_select: its backward is index_add_, much faster on CPU than advanced indexing's index_put_
        u = eu.index_select(0, users)
        s_pos = (u * ei.index_select(0, pos)).sum(-1)
        s_neg = (u * ei.index_select(0, neg)).sum(-1)
        w = self.embedding.weight
        ego = (w.index_select(0, users).square().sum(-1) + w.index_select(0, self.n_users + pos).square().sum(-1)
               + w.index_select(0, self.n_users + neg).square().sum(-1))
        return s_pos, s_neg, ego

    @torch.no_grad()
    def final_embeddings(self, adj: NormalizedAdjacency) -> tuple[Tensor, Tensor]:
        """Detached final embeddings ``(U, d)``, ``(I, d)`` for indexing and evaluation."""
        w = self.embedding.weight
        return propagate(adj, w[: self.n_users], w[self.n_users:], self._alpha)
