"""`graphrec demo` argument handling: per-stage overrides are routed, bad ones rejected in one line."""

from __future__ import annotations

import pytest

from graphrec_ray.errors import UserError
from jobs.pipeline import load_stage, split_overrides


def test_overrides_route_to_their_stage() -> None:
    out = split_overrides(["retrieval.trainer.num_workers=0", "simulate.seed=3", "serve.http_port=9000"])
    assert out["retrieval"] == ["trainer.num_workers=0"]
    assert out["simulate"] == ["seed=3"]
    assert out["serve"] == ["http_port=9000"]
    assert out["ranking"] == []


@pytest.mark.parametrize("bad", ["epochs=3", "nostage.x=1", "retrieval.", "retrieval.epochs"])
def test_bad_override_is_a_user_error(bad: str) -> None:
    with pytest.raises(UserError, match="<stage>.<key>=<value>"):
        split_overrides([bad])


def test_stage_yaml_and_override_are_both_applied(tmp_path) -> None:
    (tmp_path / "simulate.yaml").write_text("seed: 11\n")
    cfg = load_stage("simulate", ["n_users=50"], tmp_path)
    assert (cfg.seed, cfg.n_users) == (11, 50)
