"""Configuration of the serving path and the Ray Serve application (``configs/serve.yaml`` lists changes)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True)
class DeploymentSpec:
    """Ray Serve options of one deployment (mapped 1:1 onto ``Deployment.options``)."""

    num_replicas: int = 1  # fixed replica count when autoscaling is off
    num_cpus: float = 0.25  # fractional CPU reservation: four deployments fit on one core of a laptop
    max_ongoing_requests: int = 64  # per-replica concurrency cap before Serve queues requests
    autoscaling: bool = False  # scale replicas between min/max on ongoing requests instead of num_replicas
    min_replicas: int = 1  # autoscaling lower bound
    max_replicas: int = 2  # autoscaling upper bound (2 cores here)
    target_ongoing_requests: float = 16.0  # autoscaling target per replica

    def __post_init__(self) -> None:
        if self.num_replicas < 1 or self.min_replicas < 0 or self.max_replicas < max(1, self.min_replicas):
            raise ValueError("need num_replicas >= 1 and 0 <= min_replicas <= max_replicas (>= 1)")
        if self.num_cpus < 0 or self.max_ongoing_requests < 1 or self.target_ongoing_requests <= 0:
            raise ValueError("need num_cpus >= 0, max_ongoing_requests >= 1, target_ongoing_requests > 0")

    def serve_options(self) -> dict:
        """Keyword arguments for ``Deployment.options`` (plain dicts, so it works without importing Ray)."""
        opts: dict = {"ray_actor_options": {"num_cpus": self.num_cpus},
                      "max_ongoing_requests": self.max_ongoing_requests}
        if self.autoscaling:
            opts["autoscaling_config"] = {"min_replicas": self.min_replicas, "max_replicas": self.max_replicas,
                                          "target_ongoing_requests": self.target_ongoing_requests}
        else:
            opts["num_replicas"] = self.num_replicas
        return opts


@dataclass(frozen=True)
class CacheConfig:
    """The Redis user-embedding cache (``graphrec_ray/serving/cache.py``)."""

    url: str = ""  # redis://host:port/db (rediss:// = TLS); "" = no Redis, in-process table only
    # AUTH password; "" = env GRAPHREC_REDIS_PASSWORD where the replica runs (keep secrets out of YAML), else none.
    # A password in the URL (redis://:pw@host) wins. Never logged nor shown in the config's repr.
    password: str = field(default="", repr=False)
    username: str = ""  # Redis 6 ACL user; "" = the default user
    tls: bool = False  # TLS to Redis (same as a rediss:// URL); the server certificate is always verified
    tls_ca_cert: str = ""  # CA bundle (PEM) that signed the server certificate; "" = the system's CAs
    key_prefix: str = "graphrec"  # keys are "{key_prefix}:{model_version}:u:{user_idx}"
    ttl_s: int = 3600  # expiry of cached embeddings; a new model version uses new keys anyway
    socket_timeout_ms: float = 20.0  # per-command timeout: a slow Redis must not slow the request path
    connect_timeout_ms: float = 20.0  # connect timeout (a closed port fails at once; a black hole after this)
    failure_threshold: int = 3  # consecutive Redis errors that open the circuit breaker
    reset_timeout_s: float = 5.0  # open breaker lets one trial call through (half-open) after this long
    write_back: bool = True  # on a miss, store the in-process embedding in Redis for the next request

    def __post_init__(self) -> None:
        if self.ttl_s <= 0 or self.failure_threshold < 1 or self.reset_timeout_s <= 0:
            raise ValueError("need ttl_s > 0, failure_threshold >= 1, reset_timeout_s > 0")
        if self.socket_timeout_ms <= 0 or self.connect_timeout_ms <= 0:
            raise ValueError("Redis timeouts must be > 0")
        if self.tls_ca_cert and not self.uses_tls:
            raise ValueError("tls_ca_cert needs tls: true (or a rediss:// url)")

    @property
    def uses_tls(self) -> bool:
        """TLS on: ``tls`` or a ``rediss://`` URL."""
        return self.tls or self.url.startswith("rediss://")


@dataclass(frozen=True)
class ServeConfig:
    """The request path (k limits, weights, batching) and the Serve graph's resources.

    The seed's scoring block loads as written::

        w_engagement: 0.6
        w_revenue: 0.4        # alias of w_value; after loading, cfg.w_value == 0.4 and cfg.w_revenue is None
        lambda_diversity: 0.3
        top_n_serve: 10       # below k_max is allowed: a request for k items gets min(k, top_n_serve)
    """

    # request path
    k_default: int = 10  # items returned when the request gives no k
    k_max: int = 100  # largest k a client may ask for (larger -> 400)
    k_candidates: int = 200  # FAISS candidates per user, after removing seen items, sent to the ranker
    top_n_serve: int = 100  # MMR chooses the k results among the top_n_serve best by final score (min(k, pool))
    cold_start_pool: int = 200  # most-exposed items considered for users without an embedding
    seen_splits: tuple[str, ...] = ("train", "val", "test")  # logged interactions treated as already seen
    prior_strength: float = 20.0  # Beta-prior pseudo-counts smoothing cold-start item click/value rates
    # reranking
    w_engagement: float = 1.0  # weight of calibrated p_click in the final score
    w_value: float | None = None  # weight of normalised e_value in the final score; None = 1.0 (or w_revenue)
    w_revenue: float | None = None  # the seed's name for w_value (its GMV proxy is e_value); giving both is an error
    value_scale: float = math.log1p(5.0)  # e_value mapped to 1.0: log1p of the label's watch-ratio clip
    lambda_diversity: float = 0.8  # MMR trade-off: 1 = pure relevance, lower = more diverse lists
    # ranking model
    ranker_loader: str = "graphrec_ray.ranking.bundle:RankerBundle.load"  # "module:callable(run_dir)->ranker"
    # batching (ranking always batches; retrieval batches the FAISS search and the Redis MGET)
    max_batch_size: int = 16  # requests per @serve.batch call
    batch_wait_timeout_s: float = 0.0  # 0 = take whatever is queued now: no added latency when idle
    faiss_threads: int = 1  # OpenMP threads per retrieval replica: replicas, not threads, share the cores
    # versions
    max_loaded_versions: int = 2  # versions a replica keeps in memory (current + previous during a reload)
    # Serve application
    # collocated: one deployment runs retrieval -> ranking -> reranking in-process (scaled as a unit); graph:
    # Ingress -> Retrieval -> Ranking -> Reranking, each scaled on its own (for a GPU ranker or a large index).
    # collocated is the default: each graph hop costs milliseconds on a small machine (README, serve_load.py)
    topology: Literal["collocated", "graph"] = "collocated"
    # POST /reload: secret in the X-Reload-Token header; "" = read env GRAPHREC_RELOAD_TOKEN where the app is
    # built; when neither is set /reload answers 403 (closed by default)
    reload_token: str = ""
    reload_root: str = ""  # /reload only loads run directories under this folder; "" = the served run's parent
    reload_timeout_s: float = 120.0  # every replica must load a new version within this, else the reload aborts
    http_host: str = "127.0.0.1"  # where Serve's HTTP proxy listens (set 0.0.0.0 to expose)
    http_port: int = 8000  # Serve HTTP port
    access_log: bool = False  # Serve's per-request access log lines cost CPU on every hop; metrics cover it
    # collocated topology: the one deployment (FastAPI ingress + whole request path); 2 replicas x 0.5 CPU keep
    # serving while one restarts (c=8 throughput vs 1 replica: 1.13x [0.85, 1.46], n.s., README "Serving")
    collocated: DeploymentSpec = field(default_factory=lambda: DeploymentSpec(num_replicas=2, num_cpus=0.5))
    # graph topology: 2 replicas of every stage x 0.2 CPU (1.6 CPUs, fits a 2-core machine): a killed replica
    # costs its in-flight requests, not a 5-8 s stall while Serve restarts the only one
    # (benchmarks/replica_failure.py, README "Failures")
    ingress: DeploymentSpec = field(default_factory=lambda: DeploymentSpec(num_replicas=2, num_cpus=0.2))  # FastAPI
    retrieval: DeploymentSpec = field(  # user embedding + FAISS + seen removal
        default_factory=lambda: DeploymentSpec(num_replicas=2, num_cpus=0.2))
    ranking: DeploymentSpec = field(  # MMoE + calibration, batched
        default_factory=lambda: DeploymentSpec(num_replicas=2, num_cpus=0.2))
    reranking: DeploymentSpec = field(  # scalarisation + MMR
        default_factory=lambda: DeploymentSpec(num_replicas=2, num_cpus=0.2))
    cache: CacheConfig = field(default_factory=CacheConfig)  # Redis user-embedding cache

    def __post_init__(self) -> None:
        if not 1 <= self.k_default <= self.k_max:
            raise ValueError("need 1 <= k_default <= k_max")
        if self.w_revenue is not None and self.w_value is not None:
            raise ValueError("give w_value or its alias w_revenue, not both")
        # resolve the alias once: afterwards w_value is a float and w_revenue None (so dataclasses.replace works)
        w_value = self.w_revenue if self.w_revenue is not None else (1.0 if self.w_value is None else self.w_value)
        object.__setattr__(self, "w_value", float(w_value))
        object.__setattr__(self, "w_revenue", None)
        if self.w_engagement < 0 or self.w_value < 0:
            raise ValueError("need w_engagement >= 0 and w_value >= 0")
        # top_n_serve may be below k_max (the seed serves from the top 10): MMR then returns min(k, top_n_serve)
        if self.top_n_serve < 1 or self.k_candidates < 1 or self.cold_start_pool < 1:
            raise ValueError("need top_n_serve >= 1, k_candidates >= 1, cold_start_pool >= 1")
        if not 0.0 <= self.lambda_diversity <= 1.0:
            raise ValueError("lambda_diversity must be in [0, 1]")
        if self.value_scale <= 0 or self.max_batch_size < 1 or self.batch_wait_timeout_s < 0:
            raise ValueError("need value_scale > 0, max_batch_size >= 1, batch_wait_timeout_s >= 0")
        if self.reload_timeout_s <= 0:
            raise ValueError("reload_timeout_s must be > 0")
        if self.max_loaded_versions < 2:
            raise ValueError("max_loaded_versions must be >= 2 (old and new live side by side during a reload)")
