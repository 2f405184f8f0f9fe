"""The collocated topology: ONE deployment (FastAPI ingress) runs retrieval → ranking → reranking in-process.

It is scaled as a unit (``ServeConfig.collocated``) and serves the same endpoints, response body, cache, cold
start, reranking ``user_config``, health checks, versioned reload and metrics as the graph
(:mod:`serve_app.deployments`), through the same request-path function,
:func:`graphrec_ray.serving.request_path.recommend`. Each replica holds whole :class:`ModelVersion` objects behind one
:class:`VersionSlot`: a request reads the slot once, so it never mixes versions, and a reload loads the new
version beside the current one before the single swap.

:class:`Recommender` is plain Python (unit tests call it directly); :class:`Collocated` is the Serve deployment.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from ray import serve

from graphrec_ray.errors import DataError
from graphrec_ray.serving.config import ServeConfig
from graphrec_ray.ranking.context import RequestContext
from graphrec_ray.serving.request_path import lookup_item, lookup_user, pair_candidates, rank, recommend
from graphrec_ray.serving.version_slots import VersionSlot
from graphrec_ray.serving.versions import ModelVersion
from serve_app.loaders import Loaders, loaders_from
from serve_app.http_front import HttpFront, apply_rerank_user_config, logger, make_api
from serve_app.metrics_feedback import FeedbackFront, UnknownItem, add_feedback_route
from serve_app.metrics_ray import replica_metrics
from serve_app.version_pointer import Follower, board_handle, follow


class Recommender(FeedbackFront, HttpFront):
    """The whole request path of one replica (no Ray).

    Args:
        cfg: serving configuration (reranking knobs are replaced live by :meth:`reconfigure`).
        run_dir: run directory of the first version (absolute).
        loaders: how versions and the cache are made, from the builder (:func:`serve_app.loaders.loaders_from`);
            ``None`` builds them from ``cfg``.
    """

    topology = "collocated"

    def __init__(self, cfg: ServeConfig, run_dir: str, loaders: Loaders | None = None) -> None:
        self.init_front(cfg)
        self.init_feedback()
        self._base_cfg = cfg
        self._loaders = loaders or loaders_from(cfg)
        self.cache = self._loaders.cache()
        self.slot: VersionSlot[ModelVersion] = VersionSlot(self._load(run_dir))
        self._prepared: dict[str, ModelVersion] = {}

    def _load(self, run_dir: str | Path, expect: str | None = None) -> ModelVersion:
        v = self._loaders.version(run_dir)
        if expect is not None and v.version != expect:
            raise DataError(f"{run_dir} now holds version {v.version}, not {expect}")
        return v

    def reconfigure(self, user_config: dict | None) -> None:
        """Serve ``user_config``: ``w_engagement``, ``w_value``, ``lambda_diversity``, ``top_n_serve`` live
        (applied to the built config, so a key removed from user_config returns to it)."""
        self.cfg = apply_rerank_user_config(self._base_cfg, user_config)

    async def answer(self, raw_user: int, k: int, t0: float) -> dict[str, Any]:
        v, c = self.slot.get(), self.cfg  # one read each: a reload or reconfigure never mixes within a request
        try:
            return recommend(v, raw_user, k, c, self.cache)
        finally:
            self.sync_cache_metrics()

    def sync_cache_metrics(self) -> None:
        """Cache events and breaker state into the metrics (cumulative counts; ~10 us)."""
        s = self.cache.stats
        self.metrics.sync_cache(s.hits, s.misses, s.errors, s.skipped, self.cache.breaker.state)

    async def predict_click(self, raw_user: int, raw_item: int) -> tuple[float, str]:
        v = self.slot.get()
        item_idx = lookup_item(v.ids, raw_item)
        if item_idx < 0:
            raise UnknownItem(raw_item)
        scored = rank(v.ranking, pair_candidates(v.version, lookup_user(v.ids, raw_user), item_idx),
                      RequestContext(timestamp=time.time()))
        return float(scored.p_click[0]), v.version

    def current_version(self) -> str:
        return self.slot.get().version

    async def prepare(self, run_dir: str, version: str) -> None:
        if version == self.current_version() or version in self._prepared:
            return
        self._prepared = {version: await asyncio.to_thread(self._load, run_dir, version)}

    async def commit(self, run_dir: str, version: str) -> None:
        if version == self.current_version():
            return
        new = self._prepared.pop(version, None) or await asyncio.to_thread(self._load, run_dir, version)
        old = self.slot.swap(new)
        self._prepared.clear()
        self.metrics.version_switched(old.version, new.version)

    def warm_up(self) -> None:
        """One known-user and one cold-start request through the path (first-call costs before traffic)."""
        v = self.slot.get()
        raw = v.ids.user_map.raw_ids
        for user in ([int(raw[0])] if len(raw) else []) + [int(raw.max(initial=0)) + 1]:
            try:
                recommend(v, user, self.cfg.k_default, self.cfg, self.cache)
            except Exception:  # noqa: BLE001 - a cold first request is better than a replica that never starts
                logger.warning("collocated warm-up request failed", exc_info=True)

    def check_health(self) -> None:
        if self.slot.get() is None:
            raise RuntimeError("collocated: no model version loaded")


@serve.deployment(name="Recommender")
@serve.ingress(add_feedback_route(make_api("GraphRecSys (collocated)")))
class Collocated(Recommender):
    """Serve deployment of :class:`Recommender`; follows the application's version board."""

    async def __init__(self, cfg: ServeConfig, run_dir: str, loaders: Loaders | None = None,
                       board_name: str | None = None) -> None:
        t_start = time.perf_counter()
        Recommender.__init__(self, cfg, run_dir, loaders)
        self.metrics = replica_metrics()  # this replica's /metrics plus Ray's cluster-wide export
        self.follower: Follower | None = None
        if board_name:
            v = self.slot.get()
            self.board = board_handle(f"{serve.get_replica_context().app_name}:{board_name}", str(v.run_dir),
                                      v.version)
            self.follower = await follow(self.board, self.prepare, self.commit, v.version)
        t = time.perf_counter()
        self.warm_up()
        logger.info("collocated replica warm in %.0f ms", (time.perf_counter() - t) * 1e3)
        self.metrics.replica_started(time.perf_counter() - t_start, self.current_version())

    def __del__(self) -> None:
        if getattr(self, "follower", None) is not None:
            self.follower.stop()

