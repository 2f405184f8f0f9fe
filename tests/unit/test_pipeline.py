"""`graphrec demo` argument handling: per-stage overrides are routed, bad ones rejected in one line."""

from __future__ import annotations

from pathlib import Path

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


def test_simulator_never_overwrites_data_it_did_not_write(tmp_path: Path) -> None:
    """Regression (issue 13, item 2): `graphrec simulate` wrote no stamp, so the pipeline re-simulated the demo
    preset over a tiny data set (78.6 kB -> 10.1 MB big_matrix.csv), and would overwrite a real KuaiRec folder
    when --no-simulate was forgotten."""
    import jobs.simulate
    from graphrec_ray.errors import UserError
    from graphrec_ray.sources.simulator import SimulatorConfig
    from jobs.pipeline import run

    real = tmp_path / "kuairec"
    real.mkdir()
    (real / "big_matrix.csv").write_text("user_id,video_id\n1,2\n")  # someone else's data
    with pytest.raises(UserError, match="did not write"):
        jobs.simulate.run(SimulatorConfig(preset="tiny"), real, progress=False)
    with pytest.raises(UserError, match="--no-simulate"):
        run(tmp_path / "run", real, split_overrides([]), serve_smoke=0)
    assert (real / "big_matrix.csv").read_text() == "user_id,video_id\n1,2\n"

    sim = tmp_path / "sim"
    jobs.simulate.run(SimulatorConfig(preset="tiny", seed=1), sim, progress=False)
    first = jobs.simulate.simulator_stamp(sim)
    assert first and not jobs.simulate.holds_foreign_data(sim)
    jobs.simulate.run(SimulatorConfig(preset="tiny", seed=2), sim, progress=False)  # its own output: rewritten
    assert jobs.simulate.simulator_stamp(sim) not in (None, first)


def test_until_names_a_stage_or_is_a_user_error(tmp_path: Path) -> None:
    """``until`` (benchmarks/pipeline_full.py --until train-retrieval) must name a stage; a typo fails before any
    stage runs instead of silently running the whole pipeline."""
    from jobs.pipeline import _run_stages, split_overrides

    with pytest.raises(UserError, match="--until takes a stage"):
        _run_stages(tmp_path / "run", tmp_path / "data", split_overrides([]), simulate=False, serve_smoke=0,
                    config_dir=tmp_path, ray_address=None, force=(), until="train-retrival")
