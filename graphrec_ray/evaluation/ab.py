"""Mock A/B test of reranking policies on simulated users, with the exact true effect beside every estimate.

Policies (:class:`ArmSpec`) replay the Serve app's reranking (:func:`graphrec_ray.rerank.scalarize.scalarize`, then
:func:`graphrec_ray.rerank.mmr.mmr_select` over the ``top_n_serve`` best, as
:func:`graphrec_ray.serving.request_path.rerank` does) on each user's fixed candidates and ranker scores: page 1 is
what ``/recommend?k=10`` returns; page ``p + 1`` is the same call on the candidates not served yet. Users respond
by :mod:`graphrec_ray.evaluation.user_response` (clicks, watch and session ends from the simulator's truth).

The experiment:

* **population**: ``replicas * U`` simulated users, each a seeded uniform draw (with replacement) of an
  evaluation user's true preferences with its own response draws; users are i.i.d. from the evaluation population,
  so the per-user intervals hold by design and the true arm value is the plain mean over evaluation users
  (exact copies, ``replicas`` of each, balanced the arms on user type: the A/A test rejected 0% of 50 reruns);
* **randomisation**: arm = seeded splitmix64 hash of the simulated user id, modulo the number of arms;
* **pre-period**: every simulated user first has one session under the control policy (arm 0), the CUPED covariate;
* **per arm**: CTR and value per impression (ratios of per-user sums, bootstrap over users), value per user,
  session length, distinct categories per session and page-1 intra-list diversity (means, bootstrap);
* **per difference** (arm vs control, independent groups): bootstrap interval (both arms resampled), Welch t-test
  for means, delta-method z-interval for ratios (Deng et al., 2018), CUPED (Deng et al., 2013) with its variance
  cut, and the users per arm needed to detect ``mde_relative`` of the control mean at ``alpha``/``power``;
* **truth**: the exact expected value of each arm over the evaluation users
  (:func:`graphrec_ray.evaluation.user_response.expected_sessions`; ILD is deterministic), so every estimate has
  its error and every interval shows whether it covers the true effect.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats as sps
from scipy.special import ndtri

from graphrec_ray.evaluation.stats import DEFAULT_LEVEL, DEFAULT_N_BOOT, Interval, bootstrap_mean, bootstrap_ratio
from graphrec_ray.evaluation.user_response import (END_NAMES, ResponseModel, Sessions, expected_sessions,
                                                   simulate_sessions)
from graphrec_ray.preprocess.split import _splitmix64
from graphrec_ray.rerank.mmr import intra_list_diversity, mmr_select
from graphrec_ray.rerank.scalarize import DEFAULT_VALUE_SCALE, scalarize

MEAN_METRICS = ("value_per_user", "session_length", "clicks_per_user", "distinct_categories", "ild_page1")
#: CUPED is applied to per-user means drawn from the response model; page-1 ILD is a fixed function of the user and
#: the policy, so under an A/A its pre-period copy IS the outcome (zero adjusted variance, an empty interval)
CUPED_METRICS = ("value_per_user", "session_length", "clicks_per_user", "distinct_categories")
RATIO_METRICS = {"ctr": ("clicks", "impressions"), "value_per_impression": ("value", "impressions")}


@dataclass(frozen=True)
class ArmSpec:
    """One policy: the Reranking deployment's settings (``configs/serve_app.yaml`` user_config) and its retrieval."""

    name: str = "serving"  # label in the results
    w_engagement: float = 1.0  # ServeConfig default weight of calibrated p_click
    w_value: float = 1.0  # ServeConfig default weight of normalised e_value
    lambda_diversity: float = 0.8  # ServeConfig default MMR trade-off (1.0 = no MMR)
    top_n_serve: int = 100  # ServeConfig default MMR pool
    retrieval: str = "main"  # "main" = the run's candidates; "second" = ABConfig.second_run_dir's

    def __post_init__(self) -> None:
        if not 0.0 <= self.lambda_diversity <= 1.0 or self.top_n_serve < 1:
            raise ValueError(f"arm {self.name}: need 0 <= lambda_diversity <= 1 and top_n_serve >= 1")
        if self.retrieval not in ("main", "second"):
            raise ValueError(f"arm {self.name}: retrieval must be 'main' or 'second', got {self.retrieval!r}")


def _default_arms() -> tuple[ArmSpec, ...]:
    return (ArmSpec("serving"), ArmSpec("no_mmr", lambda_diversity=1.0),
            ArmSpec("seed_scoring", w_engagement=0.6, w_value=0.4, lambda_diversity=0.3))


@dataclass(frozen=True)
class ABConfig:
    """The mock A/B test (``configs/ab.yaml`` lists changes; ``graphrec ab --run-dir R arms=[...]``)."""

    arms: tuple[ArmSpec, ...] = field(default_factory=_default_arms)  # first arm is control: serving settings,
    # no MMR (lambda 1), and the seed's scoring block (0.6 / 0.4 / 0.3)
    response: ResponseModel = field(default_factory=ResponseModel)  # user model (sigma/p_skip from ground truth)
    replicas: int = 50  # simulated users per evaluation user: 200 small_matrix users -> 10,000 simulated users
    n_eval_users: int | None = None  # None = every small_matrix user (DecisionData's evaluation users)
    k_candidates: int = 200  # candidates per user, the serving default (must cover max_pages * page_size)
    value_scale: float = DEFAULT_VALUE_SCALE  # ServeConfig default normalisation of e_value
    salt: int = 0  # randomisation hash seed: a new salt is a new random assignment
    seed: int = 0  # response draws (pre-period uses seed + 1000)
    cuped: bool = True  # simulate a pre-period under the control policy and report CUPED estimates
    level: float = DEFAULT_LEVEL  # two-sided coverage of every interval
    n_boot: int = DEFAULT_N_BOOT  # bootstrap resamples
    alpha: float = 0.05  # test size for p-values and the sample-size calculation
    power: float = 0.8  # power for the sample-size calculation
    mde_relative: float = 0.02  # minimum detectable effect: 2% of the control arm's estimate
    second_run_dir: str = ""  # run with a second retrieval model for arms with retrieval: second ("" = none)
    decision_cache: bool = True  # reuse <run_dir>/ab/decision_data.npz when present (retrieval+ranking once)
    coverage_replications: int = 20  # reruns with new salts/seeds to measure the intervals' coverage (0 = skip)

    def __post_init__(self) -> None:
        if len(self.arms) < 2:
            raise ValueError("need at least two arms (the first is control)")
        if len({a.name for a in self.arms}) != len(self.arms):
            raise ValueError("arm names must be unique")
        if self.replicas < 1 or self.k_candidates < 1 or self.n_boot < 10 or self.coverage_replications < 0:
            raise ValueError("need replicas >= 1, k_candidates >= 1, n_boot >= 10, coverage_replications >= 0")
        if not 0 < self.alpha < 1 or not 0 < self.power < 1 or self.mde_relative <= 0:
            raise ValueError("need 0 < alpha < 1, 0 < power < 1, mde_relative > 0")


# ------------------------------------------------------------------------------------------------ policies


def serve_feed(p_click: np.ndarray, e_value: np.ndarray, unit_emb: np.ndarray, arm: ArmSpec, page_size: int,
               n_pages: int, value_scale: float = DEFAULT_VALUE_SCALE) -> np.ndarray:
    """A user's feed: ``n_pages`` pages of the Serve app's reranking, no candidate served twice.

    Args:
        p_click, e_value: ``(K,)`` ranker outputs of the candidates.
        unit_emb: ``(K, d)`` unit item embeddings of the candidates.
        arm: reranking settings.
        page_size: items per page (``k``).
        n_pages: pages.
        value_scale: e_value normalisation (default ``log1p(5)``).

    Returns:
        ``(L,)`` int64 candidate positions in serving order, ``L = min(K, n_pages * page_size)``.
    """
    remaining = np.arange(len(p_click))
    out: list[np.ndarray] = []
    final = scalarize(p_click, e_value, arm.w_engagement, arm.w_value, value_scale)
    for _ in range(n_pages):
        if remaining.size == 0:
            break
        pos = mmr_select(final[remaining], unit_emb[remaining], page_size, arm.lambda_diversity, arm.top_n_serve)
        out.append(remaining[pos])
        remaining = np.delete(remaining, pos)
    return np.concatenate(out).astype(np.int64) if out else np.zeros(0, np.int64)


@dataclass(frozen=True)
class PolicyInputs:
    """What a policy needs for ``U`` evaluation users with ``K`` candidates each.

    Attributes:
        item_idx: ``(U, K)`` candidates.  p_click, e_value: ``(U, K)`` ranker outputs.
        mu: ``(U, K)`` true log-mean watch ratio of each candidate (see :func:`mu_from_p_click`).
        item_unit: ``(n_items, d)`` unit item embeddings.  item_category: ``(n_items,)`` primary categories.
    """

    item_idx: np.ndarray
    p_click: np.ndarray
    e_value: np.ndarray
    mu: np.ndarray
    item_unit: np.ndarray
    item_category: np.ndarray


@dataclass(frozen=True)
class Feeds:
    """An arm's feeds for the evaluation users: ``mu``/``category`` ``(U, L)``, ``n_served``/``ild_page1`` ``(U,)``."""

    mu: np.ndarray
    category: np.ndarray
    n_served: np.ndarray
    ild_page1: np.ndarray


def build_feeds(inp: PolicyInputs, arm: ArmSpec, model: ResponseModel,
                value_scale: float = DEFAULT_VALUE_SCALE) -> Feeds:
    """Every evaluation user's feed under ``arm`` (padding: ``mu = -inf`` i.e. no click, category ``-1``)."""
    U, K = inp.item_idx.shape
    L = min(K, model.max_length)
    mu = np.full((U, L), -np.inf)
    cat = np.full((U, L), -1, dtype=np.int64)
    n = np.zeros(U, dtype=np.int64)
    ild = np.zeros(U)
    for r in range(U):
        unit = inp.item_unit[inp.item_idx[r]]
        pos = serve_feed(inp.p_click[r], inp.e_value[r], unit, arm, model.page_size, model.max_pages, value_scale)
        n[r] = pos.size
        mu[r, :pos.size] = inp.mu[r, pos]
        cat[r, :pos.size] = inp.item_category[inp.item_idx[r, pos]]
        ild[r] = intra_list_diversity(unit[pos[:model.page_size]])
    return Feeds(mu, cat, n, ild)


def mu_from_p_click(p_click: np.ndarray, model: ResponseModel, clip: float = 8.0) -> np.ndarray:
    """Invert ``P(click) = (1 - p_skip) * Phi((mu - log t) / sigma)`` to the log-mean ``mu`` (float64).

    For data without the simulator's ``mu`` (real ``small_matrix`` outcomes): probabilities outside the model's
    range ``[0, 1 - p_skip]`` are clipped, so a 0/1 outcome becomes a near-certain response (``clip`` sigmas).
    """
    q = np.asarray(p_click, dtype=np.float64) / (1.0 - model.p_skip)
    z = np.clip(ndtri(np.clip(q, 0.0, 1.0)), -clip, clip)
    return math.log(model.click_threshold) + model.sigma * z


# ------------------------------------------------------------------------------------------ randomisation


def assign_arms(user_ids: np.ndarray, n_arms: int, salt: int = 0) -> np.ndarray:
    """``(N,)`` int64 arm of each user: splitmix64 hash of ``(user id, salt)`` modulo ``n_arms``.

    Deterministic per user and salt (a user stays in their arm across runs); a new salt re-randomises.
    """
    u = np.asarray(user_ids, dtype=np.int64).astype(np.uint64)
    # hash id and salt separately, then mix: `hash(id ^ salt)` would only permute a block of consecutive ids
    # for a small salt, so nearby salts gave nearly the same split (A/B coverage study: 78% for 95% intervals)
    salt_h = _splitmix64(np.array([salt & 0xFFFFFFFFFFFFFFFF], dtype=np.uint64))[0]
    with np.errstate(over="ignore"):
        h = _splitmix64(_splitmix64(u) ^ salt_h)
    return (h % np.uint64(n_arms)).astype(np.int64)


# ------------------------------------------------------------------------------------------------ statistics


def welch_test(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Welch's unequal-variance t-test of ``mean(a) - mean(b)``: ``(t statistic, two-sided p-value)``."""
    res = sps.ttest_ind(np.asarray(a, float), np.asarray(b, float), equal_var=False)
    return float(res.statistic), float(res.pvalue)


def welch_interval(a: np.ndarray, b: np.ndarray, level: float = DEFAULT_LEVEL) -> Interval:
    """``mean(a) - mean(b)`` with the Welch-Satterthwaite t-interval (independent groups)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
    se = math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va ** 2 / (a.size - 1) + vb ** 2 / (b.size - 1)) if se > 0 else float("inf")
    d = float(a.mean() - b.mean())
    half = float(sps.t.ppf(0.5 + level / 2, df)) * se if se > 0 else 0.0
    return Interval(d, d - half, d + half, level, int(a.size + b.size))


def delta_ratio(num: np.ndarray, den: np.ndarray) -> tuple[float, float]:
    """``(R, Var R)`` of ``R = sum(num) / sum(den)`` over i.i.d. users by the delta method.

    ``Var R ~= (s_y^2 - 2 R s_xy + R^2 s_x^2) / (n * mean(x)^2)`` with ``y = num``, ``x = den`` per user.
    """
    y, x = np.asarray(num, float), np.asarray(den, float)
    n = y.size
    mx = x.mean()
    r = y.sum() / x.sum()
    cov = np.cov(y, x, ddof=1)
    var = (cov[0, 0] - 2 * r * cov[0, 1] + r * r * cov[1, 1]) / (n * mx * mx)
    return float(r), float(var)


def delta_ratio_difference(num_a: np.ndarray, den_a: np.ndarray, num_b: np.ndarray, den_b: np.ndarray,
                           level: float = DEFAULT_LEVEL) -> tuple[Interval, float]:
    """``R_a - R_b`` (independent groups) with a delta-method normal interval; returns ``(interval, p-value)``."""
    ra, va = delta_ratio(num_a, den_a)
    rb, vb = delta_ratio(num_b, den_b)
    d, se = ra - rb, math.sqrt(va + vb)
    z = float(ndtri(0.5 + level / 2))
    p = float(2 * sps.norm.sf(abs(d) / se)) if se > 0 else float(d == 0)
    return Interval(d, d - z * se, d + z * se, level, int(np.size(num_a) + np.size(num_b))), p


def _boot_stat(cols: list[np.ndarray], n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """``(n_boot, len(cols))`` resampled means of user columns resampled together (chunked)."""
    n = cols[0].size
    out = np.empty((n_boot, len(cols)))
    step = max(1, (1 << 22) // max(n, 1))
    for s in range(0, n_boot, step):
        e = min(n_boot, s + step)
        idx = rng.integers(0, n, size=(e - s, n))
        for j, c in enumerate(cols):
            out[s:e, j] = c[idx].mean(axis=1)
    return out


def bootstrap_difference(a: np.ndarray, b: np.ndarray, level: float = DEFAULT_LEVEL, n_boot: int = DEFAULT_N_BOOT,
                         seed: int = 0) -> Interval:
    """``mean(a) - mean(b)`` for independent groups: each group resampled over its own users (percentile)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    rng = np.random.default_rng(seed)
    boot = _boot_stat([a], n_boot, rng)[:, 0] - _boot_stat([b], n_boot, rng)[:, 0]
    lo, hi = np.quantile(boot, [(1 - level) / 2, (1 + level) / 2])
    return Interval(float(a.mean() - b.mean()), float(lo), float(hi), level, int(a.size + b.size))


def bootstrap_ratio_difference(num_a: np.ndarray, den_a: np.ndarray, num_b: np.ndarray, den_b: np.ndarray,
                               level: float = DEFAULT_LEVEL, n_boot: int = DEFAULT_N_BOOT, seed: int = 0) -> Interval:
    """``sum(num_a)/sum(den_a) - sum(num_b)/sum(den_b)``, each group's users resampled as whole units."""
    rng = np.random.default_rng(seed)
    ba = _boot_stat([np.asarray(num_a, float), np.asarray(den_a, float)], n_boot, rng)
    bb = _boot_stat([np.asarray(num_b, float), np.asarray(den_b, float)], n_boot, rng)
    boot = ba[:, 0] / ba[:, 1] - bb[:, 0] / bb[:, 1]
    lo, hi = np.quantile(boot, [(1 - level) / 2, (1 + level) / 2])
    est = float(np.sum(num_a) / np.sum(den_a) - np.sum(num_b) / np.sum(den_b))
    return Interval(est, float(lo), float(hi), level, int(np.size(num_a) + np.size(num_b)))


def cuped_theta(y: np.ndarray, x: np.ndarray) -> float:
    """CUPED coefficient ``theta = Cov(y, x) / Var(x)`` (pool both arms: the covariate is pre-treatment)."""
    y, x = np.asarray(y, float), np.asarray(x, float)
    vx = x.var(ddof=1)
    return float(np.cov(y, x, ddof=1)[0, 1] / vx) if vx > 0 else 0.0


def cuped_adjust(y: np.ndarray, x: np.ndarray, theta: float, x_mean: float) -> np.ndarray:
    """``y - theta * (x - x_mean)``: same expectation as ``y`` (randomised arms share ``E[x]``), less variance."""
    return np.asarray(y, float) - theta * (np.asarray(x, float) - x_mean)


def sample_size_per_arm(sd: float, mde: float, alpha: float = 0.05, power: float = 0.8) -> int:
    """Users per arm for a two-sided two-sample z-test: ``ceil(2 (z_{1-alpha/2} + z_power)^2 sd^2 / mde^2)``.

    ``sd`` is the per-user standard deviation (for a ratio metric: ``sqrt(n * Var R)`` from :func:`delta_ratio`).
    Example: ``sd = 1, mde = 0.5`` gives 63 (the classic 16 sd^2 / mde^2 rule of thumb gives 64).
    """
    if mde <= 0 or sd < 0:
        raise ValueError("need mde > 0 and sd >= 0")
    z = float(ndtri(1 - alpha / 2) + ndtri(power))
    return int(math.ceil(2 * z * z * sd * sd / (mde * mde)))


# ------------------------------------------------------------------------------------------------ experiment


def _user_table(s: Sessions, ild: np.ndarray) -> dict[str, np.ndarray]:
    return {"impressions": s.impressions, "clicks": s.clicks, "value": s.value,
            "value_per_user": s.value, "session_length": s.impressions, "clicks_per_user": s.clicks,
            "distinct_categories": s.distinct_categories, "ild_page1": np.asarray(ild, float)}


def true_arm_values(feeds: Feeds, model: ResponseModel) -> dict[str, float]:
    """Exact expected metrics of an arm served to every evaluation user (equal weights)."""
    e = expected_sessions(feeds.mu, feeds.category, model, feeds.n_served)
    t = _user_table(e, feeds.ild_page1)
    out = {m: float(t[m].mean()) for m in MEAN_METRICS}
    for m, (num, den) in RATIO_METRICS.items():
        out[m] = float(t[num].sum() / t[den].sum())
    return out


@dataclass(frozen=True)
class ABResult:
    """Rows for ``ab_results.csv``: ``arms`` (one per arm x metric) and ``differences`` (treatment x metric)."""

    arms: list[dict[str, Any]]
    differences: list[dict[str, Any]]
    n_simulated_users: int


def run_ab(inputs: dict[str, PolicyInputs], user_raw: np.ndarray, cfg: ABConfig) -> ABResult:
    """Run the whole experiment on ``U`` evaluation users (see the module docstring).

    Args:
        inputs: ``{"main": PolicyInputs, ("second": ...)}``; arms whose retrieval is missing must be removed first.
        user_raw: ``(U,)`` raw user ids (a simulated user's id is its type's raw id and its own number).
        cfg: :class:`ABConfig`.

    Returns:
        :class:`ABResult`.
    """
    model, R = cfg.response, cfg.replicas
    arms = list(cfg.arms)
    U = int(np.size(user_raw))
    feeds = {a.name: build_feeds(inputs[a.retrieval], a, model, cfg.value_scale) for a in arms}
    truth = {a.name: true_arm_values(feeds[a.name], model) for a in arms}
    N = U * R
    eval_row = np.random.default_rng([cfg.seed, 0xAB]).integers(0, U, N)  # each simulated user's type
    sim_ids = np.asarray(user_raw, np.int64)[eval_row] * N + np.arange(N)  # unique, traceable to the type
    arm_of = assign_arms(sim_ids, len(arms), cfg.salt)
    tables, ends = {}, {}
    for k, a in enumerate(arms):
        rows = eval_row[arm_of == k]
        f = feeds[a.name]
        s = simulate_sessions(f.mu[rows], f.category[rows], model, cfg.seed * 7919 + k, f.n_served[rows])
        tables[a.name] = _user_table(s, f.ild_page1[rows])
        ends[a.name] = np.bincount(s.end_reason, minlength=3) / max(rows.size, 1)
    pre = None
    if cfg.cuped:
        f0 = feeds[arms[0].name]
        s0 = simulate_sessions(f0.mu[eval_row], f0.category[eval_row], model, cfg.seed + 1000, f0.n_served[eval_row])
        pre_all = _user_table(s0, f0.ild_page1[eval_row])
        pre = {a.name: {m: pre_all[m][arm_of == k] for m in CUPED_METRICS} for k, a in enumerate(arms)}

    arm_rows: list[dict[str, Any]] = []
    for k, a in enumerate(arms):
        t = tables[a.name]
        base = {"arm": a.name, "n_users": int(t["impressions"].size), "w_engagement": a.w_engagement,
                "w_value": a.w_value, "lambda_diversity": a.lambda_diversity, "top_n_serve": a.top_n_serve,
                "retrieval": a.retrieval}
        base.update({f"end_{n}": float(v) for n, v in zip(END_NAMES, ends[a.name])})
        for m in (*RATIO_METRICS, *MEAN_METRICS):
            if m in RATIO_METRICS:
                num, den = RATIO_METRICS[m]
                iv = bootstrap_ratio(t[num], t[den], cfg.level, cfg.n_boot, cfg.seed + k)
            else:
                iv = bootstrap_mean(t[m], cfg.level, cfg.n_boot, cfg.seed + k)
            arm_rows.append({**base, "metric": m, "estimate": iv.estimate, "ci_low": iv.low, "ci_high": iv.high,
                             "true": truth[a.name][m], "error": iv.estimate - truth[a.name][m],
                             "covers_truth": bool(iv.low <= truth[a.name][m] <= iv.high)})

    ctrl = arms[0].name
    diff_rows: list[dict[str, Any]] = []
    for k, a in enumerate(arms[1:], start=1):
        ta, tb = tables[a.name], tables[ctrl]
        for m in (*RATIO_METRICS, *MEAN_METRICS):
            true_d = truth[a.name][m] - truth[ctrl][m]
            row: dict[str, Any] = {"arm": a.name, "control": ctrl, "metric": m, "true_difference": true_d}
            if m in RATIO_METRICS:
                num, den = RATIO_METRICS[m]
                boot = bootstrap_ratio_difference(ta[num], ta[den], tb[num], tb[den], cfg.level, cfg.n_boot,
                                                  cfg.seed + 100 * k)
                param, p = delta_ratio_difference(ta[num], ta[den], tb[num], tb[den], cfg.level)
                method = "delta"
                _, var_b = delta_ratio(tb[num], tb[den])
                sd, ctrl_est = math.sqrt(var_b * tb[den].size), float(tb[num].sum() / tb[den].sum())
            else:
                boot = bootstrap_difference(ta[m], tb[m], cfg.level, cfg.n_boot, cfg.seed + 100 * k)
                param = welch_interval(ta[m], tb[m], cfg.level)
                _, p = welch_test(ta[m], tb[m])
                method = "welch"
                sd, ctrl_est = float(tb[m].std(ddof=1)), float(tb[m].mean())
            row.update({"estimate": boot.estimate, "error": boot.estimate - true_d,
                        "boot_ci_low": boot.low, "boot_ci_high": boot.high, "verdict": boot.verdict(),
                        "covers_truth": bool(boot.low <= true_d <= boot.high),
                        "test": method, "ci_low": param.low, "ci_high": param.high, "p_value": p,
                        "significant": bool(p < cfg.alpha)})
            mde = cfg.mde_relative * abs(ctrl_est)
            row["mde"] = mde
            row["n_per_arm_for_mde"] = sample_size_per_arm(sd, mde, cfg.alpha, cfg.power) if mde > 0 else None
            if pre is not None and m in CUPED_METRICS:
                xa, xb = pre[a.name][m], pre[ctrl][m]
                x_all, y_all = np.concatenate([xa, xb]), np.concatenate([ta[m], tb[m]])
                theta = cuped_theta(y_all, x_all)
                xm = float(x_all.mean())
                ya, yb = cuped_adjust(ta[m], xa, theta, xm), cuped_adjust(tb[m], xb, theta, xm)
                cu = welch_interval(ya, yb, cfg.level)
                var_plain = ta[m].var(ddof=1) / ta[m].size + tb[m].var(ddof=1) / tb[m].size
                var_cuped = ya.var(ddof=1) / ya.size + yb.var(ddof=1) / yb.size
                row.update({"cuped_estimate": cu.estimate, "cuped_ci_low": cu.low, "cuped_ci_high": cu.high,
                            "cuped_theta": theta,
                            "cuped_variance_cut": float(1 - var_cuped / var_plain) if var_plain > 0 else 0.0,
                            "cuped_covers_truth": bool(cu.low <= true_d <= cu.high)})
            diff_rows.append(row)
    return ABResult(arm_rows, diff_rows, int(U * R))


def coverage_study(inputs: dict[str, PolicyInputs], user_raw: np.ndarray, cfg: ABConfig,
                   replications: int) -> list[dict[str, Any]]:
    """Repeat the experiment with new randomisations and draws (``salt``, ``seed`` = ``cfg``'s + ``r``).

    The true differences are exact, so this measures the A/B estimates themselves: per treatment x metric, the
    mean error (bias), RMSE, how often each interval covers the true difference (nominal ``cfg.level``), how often
    the test rejects, and the mean CUPED variance cut.

    Returns:
        One dict per (treatment arm, metric), in :func:`run_ab`'s order.
    """
    if replications < 1:
        raise ValueError("replications must be >= 1")
    runs = [run_ab(inputs, user_raw, dataclasses.replace(cfg, salt=cfg.salt + r, seed=cfg.seed + r)).differences
            for r in range(replications)]
    out = []
    for j, first in enumerate(runs[0]):
        rows = [run[j] for run in runs]
        err = np.array([r["error"] for r in rows])
        row = {"arm": first["arm"], "control": first["control"], "metric": first["metric"],
               "true_difference": first["true_difference"], "replications": replications,
               "bias": float(err.mean()), "rmse": float(np.sqrt(np.mean(err ** 2))),
               "boot_coverage": float(np.mean([r["covers_truth"] for r in rows])),
               "test": first["test"],
               "test_coverage": float(np.mean([r["ci_low"] <= r["true_difference"] <= r["ci_high"] for r in rows])),
               "reject_rate": float(np.mean([r["significant"] for r in rows]))}
        if "cuped_estimate" in first:
            cerr = np.array([r["cuped_estimate"] - r["true_difference"] for r in rows])
            row.update({"cuped_bias": float(cerr.mean()), "cuped_rmse": float(np.sqrt(np.mean(cerr ** 2))),
                        "cuped_coverage": float(np.mean([r["cuped_covers_truth"] for r in rows])),
                        "cuped_variance_cut": float(np.mean([r["cuped_variance_cut"] for r in rows]))})
        out.append(row)
    return out
