"""Small building blocks shared by the MMoE and the single-task baselines."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn


class InputNorm(nn.Module):
    """Standardise features with fixed (not learned) per-column mean and std buffers.

    The buffers are set once from training features (:meth:`fit`) and saved with the model, so the
    feature builder needs no fitted statistics. Defaults (mean 0, std 1) are the identity.

    Args:
        dim: feature dimension ``D``.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("inv_std", torch.ones(dim))

    @torch.no_grad()
    def fit(self, x: torch.Tensor, eps: float = 1e-6) -> None:
        """Set mean/std from a sample ``(N, D)``; constant columns get std 1."""
        std = x.std(dim=0, unbiased=False)
        self.mean.copy_(x.mean(dim=0))
        self.inv_std.copy_(torch.where(std > eps, 1.0 / std.clamp_min(eps), torch.ones_like(std)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, D) -> (B, D)``."""
        return (x - self.mean) * self.inv_std


class IdEmbeddings(nn.Module):
    """Learned user and item id embeddings: ``(B,), (B,) -> (B, 2 * dim)`` (user then item).

    They let the ranker learn per-user and per-item effects from the labels themselves (the retrieval
    embeddings were fitted to exposures, not to watch time). ``dim = 0`` disables them (``(B, 0)``).
    Initialised ``N(0, init_std^2)`` (default 0.01) so ids never seen in training stay near zero.

    Args:
        n_users, n_items: table sizes (contiguous idx spaces).
        dim: width per id (default 16).
    """

    def __init__(self, n_users: int, n_items: int, dim: int = 16, init_std: float = 0.01) -> None:
        super().__init__()
        self.dim = dim
        self.user = nn.Embedding(max(n_users, 1) if dim else 1, max(dim, 1))
        self.item = nn.Embedding(max(n_items, 1) if dim else 1, max(dim, 1))
        nn.init.normal_(self.user.weight, std=init_std)
        nn.init.normal_(self.item.weight, std=init_std)
        if dim == 0:
            self.user.weight.requires_grad_(False)
            self.item.weight.requires_grad_(False)

    @property
    def out_dim(self) -> int:
        return 2 * self.dim

    def forward(self, user_idx: torch.Tensor | None, item_idx: torch.Tensor | None, batch: int) -> torch.Tensor:
        if self.dim == 0:
            return torch.zeros(batch, 0, dtype=self.user.weight.dtype, device=self.user.weight.device)
        if user_idx is None or item_idx is None:
            raise ValueError("this model uses id embeddings: pass user_idx and item_idx")
        return torch.cat([self.user(user_idx.long()), self.item(item_idx.long())], dim=1)


def mlp(in_dim: int, hidden: Sequence[int], out_dim: int | None = None, dropout: float = 0.0) -> nn.Sequential:
    """``Linear+ReLU(+Dropout)`` per ``hidden`` width, then an optional plain ``Linear`` to ``out_dim``."""
    layers: list[nn.Module] = []
    d = in_dim
    for h in hidden:
        layers += [nn.Linear(d, h), nn.ReLU()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        d = h
    if out_dim is not None:
        layers.append(nn.Linear(d, out_dim))
    return nn.Sequential(*layers)


def n_params(module: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
