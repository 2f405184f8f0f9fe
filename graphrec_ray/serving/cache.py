"""User-embedding cache: Redis in front of the in-process table, failing open when Redis is slow or down.

This is the only module of the project that talks to Redis (imported lazily, never at module level).

* Values are raw little-endian float32 bytes (``d * 4`` bytes per user), keys are namespaced by model version:
  ``{prefix}:{model_version}:u:{user_idx}``, so a new version never reads an old version's vectors, and
  every key has a TTL.
* Reads are batched with one ``MGET``, sent on a dedicated connection (:class:`DirectReader`); write-backs of
  misses go in one non-transactional pipeline.
* The client has short socket/connect timeouts and **no retries**; a :class:`CircuitBreaker` stops calling
  Redis after ``failure_threshold`` consecutive errors and lets a single trial call through (half-open) after
  ``reset_timeout_s``. Whenever Redis is not usable the request is served from the in-process table with
  ``cache_hit = False``.
* With no URL configured there is no client at all and the in-process table is the cache.
* AUTH and TLS come from :class:`CacheConfig` (``password`` or env ``GRAPHREC_REDIS_PASSWORD``, ``username``,
  ``tls``, ``tls_ca_cert``; :func:`redis_connection_args`). A wrong or missing password fails open like an outage,
  and the reason is logged once per outage (``AuthenticationError: ...``), never the password.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np

from graphrec_ray.serving.config import CacheConfig

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"
PASSWORD_ENV = "GRAPHREC_REDIS_PASSWORD"  # where the Redis password comes from when CacheConfig.password is ""
logger = logging.getLogger(__name__)


class CircuitBreaker:
    """Consecutive-failure circuit breaker (thread-safe).

    ``closed``: calls allowed. After ``failure_threshold`` consecutive failures it is ``open``: calls refused
    until ``reset_timeout_s`` has passed, then ``half_open``: exactly one trial call is allowed; its success
    closes the breaker, its failure opens it again for another ``reset_timeout_s``.

    Args:
        failure_threshold: consecutive failures that open the breaker (default 3).
        reset_timeout_s: seconds the breaker stays open before a trial (default 5.0).
        clock: monotonic time source in seconds (tests pass a fake).
    """

    def __init__(self, failure_threshold: int = 3, reset_timeout_s: float = 5.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.failure_threshold = int(failure_threshold)
        self.reset_timeout_s = float(reset_timeout_s)
        self._clock = clock
        self._lock = threading.Lock()
        self._state = CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._trial_in_flight = False

    @property
    def state(self) -> str:
        """``closed``, ``open`` or ``half_open`` (an open breaker past its timeout reads ``half_open``)."""
        with self._lock:
            if self._state == OPEN and self._clock() - self._opened_at >= self.reset_timeout_s:
                return HALF_OPEN
            return self._state

    def allow(self) -> bool:
        """Whether the caller may try the protected call now (claims the single half-open trial)."""
        with self._lock:
            if self._state == CLOSED:
                return True
            if self._state == OPEN and self._clock() - self._opened_at >= self.reset_timeout_s:
                self._state = HALF_OPEN
                self._trial_in_flight = False
            if self._state == HALF_OPEN and not self._trial_in_flight:
                self._trial_in_flight = True
                return True
            return False

    def record_success(self) -> None:
        with self._lock:
            self._state = CLOSED
            self._failures = 0
            self._trial_in_flight = False

    def record_failure(self) -> None:
        with self._lock:
            self._failures += 1
            if self._state == HALF_OPEN or self._failures >= self.failure_threshold:
                self._state = OPEN
                self._opened_at = self._clock()
                self._trial_in_flight = False


@dataclass
class CacheStats:
    """Counters since start-up (per process)."""

    hits: int = 0
    misses: int = 0
    errors: int = 0  # Redis calls that failed (timeout, refused, protocol)
    skipped: int = 0  # lookups served from the table without asking Redis (no client or breaker open)


def redis_connection_args(cfg: CacheConfig, env: Mapping[str, str] | None = None) -> tuple[str, dict[str, Any]]:
    """``(url, kwargs)`` for ``redis.Redis.from_url``: timeouts, no retries, AUTH and TLS from ``cfg``.

    The password is ``cfg.password``, else ``env[PASSWORD_ENV]`` (default: ``os.environ``), else none; one given
    in the URL wins (redis-py's rule). ``cfg.tls`` turns ``redis://`` into ``rediss://``; with TLS the server
    certificate and host name are verified, against ``cfg.tls_ca_cert`` when given.
    """
    env = os.environ if env is None else env
    url = cfg.url
    kwargs: dict[str, Any] = {"socket_timeout": cfg.socket_timeout_ms / 1000.0,
                              "socket_connect_timeout": cfg.connect_timeout_ms / 1000.0,
                              "health_check_interval": 0}
    password = cfg.password or env.get(PASSWORD_ENV, "")
    if password:
        kwargs["password"] = password
    if cfg.username:
        kwargs["username"] = cfg.username
    if cfg.uses_tls:
        if url.startswith("redis://"):
            url = "rediss://" + url[len("redis://"):]
        kwargs["ssl_cert_reqs"] = "required"
        kwargs["ssl_check_hostname"] = True
        if cfg.tls_ca_cert:
            kwargs["ssl_ca_certs"] = cfg.tls_ca_cert
    return url, kwargs


def make_redis_client(cfg: CacheConfig) -> Any:
    """A ``redis.Redis`` from :func:`redis_connection_args` with no retries; ``None`` when no URL is configured."""
    if not cfg.url:
        return None
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    url, kwargs = redis_connection_args(cfg)
    return redis.Redis.from_url(url, retry=Retry(NoBackoff(), 0), **kwargs)


def describe_error(exc: BaseException) -> str:
    """A one-line reason for logs: the error class and Redis's message (never the password: Redis does not
    echo it), e.g. ``AuthenticationError: invalid username-password pair``."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text[:200]}" if text else type(exc).__name__


class DirectReader:
    """``MGET`` on one held connection, skipping the client's per-command machinery.

    Through ``redis.Redis.mget`` a one-key read took 0.11-0.14 ms p50 on loopback here; the same packed command
    on a held connection took 0.05 ms (``benchmarks/cache_fetch.py``): the pool checkout/release, retry wrapper,
    event dispatch and observability hooks around each command cost more than the round trip itself. The
    connection is made from the client's pool settings (URL, password, TLS, timeouts) and connects lazily.

    It is never shared: a caller that finds it busy (another thread mid-read) uses the pooled client instead.
    After any error the connection is dropped (a half-read reply must not be read by the next call) and the
    next call reconnects.

    Args:
        client: a ``redis.Redis``; its pool makes the connection and serves the busy case.
    """

    def __init__(self, client: Any) -> None:
        self.client = client
        self._conn = client.connection_pool.make_connection()
        self._lock = threading.Lock()

    def mget(self, keys: list[str]) -> list[bytes | None]:
        """Values of ``keys`` (``None`` where missing); raises the client's errors."""
        if not self._lock.acquire(blocking=False):
            return self.client.mget(keys)
        try:
            self._conn.send_command("MGET", *keys)
            return self._conn.read_response()
        except BaseException:
            self._conn.disconnect()
            raise
        finally:
            self._lock.release()


class EmbeddingCache:
    """Batched user-embedding lookups: Redis when available, the in-process table otherwise.

    Args:
        client: a ``redis.Redis`` (or ``None``: table only).
        key_prefix: first component of every key.
        ttl_s: expiry of written keys in seconds.
        breaker: circuit breaker around every Redis call.
        write_back: store table rows of missed users in Redis for later requests.
    """

    def __init__(self, client: Any, key_prefix: str = "graphrec", ttl_s: int = 3600,
                 breaker: CircuitBreaker | None = None, write_back: bool = True) -> None:
        self.client = client
        self.key_prefix = key_prefix
        self.ttl_s = int(ttl_s)
        self.breaker = breaker or CircuitBreaker()
        self.write_back = write_back
        self.stats = CacheStats()
        self._lock = threading.Lock()
        self.reader = DirectReader(client) if client is not None else None
        self.last_error: str | None = None  # reason of the latest Redis failure (None once Redis answers again)
        if client is not None:
            import redis

            self._errors: tuple[type[BaseException], ...] = (redis.RedisError, OSError)
        else:
            self._errors = (OSError,)

    @classmethod
    def from_config(cls, cfg: CacheConfig) -> "EmbeddingCache":
        """Build from :class:`CacheConfig` (no URL = table only)."""
        return cls(make_redis_client(cfg), cfg.key_prefix, cfg.ttl_s,
                   CircuitBreaker(cfg.failure_threshold, cfg.reset_timeout_s), cfg.write_back)

    @property
    def enabled(self) -> bool:
        """Whether a Redis client is configured at all."""
        return self.client is not None

    def key(self, model_version: str, user_idx: int) -> str:
        """``{prefix}:{model_version}:u:{user_idx}``."""
        return f"{self.key_prefix}:{model_version}:u:{int(user_idx)}"

    def _count(self, **kw: int) -> None:
        with self._lock:
            for name, v in kw.items():
                setattr(self.stats, name, getattr(self.stats, name) + v)

    def get_many(self, model_version: str, user_idx: np.ndarray,
                 table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Embeddings of ``user_idx`` ``(n,)``: Redis hits, table rows for misses (fails open).

        Args:
            model_version: namespace of the keys.
            user_idx: ``(n,)`` contiguous user indices, all in ``[0, len(table))``.
            table: ``(n_users, d)`` float32 in-process embedding table of the same model version.

        Returns:
            ``(emb (n, d) float32, hit (n,) bool)``: ``hit[i]`` is True when row i came from Redis.
        """
        idx = np.asarray(user_idx, dtype=np.int64).reshape(-1)
        d = table.shape[1]
        out = np.asarray(table[idx], dtype=np.float32).copy()
        hit = np.zeros(idx.size, dtype=bool)
        if self.reader is None or idx.size == 0 or not self.breaker.allow():
            self._count(skipped=int(idx.size))
            return out, hit
        keys = [self.key(model_version, u) for u in idx]
        try:
            raw = self.reader.mget(keys)
        except self._errors as exc:
            self._failed(exc)
            self._count(misses=int(idx.size))
            return out, hit
        self._succeeded()
        missed: list[int] = []
        for i, blob in enumerate(raw):
            if blob is not None and len(blob) == 4 * d:
                out[i] = np.frombuffer(blob, dtype="<f4")
                hit[i] = True
            else:
                missed.append(i)
        self._count(hits=int(hit.sum()), misses=len(missed))
        if missed and self.write_back:
            self.put_many(model_version, idx[missed], out[missed])
        return out, hit

    def put_many(self, model_version: str, user_idx: np.ndarray, emb: np.ndarray) -> bool:
        """Store ``emb`` ``(n, d)`` for ``user_idx`` ``(n,)`` with the TTL in one pipeline; False on failure."""
        if self.client is None or not self.breaker.allow():
            return False
        emb = np.ascontiguousarray(emb, dtype="<f4")
        try:
            pipe = self.client.pipeline(transaction=False)
            for u, row in zip(np.asarray(user_idx).reshape(-1), emb):
                pipe.set(self.key(model_version, int(u)), row.tobytes(), ex=self.ttl_s)
            pipe.execute()
        except self._errors as exc:
            self._failed(exc)
            return False
        self._succeeded()
        return True

    def _failed(self, exc: BaseException) -> None:
        """A Redis call failed: count it, feed the breaker, and log why once per outage and reason (a wrong
        password, a refused connection, a timeout...), so failing open is never silent."""
        self.breaker.record_failure()
        self._count(errors=1)
        reason = describe_error(exc)
        if reason != self.last_error:
            logger.warning("Redis cache unavailable, serving from the in-process table (cache_hit false): %s",
                           reason)
        self.last_error = reason

    def _succeeded(self) -> None:
        self.breaker.record_success()
        if self.last_error is not None:
            logger.warning("Redis cache reachable again (after: %s)", self.last_error)
            self.last_error = None

    def warm(self, model_version: str, table: np.ndarray, chunk: int = 1000) -> int:
        """Write every row of ``table`` ``(n_users, d)`` under ``model_version``; returns rows written."""
        written = 0
        for start in range(0, table.shape[0], chunk):
            rows = np.arange(start, min(start + chunk, table.shape[0]))
            if not self.put_many(model_version, rows, table[rows]):
                break
            written += rows.size
        return written

    def delete_version(self, model_version: str) -> int:
        """Delete every key of ``model_version`` (SCAN + DEL, for clean-up); returns keys deleted."""
        if self.client is None:
            return 0
        pattern = f"{self.key_prefix}:{model_version}:u:*"
        n = 0
        batch: list[Any] = []
        for key in self.client.scan_iter(match=pattern, count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                n += int(self.client.delete(*batch))
                batch = []
        if batch:
            n += int(self.client.delete(*batch))
        return n

    def hit_ratio(self) -> float:
        """Hits / (hits + misses + skipped) since start-up (0.0 before any lookup)."""
        s = self.stats
        total = s.hits + s.misses + s.skipped
        return s.hits / total if total else 0.0
