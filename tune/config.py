"""Configuration of the Pareto sweep (``configs/pareto.yaml`` lists changes; ``graphrec pareto`` runs it)."""

from __future__ import annotations

from dataclasses import dataclass

OBJECTIVE_NAMES = ("engagement", "value", "diversity", "coverage")


@dataclass(frozen=True)
class ParetoConfig:
    """Search space, searchers and evaluation of the reranking sweep (Ray-free; read by ``tune/pareto.py``).

    The grid is the cross product ``grid_w_engagement x grid_lambda x grid_pool`` with ``w_value = 1 -
    w_engagement`` (weights on the simplex: only their ratio and total size matter to scalarisation + MMR, so the
    simplex loses no setting of interest). The NSGA-II search samples the same space continuously.
    """

    # decision data
    n_users: int = 0  # evaluation users: 0 = every small_matrix user (200 on the demo run)
    k_candidates: int = 200  # candidates per user, as served (ServeConfig.k_candidates)
    k: int = 10  # served list length the objectives are measured on (ServeConfig.k_default)
    seed: int = 0  # user subset, NSGA-II sampler and bootstrap seed
    n_boot: int = 1000  # bootstrap resamples per interval (ends stable to ~1 % of the width)
    # users held out of the sweep: the knee is chosen on the others and compared with the serving weights on these,
    # so the reported gain is not inflated by having picked the best of ~200 settings on the same users
    holdout_frac: float = 0.5
    # objectives defining the front, knee and hypervolume (all maximised; coverage is reported beside them)
    objectives: tuple[str, ...] = ("engagement", "value", "diversity")  # the product trade-off of issue 11
    # grid searcher (tune.grid_search): 11 x 4 x 3 = 132 settings
    grid_w_engagement: tuple[float, ...] = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)  # simplex steps
    grid_lambda: tuple[float, ...] = (0.4, 0.6, 0.8, 1.0)  # MMR strengths from strong diversity to none
    grid_pool: tuple[int, ...] = (20, 50, 100)  # MMR pools: twice k, the middle, the serving default
    # multi-objective searcher (OptunaSearch + NSGA-II)
    nsga_trials: int = 60  # three generations of 20
    nsga_population: int = 20  # NSGA-II population per generation
    lambda_range: tuple[float, float] = (0.0, 1.0)  # continuous MMR strength searched by NSGA-II
    pool_range: tuple[int, int] = (10, 200)  # MMR pool searched by NSGA-II (k .. k_candidates)
    # execution
    max_concurrent: int = 2  # trials at once: one per core on the 2-core machine
    ray_num_cpus: int = 2  # logical CPUs of the local cluster the job starts (ignored on an existing cluster)

    def __post_init__(self) -> None:
        unknown = [o for o in self.objectives if o not in OBJECTIVE_NAMES]
        if unknown or len(self.objectives) < 2 or len(set(self.objectives)) != len(self.objectives):
            raise ValueError(f"objectives must be >= 2 distinct names of {OBJECTIVE_NAMES}, got {self.objectives}")
        if not 0.0 <= self.holdout_frac < 1.0:
            raise ValueError(f"holdout_frac must be in [0, 1), got {self.holdout_frac}")
        if self.n_users < 0 or self.k_candidates < 1 or self.k < 1 or self.n_boot < 10:
            raise ValueError("need n_users >= 0, k_candidates >= 1, k >= 1, n_boot >= 10")
        if not self.grid_w_engagement or any(not 0.0 <= w <= 1.0 for w in self.grid_w_engagement):
            raise ValueError("grid_w_engagement must be non-empty values in [0, 1] (w_value = 1 - w_engagement)")
        if not self.grid_lambda or any(not 0.0 <= x <= 1.0 for x in self.grid_lambda):
            raise ValueError("grid_lambda must be non-empty values in [0, 1]")
        if not self.grid_pool or min(self.grid_pool) < 1:
            raise ValueError("grid_pool must be non-empty values >= 1")
        lo, hi = self.lambda_range
        if not 0.0 <= lo < hi <= 1.0 or not 1 <= self.pool_range[0] < self.pool_range[1]:
            raise ValueError("need 0 <= lambda_range[0] < lambda_range[1] <= 1 and 1 <= pool_range[0] < pool_range[1]")
        if self.nsga_trials < 0 or self.nsga_population < 2 or self.max_concurrent < 1 or self.ray_num_cpus < 1:
            raise ValueError("need nsga_trials >= 0, nsga_population >= 2, max_concurrent >= 1, ray_num_cpus >= 1")

    @property
    def grid_size(self) -> int:
        return len(self.grid_w_engagement) * len(self.grid_lambda) * len(self.grid_pool)
