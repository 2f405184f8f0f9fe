"""Ranking policies over each user's candidates, their exact propensities, and logs drawn from the truth.

A :class:`SlatePolicy` puts a list of ``L`` distinct candidates (a *slate*; ``L = 1`` is the single-action case)
in front of a user. It is a mixture

``pi = epsilon * Uniform + (1 - epsilon) * Base``

where ``Uniform`` draws ``L`` of the ``K`` candidates uniformly without replacement and ``Base`` is one of

* **Plackett–Luce** (``temperature > 0``): softmax without replacement over ``scores / temperature``; position
  ``l`` picks item ``a`` with probability ``exp(s_a / T) / sum_{b not yet shown} exp(s_b / T)``;
* **greedy** (``temperature == 0``): the ``L`` best scores, best first (ties: lower candidate index first);
* **fixed** lists (``fixed`` given): a precomputed ranking per user (e.g. the serving reranker's MMR output).

``epsilon > 0`` with a greedy base is epsilon-greedy; with a Plackett–Luce base it bounds every propensity below
by ``epsilon / K`` per slot. Every quantity the off-policy estimators need is exact (no Monte Carlo):

* :meth:`SlatePolicy.conditional` ``(n, L, K)``: ``pi(a | x, a_1..a_{l-1})`` along a logged prefix;
* :meth:`SlatePolicy.prefix_propensity` ``(n, L)``: ``pi(a_1..a_l | x)``; its last column is the slate propensity;
* :meth:`SlatePolicy.marginal` ``(U, L, K)``: ``P(item a at position l | x)`` (for independent IPS). For
  Plackett–Luce this is computed by the exponential-race identity (item ``a`` has an ``Exp(w_a)`` arrival time;
  the order of arrivals is the Plackett–Luce ranking), integrated numerically on a log-time grid (error < 1e-9).

Rewards come from the truth (:func:`collect_log`): per slot ``l`` a click with probability given by a click model,

* ``"pbm"`` (position-based, item-independent): ``P(click_l) = examination_l * true_click(a_l)`` with
  ``examination_l = 1 / log2(l + 1)``;
* ``"cascade"``: the user reads top-down and stops at the first click, ``P(click_l) = true_click(a_l) *
  prod_{m<l} (1 - true_click(a_m))`` (the reward of a slot depends on the items above it).

A policy's true value (expected clicks per slate) is exact under both models (:func:`true_value`).

Example::

    >>> rng = np.random.default_rng(0)
    >>> pol = SlatePolicy(rng.normal(size=(3, 6)), temperature=1.0, epsilon=0.1)
    >>> pol.marginal(2).sum(axis=2).round(6).tolist()[0]
    [1.0, 1.0]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

__all__ = ["SlatePolicy", "LoggedSlates", "ClickModel", "examination", "collect_log", "draw_clicks",
           "true_value", "per_user_true_value"]

ClickModel = Literal["pbm", "cascade"]

_LOG_T_LOW = np.log(1e-10)  # race grid starts here: P(any arrival before t) <= t (weights sum to 1)
_TAIL = 40.0  # race grid ends at TAIL / min weight: every arrival is done but for exp(-40) mass
_STEP = 0.2  # log-time step: the trapezoid rule on these smooth bumps is exact to ~exp(-pi^2 / step)
_USER_CHUNK = 64  # users per quadrature chunk (memory: chunk x grid x K x L floats)


def examination(length: int) -> np.ndarray:
    """``(length,)`` position-based examination probabilities ``1 / log2(l + 1)`` for ``l = 1..length``."""
    return 1.0 / np.log2(np.arange(2, length + 2, dtype=np.float64))


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - np.max(z, axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


@dataclass(frozen=True)
class SlatePolicy:
    """``epsilon``-mixture of uniform and a Plackett–Luce / greedy / fixed ranking over ``K`` candidates.

    Attributes:
        scores: ``(U, K)`` float scores of each user's candidates (higher = better).
        temperature: Plackett–Luce temperature; ``0`` = greedy by score (default 1.0).
        epsilon: probability of a uniformly random slate instead of the base policy (default 0.0).
        fixed: optional ``(U, L_max)`` int candidate positions: a deterministic ranking per user that replaces
            the score-based base (``scores`` then only fixes ``U`` and ``K``).
        name: label for tables.
    """

    scores: np.ndarray
    temperature: float = 1.0
    epsilon: float = 0.0
    fixed: np.ndarray | None = None
    name: str = "policy"
    _logits: np.ndarray = field(init=False, repr=False, compare=False)
    _marginals: dict[int, np.ndarray] = field(init=False, repr=False, compare=False, default_factory=dict)

    def __post_init__(self) -> None:
        s = np.asarray(self.scores, dtype=np.float64)
        if s.ndim != 2 or s.shape[1] < 1:
            raise ValueError(f"scores must be (U, K) with K >= 1, got {s.shape}")
        if not np.all(np.isfinite(s)):
            raise ValueError("scores must be finite")
        if self.temperature < 0 or not 0.0 <= self.epsilon <= 1.0:
            raise ValueError(f"need temperature >= 0 and 0 <= epsilon <= 1, got {self.temperature}, {self.epsilon}")
        if self.fixed is not None:
            f = np.asarray(self.fixed)
            if f.ndim != 2 or f.shape[0] != s.shape[0] or f.min() < 0 or f.max() >= s.shape[1]:
                raise ValueError(f"fixed must be (U, L) positions in [0, {s.shape[1]}), got shape {f.shape}")
            if any(len(set(r)) != len(r) for r in f.tolist()):
                raise ValueError("fixed lists must not repeat a candidate")
        logits = s / self.temperature if self.temperature > 0 else s
        object.__setattr__(self, "_logits", logits)

    # ---------------------------------------------------------------- shape helpers
    @property
    def n_users(self) -> int:
        return int(self._logits.shape[0])

    @property
    def n_candidates(self) -> int:
        return int(self._logits.shape[1])

    @property
    def kind(self) -> str:
        """``"fixed"``, ``"greedy"`` or ``"plackett_luce"`` (the base policy)."""
        if self.fixed is not None:
            return "fixed"
        return "greedy" if self.temperature == 0 else "plackett_luce"

    def _check_length(self, length: int) -> None:
        if not 1 <= length <= self.n_candidates:
            raise ValueError(f"slate length must be in [1, {self.n_candidates}], got {length}")
        if self.fixed is not None and length > self.fixed.shape[1]:
            raise ValueError(f"fixed lists hold {self.fixed.shape[1]} items, asked for {length}")

    def _base_slates(self, length: int) -> np.ndarray:
        """``(U, length)`` lists of a greedy or fixed base policy."""
        if self.kind == "fixed":
            return np.asarray(self.fixed, dtype=np.int64)[:, :length]
        return np.argsort(-self._logits, axis=1, kind="stable")[:, :length].astype(np.int64)

    def deterministic_slates(self, length: int) -> np.ndarray | None:
        """``(U, length)`` the slate each user always gets, or ``None`` when the policy is stochastic."""
        self._check_length(length)
        if self.epsilon > 0 or self.kind == "plackett_luce":
            return None
        return self._base_slates(length)

    # ---------------------------------------------------------------- sampling
    def sample(self, rows: np.ndarray, length: int, seed: int) -> np.ndarray:
        """Draw one slate per entry of ``rows``.

        Args:
            rows: ``(n,)`` user rows in ``[0, U)``.
            length: slate length ``L``.
            seed: random seed.

        Returns:
            ``(n, L)`` int64 candidate positions, distinct within a row.
        """
        self._check_length(length)
        rows = np.asarray(rows, dtype=np.int64)
        rng = np.random.default_rng(seed)
        n, k = rows.size, self.n_candidates
        if self.kind == "plackett_luce":
            gumbel = rng.gumbel(size=(n, k))
            out = np.argsort(-(self._logits[rows] + gumbel), axis=1)[:, :length]
        else:
            out = self._base_slates(length)[rows].copy()
        explore = rng.random(n) < self.epsilon
        if explore.any():
            out[explore] = np.argsort(rng.random((int(explore.sum()), k)), axis=1)[:, :length]
        return out.astype(np.int64)

    # ---------------------------------------------------------------- propensities
    def _base_conditional(self, rows: np.ndarray, slates: np.ndarray) -> np.ndarray:
        """``(n, L, K)`` base-policy ``P(a | prefix)`` along the logged prefixes (uniform part excluded)."""
        n, length = slates.shape
        k = self.n_candidates
        out = np.zeros((n, length, k))
        shown = np.zeros((n, k), dtype=bool)
        ar = np.arange(n)
        if self.kind == "fixed":
            fixed = np.asarray(self.fixed, dtype=np.int64)[rows]
            for pos in range(length):
                out[ar, pos, fixed[:, pos]] = 1.0
            return out
        logits = self._logits[rows]
        for pos in range(length):
            z = np.where(shown, -np.inf, logits)
            if self.kind == "greedy":
                out[ar, pos, np.argmax(z, axis=1)] = 1.0
            else:
                out[:, pos] = _softmax(z)
            shown[ar, slates[:, pos]] = True
        return out

    def _uniform_conditional(self, slates: np.ndarray) -> np.ndarray:
        n, length = slates.shape
        k = self.n_candidates
        out = np.zeros((n, length, k))
        shown = np.zeros((n, k), dtype=bool)
        ar = np.arange(n)
        for pos in range(length):
            out[:, pos] = np.where(shown, 0.0, 1.0 / (k - pos))
            shown[ar, slates[:, pos]] = True
        return out

    def _components(self, rows: np.ndarray, slates: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                                          np.ndarray]:
        """Base and uniform conditionals ``(n, L, K)`` and their prefix probabilities ``(n, L)``."""
        rows = np.asarray(rows, dtype=np.int64)
        slates = np.asarray(slates, dtype=np.int64)
        if slates.ndim != 2 or slates.shape[0] != rows.size:
            raise ValueError(f"slates must be (n, L) with n = len(rows), got {slates.shape} and {rows.shape}")
        self._check_length(slates.shape[1])
        ar = np.arange(rows.size)[:, None]
        pos = np.arange(slates.shape[1])[None, :]
        base = self._base_conditional(rows, slates)
        unif = self._uniform_conditional(slates)
        base_prefix = np.cumprod(base[ar, pos, slates], axis=1)
        unif_prefix = np.cumprod(unif[ar, pos, slates], axis=1)
        return base, unif, base_prefix, unif_prefix

    def prefix_propensity(self, rows: np.ndarray, slates: np.ndarray) -> np.ndarray:
        """``(n, L)``: ``pi(a_1, ..., a_l | x)`` of each logged prefix; column ``L-1`` is the slate propensity."""
        _, _, bp, up = self._components(rows, slates)
        return self.epsilon * up + (1.0 - self.epsilon) * bp

    def conditional(self, rows: np.ndarray, slates: np.ndarray) -> np.ndarray:
        """``(n, L, K)``: ``pi(a | x, a_1..a_{l-1})`` for every candidate ``a`` at each slot of the logged prefix.

        For the mixture this is ``P(prefix + a) / P(prefix)``; where the prefix itself has probability 0 under
        the policy (only possible when ``epsilon == 0``), the base policy's rule is returned.
        """
        return self.conditional_and_prefix(rows, slates)[0]

    def conditional_and_prefix(self, rows: np.ndarray, slates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`conditional` ``(n, L, K)`` and :meth:`prefix_propensity` ``(n, L)`` in one pass."""
        base, unif, bp, up = self._components(rows, slates)
        prefix = self.epsilon * up + (1.0 - self.epsilon) * bp
        if self.epsilon == 0.0:
            return base, prefix
        if self.epsilon == 1.0:
            return unif, prefix
        ones = np.ones((bp.shape[0], 1))
        bprev = np.concatenate([ones, bp[:, :-1]], axis=1)[:, :, None]
        uprev = np.concatenate([ones, up[:, :-1]], axis=1)[:, :, None]
        num = self.epsilon * uprev * unif + (1.0 - self.epsilon) * bprev * base
        den = self.epsilon * uprev + (1.0 - self.epsilon) * bprev
        return num / den, prefix

    def marginal(self, length: int) -> np.ndarray:
        """``(U, L, K)``: probability that candidate ``a`` is shown at position ``l`` (rows sum to 1 over ``a``).

        Computed once per ``length`` and kept (read-only) on the policy.
        """
        self._check_length(length)
        if length not in self._marginals:
            out = self._compute_marginal(length)
            out.setflags(write=False)
            self._marginals[length] = out
        return self._marginals[length]

    def _compute_marginal(self, length: int) -> np.ndarray:
        u, k = self.n_users, self.n_candidates
        if self.kind == "plackett_luce":
            base = _race_integral(_softmax(self._logits), np.ones((u, k)), length)
        else:
            base = np.zeros((u, length, k))
            slates = self._base_slates(length)
            base[np.arange(u)[:, None], np.arange(length)[None, :], slates] = 1.0
        return self.epsilon / k + (1.0 - self.epsilon) * base


def _race_integral(weights: np.ndarray, g: np.ndarray, length: int) -> np.ndarray:
    """Exponential-race integrals behind Plackett–Luce marginals.

    With independent arrival times ``T_i ~ Exp(w_i)`` (``weights`` ``(U, K)``, rows summing to 1), the order of
    arrivals is a Plackett–Luce ranking. Returns ``out`` ``(U, length, K)`` with

    ``out[u, l, j] = int_0^inf w_j e^{-w_j t} [z^l] prod_{i != j} (e^{-w_i t} + z (1 - e^{-w_i t}) g_i) dt``,

    i.e. the ``g``-weighted probability that ``j`` arrives ``(l+1)``-th: with ``g = 1`` the marginal
    ``P(j at position l+1)``; with ``g_i = 1 - c_i`` the no-click weight of the ``l`` items above ``j``.
    Integrated in ``x = log t`` by the trapezoid rule (step :data:`_STEP`).
    """
    u, k = weights.shape
    out = np.zeros((u, length, k))
    for start in range(0, u, _USER_CHUNK):
        w = weights[start:start + _USER_CHUNK]
        gg = g[start:start + _USER_CHUNK]
        wmin = max(float(w.min()), 1e-300)
        x = np.arange(_LOG_T_LOW, np.log(_TAIL / wmin) + _STEP, _STEP)
        t = np.exp(x)  # (G,)
        a = np.exp(-w[:, None, :] * t[None, :, None])  # (c, G, K): not yet arrived
        b = (1.0 - a) * gg[:, None, :]  # arrived, weighted
        c, grid = a.shape[0], t.size
        # prefix[j] = prod_{i<j}, suffix[j] = prod_{i>j}; polynomials in z truncated to degree < length
        prefix = np.zeros((c, grid, k, length))
        suffix = np.zeros((c, grid, k, length))
        poly = np.zeros((c, grid, length))
        poly[..., 0] = 1.0
        for j in range(k):
            prefix[:, :, j] = poly
            nxt = poly * a[:, :, j, None]
            nxt[..., 1:] += poly[..., :-1] * b[:, :, j, None]
            poly = nxt
        poly = np.zeros((c, grid, length))
        poly[..., 0] = 1.0
        for j in range(k - 1, -1, -1):
            suffix[:, :, j] = poly
            nxt = poly * a[:, :, j, None]
            nxt[..., 1:] += poly[..., :-1] * b[:, :, j, None]
            poly = nxt
        others = np.zeros((c, grid, k, length))
        for m in range(length):
            others[..., m:] += prefix[..., m, None] * suffix[..., : length - m]
        dens = w[:, None, :] * a * t[None, :, None] * _STEP  # w_j e^{-w_j t} dt, dt = t dx
        out[start:start + c] = np.einsum("cgk,cgkl->clk", dens, others)
    return out


# -------------------------------------------------------------------------------------------- logs and truth


@dataclass(frozen=True)
class LoggedSlates:
    """A log of ``n`` rounds: who was shown what, what they clicked, and the logger's propensities.

    Attributes:
        rows: ``(n,)`` int64 user rows in ``[0, U)``.
        slates: ``(n, L)`` int64 candidate positions shown, top first.
        rewards: ``(n, L)`` float64 click (0/1) per slot.
        pscore_item_position: ``(n, L)`` ``pi_b(a_l at position l | x)`` (marginal; independent IPS).
        pscore_cascade: ``(n, L)`` ``pi_b(a_1..a_l | x)`` (prefix; RIPS, Cascade-DR).
        pscore_slate: ``(n,)`` ``pi_b(a_1..a_L | x)`` (whole slate; standard IPS).
        click_model: how ``rewards`` were drawn.
    """

    rows: np.ndarray
    slates: np.ndarray
    rewards: np.ndarray
    pscore_item_position: np.ndarray
    pscore_cascade: np.ndarray
    pscore_slate: np.ndarray
    click_model: str

    @property
    def n_rounds(self) -> int:
        return int(self.rows.size)

    @property
    def length(self) -> int:
        return int(self.slates.shape[1])


def draw_clicks(click_prob: np.ndarray, click_model: ClickModel, seed: int) -> np.ndarray:
    """``(n, L)`` 0/1 clicks for true click probabilities ``click_prob`` ``(n, L)`` of the shown items, top first.

    ``"pbm"``: independent clicks with probability ``examination_l * p``. ``"cascade"``: top-down, the first
    click ends the list.
    """
    rng = np.random.default_rng(seed)
    p = np.asarray(click_prob, dtype=np.float64)
    draws = rng.random(p.shape)
    if click_model == "pbm":
        return (draws < p * examination(p.shape[1])[None, :]).astype(np.float64)
    if click_model == "cascade":
        clicks = draws < p
        first = np.cumsum(clicks, axis=1) == 1
        return (clicks & first).astype(np.float64)
    raise ValueError(f"click_model must be 'pbm' or 'cascade', got {click_model!r}")


def collect_log(policy: SlatePolicy, true_click: np.ndarray, n_rounds: int, length: int,
                click_model: ClickModel, seed: int) -> LoggedSlates:
    """Run the logging ``policy`` for ``n_rounds`` rounds on users drawn uniformly with replacement.

    Args:
        policy: the (stochastic) logging policy over ``(U, K)`` candidates.
        true_click: ``(U, K)`` true click probabilities of the candidates.
        n_rounds: rounds ``n`` (one slate each).
        length: slate length ``L`` (``1`` = single action).
        click_model: ``"pbm"`` or ``"cascade"``.
        seed: seed of users, slates and clicks.
    """
    tc = np.asarray(true_click, dtype=np.float64)
    if tc.shape != (policy.n_users, policy.n_candidates):
        raise ValueError(f"true_click must be {(policy.n_users, policy.n_candidates)}, got {tc.shape}")
    if n_rounds < 1:
        raise ValueError(f"n_rounds must be >= 1, got {n_rounds}")
    ss = np.random.SeedSequence(seed).spawn(3)
    rows = np.random.default_rng(ss[0]).integers(0, policy.n_users, size=n_rounds)
    slates = policy.sample(rows, length, seed=int(ss[1].generate_state(1)[0]))
    rewards = draw_clicks(tc[rows[:, None], slates], click_model, seed=int(ss[2].generate_state(1)[0]))
    marg = policy.marginal(length)
    item_pos = marg[rows[:, None], np.arange(length)[None, :], slates]
    prefix = policy.prefix_propensity(rows, slates)
    return LoggedSlates(rows, slates, rewards, item_pos, prefix, prefix[:, -1].copy(), click_model)


def per_user_true_value(policy: SlatePolicy, true_click: np.ndarray, length: int,
                        click_model: ClickModel) -> np.ndarray:
    """``(U,)`` exact expected clicks per slate of ``policy`` for each user under ``click_model``.

    ``"pbm"``: ``sum_l examination_l sum_a P(a at l) c_a``. ``"cascade"`` (at most one click):
    ``1 - E[prod_{shown a} (1 - c_a)]``, directly for deterministic lists and by the exponential race for
    Plackett–Luce and for the uniform part (equal weights).
    """
    c = np.asarray(true_click, dtype=np.float64)
    u, k = c.shape
    if click_model == "pbm":
        marg = policy.marginal(length)
        return np.einsum("ulk,uk,l->u", marg, c, examination(length))
    if click_model != "cascade":
        raise ValueError(f"click_model must be 'pbm' or 'cascade', got {click_model!r}")
    policy._check_length(length)
    g = 1.0 - c

    def race_no_click(weights: np.ndarray) -> np.ndarray:
        integ = _race_integral(weights, g, length)  # (U, L, K)
        return np.einsum("uk,uk->u", integ[:, length - 1], g)

    if policy.kind == "plackett_luce":
        base = race_no_click(_softmax(policy._logits))
    else:
        base = np.prod(np.take_along_axis(g, policy._base_slates(length), axis=1), axis=1)
    no_click = (1.0 - policy.epsilon) * base
    if policy.epsilon > 0:
        no_click = no_click + policy.epsilon * race_no_click(np.full((u, k), 1.0 / k))
    return 1.0 - no_click


def true_value(policy: SlatePolicy, true_click: np.ndarray, length: int, click_model: ClickModel) -> float:
    """Exact policy value: mean over users (drawn uniformly) of :func:`per_user_true_value`."""
    return float(per_user_true_value(policy, true_click, length, click_model).mean())
