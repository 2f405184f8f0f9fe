"""The simulator's planted structure: exact file format, complete unbiased block, skewed exposure,
clicks that follow the ground truth, reproducible bytes, and the real data's quirks."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from graphrec_ray.config import load_config
from graphrec_ray.sources import kuairec as kr
from graphrec_ray.sources.simulator import SimulatorConfig, resolve_sizes, simulate
from graphrec_ray.sources.simulator.ground_truth import GroundTruth

CFG = SimulatorConfig(preset="tiny", n_users=300, n_items=400, small_users=80, small_items=120, density=0.12,
                      seed=11)


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("sim")
    return out, simulate(CFG, out, progress=False)


def _inter(path: Path) -> dict[str, np.ndarray]:
    t = kr.read_interactions(path)
    out = {c: t.column(c).to_numpy(zero_copy_only=False) for c in kr.INTERACTION_COLUMNS if c != "time"}
    out["time"] = np.array(t.column("time").to_pylist(), dtype=object)
    return out


def _digest(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


# ------------------------------------------------------------------------------------------- format
def test_writes_six_files_with_exact_headers(sim: tuple[Path, dict[str, Any]]) -> None:
    out, summary = sim
    files = kr.check_layout(out)
    for name in kr.ALL_FILES:
        with open(files.path(name)) as f:
            assert f.readline() == ",".join(kr.COLUMNS[name]) + "\n"
    for name, n in summary["rows"].items():
        assert sum(1 for _ in open(out / name)) == n + 1
    assert (out / "ground_truth" / "model.npz").is_file() and (out / "ground_truth" / "params.json").is_file()


def test_interaction_number_formats(sim: tuple[Path, dict[str, Any]]) -> None:
    out, _ = sim
    big_lines = (out / kr.BIG_MATRIX).read_text().splitlines()[1:200]
    for line in big_lines:
        f = line.split(",")
        assert re.fullmatch(r"\d+", f[0]) and re.fullmatch(r"\d+", f[2]) and re.fullmatch(r"\d+", f[3])
        assert re.fullmatch(r"2020-0[789]-\d\d \d\d:\d\d:\d\d\.\d{3}", f[4])
        assert re.fullmatch(r"2020\d{4}", f[5])                    # big_matrix: integer date
        assert re.fullmatch(r"15\d{8}(\.\d{1,3})?", f[6])          # float seconds, ms precision
        # time is the timestamp in Beijing time, date its day
        local = dt.datetime.fromtimestamp(float(f[6]), dt.timezone(dt.timedelta(hours=8)))
        assert local.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] == f[4]
        assert local.strftime("%Y%m%d") == f[5]
        if f[3] != "0":
            assert float(f[7]) == int(f[2]) / int(f[3])
    small_lines = (out / kr.SMALL_MATRIX).read_text().splitlines()[1:]
    dated = [ln for ln in small_lines if ",,,," not in ln]
    assert all(re.fullmatch(r"2020\d{4}\.0", ln.split(",")[5]) for ln in dated[:200])  # float date, as published
    nan_rows = [ln for ln in small_lines if ",,,," in ln]
    assert nan_rows and all(len(ln.split(",")) == 8 and ln.split(",")[4:7] == ["", "", ""] for ln in nan_rows)


def test_timestamps_span_the_window_with_daily_rhythm_and_sessions(sim: tuple[Path, dict[str, Any]]) -> None:
    out, _ = sim
    big = _inter(out / kr.BIG_MATRIX)
    ts = big["timestamp"]
    start = dt.datetime(2020, 7, 5, tzinfo=dt.timezone(dt.timedelta(hours=8))).timestamp()
    assert ts.min() >= start and ts.max() < start + 63 * 86400
    assert (ts.max() - ts.min()) > 50 * 86400
    hour = ((ts - start) % 86400) // 3600
    evening, night = np.isin(hour, [19, 20, 21, 22]).mean(), np.isin(hour, [2, 3, 4, 5]).mean()
    assert evening > 3 * night
    # rows are user-major and time-ordered; consecutive views of a user are mostly seconds apart (sessions)
    u = big["user_id"]
    assert np.all(np.diff(u) >= 0)
    same = u[1:] == u[:-1]
    gaps = np.diff(ts)[same]
    assert np.all(gaps >= 0)
    assert np.median(gaps) < 120


# ------------------------------------------------------------------------------------------- structure
def test_small_matrix_is_complete_and_disjoint_from_big(sim: tuple[Path, dict[str, Any]]) -> None:
    out, _ = sim
    gt = GroundTruth.load(out)
    small, big = _inter(out / kr.SMALL_MATRIX), _inter(out / kr.BIG_MATRIX)
    pairs = set(zip(small["user_id"].tolist(), small["video_id"].tolist()))
    assert len(pairs) == len(small["user_id"]) == 80 * 120
    assert pairs == {(u, i) for u in gt.small_user_ids.tolist() for i in gt.small_video_ids.tolist()}
    big_pairs = set(zip(big["user_id"].tolist(), big["video_id"].tolist()))
    assert not (pairs & big_pairs)
    assert set(gt.small_user_ids.tolist()) <= set(big["user_id"].tolist())   # small users also act in big


def test_exposure_is_popularity_skewed_not_appeal_driven(sim: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    out, summary = sim
    gt = GroundTruth.load(out)
    big = _inter(out / kr.BIG_MATRIX)
    counts = np.bincount(big["video_id"], minlength=400).astype(float)
    top = np.sort(counts)[::-1]
    share_exposure = top[:40].sum() / top.sum()
    appeal = gt.p_click(gt.user_ids, gt.video_ids).mean(axis=0)
    share_appeal = np.sort(appeal)[::-1][:40].sum() / appeal.sum()
    assert share_exposure > 0.35 and share_appeal < 0.15
    assert abs(np.corrcoef(counts, appeal)[0, 1]) < 0.5                 # only weakly related to appeal
    assert summary["exposure"]["top_decile_share_exposures"] == pytest.approx(share_exposure, abs=1e-9)
    # exposure follows the true propensities
    expected = gt.exposure_propensity(gt.video_ids) * 300
    assert np.corrcoef(counts, expected)[0, 1] > 0.95
    # control: with exposure_bias = 0 the same model exposes items near-uniformly
    flat = simulate(replace(CFG, exposure_bias=0.0), tmp_path, progress=False)
    assert flat["exposure"]["top_decile_share_exposures"] < 0.2


def test_exposure_affinity_makes_big_matrix_clicks_missing_not_at_random(tmp_path: Path) -> None:
    """With exposure_affinity > 0 exposed pairs are the ones users like: big_matrix over-states clicks."""
    lifts = {}
    for k in (0.0, 1.5):
        out = tmp_path / f"k{k}"
        simulate(replace(CFG, exposure_affinity=k, n_users=150, small_users=40), out, progress=False)
        gt = GroundTruth.load(out)
        big = _inter(out / kr.BIG_MATRIX)
        p = gt.p_click(gt.user_ids, gt.video_ids)
        seen = p[gt.user_index(big["user_id"]), gt.item_index(big["video_id"])].mean()
        pi = gt.exposure_prob(gt.user_ids, gt.video_ids)
        lifts[k] = seen - (p * pi).sum() / pi.sum()                     # observed minus exposure-weighted truth
        lifts[f"sel{k}"] = (p * pi).sum() / pi.sum() - p.mean()         # selection effect of exposure
        assert np.allclose(gt.exposure_propensity(gt.video_ids), pi.mean(axis=0))
    assert abs(lifts[0.0]) < 0.01 and abs(lifts[1.5]) < 0.01             # rows follow exposure_prob exactly
    assert lifts["sel1.5"] > lifts["sel0.0"] + 0.03                      # MNAR selects liked pairs


def test_empirical_clicks_match_true_p_click(sim: tuple[Path, dict[str, Any]]) -> None:
    out, summary = sim
    gt = GroundTruth.load(out)
    for name in (kr.SMALL_MATRIX, kr.BIG_MATRIX):
        d = _inter(out / name)
        ok = d["video_duration"] > 0
        uid, vid = d["user_id"][ok], d["video_id"][ok]
        click = (d["watch_ratio"][ok] >= 0.5).astype(float)
        ui, ii = gt.user_index(uid), gt.item_index(vid)
        p = gt.p_click(gt.user_ids, gt.video_ids)[ui, ii]
        assert np.std(p) > 0.1                                         # personalised, not constant
        bins = np.digitize(p, np.quantile(p, np.linspace(0, 1, 11)[1:-1]))
        for b in range(10):
            m = bins == b
            se = np.sqrt(p[m].mean() * (1 - p[m].mean()) / m.sum())
            assert abs(click[m].mean() - p[m].mean()) < 4.5 * se + 0.002, (name, b)
    assert 0.55 < summary["click_rate"]["small_matrix"] < 0.85


def test_same_seed_same_bytes_other_seed_other_bytes(sim: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    out, _ = sim
    again = simulate(CFG, tmp_path / "a", progress=False)
    assert _digest(tmp_path / "a") == _digest(out)
    assert again["rows"] == sim[1]["rows"]
    simulate(replace(CFG, seed=12), tmp_path / "b", progress=False)
    assert _digest(tmp_path / "b")["big_matrix.csv"] != _digest(out)["big_matrix.csv"]


def test_quirks_are_present_in_small_proportions(sim: tuple[Path, dict[str, Any]]) -> None:
    out, summary = sim
    q = summary["quirks"]
    small = _inter(out / kr.SMALL_MATRIX)
    nan_rate = np.isnan(small["timestamp"]).mean()
    assert 0.025 < nan_rate < 0.055 and q["small_nan_time_rows"] == int(np.isnan(small["timestamp"]).sum())
    lines = (out / kr.BIG_MATRIX).read_text().splitlines()[1:]
    n_dup = sum(1 for a, b in zip(lines, lines[1:]) if a == b)
    assert n_dup == q["big_duplicate_rows"] > 0
    big = _inter(out / kr.BIG_MATRIX)
    pairs = big["user_id"] * 10_000 + big["video_id"]
    assert len(np.unique(pairs)) + q["big_duplicate_rows"] + q["big_repeat_views"] == len(pairs)
    assert q["big_repeat_views"] > 0
    wr = np.concatenate([big["watch_ratio"], small["watch_ratio"]])
    finite = wr[np.isfinite(wr)]
    assert 0 < (finite > 5).mean() < 0.02 and finite.max() > 50
    assert np.isinf(big["watch_ratio"]).sum() == q["big_zero_video_duration"] == (big["video_duration"] == 0).sum()
    assert (big["play_duration"] == 0).any()


# ------------------------------------------------------------------------------------------- side tables
def test_side_tables_are_consistent_with_the_model(sim: tuple[Path, dict[str, Any]]) -> None:
    out, summary = sim
    gt = GroundTruth.load(out)
    cats = kr.read_item_categories(out)
    assert kr.quirk_counts(cats)["malformed_feat"] == 0
    primary = np.array([f[0] for f in cats.column("feat").to_pylist()])
    assert np.array_equal(primary, gt.item_categories.argmax(axis=1))
    users = kr.read_user_features(out)
    assert users.num_rows == 300 and kr.quirk_counts(users)["null_onehot_feat4"] > 0
    fav = gt.user_preferences.argmax(axis=1) % 7
    assert np.array_equal(users.column("onehot_feat1").to_numpy(), fav)
    daily = kr.read_item_daily_features(out)
    assert daily.num_rows == 400 * 63
    assert kr.quirk_counts(daily)["null_collect_cnt"] == summary["quirks"]["item_daily_null_collect_cnt"] > 0
    shows = np.bincount(daily.column("video_id").to_numpy(), weights=daily.column("show_cnt").to_numpy(),
                        minlength=400)
    assert np.corrcoef(shows, gt.exposure_propensity(gt.video_ids))[0, 1] > 0.95
    social = kr.read_social_network(out)
    edges = {(u, f) for u, fl in zip(social.column("user_id").to_pylist(), social.column("friend_list").to_pylist())
             for f in fl}
    assert edges and all((f, u) in edges for u, f in edges)                 # symmetric friendships


# ------------------------------------------------------------------------------------------- config
def test_presets_and_strict_config() -> None:
    full = resolve_sizes(SimulatorConfig(preset="full"))
    assert (full.n_users, full.n_items, full.small_users, full.small_items) == (7176, 10728, 1411, 3327)
    assert load_config(SimulatorConfig, None, ["preset=full", "n_users=9000"]).n_users == 9000
    with pytest.raises(ValueError):
        resolve_sizes(SimulatorConfig(preset="tiny", small_users=1000))
    with pytest.raises(ValueError):
        SimulatorConfig(p_skip=1.5)


def test_simulate_cli_writes_data_and_reports_user_errors(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from jobs.cli import main

    assert main(["simulate", "--out", str(tmp_path / "d"), "--quiet", "preset=tiny"]) == 0
    kr.check_layout(tmp_path / "d")
    assert main(["simulate", "--out", str(tmp_path / "e"), "--quiet", "preset=tiny", "small_users=999"]) == 2
    err = capsys.readouterr().err
    assert "small block" in err and "Traceback" not in err
