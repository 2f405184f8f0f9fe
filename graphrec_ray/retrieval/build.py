"""Map a :class:`RetrievalConfig` to components: graph, propensity weights, models, trainers, recommenders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import torch
from torch import nn

from graphrec_ray.errors import DataError
from graphrec_ray.graph.bipartite import BipartiteGraph, NormalizedAdjacency, normalized_adjacency
from graphrec_ray.interactions import Interactions
from graphrec_ray.retrieval.base import Recommender
from graphrec_ray.retrieval.config import RetrievalConfig
from graphrec_ray.retrieval.lightgcn import LightGCN
from graphrec_ray.retrieval.losses import ips_weights, propensity_from_counts
from graphrec_ray.retrieval.mf import MatrixFactorization
from graphrec_ray.retrieval.popularity import MostPopular
from graphrec_ray.retrieval.train import BPRRecommender, BPRTrainer
from graphrec_ray.training import global_batch


def training_positives(cfg: RetrievalConfig, train: Interactions) -> Interactions:
    """Rows of ``train`` that are positive edges (``watch_ratio >= cfg.positive_threshold``)."""
    return train.relevant(">=", cfg.positive_threshold)


def build_graph(cfg: RetrievalConfig, positives: Interactions) -> BipartiteGraph:
    """Bipartite training graph, weighted by the clipped watch ratio when ``cfg.edge_weight``."""
    wr = positives.watch_ratio if cfg.edge_weight else None
    return BipartiteGraph.from_interactions(positives.user_idx, positives.item_idx, positives.n_users,
                                            positives.n_items, watch_ratio=wr, weight_clip=cfg.edge_weight_clip)


def build_adjacency(cfg: RetrievalConfig, positives: Interactions,
                    device: torch.device | str = "cpu") -> NormalizedAdjacency:
    """Normalised adjacency in ``cfg.layout`` / ``cfg.adjacency_dtype`` on ``device`` (float16 only for dense)."""
    graph = build_graph(cfg, positives)
    adj = normalized_adjacency(graph, cfg.layout, device)
    if cfg.adjacency_dtype == "float16" and adj.layout == "dense":
        adj = normalized_adjacency(graph, "dense", device, dtype=torch.float16)
    return adj


def load_propensity(path: str | Path, n_items: int) -> np.ndarray:
    """``(I,)`` propensities from preprocess's ``item_propensity.parquet`` (``ITEM_PROPENSITY`` schema)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"missing {path}; set propensity=counts or run preprocess")
    t = pq.read_table(str(path), columns=["item_idx", "propensity"])
    p = np.ones(n_items, dtype=np.float64)
    p[t.column("item_idx").to_numpy()] = t.column("propensity").to_numpy()
    return p


def build_item_weights(cfg: RetrievalConfig, exposures: Interactions, positives: Interactions,
                       propensity_file: str | Path | None = None) -> np.ndarray:
    """``(I,)`` IPS weights of positive items from ``cfg.propensity``, clipped at ``cfg.clip_max`` (the only clip).

    Args:
        exposures: every training row (each row of ``big_matrix`` is an exposure); counts give the propensity
            when ``cfg.propensity == "counts"``.
        positives: training positives (for ``cfg.normalize_ips``).
        propensity_file: ``item_propensity.parquet`` for ``cfg.propensity == "preprocess"``.
    """
    if cfg.propensity == "preprocess":
        if propensity_file is None:
            raise DataError("propensity=preprocess needs item_propensity.parquet")
        p = load_propensity(propensity_file, exposures.n_items)
    else:
        p = propensity_from_counts(exposures.item_counts(), cfg.propensity_power)
    counts = positives.item_counts() if cfg.normalize_ips else None
    return ips_weights(p, cfg.clip_max, counts)


def build_model(name: str, cfg: RetrievalConfig, n_users: int, n_items: int) -> nn.Module:
    """``LightGCN`` for ``lightgcn*``, ``MatrixFactorization`` for ``mf*``."""
    if name.startswith("lightgcn"):
        return LightGCN(n_users, n_items, cfg.dim, cfg.num_layers, cfg.init_std, cfg.seed)
    if name.startswith("mf"):
        return MatrixFactorization(n_users, n_items, cfg.dim, cfg.init_std, cfg.seed)
    raise ValueError(f"{name!r} is not an embedding model")


def uses_ips(name: str) -> bool:
    """Whether model ``name`` trains with IPS weights (``*_ips``)."""
    return name.endswith("_ips")


def build_trainer(name: str, cfg: RetrievalConfig, positives: Interactions, item_weights: np.ndarray | None,
                  adj: NormalizedAdjacency | None = None, rank: int = 0, world_size: int = 1,
                  forward_module: nn.Module | None = None, model: nn.Module | None = None) -> BPRTrainer:
    """A :class:`BPRTrainer` for model ``name`` (IPS weights used only by ``*_ips`` models)."""
    if model is None:
        model = build_model(name, cfg, positives.n_users, positives.n_items)
    if adj is None and name.startswith("lightgcn"):
        adj = build_adjacency(cfg, positives)
    batch = global_batch(len(positives), cfg.batch_size, cfg.steps_per_epoch)  # grows with the data (issue 14)
    return BPRTrainer(model, adj, positives, item_weights if uses_ips(name) else None, lr=cfg.lr, reg=cfg.reg,
                      batch_size=batch, hard_ratio=cfg.hard_ratio,
                      hard_k=cfg.hard_k, hard_start_epoch=cfg.hard_start_epoch,
                      hard_refresh_every=cfg.hard_refresh_every, seed=cfg.seed, rank=rank,
                      world_size=world_size, forward_module=forward_module)


def build_recommender(name: str, cfg: RetrievalConfig, item_weights: np.ndarray | None = None,
                      epochs: int | None = None) -> Recommender:
    """An unfitted in-process recommender for ``name`` (``fit`` receives training positives).

    Trains for ``epochs`` passes (default ``cfg.epochs``) with no validation; the stage's select-then-refit
    schedule is :func:`graphrec_ray.retrieval.fit.fit_in_process`. ``item_weights`` (``(I,)``) are required for
    ``*_ips`` models; when None they are derived from the positives' item counts with ``cfg`` (propensity=counts).
    """
    if name == "popularity":
        return MostPopular()

    def make(positives: Interactions) -> BPRTrainer:
        w = item_weights
        if w is None and uses_ips(name):
            w = ips_weights(propensity_from_counts(positives.item_counts(), cfg.propensity_power), cfg.clip_max,
                            positives.item_counts() if cfg.normalize_ips else None)
        return build_trainer(name, cfg, positives, w)

    return BPRRecommender(make, epochs=epochs or cfg.epochs)
