"""``RetrievalConfig``: everything the retrieval stage reads from ``configs/retrieval.yaml``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from graphrec_ray.training import TrainerConfig

#: model names understood by :func:`graphrec_ray.retrieval.build.build_recommender`
MODEL_NAMES = ("lightgcn_ips", "lightgcn", "mf_ips", "mf", "popularity")


@dataclass(frozen=True)
class RetrievalConfig:
    """Retrieval stage: model, loss, negatives, training schedule and evaluation."""

    model: str = "lightgcn_ips"  # model whose embeddings are written for the index and ranking stages
    baselines: tuple[str, ...] = ("popularity", "mf", "lightgcn")  # trained and evaluated the same way, for comparison
    # embedding baselines (mf, lightgcn, ...) cost as much as the primary model each, one after another: above this
    # many training positives only popularity (seconds) is kept (0 = always all); demo and full / 4 (48k) keep them
    baselines_max_positives: int = 100_000
    # embedding models trained at once, each its own Ray Train worker group (num_workers x cpus_per_worker): > 1 on a
    # cluster with room for that many groups; 1 = one after another (2 shared cores: concurrency only splits them)
    concurrent_fits: int = 1
    dim: int = 64  # embedding size (64 is enough on CPU; KuaiRec has ~10k items)
    num_layers: int = 3  # LightGCN propagation depth (the paper's best on most datasets)
    init_std: float = 0.1  # std of the normal init of ego embeddings (LightGCN reference code)
    lr: float = 0.005  # Adam learning rate
    reg: float = 1e-4  # L2 on the batch's ego embeddings (LightGCN paper: 1e-4)
    batch_size: int = 2048  # GLOBAL BPR triples per optimiser step, split over the workers (same steps for any count)
    # at most this many optimiser steps per pass over the positives (0 = no limit): above batch_size * this many
    # positives the global batch grows with them, so each full-graph step (cost ~ edges) stays, but the step count
    # stops growing; 25 ~ the steps per pass of the full preset / 4 (47.8k positives / 2048), so scale 1 keeps its
    # number of steps (issue 14: 22,400 -> 1,500 per model at 0.76M positives); below 51k positives: no change
    steps_per_epoch: int = 25
    epochs: int = 60  # budget: max(min_steps, epochs * n_pos / global batch) steps; issue 10: rising until ~60 passes
    min_steps: int = 50  # early stopping and selection never before this step (demo: val Recall@20 peaks near 56)
    max_steps: int = 0  # cap on the step budget (0 = none); the Tune search uses it to bound a trial
    max_evals: int = 40  # validation points per run at most: every pass, or budget / max_evals steps if longer
    refit: bool = True  # export a refit on train + val positives for the selected steps (False: the selected point)
    use_search: bool = True  # apply run_dir/retrieval/search.json (graphrec tune-retrieval's choice) when it exists
    positive_threshold: float = 2.0  # edge when watch_ratio >= this; 2.0 = "liked", chosen on unbiased validation users
    edge_weight: bool = False  # weight graph edges by the clipped watch ratio instead of 1
    edge_weight_clip: float = 2.0  # clip of the watch ratio used as edge weight
    propensity: Literal["preprocess", "counts"] = "counts"  # preprocess's item_propensity.parquet, or exposure counts
    propensity_power: float = 1.0  # p_i = ((n_i+1)/(max n+1))^power: exposure proportional to count; 0.5 under-corrects
    clip_max: float = 100.0  # IPS weights 1/p are clipped at this (variance control); 20 lost most of the gain
    normalize_ips: bool = True  # rescale clipped weights to mean 1 over training positives (keeps loss vs L2 balance)
    # PDA popularity prior (retrieval/popularity_prior.py): IPS-trained models export [e_u, 1] / [e_i, gamma*log pop_i]
    # so scores are dot + gamma*log(popularity) (still an inner product); 0 = off. Chosen on unbiased selection
    # users by benchmarks/default_selection.py (configs/retrieval.yaml says the figures).
    popularity_prior: float = 0.0
    # per-user shrinkage of the prior: user u gets gamma * n0 / (n0 + n_u) (n_u: its fitted positives), so long
    # histories lean on their embedding and short ones on popularity; in the user table's extra column. 0 = global gamma
    popularity_prior_n0: float = 0.0
    # the prior's item signal: "engagement" = each item's shrunk mean log1p(watch ratio) over all its views (how much it
    # is liked by those shown it), "count" = PDA's log share of positives (how often it was shown and liked)
    popularity_prior_signal: Literal["count", "engagement"] = "engagement"
    popularity_prior_shrinkage: float = 10.0  # engagement: pseudo-views at the mean of all views (few views -> mean)
    hard_ratio: float = 0.0  # share of negatives mined from the model's current top-K (0 = uniform only)
    hard_k: int = 100  # top-K depth the hard negatives are drawn from
    hard_start_epoch: int = 3  # epochs of uniform negatives before the first mining (an untrained top-K is noise)
    hard_refresh_every: int = 1  # epochs between re-minings
    adjacency_dtype: Literal["float32", "float16"] = "float32"  # float16 dense R~ halves bytes on GPU (error ~2e-6)
    layout: Literal["auto", "csr", "dense"] = "auto"  # adjacency: auto = dense on GPU for dense graphs, else CSR
    val_metric: str = "recall@20"  # selection metric on validation positives; plain: the ips_ ones jump between points
    val_relevance: float | None = 2.0  # validation positive = watch_ratio >= this ("liked"); None = positive_threshold
    # (at 0.5 ~70 % of views are relevant and validation rewards popularity)
    unbiased_relevance: tuple[str, ...] = (">=0.5", ">2.0")  # small_matrix relevance rules (ours, the authors')
    true_pref_threshold: float = 0.5  # simulator protocol: relevant when true P(click) >= this
    eval_batch_size: int = 512  # users scored per block in evaluation
    seed: int = 0  # seeds init, shuffling and negative sampling
    torch_threads: int = 1  # intra-op threads per worker (0 = torch's default); >1 spins on small sparse products
    experiment: str = "retrieval"  # MLflow experiment name
    tracking_uri: str | None = None  # MLflow tracking URI; None = MLFLOW_TRACKING_URI or ./mlruns
    trainer: TrainerConfig = field(default_factory=TrainerConfig)  # Ray Train workers, checkpoints, early stopping

    def __post_init__(self) -> None:
        for name in (self.model, *self.baselines):
            if name not in MODEL_NAMES:
                raise ValueError(f"unknown model {name!r}; choose from {', '.join(MODEL_NAMES)}")
        if self.model == "popularity":
            raise ValueError("model must be an embedding model (popularity is a baseline only)")
        if not 0.0 <= self.hard_ratio <= 1.0:
            raise ValueError("hard_ratio must be in [0, 1]")
        if self.dim < 1 or self.num_layers < 0 or self.batch_size < 1 or self.epochs < 1:
            raise ValueError("dim, batch_size, epochs must be >= 1 and num_layers >= 0")
        if self.min_steps < 0 or self.max_steps < 0 or self.max_evals < 1:
            raise ValueError("min_steps and max_steps must be >= 0 and max_evals >= 1")
        if self.steps_per_epoch < 0 or self.baselines_max_positives < 0 or self.concurrent_fits < 1:
            raise ValueError("steps_per_epoch and baselines_max_positives must be >= 0, concurrent_fits >= 1")
        if self.val_metric not in ("ndcg@10", "ndcg@20", "recall@20", "ips_ndcg@10", "ips_ndcg@20", "ips_recall@20"):
            raise ValueError("val_metric must be one of recall@20, ndcg@10, ndcg@20 (or their ips_ versions)")
        if self.popularity_prior < 0 or self.popularity_prior_n0 < 0 or self.popularity_prior_shrinkage < 0:
            raise ValueError("popularity_prior, popularity_prior_n0 and popularity_prior_shrinkage must be >= 0")
        if self.popularity_prior_signal not in ("count", "engagement"):
            raise ValueError("popularity_prior_signal must be count or engagement")
        if self.clip_max <= 0:
            raise ValueError("clip_max must be > 0")
