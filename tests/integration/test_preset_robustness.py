"""Issue 10, robustness: on every simulator preset, at small scale and with the default configs, the pipeline's
LightGCN beats most-popular and MF on the unbiased protocol with 95 % intervals excluding zero.

Each case simulates the preset at reduced size, preprocesses it (default split), trains the default retrieval model
(``configs/retrieval.yaml``, with the item prior column the stage exports) and MF with the stage's select-then-refit
loop (the Ray Train job's loop, run in process) for three training seeds, and compares per-user Recall@20 on
``small_matrix`` (relevance ``watch_ratio >= 2.0``: the dataset authors' ``> 2.0`` on continuous ratios, and the top
level on ``rating_like``; the ``>= 0.5`` rule marks ~70 % of the simulator's small_matrix relevant and separates no
model) by a paired bootstrap over users. A preset where the defaults do not win is a finding: its case is marked xfail
with the measured numbers (see ``XFAIL``; today none), never silently passed.

The exported model's score is its dot product plus the engagement prior (``configs/retrieval.yaml``);
``benchmarks/retrieval_quality.py`` reports the model against that prior alone and against the simulator's ceilings.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from graphrec_ray.config import load_config
from graphrec_ray.evaluation.stats import paired_difference
from graphrec_ray.layout import RunLayout
from graphrec_ray.preprocess.config import PreprocessConfig
from graphrec_ray.preprocess.stage import preprocess_local
from graphrec_ray.retrieval.base import EmbeddingRecommender
from graphrec_ray.retrieval.config import RetrievalConfig
from graphrec_ray.retrieval.evaluate import per_user_unbiased
from graphrec_ray.retrieval.fit import fit_in_process
from graphrec_ray.retrieval.popularity import MostPopular
from graphrec_ray.retrieval.popularity_prior import export_tables
from graphrec_ray.retrieval.stage import load_inputs
from graphrec_ray.sources.simulator import ROBUSTNESS_PRESETS, SimulatorConfig, simulate

pytestmark = pytest.mark.integration

#: small scale: 60 % of the demo users, half of its items, its 200 small_matrix users x 300 of its 400 items.
#: Chosen for power on the SELECTION data (simulator seed 1, the seed the defaults were chosen on; this test's seed 0
#: untouched): of the three sizes tried there, 400 x 500 (120 small users, the earlier size), 600 x 750 (200) and
#: 800 x 1,000 (240), 600 x 750 is the only one where the pipeline beat most-popular and MF on every preset (with
#: the engagement prior at gamma 16, and again at the adopted gamma 2, shrinkage 3); at 400 x 500 two presets, at
#: 800 x 1,000 one (sparse: fewer views per item) were not significant. Then run once on seed 0 (2026-12-03, defaults
#: of configs/retrieval.yaml): every preset passes, LightGCN - most-popular from +0.0113 [+0.0012, +0.0208]
#: (popularity_weak: near-flat exposure, so most-popular is nearly the engagement order) to +0.0936 [+0.0751,
#: +0.1102] (popularity_strong), LightGCN - MF from +0.097 to +0.132.
SCALE = {"n_users": 600, "n_items": 750, "small_users": 200, "small_items": 300}
#: training seeds per model on the one simulated log (seed 0); per-user values are their mean, so the paired
#: bootstrap over users compares the models, not one initialisation's luck
TRAIN_SEEDS = (0, 1, 2)
#: preset -> measured numbers where the default pipeline does not (yet) win with intervals (a finding: the case is
#: marked xfail with them, still runs, and a fix shows as XPASS). Empty since the engagement prior
#: (configs/retrieval.yaml: popularity_prior_signal engagement, gamma 2, n0 0, shrinkage 3, chosen on seed-1
#: selection users); with PDA's count prior (16, n0 0.5) at 400 x 500 LightGCN beat most-popular on no preset
#: (LightGCN - most-popular -0.013 to +0.001).
XFAIL: dict[str, str] = {}
CASES = [pytest.param(p, marks=pytest.mark.xfail(reason=XFAIL[p], strict=False)) if p in XFAIL else p
         for p in ("demo", *ROBUSTNESS_PRESETS)]


def _per_user_recall(preset: str, tmp: Path) -> dict[str, np.ndarray]:
    import torch

    torch.set_num_threads(1)
    data = tmp / "data"
    simulate(SimulatorConfig(preset=preset, seed=0, **SCALE), data, progress=False)
    layout = RunLayout(tmp / "run")
    preprocess_local(PreprocessConfig(data_dir=str(data)), layout.preprocess)
    inputs = load_inputs(layout.preprocess)
    cfg = load_config(RetrievalConfig, "configs/retrieval.yaml", [])
    out: dict[str, np.ndarray] = {}
    for name in (cfg.model, "mf"):
        runs = []
        for seed in TRAIN_SEEDS:
            st = fit_in_process(name, replace(cfg, seed=seed), inputs["train"], inputs["val"])
            # the tables the stage exports: IPS models carry the popularity prior column
            user, item = export_tables(name, cfg, st["user"], st["item"], st["refit_positives"],
                                       inputs["train"].concat(inputs["val"]))
            score = EmbeddingRecommender(user, item).score
            runs.append(per_user_unbiased(score, inputs["eval_small"], st["refit_positives"], ">=", 2.0)["recall@20"])
        out[name] = np.mean(runs, axis=0)  # per user, mean over training seeds (NaN stays NaN: no relevant item)
    seen = inputs["train"].concat(inputs["val"]).relevant(">=", cfg.positive_threshold)
    pop = MostPopular().fit(seen)
    out["popularity"] = per_user_unbiased(pop.score, inputs["eval_small"], seen, ">=", 2.0)["recall@20"]
    out["primary"] = out.pop(cfg.model)
    return out


@pytest.mark.parametrize("preset", CASES)
def test_default_lightgcn_beats_popularity_and_mf_on_the_unbiased_protocol(preset: str, tmp_path: Path) -> None:
    r = _per_user_recall(preset, tmp_path)
    vs_pop = paired_difference(r["primary"], r["popularity"])
    vs_mf = paired_difference(r["primary"], r["mf"])
    msg = (f"{preset}: recall@20 (>=2.0) LightGCN {np.nanmean(r['primary']):.4f}, popularity "
           f"{np.nanmean(r['popularity']):.4f}, MF {np.nanmean(r['mf']):.4f}; LightGCN - popularity {vs_pop}, "
           f"LightGCN - MF {vs_mf}")
    print(msg)
    assert vs_pop.low > 0 and vs_mf.low > 0, msg
