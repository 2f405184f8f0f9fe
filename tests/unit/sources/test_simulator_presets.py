"""Robustness presets of the simulator (issue 10, part 8): each shows the property it is named after,
at a scaled-down size (the size overrides apply to every preset), with ground truth as for demo."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from graphrec_ray.config import load_config
from graphrec_ray.sources import kuairec as kr
from graphrec_ray.sources.simulator import (PRESETS, RATING_LEVELS, ROBUSTNESS_PRESETS, SimulatorConfig, resolve_model,
                                            resolve_sizes, simulate)
from graphrec_ray.sources.simulator.ground_truth import GroundTruth

SIZE = dict(n_users=300, n_items=400, small_users=60, small_items=100)   # scaled down, same for every preset
WINDOW_S = 63 * 86400


@pytest.fixture(scope="module")
def sims(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, dict]]:
    root = tmp_path_factory.mktemp("presets")
    out = {}
    for preset in ("demo",) + ROBUSTNESS_PRESETS:
        density = 0.1 if preset != "sparse" else None                   # sparse keeps its own density
        cfg = SimulatorConfig(preset=preset, seed=3, density=density, **SIZE)
        out[preset] = (root / preset, simulate(cfg, root / preset, progress=False))
    return out


def _big(path: Path) -> dict[str, np.ndarray]:
    t = kr.read_interactions(path / kr.BIG_MATRIX)
    return {c: t.column(c).to_numpy(zero_copy_only=False) for c in ("user_id", "video_id", "timestamp",
                                                                    "watch_ratio", "video_duration")}


def _user_spans(d: dict[str, np.ndarray], min_rows: int = 10) -> np.ndarray:
    """(n,) seconds between each user's first and last view, users with >= min_rows views."""
    u, ts = d["user_id"], d["timestamp"]
    spans = []
    for uid in np.unique(u):
        t = ts[u == uid]
        if len(t) >= min_rows:
            spans.append(t.max() - t.min())
    return np.asarray(spans)


def test_robustness_presets_are_demo_sized_and_scale_with_overrides() -> None:
    demo = resolve_sizes(SimulatorConfig(preset="demo"))
    for preset in ROBUSTNESS_PRESETS:
        s = resolve_sizes(SimulatorConfig(preset=preset))
        assert (s.n_users, s.n_items, s.small_users, s.small_items) == (demo.n_users, demo.n_items,
                                                                         demo.small_users, demo.small_items)
        assert resolve_sizes(load_config(SimulatorConfig, None, [f"preset={preset}", "n_users=5000"])).n_users == 5000
    assert set(ROBUSTNESS_PRESETS) <= set(PRESETS)


def test_preset_model_settings_yield_to_explicit_values() -> None:
    assert resolve_model(SimulatorConfig(preset="popularity_strong")).exposure_bias == 2.5
    assert resolve_model(SimulatorConfig(preset="popularity_strong", exposure_bias=1.0)).exposure_bias == 1.0
    demo = resolve_model(SimulatorConfig())
    assert (demo.exposure_bias, demo.activity_std, demo.active_fraction, demo.watch_levels, demo.outlier_rate) == (
        1.5, 0.5, 1.0, None, 0.0005)                                     # the demo model as before presets
    assert resolve_model(SimulatorConfig(preset="rating_like")).watch_levels == RATING_LEVELS
    with pytest.raises(ValueError, match="watch_levels"):
        SimulatorConfig(watch_levels=(0.0, 1.0))                       # 0.5 missing: click labels would change
    with pytest.raises(ValueError, match="active_fraction"):
        SimulatorConfig(active_fraction=0.0)


def test_bursty_users_are_active_in_part_of_the_window(tmp_path: Path) -> None:
    # ~120 views (~6 sessions) per user, so that a demo-like user's sessions spread over the window
    size = dict(n_users=120, n_items=600, small_users=20, small_items=50, density=0.2, seed=5)
    spans = {}
    for preset in ("demo", "bursty"):
        simulate(SimulatorConfig(preset=preset, **size), tmp_path / preset, progress=False)
        spans[preset] = _user_spans(_big(tmp_path / preset), min_rows=60)
        assert len(spans[preset]) > 80
    assert (spans["bursty"] < 0.3 * WINDOW_S).mean() > 0.95            # active_fraction 0.2 -> ~13 of 63 days
    assert (spans["demo"] < 0.3 * WINDOW_S).mean() < 0.1               # control: demo users span the window
    ts = _big(tmp_path / "bursty")["timestamp"]
    assert ts.max() - ts.min() > 0.9 * WINDOW_S                       # the log as a whole still covers the window
    assert GroundTruth.load(tmp_path / "bursty").params["active_fraction"] == 0.2


def test_popularity_presets_skew_exposure_more_and_less_than_demo(sims: dict[str, tuple[Path, dict]]) -> None:
    gini = {p: sims[p][1]["exposure"]["gini_exposures"] for p in ("demo", "popularity_strong", "popularity_weak")}
    assert gini["popularity_strong"] > gini["demo"] + 0.1
    assert gini["popularity_weak"] < gini["demo"] - 0.2


def test_rating_like_has_few_discrete_levels_and_unchanged_click_truth(sims: dict[str, tuple[Path, dict]]) -> None:
    out, summary = sims["rating_like"]
    d = _big(out)
    small = kr.read_interactions(out / kr.SMALL_MATRIX)
    wr = np.concatenate([d["watch_ratio"], small.column("watch_ratio").to_numpy()])
    levels = np.unique(wr[np.isfinite(wr)])                           # inf only where video_duration == 0
    assert set(levels.tolist()) <= set(RATING_LEVELS) and len(levels) >= 4
    assert len(np.unique(_big(sims["demo"][0])["watch_ratio"])) > 1000   # control: demo is continuous
    # flooring keeps P(watch_ratio >= 0.5): small_matrix clicks match the ground truth's p_click
    gt = GroundTruth.load(out)
    su, sv = small.column("user_id").to_numpy(), small.column("video_id").to_numpy()
    p = gt.p_click(gt.user_ids, gt.video_ids)[gt.user_index(su), gt.item_index(sv)]
    click = small.column("watch_ratio").to_numpy() >= 0.5
    se = np.sqrt(p.mean() * (1 - p.mean()) / len(p))
    assert abs(click.mean() - p.mean()) < 4 * se
    assert summary["quirks"]["injected_outliers"] == 0


def test_sparse_has_few_views_per_user_and_item(sims: dict[str, tuple[Path, dict]]) -> None:
    def per_user_and_item(d: dict[str, np.ndarray]) -> tuple[float, float]:
        """(median views per active user, mean views per item of the catalogue)."""
        per_user = np.bincount(d["user_id"])
        return float(np.median(per_user[per_user > 0])), len(d["video_id"]) / SIZE["n_items"]

    sparse_u, sparse_i = per_user_and_item(_big(sims["sparse"][0]))
    demo_u, demo_i = per_user_and_item(_big(sims["demo"][0]))
    assert sparse_u <= 8 and sparse_i <= 5
    assert sparse_u < demo_u / 4 and sparse_i < demo_i / 4
    assert sims["sparse"][1]["sizes"]["density"] == PRESETS["sparse"].density


def test_every_preset_writes_ground_truth_for_its_small_block(sims: dict[str, tuple[Path, dict]]) -> None:
    for preset, (out, summary) in sims.items():
        gt = GroundTruth.load(out)
        small = kr.read_interactions(out / kr.SMALL_MATRIX)
        assert small.num_rows == SIZE["small_users"] * SIZE["small_items"], preset
        assert np.array_equal(np.unique(small.column("user_id").to_numpy()), gt.small_user_ids), preset
        assert summary["preset"] == preset
