"""What a deployment loads, handed to it by the application builder (the Ray Serve app-builder pattern).

The builder (:func:`serve_app.app.build_graph`) maps the :class:`~graphrec_ray.serving.config.ServeConfig` to plain
callables once; the deployments call them and never read loader or cache settings from the config themselves, so a
test (or another builder) can hand in fakes, and one place says how a version part and the cache are made.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Callable

from graphrec_ray.serving.cache import EmbeddingCache
from graphrec_ray.serving.config import ServeConfig
from graphrec_ray.serving.versions import (
    ModelVersion, RankingPart, RerankPart, RetrievalPart, load_ranking_part, load_rerank_part, load_retrieval_part,
    load_version, resolve_loader,
)


@dataclass(frozen=True)
class Loaders:
    """Picklable factories a replica uses (each ``run_dir -> part``, and the cache's constructor).

    Attributes:
        retrieval: the graph's Retrieval part (embeddings, index, seen items, popular items).
        ranking: the graph's Ranking part (ranker, item priors).
        rerank: the graph's Reranking part (item vectors for MMR, value scale).
        version: a whole version, for the collocated topology.
        cache: a new user-embedding cache (made inside the replica: a Redis connection does not travel).
    """

    retrieval: Callable[[Path], RetrievalPart]
    ranking: Callable[[Path], RankingPart]
    rerank: Callable[[Path], RerankPart]
    version: Callable[[Path], ModelVersion]
    cache: Callable[[], EmbeddingCache]


def loaders_from(cfg: ServeConfig, ranker_loader: Callable[[Path], Any] | None = None) -> Loaders:
    """The loaders ``cfg`` describes; ``ranker_loader`` (``run_dir -> ranker``) overrides ``cfg.ranker_loader``."""
    ranker = ranker_loader or resolve_loader(cfg.ranker_loader)
    return Loaders(
        retrieval=partial(load_retrieval_part, seen_splits=cfg.seen_splits, cold_start_pool=cfg.cold_start_pool),
        ranking=partial(load_ranking_part, ranker_loader=ranker, prior_strength=cfg.prior_strength),
        rerank=load_rerank_part,
        version=partial(load_version, ranker_loader=ranker, seen_splits=cfg.seen_splits,
                        cold_start_pool=cfg.cold_start_pool, prior_strength=cfg.prior_strength),
        cache=partial(EmbeddingCache.from_config, cfg.cache),
    )
