"""The user-item bipartite graph of the training split and its symmetric normalised adjacency.

Users are nodes ``0..U-1`` and items nodes ``U..U+I-1`` of one homogeneous graph (PyG's convention for
LightGCN); each interaction ``(u, i)`` is an undirected edge with weight ``w_ui`` (1, or the clipped watch
ratio). With ``R`` the ``(U, I)`` weighted interaction matrix the adjacency is

.. math::
    A = \\begin{pmatrix} 0 & R \\\\ R^\\top & 0 \\end{pmatrix}, \\qquad
    \\tilde A = D^{-1/2} A D^{-1/2}, \\qquad D = \\mathrm{diag}(A\\mathbf 1),

so only the off-diagonal block :math:`\\tilde R = D_U^{-1/2} R D_I^{-1/2}` needs to be stored. This is exactly
what PyG's ``gcn_norm(..., add_self_loops=False)`` (used by ``LGConv``) computes from ``edge_index``, with degrees
summed from edge weights. Isolated nodes get degree 0 and an all-zero row (no division by zero).

:class:`NormalizedAdjacency` keeps ``R~`` in the fastest exact form for the device: sparse CSR (and its
transpose, so both products are row-major SpMMs) or a dense matrix when the graph is dense enough (on a GPU a
dense GEMM beats SpMM above a few percent density; KuaiRec's ``big_matrix`` is ~16% dense).

Example::

    >>> g = BipartiteGraph.from_interactions(np.array([0, 0, 1]), np.array([0, 1, 1]), 2, 2)
    >>> g.edge_index().shape
    torch.Size([2, 6])
    >>> adj = normalized_adjacency(g, layout="dense")
    >>> round(float(adj.dense[0, 0]), 4)  # 1 / sqrt(deg(u0)=2 * deg(i0)=1)
    0.7071
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

Layout = Literal["auto", "csr", "dense"]

#: ``auto`` picks a dense ``R~`` on CUDA above this density (nnz / (U*I)); CPU always uses CSR.
DENSE_MIN_DENSITY_CUDA = 0.02


@dataclass(frozen=True)
class BipartiteGraph:
    """Deduplicated user-item edges of the training split.

    Attributes:
        user_idx: ``(E,)`` int64 in ``[0, n_users)``.
        item_idx: ``(E,)`` int64 in ``[0, n_items)``; ``(user, item)`` pairs are unique.
        weight: ``(E,)`` float32 positive edge weights (all ones for an unweighted graph).
        n_users: U.
        n_items: I.
    """

    user_idx: np.ndarray
    item_idx: np.ndarray
    weight: np.ndarray
    n_users: int
    n_items: int

    @classmethod
    def from_interactions(cls, user_idx: np.ndarray, item_idx: np.ndarray, n_users: int, n_items: int,
                          watch_ratio: np.ndarray | None = None, weight_clip: float = 2.0) -> "BipartiteGraph":
        """Build from (possibly repeated) interactions.

        Args:
            user_idx, item_idx: ``(N,)`` contiguous indices; out-of-range values raise ``ValueError``.
            n_users, n_items: sizes of the id spaces (nodes without edges are allowed).
            watch_ratio: optional ``(N,)``; when given the edge weight is ``min(watch_ratio, weight_clip)``
                floored at 0.05 so that every kept edge stays in the graph. Repeated pairs keep their maximum.
            weight_clip: clip of the watch ratio (default 2.0, the KuaiRec authors' "liked" threshold).
        """
        u = np.asarray(user_idx, dtype=np.int64)
        i = np.asarray(item_idx, dtype=np.int64)
        if u.shape != i.shape or u.ndim != 1:
            raise ValueError("user_idx and item_idx must be 1-D arrays of equal length")
        if u.size and (u.min() < 0 or u.max() >= n_users or i.min() < 0 or i.max() >= n_items):
            raise ValueError(f"indices out of range: users in [0,{n_users}), items in [0,{n_items})")
        if watch_ratio is None:
            w = np.ones(u.size, dtype=np.float32)
        else:
            w = np.clip(np.asarray(watch_ratio, dtype=np.float64), 0.05, weight_clip).astype(np.float32)
        key = u * n_items + i
        order = np.lexsort((-w, key))  # by key, largest weight first within a key
        key, w = key[order], w[order]
        first = np.ones(key.size, dtype=bool)
        first[1:] = key[1:] != key[:-1]
        key, w = key[first], w[first]
        return cls(user_idx=key // n_items, item_idx=key % n_items, weight=w, n_users=int(n_users),
                   n_items=int(n_items))

    @property
    def num_edges(self) -> int:
        """Undirected edges E (each is two directed edges in :meth:`edge_index`)."""
        return int(self.user_idx.size)

    @property
    def density(self) -> float:
        """``E / (U * I)``."""
        return self.num_edges / max(1, self.n_users * self.n_items)

    def edge_index(self) -> torch.Tensor:
        """Homogeneous PyG ``edge_index`` ``(2, 2E)`` int64: user ``u`` is node ``u``, item ``i`` node ``U + i``."""
        u = torch.from_numpy(self.user_idx)
        i = torch.from_numpy(self.item_idx) + self.n_users
        return torch.stack([torch.cat([u, i]), torch.cat([i, u])])

    def edge_weight(self) -> torch.Tensor:
        """``(2E,)`` float32 weights aligned with :meth:`edge_index`."""
        w = torch.from_numpy(self.weight)
        return torch.cat([w, w])

    def to_hetero(self):  # -> torch_geometric.data.HeteroData
        """PyG ``HeteroData`` with node types ``user``/``item`` and edges ``(user, rates, item)`` + reverse."""
        from torch_geometric.data import HeteroData

        data = HeteroData()
        data["user"].num_nodes = self.n_users
        data["item"].num_nodes = self.n_items
        ei = torch.stack([torch.from_numpy(self.user_idx), torch.from_numpy(self.item_idx)])
        w = torch.from_numpy(self.weight)
        data["user", "rates", "item"].edge_index = ei
        data["user", "rates", "item"].edge_weight = w
        data["item", "rev_rates", "user"].edge_index = ei.flip(0)
        data["item", "rev_rates", "user"].edge_weight = w
        return data

    def normalized_values(self) -> np.ndarray:
        """``(E,)`` float32 entries of ``R~``: ``w_ui / sqrt(d_u d_i)`` with weighted degrees."""
        w = self.weight.astype(np.float64)
        du = np.bincount(self.user_idx, weights=w, minlength=self.n_users)
        di = np.bincount(self.item_idx, weights=w, minlength=self.n_items)
        return (w / np.sqrt(du[self.user_idx] * di[self.item_idx])).astype(np.float32)


@dataclass(frozen=True)
class NormalizedAdjacency:
    """``R~`` (``(U, I)``) in one exact layout, with the two products LightGCN needs.

    Exactly one of ``csr`` / ``dense`` is set. ``csr_t`` is ``R~^T`` as CSR, so ``R~^T x`` is also a row-major
    SpMM (a transposed CSR product is much slower on CPU).
    """

    n_users: int
    n_items: int
    csr: torch.Tensor | None = None
    csr_t: torch.Tensor | None = None
    dense: torch.Tensor | None = None

    @property
    def layout(self) -> str:
        return "dense" if self.dense is not None else "csr"

    def user_from_items(self, x_items: torch.Tensor) -> torch.Tensor:
        """``R~ @ x_items``: ``(I, d) -> (U, d)`` (in ``x``'s dtype; a low-precision ``R~`` casts ``x`` to it)."""
        if self.dense is not None:
            if self.dense.dtype != x_items.dtype:
                return (self.dense @ x_items.to(self.dense.dtype)).to(x_items.dtype)
            return self.dense @ x_items
        return torch.sparse.mm(self.csr, x_items)

    def item_from_users(self, x_users: torch.Tensor) -> torch.Tensor:
        """``R~^T @ x_users``: ``(U, d) -> (I, d)``."""
        if self.dense is not None:
            if self.dense.dtype != x_users.dtype:
                return (self.dense.T @ x_users.to(self.dense.dtype)).to(x_users.dtype)
            return self.dense.T @ x_users
        return torch.sparse.mm(self.csr_t, x_users)

    def to(self, device: torch.device | str) -> "NormalizedAdjacency":
        """Copy to ``device`` (same layout)."""
        mv = (lambda t: None if t is None else t.to(device))
        return NormalizedAdjacency(self.n_users, self.n_items, mv(self.csr), mv(self.csr_t), mv(self.dense))


def normalized_adjacency(graph: BipartiteGraph, layout: Layout = "auto", device: torch.device | str = "cpu",
                         dtype: torch.dtype = torch.float32) -> NormalizedAdjacency:
    """Symmetric-normalised ``R~`` of ``graph`` on ``device``.

    Args:
        graph: the training graph.
        layout: ``csr``, ``dense`` or ``auto`` (default): dense on CUDA when ``graph.density`` is at least
            :data:`DENSE_MIN_DENSITY_CUDA`, else CSR.
        device: target device (default CPU).
        dtype: value dtype (default float32).
    """
    device = torch.device(device)
    if layout == "auto":
        layout = "dense" if device.type == "cuda" and graph.density >= DENSE_MIN_DENSITY_CUDA else "csr"
    vals = torch.from_numpy(graph.normalized_values()).to(dtype)
    u = torch.from_numpy(graph.user_idx)
    i = torch.from_numpy(graph.item_idx)
    U, I = graph.n_users, graph.n_items
    if layout == "dense":
        dense = torch.zeros(U, I, dtype=dtype)
        dense[u, i] = vals
        return NormalizedAdjacency(U, I, dense=dense.to(device))
    if layout != "csr":
        raise ValueError(f"unknown layout {layout!r} (expected auto, csr or dense)")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        coo = torch.sparse_coo_tensor(torch.stack([u, i]), vals, (U, I), check_invariants=False).coalesce()
        csr = coo.to_sparse_csr()
        csr_t = coo.t().coalesce().to_sparse_csr()
    return NormalizedAdjacency(U, I, csr=csr.to(device), csr_t=csr_t.to(device))
