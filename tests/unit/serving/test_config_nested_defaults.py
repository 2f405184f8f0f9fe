"""A nested config block or override changes only its own keys over the field's default."""

from __future__ import annotations

import pytest

from graphrec_ray.config import ConfigError, load_config
from graphrec_ray.serving.config import ServeConfig


def test_override_keeps_the_fields_default_replicas() -> None:
    """Regression (issue 13): ``ranking.num_cpus=0.4`` rebuilt the block from DeploymentSpec's class defaults, so
    the graph's 2 ranking replicas (and the collocated 2 x 0.5 CPU) silently fell back to 1 replica."""
    cfg = load_config(ServeConfig, None, ["ranking.num_cpus=0.4", "collocated.num_replicas=3"])
    assert (cfg.ranking.num_replicas, cfg.ranking.num_cpus) == (2, 0.4)
    assert (cfg.collocated.num_replicas, cfg.collocated.num_cpus) == (3, 0.5)
    assert (cfg.cache.url, cfg.cache.failure_threshold) == ("", 3)


def test_defaults_give_every_stage_two_replicas_within_two_cpus() -> None:
    cfg = ServeConfig()
    graph = [cfg.ingress, cfg.retrieval, cfg.ranking, cfg.reranking]
    assert all(s.num_replicas >= 2 for s in graph + [cfg.collocated])
    assert sum(s.num_replicas * s.num_cpus for s in graph) <= 1.6 + 1e-9  # a 2-core machine keeps 0.4 free
    assert cfg.collocated.num_replicas * cfg.collocated.num_cpus <= 1.0


def test_nested_blocks_still_reject_unknown_keys_and_bad_values() -> None:
    with pytest.raises(ConfigError, match="ranking.replicas"):
        load_config(ServeConfig, None, ["ranking.replicas=2"])
    with pytest.raises(ConfigError, match="num_replicas"):
        load_config(ServeConfig, None, ["ranking.num_replicas=0"])
