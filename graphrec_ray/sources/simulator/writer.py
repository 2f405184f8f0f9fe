"""Write a simulated KuaiRec-layout dataset: the six CSVs in the published format plus ``ground_truth/``,
chunked over users so memory stays bounded at the ``full`` preset (:func:`simulate`)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pyarrow as pa

from graphrec_ray.config import to_dict
from graphrec_ray.sources import kuairec as kr
from graphrec_ray.sources.simulator.ground_truth import (GroundTruth, affinity, expected_watch_ratio,
                                                         exposure_probability, log_watch_mean, p_watch_at_least)
from graphrec_ray.sources.simulator.model import (CATEGORY_NAMES, Clock, SimModel, build_model, draw_watch,
                                                  expected_progress, seeded_rng, session_offsets)
from graphrec_ray.sources.simulator.presets import (CLICK_THRESHOLD, SimulatorConfig, Sizes, resolve_model,
                                                    resolve_sizes)

def _interaction_table(users: np.ndarray, items: np.ndarray, play: np.ndarray, vdur: np.ndarray,
                       cols: tuple[pa.Array, pa.Array, pa.Array]) -> pa.Table:
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = play / vdur.astype(np.float64)
    time, date, ts = cols
    return pa.table({"user_id": users.astype(np.int64), "video_id": items.astype(np.int64),
                     "play_duration": play.astype(np.int64), "video_duration": vdur.astype(np.int64),
                     "time": time, "date": date, "timestamp": ts, "watch_ratio": ratio})


class _Stats:
    """Counters of what was written (for the summary and the tests)."""

    def __init__(self, n_items: int) -> None:
        self.c: dict[str, int] = {}
        self.exposures = np.zeros(n_items, dtype=np.int64)
        self.exp_show = np.zeros(n_items)
        self.exp_rates = {k: np.zeros(n_items) for k in ("p03", "p05", "p1", "p2", "wr", "prog")}

    def add(self, key: str, n: int) -> None:
        self.c[key] = self.c.get(key, 0) + int(n)


def _big_chunks(cfg: SimulatorConfig, m: SimModel, sz: Sizes, clock: Clock, stats: _Stats) -> Iterator[bytes]:
    small_u = np.zeros(sz.n_users, dtype=bool)
    small_u[m.small_users] = True
    small_i = np.zeros(sz.n_items, dtype=bool)
    small_i[m.small_items] = True
    for k, a in enumerate(range(0, sz.n_users, cfg.chunk_users)):
        b = min(a + cfg.chunk_users, sz.n_users)
        rng = seeded_rng(cfg.seed, 1, k)
        mu = log_watch_mean(m.user_f[a:b], m.item_f, m.user_b[a:b], m.item_b, cfg.mu0, m.scale)
        aff = affinity(m.user_f[a:b], m.item_f, m.scale) if cfg.exposure_affinity else None
        pi = exposure_probability(m.activity[a:b], m.weight, sz.density, aff, cfg.exposure_affinity,
                                  cfg.affinity_std)
        pi[np.ix_(small_u[a:b], small_i)] = 0.0
        # platform-level expected engagement per item (for item_daily_features)
        stats.exp_show += pi.sum(axis=0)
        for key, thr in (("p03", 0.3), ("p05", CLICK_THRESHOLD), ("p1", 1.0), ("p2", 2.0)):
            stats.exp_rates[key] += (pi * p_watch_at_least(mu, cfg.sigma, cfg.p_skip, thr)).sum(axis=0)
        stats.exp_rates["wr"] += (pi * expected_watch_ratio(mu, cfg.sigma, cfg.p_skip)).sum(axis=0)
        stats.exp_rates["prog"] += (pi * expected_progress(mu, cfg.sigma, cfg.p_skip)).sum(axis=0)
        uu, ii = np.nonzero(rng.random(pi.shape) < pi)
        stats.add("big_exposed_pairs", len(uu))
        n_views = 1 + rng.poisson(cfg.repeat_view_rate, size=len(uu))
        stats.add("big_repeat_views", int((n_views - 1).sum()))
        mu_rows = np.repeat(mu[uu, ii], n_views)
        uu, ii = np.repeat(uu + a, n_views), np.repeat(ii, n_views)
        wr, outlier = draw_watch(rng, mu_rows, cfg)
        vdur = m.duration_ms[ii].copy()
        play = np.rint(wr * vdur).astype(np.int64)
        zero = rng.random(len(uu)) < cfg.zero_duration_rate
        vdur[zero] = 0
        play[zero] = np.maximum(play[zero], 1)
        stats.add("big_injected_outliers", outlier.sum())
        stats.add("big_zero_duration", zero.sum())
        stats.add("big_skips", (play == 0).sum())
        offs = session_offsets(rng, uu, play, cfg, m)
        order = np.lexsort((offs, uu))
        uu, ii, play, vdur, offs = uu[order], ii[order], play[order], vdur[order], offs[order]
        dup = rng.random(len(uu)) < cfg.duplicate_row_rate
        rep = 1 + dup.astype(np.int64)
        stats.add("big_duplicate_rows", dup.sum())
        uu, ii, play, vdur, offs = (np.repeat(x, rep) for x in (uu, ii, play, vdur, offs))
        np.add.at(stats.exposures, ii, 1)
        table = _interaction_table(uu, ii, play, vdur, clock.columns(offs))
        stats.add("big_rows", table.num_rows)
        stats.add("big_clicks", int((play >= CLICK_THRESHOLD * vdur)[vdur > 0].sum()))
        stats.add("big_ratio_above_5", int((play > 5 * vdur)[vdur > 0].sum()))
        yield kr.format_csv_rows(table)


def _small_chunks(cfg: SimulatorConfig, m: SimModel, sz: Sizes, clock: Clock, stats: _Stats) -> Iterator[bytes]:
    users = m.small_users
    for k, a in enumerate(range(0, len(users), cfg.chunk_users)):
        us = users[a:a + cfg.chunk_users]
        rng = seeded_rng(cfg.seed, 2, k)
        mu = log_watch_mean(m.user_f[us], m.item_f[m.small_items], m.user_b[us], m.item_b[m.small_items],
                            cfg.mu0, m.scale)
        keep = rng.random(mu.shape) >= cfg.small_blocked_rate
        r, c = np.nonzero(keep)
        stats.add("small_blocked_pairs", keep.size - len(r))
        uu, ii = us[r], m.small_items[c]
        wr, outlier = draw_watch(rng, mu[r, c], cfg)
        vdur = m.duration_ms[ii]
        play = np.rint(wr * vdur).astype(np.int64)
        offs = session_offsets(rng, uu, play, cfg, m)
        valid = rng.random(len(uu)) >= cfg.small_nan_time_rate
        # rows without a time go last within each user, as in the published file
        order = np.lexsort((offs, ~valid, uu))
        uu, ii, play, vdur, offs, valid = (x[order] for x in (uu, ii, play, vdur, offs, valid))
        stats.add("small_injected_outliers", outlier.sum())
        stats.add("small_nan_time", (~valid).sum())
        stats.add("small_skips", (play == 0).sum())
        table = _interaction_table(uu, ii, play, vdur, clock.columns(offs, valid))
        stats.add("small_rows", table.num_rows)
        stats.add("small_clicks", int((play >= CLICK_THRESHOLD * vdur).sum()))
        stats.add("small_ratio_above_5", int((play > 5 * vdur).sum()))
        yield kr.format_csv_rows(table)


# ------------------------------------------------------------------------------------------------ side tables
def _item_categories(m: SimModel) -> pa.Table:
    feats = ["[" + ", ".join(str(c) for c in cats) + "]" for cats in m.item_cats]
    return pa.table({"video_id": np.arange(len(feats), dtype=np.int64), "feat": pa.array(feats)})


def _bucket(values: np.ndarray, edges: list[float], labels: list[str]) -> list[str]:
    return [labels[j] for j in np.searchsorted(np.asarray(edges), values, side="left")]


def _user_features(cfg: SimulatorConfig, m: SimModel, n_friends: np.ndarray) -> pa.Table:
    rng = seeded_rng(cfg.seed, 3)
    U = len(m.activity)
    q = np.argsort(np.argsort(-m.activity)) / max(U - 1, 1)   # 0 = most active
    degree = np.where(q < 0.6, "full_active", np.where(q < 0.85, "high_active",
                      np.where(q < 0.98, "middle_active", "UNKNOWN")))
    follow = np.floor(np.exp(rng.normal(3.5, 1.2, U))).astype(np.int64) * (rng.random(U) > 0.05)
    fans = np.floor(np.exp(rng.normal(1.5, 1.6, U))).astype(np.int64) * (rng.random(U) > 0.2)
    friends = n_friends + rng.poisson(3.0, U) * (rng.random(U) > 0.3)
    register = rng.integers(15, 2500, U)
    top = np.argsort(-m.prefs, axis=1)
    cards = [2, 7, 31, 1000, 40, 8, 1500, 1200, 50, 10, 80, 10, 3, 2, 2, 2, 2, 2]
    nan_rate = {4: 0.028, 12: 0.011, 13: 0.01, 14: 0.01, 15: 0.01, 16: 0.01, 17: 0.01}
    cols: dict[str, Any] = {
        "user_id": np.arange(U, dtype=np.int64),
        "user_active_degree": pa.array(degree.tolist()),
        "is_lowactive_period": (q > 0.95).astype(np.int64),
        "is_live_streamer": (rng.random(U) < 0.02).astype(np.int64),
        "is_video_author": (rng.random(U) < 0.3).astype(np.int64),
        "follow_user_num": follow,
        "follow_user_num_range": pa.array(_bucket(follow, [0, 10, 50, 100, 150, 250, 500],
                                                  ["0", "(0,10]", "(10,50]", "(50,100]", "(100,150]", "(150,250]",
                                                   "(250,500]", "500+"])),
        "fans_user_num": fans,
        "fans_user_num_range": pa.array(_bucket(fans, [0, 9, 99, 999, 4999, 9999, 99999],
                                                ["0", "[1,10)", "[10,100)", "[100,1k)", "[1k,5k)", "[5k,1w)",
                                                 "[1w,10w)", "[10w,100w)"])),
        "friend_user_num": friends,
        "friend_user_num_range": pa.array(_bucket(friends, [0, 4, 29, 59, 119, 249],
                                                  ["0", "[1,5)", "[5,30)", "[30,60)", "[60,120)", "[120,250)",
                                                   "250+"])),
        "register_days": register,
        "register_days_range": pa.array(_bucket(register, [30, 60, 90, 180, 365, 730],
                                                ["15-30", "31-60", "61-90", "91-180", "181-365", "366-730",
                                                 "730+"])),
    }
    for j, card in enumerate(cards):
        if j == 1:
            v = top[:, 0] % card                 # informative: the user's favourite tag (mod 7)
        elif j == 2:
            v = top[:, 1] % card                 # informative: the second favourite tag
        else:
            v = rng.integers(0, card, U)
        v = v.astype(np.float64)
        if j in nan_rate:
            v[rng.random(U) < nan_rate[j]] = np.nan
            cols[f"onehot_feat{j}"] = pa.array(v, from_pandas=True)   # float column: written "1.0", NaN empty
        else:
            cols[f"onehot_feat{j}"] = v.astype(np.int64)
    return pa.table({c: cols[c] for c in kr.USER_FEATURES_COLUMNS})


def _social_network(cfg: SimulatorConfig, m: SimModel) -> tuple[pa.Table, np.ndarray]:
    rng = seeded_rng(cfg.seed, 4)
    U = len(m.activity)
    n_social = max(2, int(round(cfg.social_user_rate * U)))
    members = np.sort(rng.choice(U, size=min(n_social, U), replace=False))
    p = m.prefs[members]
    sim = (p / np.linalg.norm(p, axis=1, keepdims=True)) @ (p / np.linalg.norm(p, axis=1, keepdims=True)).T
    np.fill_diagonal(sim, -np.inf)
    logits = 4.0 * sim
    prob = np.exp(logits - logits.max(axis=1, keepdims=True))
    prob /= prob.sum(axis=1, keepdims=True)
    adj = np.zeros((len(members), len(members)), dtype=bool)
    for r in range(len(members)):
        k = min(1 + rng.poisson(0.8), len(members) - 1)
        adj[r, rng.choice(len(members), size=k, replace=False, p=prob[r])] = True
    adj |= adj.T
    lists = ["[" + ", ".join(str(int(members[c])) for c in np.nonzero(adj[r])[0]) + "]" for r in range(len(members))]
    n_friends = np.zeros(U, dtype=np.int64)
    n_friends[members] = adj.sum(axis=1)
    return pa.table({"user_id": members.astype(np.int64), "friend_list": pa.array(lists)}), n_friends


_UPLOAD_TYPES = ("ShortImport", "Web", "Kmovie", "ShortCamera", "LongImport", "PhotoCopy", "LongCamera",
                 "PictureSet", "FollowShoot", "LipsSync")
_OTHER_RATES = {  # per-play base rates of the minor counters
    "comment_stay_duration": 0.0, "comment_cnt": 0.004, "direct_comment_cnt": 0.003, "reply_comment_cnt": 0.001,
    "delete_comment_cnt": 0.0001, "comment_like_cnt": 0.002, "follow_cnt": 0.003, "cancel_follow_cnt": 0.0003,
    "share_cnt": 0.002, "download_cnt": 0.0005, "report_cnt": 0.0002, "reduce_similar_cnt": 0.001,
    "collect_cnt": 0.003, "cancel_collect_cnt": 0.0003,
}


def _item_daily_chunks(cfg: SimulatorConfig, m: SimModel, sz: Sizes, clock: Clock, stats: _Stats,
                       block_items: int = 2000) -> Iterator[bytes]:
    """One row per (item, day); counters drawn from the item's true platform-level rates."""
    rng_static = seeded_rng(cfg.seed, 5)
    I, D = sz.n_items, cfg.n_days
    author = rng_static.integers(0, max(1, I // 3), I)
    video_type = np.where(rng_static.random(I) < 0.03, "AD", "NORMAL")
    start = dt.date.fromisoformat(cfg.start_date)
    upload_off = rng_static.integers(1, 365, I)
    upload_dt = [(start - dt.timedelta(days=int(o))).isoformat() for o in upload_off]
    upload_type = rng_static.choice(np.array(_UPLOAD_TYPES), size=I)
    visible = np.where(rng_static.random(I) < 0.99, "public", "friend_visible")
    wh = np.array([[720, 1280], [1080, 1920], [544, 960], [720, 720], [1280, 720]])
    shape = wh[rng_static.choice(len(wh), size=I, p=[0.6, 0.2, 0.1, 0.05, 0.05])]
    music = rng_static.integers(0, 100_000, I)
    tag_id = np.array([c[0] for c in m.item_cats], dtype=np.int64)
    tag_name_missing = rng_static.random(I) < 0.09
    # platform-level per-show rates from the true model (exposure-weighted over users)
    show = np.maximum(stats.exp_show, 1e-9)
    rate = {k: np.clip(v / show, 0.0, 1.0) for k, v in stats.exp_rates.items() if k != "wr"}
    progress = rate["prog"]
    mean_wr = stats.exp_rates["wr"] / show
    weekend = np.array([(start + dt.timedelta(days=d)).weekday() >= 5 for d in range(D)])
    for k, a in enumerate(range(0, I, block_items)):
        b = min(a + block_items, I)
        rng = seeded_rng(cfg.seed, 6, k)
        items = np.repeat(np.arange(a, b), D)
        day = np.tile(np.arange(D), b - a)
        lam = cfg.traffic_multiplier * stats.exp_show[items] / D * np.where(weekend[day], 1.15, 0.95)
        show_cnt = rng.poisson(lam)
        play_cnt = rng.binomial(show_cnt, 1.0 - cfg.p_skip)
        valid = rng.binomial(show_cnt, rate["p05"][items])
        complete = rng.binomial(valid, np.clip(rate["p1"][items] / np.maximum(rate["p05"][items], 1e-12), 0, 1))
        long_play = rng.binomial(complete, np.clip(rate["p2"][items] / np.maximum(rate["p1"][items], 1e-12), 0, 1))
        short_play = rng.binomial(show_cnt, 1.0 - rate["p03"][items])
        engaged = rate["p2"][items]
        like = rng.binomial(play_cnt, np.clip(0.01 + 0.08 * engaged, 0, 1))

        def users_of(cnt: np.ndarray) -> np.ndarray:
            return cnt - rng.binomial(cnt, 0.03)

        cols: dict[str, Any] = {
            "video_id": items.astype(np.int64), "date": clock.dates[day].astype(np.int64),
            "author_id": author[items], "video_type": pa.array(video_type[items].tolist()),
            "upload_dt": pa.array([upload_dt[i] for i in items]), "upload_type": pa.array(upload_type[items].tolist()),
            "visible_status": pa.array(visible[items].tolist()),
            "video_duration": pa.array(m.duration_ms[items].astype(np.float64), mask=rng.random(len(items)) < 0.031),
            "video_width": shape[items, 0].astype(np.int64), "video_height": shape[items, 1].astype(np.int64),
            "music_id": music[items], "video_tag_id": tag_id[items],
            "video_tag_name": pa.array([CATEGORY_NAMES[t % len(CATEGORY_NAMES)] for t in tag_id[items]],
                                       mask=tag_name_missing[items]),
            "show_cnt": show_cnt, "show_user_num": users_of(show_cnt), "play_cnt": play_cnt,
            "play_user_num": users_of(play_cnt),
            "play_duration": np.rint(play_cnt * mean_wr[items] * m.duration_ms[items]).astype(np.int64),
            "complete_play_cnt": complete, "complete_play_user_num": users_of(complete),
            "valid_play_cnt": valid, "valid_play_user_num": users_of(valid),
            "long_time_play_cnt": long_play, "long_time_play_user_num": users_of(long_play),
            "short_time_play_cnt": short_play, "short_time_play_user_num": users_of(short_play),
            "play_progress": np.where(show_cnt > 0, np.round(progress[items], 6), 0.0),
            "comment_stay_duration": rng.poisson(play_cnt * 50.0 * (0.5 + engaged)),
            "like_cnt": like, "like_user_num": users_of(like), "click_like_cnt": like - rng.binomial(like, 0.2),
        }
        cols["double_click_cnt"] = like - cols["click_like_cnt"]
        cols["cancel_like_cnt"] = rng.binomial(like, 0.02)
        cols["cancel_like_user_num"] = users_of(cols["cancel_like_cnt"])
        for name in kr.DAILY_COUNTER_COLUMNS:
            if name in cols:
                continue
            if name.endswith("_user_num"):
                cols[name] = users_of(cols[name.replace("_user_num", "_cnt")])
                continue
            base = _OTHER_RATES.get(name, 0.001)
            cnt = rng.binomial(play_cnt, np.clip(base * (0.5 + engaged), 0, 1))
            cols[name] = cnt
        collect_missing = day < 13                      # collect_* not logged before 2020-07-18 (~20% of rows)
        for name in ("collect_cnt", "collect_user_num", "cancel_collect_cnt", "cancel_collect_user_num"):
            cols[name] = pa.array(cols[name].astype(np.float64), mask=collect_missing)
        # order counters so that *_user_num follow their *_cnt (computed above in any order)
        table = pa.table({c: cols[c] for c in kr.ITEM_DAILY_FEATURES_COLUMNS})
        stats.add("item_daily_rows", table.num_rows)
        stats.add("item_daily_null_collect_cnt", int(collect_missing.sum()))
        yield kr.format_csv_rows(table)


# ------------------------------------------------------------------------------------------------ driver
def _write(path: Path, columns: tuple[str, ...], chunks: Iterator[bytes] | list[bytes]) -> None:
    with open(path, "wb") as f:
        f.write(kr.csv_header(columns))
        for chunk in chunks:
            f.write(chunk)


def _top_decile_share(x: np.ndarray) -> float:
    x = np.sort(np.asarray(x, dtype=np.float64))[::-1]
    k = max(1, int(round(0.1 * len(x))))
    return float(x[:k].sum() / max(x.sum(), 1e-12))


def _gini(x: np.ndarray) -> float:
    x = np.sort(np.asarray(x, dtype=np.float64))
    n = len(x)
    if n == 0 or x.sum() <= 0:
        return 0.0
    return float((2 * np.arange(1, n + 1) - n - 1).dot(x) / (n * x.sum()))


def simulate(cfg: SimulatorConfig, out_dir: str | Path, progress: bool = True) -> dict[str, Any]:
    """Write a KuaiRec-layout dataset with ground truth into ``out_dir``; return a summary.

    Args:
        cfg: sizes, model and quirk settings (see :class:`SimulatorConfig`); same config -> same bytes.
        out_dir: created if missing; the six CSVs go there and the truth to ``out_dir/ground_truth/``.
        progress: show tqdm bars over user chunks.

    Returns:
        JSON-friendly dict: ``sizes``, ``rows`` per file, ``quirks`` (counts of each injected quirk),
        ``click_rate`` (big/small), ``exposure`` (top-decile share and Gini of exposures vs of true
        appeal, correlation of exposure with appeal). Also written to ``ground_truth/summary.json``.
    """
    from tqdm.auto import tqdm

    cfg = resolve_model(cfg)
    sz = resolve_sizes(cfg)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model = build_model(cfg, sz)
    clock = Clock.make(cfg)
    stats = _Stats(sz.n_items)
    n_big = -(-sz.n_users // cfg.chunk_users)
    n_small = -(-sz.small_users // cfg.chunk_users)
    bar = dict(disable=not progress, unit="chunk", leave=False)
    _write(out / kr.BIG_MATRIX, kr.INTERACTION_COLUMNS,
           tqdm(_big_chunks(cfg, model, sz, clock, stats), total=n_big, desc="big_matrix", **bar))
    _write(out / kr.SMALL_MATRIX, kr.INTERACTION_COLUMNS,
           tqdm(_small_chunks(cfg, model, sz, clock, stats), total=n_small, desc="small_matrix", **bar))
    social, n_friends = _social_network(cfg, model)
    _write(out / kr.SOCIAL_NETWORK, kr.SOCIAL_NETWORK_COLUMNS, [kr.format_csv_rows(social)])
    _write(out / kr.ITEM_CATEGORIES, kr.ITEM_CATEGORIES_COLUMNS, [kr.format_csv_rows(_item_categories(model))])
    _write(out / kr.USER_FEATURES, kr.USER_FEATURES_COLUMNS, [kr.format_csv_rows(_user_features(cfg, model, n_friends))])
    _write(out / kr.ITEM_DAILY_FEATURES, kr.ITEM_DAILY_FEATURES_COLUMNS,
           tqdm(_item_daily_chunks(cfg, model, sz, clock, stats), desc="item_daily_features", **bar))

    item_prop = stats.exp_show / sz.n_users
    gt = GroundTruth(
        user_ids=np.arange(sz.n_users, dtype=np.int64), video_ids=np.arange(sz.n_items, dtype=np.int64),
        user_factors=model.user_f, item_factors=model.item_f, user_bias=model.user_b, item_bias=model.item_b,
        activity=model.activity, exposure_weight=model.weight, item_propensity=item_prop,
        small_user_ids=model.small_users.astype(np.int64), small_video_ids=model.small_items.astype(np.int64),
        item_categories=model.cat_weights, user_preferences=model.prefs,
        params={"mu0": cfg.mu0, "scale": model.scale, "sigma": cfg.sigma, "p_skip": cfg.p_skip,
                "density": sz.density, "click_threshold": CLICK_THRESHOLD, "start_date": cfg.start_date,
                "exposure_affinity": cfg.exposure_affinity, "affinity_std": cfg.affinity_std,
                "n_days": cfg.n_days, "timezone_offset_s": kr.TIMEZONE_OFFSET_S},
    )
    if cfg.active_fraction < 1.0:   # only when set: the demo's params.json keeps its bytes
        gt.params["active_fraction"] = cfg.active_fraction
    if cfg.watch_levels is not None:
        gt.params["watch_levels"] = list(cfg.watch_levels)
    gt_dir = gt.save(out)
    appeal = stats.exp_rates["p05"] / np.maximum(stats.exp_show, 1e-12)   # exposure-weighted true click rate
    c = stats.c
    summary: dict[str, Any] = {
        "preset": cfg.preset, "seed": cfg.seed,
        "sizes": {"n_users": sz.n_users, "n_items": sz.n_items, "small_users": sz.small_users,
                  "small_items": sz.small_items, "density": sz.density},
        "rows": {kr.BIG_MATRIX: c.get("big_rows", 0), kr.SMALL_MATRIX: c.get("small_rows", 0),
                 kr.ITEM_CATEGORIES: sz.n_items, kr.USER_FEATURES: sz.n_users,
                 kr.ITEM_DAILY_FEATURES: c.get("item_daily_rows", 0), kr.SOCIAL_NETWORK: social.num_rows},
        "quirks": {
            "small_nan_time_rows": c.get("small_nan_time", 0),
            "small_blocked_pairs": c.get("small_blocked_pairs", 0),
            "big_duplicate_rows": c.get("big_duplicate_rows", 0),
            "big_repeat_views": c.get("big_repeat_views", 0),
            "injected_outliers": c.get("big_injected_outliers", 0) + c.get("small_injected_outliers", 0),
            "watch_ratio_above_5": c.get("big_ratio_above_5", 0) + c.get("small_ratio_above_5", 0),
            "big_zero_video_duration": c.get("big_zero_duration", 0),
            "zero_play_duration": c.get("big_skips", 0) + c.get("small_skips", 0),
            "item_daily_null_collect_cnt": c.get("item_daily_null_collect_cnt", 0),
        },
        "big_exposed_pairs": c.get("big_exposed_pairs", 0),
        "click_rate": {"big_matrix": c.get("big_clicks", 0) / max(c.get("big_rows", 1), 1),
                       "small_matrix": c.get("small_clicks", 0) / max(c.get("small_rows", 1), 1)},
        "exposure": {
            "top_decile_share_exposures": _top_decile_share(stats.exposures),
            "top_decile_share_appeal": _top_decile_share(appeal),
            "gini_exposures": _gini(stats.exposures),
            "gini_appeal": _gini(appeal),
            "corr_exposure_appeal": float(np.corrcoef(item_prop, model.item_b)[0, 1]) if sz.n_items > 1 else 0.0,
        },
    }
    (gt_dir / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    (gt_dir / "config.json").write_text(json.dumps(to_dict(cfg), indent=2, sort_keys=True) + "\n")
    return summary
