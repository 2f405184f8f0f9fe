"""The fast LightGCN propagation equals PyG's LightGCN on the same weights (forward and gradients)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch_geometric.nn.models import LightGCN as PygLightGCN

from graphrec_ray.graph.bipartite import BipartiteGraph, normalized_adjacency
from graphrec_ray.retrieval.lightgcn import LightGCN


def _graph(weighted: bool) -> BipartiteGraph:
    rng = np.random.default_rng(1)
    U, I, N = 80, 120, 2000
    wr = rng.exponential(1.0, N) if weighted else None
    # user 79 and item 119 stay isolated (no edges) to cover zero-degree nodes
    return BipartiteGraph.from_interactions(rng.integers(0, U - 1, N), rng.integers(0, I - 1, N), U, I,
                                            watch_ratio=wr)


@pytest.mark.parametrize("layout", ["csr", "dense"])
@pytest.mark.parametrize("weighted", [False, True])
def test_same_embeddings_and_gradients_as_pyg(layout: str, weighted: bool) -> None:
    g = _graph(weighted)
    U, I = g.n_users, g.n_items
    ref = PygLightGCN(U + I, 32, num_layers=3)
    ours = LightGCN(U, I, dim=32, num_layers=3)
    with torch.no_grad():
        ours.embedding.weight.copy_(ref.embedding.weight)
    adj = normalized_adjacency(g, layout)
    ew = g.edge_weight() if weighted else None
    eu, ei = ours.get_embedding(adj)
    r = ref.get_embedding(g.edge_index(), ew)
    assert (torch.cat([eu, ei]) - r).abs().max().item() < 1e-5

    gen = torch.Generator().manual_seed(0)
    users, pos, neg = (torch.randint(0, n, (256,), generator=gen) for n in (U, I, I))
    s_pos, s_neg, _ = ours(adj, users, pos, neg)
    (-F.logsigmoid(s_pos - s_neg).mean()).backward()
    r_pos = (r[users] * r[U + pos]).sum(-1)
    r_neg = (r[users] * r[U + neg]).sum(-1)
    (-F.logsigmoid(r_pos - r_neg).mean()).backward()
    assert torch.allclose(s_pos, r_pos, atol=1e-5)
    scale = ref.embedding.weight.grad.abs().max()
    assert (ours.embedding.weight.grad - ref.embedding.weight.grad).abs().max() <= 1e-5 * scale


def test_backward_is_exact_in_float64() -> None:
    """The custom backward (P(A) applied to the gradient) passes autograd's numerical gradient check."""
    g = _graph(True)
    adj = normalized_adjacency(g, "csr")
    adj64 = type(adj)(adj.n_users, adj.n_items, adj.csr.to(torch.float64), adj.csr_t.to(torch.float64))
    from graphrec_ray.retrieval.lightgcn import _Propagate

    xu = torch.randn(g.n_users, 3, dtype=torch.float64, requires_grad=True)
    xi = torch.randn(g.n_items, 3, dtype=torch.float64, requires_grad=True)
    alpha = torch.full((3,), 1 / 3, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda a, b: _Propagate.apply(a, b, adj64, alpha), (xu, xi))


def test_zero_layers_is_matrix_factorisation() -> None:
    g = _graph(False)
    m = LightGCN(g.n_users, g.n_items, dim=8, num_layers=0)
    eu, ei = m.final_embeddings(normalized_adjacency(g))
    assert torch.equal(torch.cat([eu, ei]), m.embedding.weight.detach())


def test_float16_adjacency_is_close_to_float32() -> None:
    """The GPU fast path stores R~ in float16 (half the bytes); embeddings and gradients stay close."""
    g = _graph(True)
    m = LightGCN(g.n_users, g.n_items, dim=16, num_layers=3)
    a32 = normalized_adjacency(g, "dense")
    a16 = normalized_adjacency(g, "dense", dtype=torch.float16)
    u32, i32 = m.get_embedding(a32)
    u16, i16 = m.get_embedding(a16)
    assert u16.dtype == torch.float32
    assert (torch.cat([u16, i16]) - torch.cat([u32, i32])).abs().max() < 1e-3 * torch.cat([u32, i32]).abs().max()
