"""The seed's scoring block loads as written (issue 11): ``w_revenue`` is an alias of ``w_value`` and
``top_n_serve`` may be below ``k_max``.

Regression: ``w_revenue`` was rejected as an unknown key and ``top_n_serve: 10`` failed the old
``top_n_serve >= k_max`` check.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from graphrec_ray.config import load_config
from graphrec_ray.errors import ConfigError
from graphrec_ray.serving.config import ServeConfig
from graphrec_ray.serving.request_path import Scored, rerank
from graphrec_ray.serving.versions import RerankPart

SEED_BLOCK = "w_engagement: 0.6\nw_revenue: 0.4\nlambda_diversity: 0.3\ntop_n_serve: 10\n"


def test_seed_scoring_block_loads_as_written(tmp_path: Path) -> None:
    path = tmp_path / "seed.yaml"
    path.write_text(SEED_BLOCK)
    cfg = load_config(ServeConfig, path)
    assert (cfg.w_engagement, cfg.w_value, cfg.lambda_diversity, cfg.top_n_serve) == (0.6, 0.4, 0.3, 10)
    assert cfg.w_revenue is None  # resolved into w_value
    # a live reconfigure (what the Reranking deployment does) still works on the loaded config
    assert dataclasses.replace(cfg, w_value=0.9).w_value == 0.9


def test_w_value_default_and_alias_conflict(tmp_path: Path) -> None:
    assert load_config(ServeConfig, None).w_value == 1.0
    assert load_config(ServeConfig, None, ["w_value=0.25"]).w_value == 0.25
    with pytest.raises(ConfigError, match="not both"):
        load_config(ServeConfig, None, ["w_value=0.5", "w_revenue=0.4"])
    with pytest.raises(ConfigError):
        load_config(ServeConfig, None, ["w_revenue=-1"])


def test_top_n_serve_below_k_serves_the_pool() -> None:
    cfg = load_config(ServeConfig, None, ["top_n_serve=3"])
    rng = np.random.default_rng(0)
    emb = rng.standard_normal((20, 4)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    p = rng.uniform(0, 1, 20).astype(np.float32)
    out = rerank(RerankPart(emb), Scored("v", np.arange(20), p, p), 10, cfg.w_engagement, cfg.w_value,
                 cfg.value_scale, cfg.lambda_diversity, cfg.top_n_serve)
    assert set(out.item_idx.tolist()) == set(np.argsort(-p)[:3].tolist())  # min(k, pool) = 3, the 3 best
    with pytest.raises(ConfigError):
        load_config(ServeConfig, None, ["top_n_serve=0"])
