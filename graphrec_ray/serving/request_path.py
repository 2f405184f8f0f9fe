"""The request path as plain functions: ids → user embedding → FAISS → remove seen → rank → rerank.

Every stage is a separate function so that the Ray Serve deployments (``serve_app/deployments.py``), the
single-process FastAPI baseline and the tests run exactly the same code. Index spaces: ``user_idx`` and
``item_idx`` are contiguous (:class:`graphrec_ray.ids.IdMap`); raw KuaiRec ids appear only at the edges
(:func:`lookup_user` in, :func:`to_response_items` out). ``user_idx == -1`` means an unknown user (cold start).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from graphrec_ray.ids import UNKNOWN
from graphrec_ray.interactions import remove_seen  # the one seen-item removal step
from graphrec_ray.ranking.context import RequestContext
from graphrec_ray.rerank.mmr import mmr_select
from graphrec_ray.rerank.scalarize import scalarize
from graphrec_ray.serving.cache import EmbeddingCache
from graphrec_ray.serving.config import ServeConfig
from graphrec_ray.serving.versions import IdPart, ModelVersion, RankingPart, RerankPart, RetrievalPart


@dataclass(frozen=True)
class Candidates:
    """Output of retrieval for one request.

    Attributes:
        version: model version id that produced it.
        user_idx: contiguous user index, or -1 for cold start.
        item_idx: ``(K,)`` int64 candidates, none already seen by the user.
        user_emb: ``(d,)`` float32 user embedding (``None`` for cold start).
        cache_hit: whether ``user_emb`` came from Redis.
        cold_start: True when the user is unknown and candidates are popular items.
    """

    version: str
    user_idx: int
    item_idx: np.ndarray
    user_emb: np.ndarray | None
    cache_hit: bool
    cold_start: bool


@dataclass(frozen=True)
class Scored:
    """Output of ranking: candidates plus ``p_click`` and ``e_value`` ``(K,)`` float32."""

    version: str
    item_idx: np.ndarray
    p_click: np.ndarray
    e_value: np.ndarray


@dataclass(frozen=True)
class Reranked:
    """Output of reranking: the ``k`` served items in order, with their ``(k,)`` scores."""

    version: str
    item_idx: np.ndarray
    p_click: np.ndarray
    e_value: np.ndarray
    final_score: np.ndarray


# ------------------------------------------------------------------------------------ ids


_INTEGER = re.compile(r"-?[0-9]+")  # ASCII digits: str.isdigit() admits '²' and '--5', which int() refuses


def _shown(text: str, limit: int = 40) -> str:
    """The client's input as echoed in a message (long inputs cut)."""
    return text if len(text) <= limit else text[:limit] + "..."


def parse_user_id(text: str) -> int:
    """Parse a raw user id from the URL; raises ``ValueError`` with a client-facing message."""
    s = text.strip()
    if not _INTEGER.fullmatch(s):
        raise ValueError(f"user_id must be an integer, got '{_shown(text)}'")
    value = int(s) if len(s.lstrip("-").lstrip("0")) <= 19 else 2**63  # int() refuses > 4300 digits
    if not -(2**63) <= value < 2**63:
        raise ValueError(f"user_id out of the 64-bit integer range: '{_shown(text)}'")
    return value


def parse_k(text: str | None, k_default: int, k_max: int) -> int:
    """Parse ``k`` (``None`` → ``k_default``); must be an integer in ``[1, k_max]``, else ``ValueError``."""
    if text is None:
        return k_default
    s = text.strip()
    if not _INTEGER.fullmatch(s):
        raise ValueError(f"k must be an integer in [1, {k_max}], got '{_shown(text)}'")
    if len(s.lstrip("-").lstrip("0")) > 18 or not 1 <= int(s) <= k_max:  # int() refuses > 4300 digits
        raise ValueError(f"k must be in [1, {k_max}], got {_shown(s)}")
    return int(s)


def lookup_user(ids: IdPart, raw_user_id: int) -> int:
    """Contiguous ``user_idx`` of a raw KuaiRec user id, or ``-1`` when unknown (→ cold start)."""
    if not -(2**63) <= raw_user_id < 2**63:
        return UNKNOWN
    return int(ids.user_map.to_idx(np.array([raw_user_id], dtype=np.int64))[0])


def lookup_item(ids: IdPart, raw_item_id: int) -> int:
    """Contiguous ``item_idx`` of a raw KuaiRec item (video) id, or ``-1`` when it is not in the catalogue."""
    if not -(2**63) <= raw_item_id < 2**63:
        return UNKNOWN
    return int(ids.item_map.to_idx(np.array([raw_item_id], dtype=np.int64))[0])


def to_response_items(ids: IdPart, r: Reranked) -> list[dict[str, Any]]:
    """JSON items: raw ``item_id`` (KuaiRec video_id), ``p_click``, ``e_value``, ``final_score``."""
    raw = ids.item_map.to_raw(r.item_idx)
    return [{"item_id": int(i), "p_click": float(p), "e_value": float(v), "final_score": float(f)}
            for i, p, v, f in zip(raw, r.p_click, r.e_value, r.final_score)]


# ------------------------------------------------------------------------------ retrieval


def fetch_user_embeddings(part: RetrievalPart, version: str, user_idx: np.ndarray,
                          cache: EmbeddingCache) -> tuple[np.ndarray, np.ndarray]:
    """``(emb (B, d), cache_hit (B,))`` for known users ``(B,)``: one batched cache read, failing open."""
    return cache.get_many(version, user_idx, part.user_emb)


def faiss_candidates(part: RetrievalPart, user_emb: np.ndarray, user_idx: np.ndarray,
                     k_candidates: int) -> tuple[np.ndarray, np.ndarray]:
    """Top items by inner product for a batch, over-fetching so ``k_candidates`` remain after seen removal.

    Searches ``k_candidates + max_b |seen(b)|`` (capped at the catalogue) items for all ``B`` queries.

    Returns:
        ``(scores (B, K'), ids (B, K'))`` as FAISS returns them (ids may contain -1 for approximate indexes).
    """
    n_seen = max((part.seen(int(u)).size for u in user_idx), default=0)
    return part.index.search(user_emb, k_candidates + n_seen)


def cold_start_candidates(part: RetrievalPart) -> np.ndarray:
    """The most-exposed items ``(cold_start_pool,)`` (popularity), for users without an embedding."""
    return part.popular.copy()


def retrieve_batch(part: RetrievalPart, version: str, user_idx: list[int], cache: EmbeddingCache,
                   k_candidates: int) -> list[Candidates]:
    """Retrieval for a batch of requests (unknown users, ``-1``, get cold-start candidates).

    Known users share one cache read and one FAISS search; seen items are removed per user.
    """
    out: list[Candidates | None] = [None] * len(user_idx)
    known = [i for i, u in enumerate(user_idx) if u >= 0]
    for i, u in enumerate(user_idx):
        if u < 0:
            out[i] = Candidates(version, -1, cold_start_candidates(part), None, False, True)
    if known:
        users = np.asarray([user_idx[i] for i in known], dtype=np.int64)
        emb, hit = fetch_user_embeddings(part, version, users, cache)
        _, ids = faiss_candidates(part, emb, users, k_candidates)
        for row, i in enumerate(known):
            unseen = remove_seen(ids[row], part.seen(int(users[row])))[:k_candidates]
            out[i] = Candidates(version, int(users[row]), unseen, emb[row], bool(hit[row]), False)
    return [c for c in out if c is not None]


# -------------------------------------------------------------------------------- ranking


def rank(part: RankingPart, cand: Candidates, ctx: RequestContext) -> Scored:
    """Calibrated ``p_click`` and ``e_value`` for the candidates (item priors for cold-start users)."""
    if cand.cold_start or cand.user_idx < 0:
        p, v = part.prior_click[cand.item_idx], part.prior_value[cand.item_idx]
    else:
        p, v = part.ranker.score(cand.user_idx, cand.item_idx, ctx, cand.user_emb)
    return Scored(cand.version, cand.item_idx, np.asarray(p, np.float32), np.asarray(v, np.float32))


def pair_candidates(version: str, user_idx: int, item_idx: int) -> Candidates:
    """One (user, item) pair as :class:`Candidates`, to score it as ``/recommend`` would (``/feedback``).

    A known user's embedding is left to the ranker (``user_emb=None``: its stored row, the same retrieval
    embedding the request path hands in); an unknown user (``-1``) is scored with the cold-start item priors.
    """
    return Candidates(version, int(user_idx), np.array([int(item_idx)], dtype=np.int64), None, False,
                      int(user_idx) < 0)


# ------------------------------------------------------------------------------ reranking


def rerank(part: RerankPart, scored: Scored, k: int, w_engagement: float, w_value: float, value_scale: float,
           lambda_diversity: float, top_n_serve: int) -> Reranked:
    """Scalarise, then choose ``k`` of the ``top_n_serve`` best by MMR over item-embedding cosine similarity."""
    final = scalarize(scored.p_click, scored.e_value, w_engagement, w_value, value_scale)
    pos = mmr_select(final, part.item_unit[scored.item_idx], k, lambda_diversity, top_n_serve)
    return Reranked(scored.version, scored.item_idx[pos], scored.p_click[pos], scored.e_value[pos], final[pos])


# ------------------------------------------------------------------------------ in-process


def recommend(version: ModelVersion, raw_user_id: int, k: int, cfg: ServeConfig, cache: EmbeddingCache,
              ctx: RequestContext | None = None) -> dict[str, Any]:
    """The whole request path in one process; returns the ``/recommend`` JSON body.

    ``version`` is captured by the caller once, so every stage below uses the same version.
    """
    t0 = time.perf_counter()
    ctx = ctx or RequestContext(timestamp=time.time())
    user_idx = lookup_user(version.ids, raw_user_id)
    (cand,) = retrieve_batch(version.retrieval, version.version, [user_idx], cache, cfg.k_candidates)
    t1 = time.perf_counter()
    scored = rank(version.ranking, cand, ctx)
    t2 = time.perf_counter()
    out = rerank(version.rerank, scored, k, cfg.w_engagement, cfg.w_value, cfg.value_scale,
                 cfg.lambda_diversity, cfg.top_n_serve)
    t3 = time.perf_counter()
    return response_body(raw_user_id, version.version, version.ids, cand, out,
                         (t1 - t0) * 1e3, (t2 - t1) * 1e3, (t3 - t2) * 1e3, (time.perf_counter() - t0) * 1e3)


def response_body(raw_user_id: int, model_version: str, ids: IdPart, cand: Candidates, out: Reranked,
                  retrieval_ms: float, ranking_ms: float, rerank_ms: float, total_ms: float) -> dict[str, Any]:
    """The ``/recommend`` JSON body (shared by the Serve ingress and the in-process path)."""
    return {"user_id": raw_user_id, "model_version": model_version, "cold_start": cand.cold_start,
            "cache_hit": cand.cache_hit, "items": to_response_items(ids, out),
            "retrieval_latency_ms": retrieval_ms, "ranking_latency_ms": ranking_ms,
            "rerank_latency_ms": rerank_ms, "total_latency_ms": total_ms}
