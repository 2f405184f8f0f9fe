"""Matrix factorisation trained with BPR (Rendle et al., UAI 2009): the no-graph baseline.

Score :math:`s_{ui} = p_u^\\top q_i` with ego embeddings only (LightGCN with ``L = 0``). Same forward contract as
:class:`graphrec_ray.retrieval.lightgcn.LightGCN`, so the same training loop, loss and samplers apply.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from graphrec_ray.graph.bipartite import NormalizedAdjacency


class MatrixFactorization(nn.Module):
    """MF-BPR.

    Args:
        n_users: U.
        n_items: I.
        dim: embedding size d (default 64).
        init_std: standard deviation of the normal initialisation (default 0.1).
        seed: seed of the initialisation (default 0).
    """

    def __init__(self, n_users: int, n_items: int, dim: int = 64, init_std: float = 0.1, seed: int = 0) -> None:
        super().__init__()
        self.n_users, self.n_items, self.dim = n_users, n_items, dim
        self.embedding = nn.Embedding(n_users + n_items, dim)
        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            self.embedding.weight.copy_(torch.randn(n_users + n_items, dim, generator=gen) * init_std)

    def forward(self, adj: NormalizedAdjacency | None, users: Tensor, pos: Tensor,
                neg: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``s_pos (B,)``, ``s_neg (B,)``, ``ego_sq (B,)`` for ``(B,)`` index tensors; ``adj`` is ignored."""
        w = self.embedding.weight
        u = w.index_select(0, users)
        p, n = w.index_select(0, self.n_users + pos), w.index_select(0, self.n_users + neg)
        ego = u.square().sum(-1) + p.square().sum(-1) + n.square().sum(-1)
        return (u * p).sum(-1), (u * n).sum(-1), ego

    @torch.no_grad()
    def final_embeddings(self, adj: NormalizedAdjacency | None = None) -> tuple[Tensor, Tensor]:
        """``(U, d)``, ``(I, d)`` embeddings (detached)."""
        w = self.embedding.weight
        return w[: self.n_users].clone(), w[self.n_users:].clone()
