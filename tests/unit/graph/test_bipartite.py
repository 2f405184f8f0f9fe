"""Bipartite graph construction and normalisation, checked against PyG's gcn_norm."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch_geometric.nn.conv.gcn_conv import gcn_norm

from graphrec_ray.graph.bipartite import BipartiteGraph, normalized_adjacency


def _random_graph(weighted: bool, seed: int = 0) -> BipartiteGraph:
    rng = np.random.default_rng(seed)
    U, I, N = 30, 50, 400
    wr = rng.exponential(1.0, N) if weighted else None
    return BipartiteGraph.from_interactions(rng.integers(0, U, N), rng.integers(0, I, N), U, I, watch_ratio=wr)


def test_duplicates_merged_keeping_max_weight_and_indices_checked() -> None:
    g = BipartiteGraph.from_interactions(np.array([0, 0, 1]), np.array([2, 2, 0]), 2, 3,
                                         watch_ratio=np.array([0.3, 1.5, 9.0]), weight_clip=2.0)
    assert g.num_edges == 2
    assert g.user_idx.tolist() == [0, 1] and g.item_idx.tolist() == [2, 0]
    assert g.weight.tolist() == pytest.approx([1.5, 2.0])  # max of repeats; 9.0 clipped to 2.0
    with pytest.raises(ValueError):
        BipartiteGraph.from_interactions(np.array([2]), np.array([0]), 2, 3)


@pytest.mark.parametrize("weighted", [False, True])
def test_normalised_values_match_pyg_gcn_norm(weighted: bool) -> None:
    g = _random_graph(weighted)
    ei, ew = g.edge_index(), g.edge_weight()
    ei_n, w_n = gcn_norm(ei, None if not weighted else ew, g.n_users + g.n_items, add_self_loops=False)
    ref = torch.zeros(g.n_users + g.n_items, g.n_users + g.n_items)
    ref[ei_n[1], ei_n[0]] = w_n  # target-major, as LGConv aggregates
    block = ref[: g.n_users, g.n_users:]
    for layout in ("csr", "dense"):
        adj = normalized_adjacency(g, layout)
        x = torch.eye(g.n_items)
        assert torch.allclose(adj.user_from_items(x), block, atol=1e-6)
        assert torch.allclose(adj.item_from_users(torch.eye(g.n_users)), block.T, atol=1e-6)
    assert torch.allclose(ref[g.n_users:, : g.n_users], block.T)  # symmetric operator


def test_isolated_nodes_get_zero_rows_and_auto_layout_is_csr_on_cpu() -> None:
    g = BipartiteGraph.from_interactions(np.array([0]), np.array([0]), 3, 4)
    adj = normalized_adjacency(g)
    assert adj.layout == "csr"
    out = adj.user_from_items(torch.ones(4, 2))
    assert out[0].tolist() == [1.0, 1.0] and out[1:].abs().sum() == 0


def test_hetero_data_has_both_directions() -> None:
    g = _random_graph(True)
    data = g.to_hetero()
    fwd = data["user", "rates", "item"].edge_index
    assert fwd.shape == (2, g.num_edges)
    assert torch.equal(data["item", "rev_rates", "user"].edge_index, fwd.flip(0))
    assert data["user"].num_nodes == g.n_users and data["item"].num_nodes == g.n_items
