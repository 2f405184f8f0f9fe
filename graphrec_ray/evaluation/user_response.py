"""User-response model for the mock A/B test: clicks, watch and session ends drawn from the simulator's truth.

A user is served a fixed, policy-ordered feed (pages of ``page_size`` items, no item twice; see
:mod:`graphrec_ray.evaluation.ab`) and scrolls through it one item at a time. For each shown item, with
``mu`` the simulator's true log-mean watch ratio of the (user, item) pair (:mod:`graphrec_ray.sources.simulator.ground_truth`)::

    watch  = 0 with probability p_skip, else exp(mu + sigma * Z),  Z ~ N(0, 1)   (the simulator's watch model)
    click  = watch >= click_threshold                                           (so P(click) = the true p_click)
    value  = log1p(watch)                                                       (E[value] = the true e_value)

The session ends after the current item when the first of these happens (the exit rules of KuaiRec-based
simulators: KuaiEnv in Gao et al., CIRS, 2022, leaves when a category repeats too often in the recent window;
KuaiSim, Zhao et al., 2023, leaves when the user's patience runs out):

* **category repeat**: the item's primary category occurs ``>= max_category_repeat`` times among the last
  ``category_window`` shown items (this one included). The feed is fixed, so this position is deterministic;
* **patience**: patience starts at ``patience``, drops by 1 on every non-click, rises by ``click_bonus`` on a click
  (capped at ``patience``); the user leaves when it reaches 0;
* **max length**: ``max_pages * page_size`` items shown, or the feed runs out.

Because a diverse feed postpones the category rule, diversity matters to session length.

Exact expectations (:func:`expected_sessions`): given the feed, clicks at different positions are independent, and
whether position ``t`` is reached depends only on clicks before it. So a forward recursion over the patience level
(``patience + 1`` states) gives ``P(reach t)`` exactly, and ``E[clicks] = sum_t P(reach t) * p_click_t``,
``E[value] = sum_t P(reach t) * e_value_t``, ``E[length] = sum_t P(reach t)``. No sampling error.

Example::

    >>> m = ResponseModel(patience=3, click_bonus=1, category_window=5, max_category_repeat=3, max_pages=1)
    >>> mu = np.zeros((2, 10)); cat = np.zeros((2, 10), dtype=np.int64)
    >>> category_stop_length(cat, m.category_window, m.max_category_repeat).tolist()   # 3rd item of category 0
    [3, 3]
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from graphrec_ray.sources.simulator.ground_truth import expected_log1p_watch_ratio, p_watch_at_least

END_CATEGORY, END_PATIENCE, END_MAX_LENGTH = 0, 1, 2  # end_reason codes ("feed exhausted" counts as max length)
END_NAMES = ("category_repeat", "patience", "max_length")


@dataclass(frozen=True)
class ResponseModel:
    """Parameters of the simulated user (defaults chosen for the demo scale; see the module docstring)."""

    sigma: float = 0.45  # std of log watch ratio: the simulator's default (read it from ground_truth/params.json)
    p_skip: float = 0.01  # instant-skip probability: the simulator's default (ground_truth/params.json)
    click_threshold: float = 0.5  # a click is watch_ratio >= 0.5, as the simulator's p_click and the labels
    page_size: int = 10  # items per page, as the Serve app's k_default
    max_pages: int = 5  # at most 50 items a session: a few minutes of short videos
    patience: int = 5  # net non-clicks a user tolerates: with CTR ~0.5 the typical session is 10-20 items
    click_bonus: int = 1  # a click restores one unit of patience (capped), as KuaiSim's reward-driven temper
    category_window: int = 10  # recent items checked by the repeat rule: one page
    max_category_repeat: int = 5  # leave when a category fills half of the last page (KuaiEnv-style exit)

    def __post_init__(self) -> None:
        if self.sigma <= 0 or not 0.0 <= self.p_skip < 1.0 or self.click_threshold <= 0:
            raise ValueError("need sigma > 0, 0 <= p_skip < 1, click_threshold > 0")
        if min(self.page_size, self.max_pages, self.patience, self.category_window) < 1 or self.click_bonus < 0:
            raise ValueError("need page_size, max_pages, patience, category_window >= 1 and click_bonus >= 0")
        if not 2 <= self.max_category_repeat <= self.category_window:
            raise ValueError("need 2 <= max_category_repeat <= category_window")

    @property
    def max_length(self) -> int:
        """Most items a session can show: ``max_pages * page_size``."""
        return self.max_pages * self.page_size


@dataclass(frozen=True)
class Sessions:
    """Per-user outcomes ``(U,)`` of one simulated session each (or their exact expectations).

    Attributes:
        impressions: items shown (session length).
        clicks: clicked items.
        value: summed ``log1p(watch_ratio)``.
        distinct_categories: distinct primary categories among the shown items.
        end_reason: ``END_*`` code per user (``-1`` in expectations, where it is random).
    """

    impressions: np.ndarray
    clicks: np.ndarray
    value: np.ndarray
    distinct_categories: np.ndarray
    end_reason: np.ndarray


def category_stop_length(category: np.ndarray, window: int, max_repeat: int) -> np.ndarray:
    """Items shown before the category-repeat rule ends each feed.

    Args:
        category: ``(U, L)`` int primary category of each feed position (``-1`` = padding, never counted).
        window: recent positions checked (this one included).
        max_repeat: occurrences in the window that end the session.

    Returns:
        ``(U,)`` int64: ``t + 1`` for the first position ``t`` where the rule fires, else ``L + 1`` (never).
    """
    cat = np.asarray(category, dtype=np.int64)
    U, L = cat.shape
    in_window = np.ones((U, L), dtype=np.int64)  # the item itself
    for lag in range(1, min(window, L)):  # + earlier items of the same category within the window
        in_window[:, lag:] += cat[:, lag:] == cat[:, :-lag]
    fired = (in_window >= max_repeat) & (cat >= 0)
    return np.where(fired.any(axis=1), fired.argmax(axis=1) + 1, L + 1).astype(np.int64)


def _first_occurrence(category: np.ndarray) -> np.ndarray:
    """``(U, L)`` bool: position holds the first occurrence of its category in the row (padding ``-1``: False)."""
    cat = np.asarray(category, dtype=np.int64)
    U, L = cat.shape
    order = np.argsort(cat, axis=1, kind="stable")
    srt = np.take_along_axis(cat, order, axis=1)
    first_sorted = np.ones((U, L), dtype=bool)
    first_sorted[:, 1:] = srt[:, 1:] != srt[:, :-1]
    out = np.zeros((U, L), dtype=bool)
    np.put_along_axis(out, order, first_sorted, axis=1)
    return out & (cat >= 0)


def _limits(category: np.ndarray, model: ResponseModel, n_served: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """``(limit (U,), reason_if_reached (U,))``: feed positions a patient user would see, and why it stops there."""
    U, L = category.shape
    cat_stop = category_stop_length(category, model.category_window, model.max_category_repeat)
    cap = np.full(U, min(L, model.max_length), dtype=np.int64)
    if n_served is not None:
        cap = np.minimum(cap, np.asarray(n_served, dtype=np.int64))
    limit = np.minimum(cat_stop, cap)
    reason = np.where(cat_stop <= cap, END_CATEGORY, END_MAX_LENGTH)
    return limit, reason


def draw_noise(shape: tuple[int, int], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(z, u)``: standard normals and uniforms of ``shape`` for watch draws (shared by both simulators)."""
    rng = np.random.default_rng(seed)
    return rng.standard_normal(shape), rng.random(shape)


def _watch(mu: np.ndarray, z: np.ndarray, u: np.ndarray, model: ResponseModel) -> np.ndarray:
    return np.where(u < model.p_skip, 0.0, np.exp(mu + model.sigma * z))


def simulate_sessions(mu: np.ndarray, category: np.ndarray, model: ResponseModel, seed: int,
                      n_served: np.ndarray | None = None) -> Sessions:
    """One random session per user, vectorised over users (a loop over feed positions only).

    Args:
        mu: ``(U, L)`` true log-mean watch ratio of each feed position.
        category: ``(U, L)`` primary category of each feed position (``-1`` = padding).
        model: :class:`ResponseModel`.
        seed: seed of the watch draws (:func:`draw_noise`).
        n_served: ``(U,)`` feed lengths (default ``L`` for everyone).

    Returns:
        :class:`Sessions`; identical, draw for draw, to :func:`simulate_sessions_loop` with the same seed.
    """
    mu = np.asarray(mu, dtype=np.float64)
    U, L = mu.shape
    z, u = draw_noise((U, L), seed)
    watch = _watch(mu, z, u, model)
    click = watch >= model.click_threshold
    limit, reason = _limits(category, model, n_served)
    patience = np.full(U, model.patience, dtype=np.int64)
    length = np.zeros(U, dtype=np.int64)
    left_impatient = np.zeros(U, dtype=bool)
    for t in range(int(limit.max(initial=0))):
        active = (t < limit) & ~left_impatient
        length += active
        up = np.minimum(patience + model.click_bonus, model.patience)
        patience = np.where(active, np.where(click[:, t], up, patience - 1), patience)
        left_impatient |= active & (patience <= 0)
    shown = np.arange(L)[None, :] < length[:, None]
    category_too = (length == limit) & (reason == END_CATEGORY)  # both rules on the last item: category first
    end = np.where(left_impatient & ~category_too, END_PATIENCE, reason)
    return Sessions(impressions=length.astype(np.float64), clicks=(click & shown).sum(axis=1).astype(np.float64),
                    value=np.where(shown, np.log1p(watch), 0.0).sum(axis=1),
                    distinct_categories=(_first_occurrence(category) & shown).sum(axis=1).astype(np.float64),
                    end_reason=end.astype(np.int64))


def simulate_sessions_loop(mu: np.ndarray, category: np.ndarray, model: ResponseModel, seed: int,
                           n_served: np.ndarray | None = None) -> Sessions:
    """The same sessions as :func:`simulate_sessions` by a plain per-user, per-item Python loop.

    The reference implementation (and the benchmark's baseline): reads the rules straight from the module
    docstring, with a deque for the category window.
    """
    mu = np.asarray(mu, dtype=np.float64)
    cat = np.asarray(category, dtype=np.int64)
    U, L = mu.shape
    z, u = draw_noise((U, L), seed)
    out = np.zeros((5, U))
    for r in range(U):
        cap = min(L, model.max_length, L if n_served is None else int(n_served[r]))
        patience, recent, seen = model.patience, deque(maxlen=model.category_window), set()
        clicks = value = 0.0
        n, end = 0, END_MAX_LENGTH
        while n < cap:
            t = n
            n += 1
            w = 0.0 if u[r, t] < model.p_skip else float(np.exp(mu[r, t] + model.sigma * z[r, t]))
            c = cat[r, t]
            recent.append(c)
            seen.add(c)
            value += np.log1p(w)
            if w >= model.click_threshold:
                clicks += 1
                patience = min(patience + model.click_bonus, model.patience)
            else:
                patience -= 1
            if c >= 0 and sum(1 for x in recent if x == c) >= model.max_category_repeat:
                end = END_CATEGORY
                break
            if patience <= 0:
                end = END_PATIENCE
                break
        out[:, r] = (n, clicks, value, len(seen - {-1}), end)
    return Sessions(out[0], out[1], out[2], out[3], out[4].astype(np.int64))


def expected_sessions(mu: np.ndarray, category: np.ndarray, model: ResponseModel,
                      n_served: np.ndarray | None = None) -> Sessions:
    """Exact per-user expectations of :func:`simulate_sessions` (forward recursion over patience levels).

    Args: as :func:`simulate_sessions` (no seed: nothing is drawn).

    Returns:
        :class:`Sessions` of ``(U,)`` expected impressions, clicks, value and distinct categories;
        ``end_reason`` is ``-1``.
    """
    mu = np.asarray(mu, dtype=np.float64)
    U, L = mu.shape
    p = p_watch_at_least(mu, model.sigma, model.p_skip, model.click_threshold)
    v = expected_log1p_watch_ratio(mu, model.sigma, model.p_skip)
    new_cat = _first_occurrence(category).astype(np.float64)
    limit, _ = _limits(category, model, n_served)
    P = model.patience
    state = np.zeros((U, P + 1))  # state[:, k] = P(still watching with patience k); column 0 = has left
    state[:, P] = 1.0
    acc = np.zeros((4, U))
    up = np.minimum(np.arange(P + 1) + model.click_bonus, P)
    for t in range(int(limit.max(initial=0))):
        reach = np.where(t < limit, state[:, 1:].sum(axis=1), 0.0)
        acc += reach * np.stack([np.ones(U), p[:, t], v[:, t], new_cat[:, t]])
        nxt = np.zeros_like(state)
        pc = p[:, t:t + 1]
        np.add.at(nxt.T, up[1:], (state[:, 1:] * pc).T)  # click: patience k -> min(k + bonus, P)
        nxt[:, :-1] += state[:, 1:] * (1.0 - pc)  # no click: k -> k - 1 (0 = leaves)
        state = np.where((t < limit)[:, None], nxt, 0.0)
        state[:, 0] = 0.0
    return Sessions(acc[0], acc[1], acc[2], acc[3], np.full(U, -1, dtype=np.int64))
