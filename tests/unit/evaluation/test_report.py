"""``graphrec report`` on a tiny run built without Ray: every section with a source is filled from the run's
artifacts, every section without one is omitted with the file that would fill it, and no value is a
placeholder."""

from __future__ import annotations

import csv
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from graphrec_ray.errors import UserError
from graphrec_ray.evaluation.compare import prefixed, save_per_user
from graphrec_ray.evaluation.protocols import unbiased_protocol
from graphrec_ray.evaluation.report import build_report, main
from graphrec_ray.interactions import load_interactions
from graphrec_ray.layout import RunLayout
from graphrec_ray.manifest import read_manifest
from graphrec_ray.retrieval.base import EmbeddingRecommender
from graphrec_ray.retrieval.popularity import MostPopular
from tests.unit.ranking.conftest import make_tiny_run


def rows_of(out: Path) -> list[dict[str, str]]:
    return list(csv.DictReader((out / "results_table.csv").open()))


def _retrieval_artifacts(run: Path) -> None:
    """metrics.json for two models (random embeddings, most-popular) and per-user files of three seeds."""
    layout = RunLayout(run)
    man = read_manifest(layout.preprocess)
    n_users, n_items = int(man["n_users"]), int(man["n_items"])
    train = load_interactions(layout.split("train"), n_users, n_items)
    small = load_interactions(layout.split("eval_small"), n_users, n_items)
    seen = train.relevant(">=", 0.5).matrix()
    pop = MostPopular().fit(train.relevant(">=", 0.5))
    models = {}
    for s in range(3):
        rng = np.random.default_rng(s)
        rand = EmbeddingRecommender(rng.normal(size=(n_users, 4)).astype(np.float32),
                                    rng.normal(size=(n_items, 4)).astype(np.float32))
        per_seed = {}
        for name, rec in (("random", rand), ("popularity", pop)):
            pu: dict[str, np.ndarray] = {}
            m = unbiased_protocol(rec.score, small, seen, per_user=pu)
            per_seed[name] = prefixed("unbiased/", pu)
            if s == 0:
                models[name] = {f"unbiased/{k}": v for k, v in m.items()}
        save_per_user(layout.retrieval / "per_user" / f"seed={s}.npz", per_seed)
    (layout.retrieval / "metrics.json").write_text(json.dumps({"primary": "random", "models": models}))


@pytest.fixture(scope="module")
def tiny_report_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from graphrec_ray.config import load_config
    from graphrec_ray.ranking.config import RankingConfig
    from jobs import train_ranker

    run = make_tiny_run(tmp_path_factory.mktemp("report"))
    _retrieval_artifacts(run)
    cfg = load_config(RankingConfig, None, ["trainer.num_workers=0", "batch_size=256", "expert_hidden=[16]",
                                            "tower_hidden=[8]", "epochs=1", "neg_sample_rate=0.5",
                                            "train_baselines=false"])
    train_ranker.run(cfg, run, progress=False, track=False)
    (run / "pareto").mkdir()
    (run / "pareto" / "pareto.csv").write_text("lambda_diversity,ndcg@10,coverage\n0.0,0.31,0.12\n0.5,0.29,0.25\n")
    return run


def test_report_fills_every_section_it_has_a_source_for(tiny_report_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "outputs"
    res = build_report(tiny_report_run, out)
    for name in ("results_table.csv", "results_table.md", "calibration_curve.png"):
        assert (out / name).stat().st_size > 0, name
        assert (tiny_report_run / "report" / name).read_bytes() == (out / name).read_bytes()
    md = (out / "results_table.md").read_text()
    for title in ("## Retrieval quality", "## Paired model comparisons", "## Ranker and calibration",
                  "## Pareto sweep"):
        assert title in md, title
    # intervals from metrics.json are shown, and the paired comparison over 3 seeds has a verdict
    assert "[95% bootstrap interval over users]" in md
    assert "random - popularity" in md and ("better" in md or "worse" in md or "not significant" in md)
    # every calibrator of the down-sampled ranker, one marked for serving
    for cal in ("raw", "downsampling", "platt", "isotonic"):
        assert f"| {cal}" in md, cal
    assert md.count(" * |") == 2  # test and eval_small rows of the serving calibrator
    ranking_rows = [r for r in rows_of(out) if r["section"] == "ranking"]
    assert ranking_rows and all(r["ci_low"] != "" for r in ranking_rows)  # ranker metrics carry intervals
    assert "| 0.5 | 0.29 | 0.25 |" in md  # the generic CSV section
    # sections without a source: omitted, each with the file that would fill it
    missing = "\n".join(res["missing"])
    assert "serve_latency.csv" in missing and "ab_results.csv" in missing and "ope_results.csv" in missing
    assert "## Serving latency" not in md and "## A/B test" not in md
    # no placeholder anywhere: every CSV value is a finite number; no nan/None/TODO in the Markdown
    rows = list(csv.DictReader((out / "results_table.csv").open()))
    assert len(rows) == res["n_rows"] > 50
    for r in rows:
        assert math.isfinite(float(r["value"]))
        assert (r["ci_low"] == "") == (r["ci_high"] == "")
        if r["ci_low"]:
            assert float(r["ci_low"]) <= float(r["ci_high"])
            if r["section"] == "retrieval":  # means over users sit inside their percentile interval (ECE, a
                assert float(r["ci_low"]) <= float(r["value"]) <= float(r["ci_high"])  # biased |.|, need not)
    cells = [c.strip() for line in md.splitlines() if line.startswith("|") for c in line.strip("|").split("|")]
    assert not [c for c in cells if re.fullmatch(r"(?i)(nan|none|todo|tbd|n/a|-|\?)", c)]
    assert not re.search(r"\b(nan|None|TODO|TBD)\b", md)
    assert {r["section"] for r in rows} == {"retrieval", "comparison", "ranking", "pareto"}


def test_report_reads_a_serve_load_json_and_the_cli_entry(tiny_report_run: Path, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "outputs"
    out.mkdir()
    load = {"run_dir": str(tiny_report_run), "requests": 100, "results": {"default": {"c8": {
        "noop": {"p50_ms": 1.5, "p95_ms": 2.0, "p99_ms": 3.0, "rps": 900.0, "errors": 0},
        "full": {"p50_ms": 4.25, "p95_ms": 6.5, "p99_ms": 9.75, "rps": 400.0, "errors": 0}}}}}
    (out / "serve_load.json").write_text(json.dumps(load))
    assert main(["--run-dir", str(tiny_report_run), "--out-dir", str(out)]) == 0
    md = (out / "results_table.md").read_text()
    assert "## Serving latency" in md and "| full | default, concurrency 8 | 4.25 | 6.50 | 9.75 | 400.0 |" in md
    assert "wrote" in capsys.readouterr().out


def test_report_refuses_a_folder_with_no_artifacts(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="holds no"):
        build_report(tmp_path, tmp_path / "out")
    with pytest.raises(UserError, match="not found"):
        build_report(tmp_path / "nope", tmp_path / "out")


def test_readme_block_is_regenerated_between_markers(tmp_path: Path) -> None:
    """The README's results section is the report's table, regenerated, never typed (issue 10, item 7)."""
    from graphrec_ray.evaluation.report import README_BEGIN, README_END, readme_block, splice_readme

    rows = [{"section": "retrieval", "model": "lightgcn_ips", "setting": "unbiased/gt2.0", "metric": "recall@20",
             "value": "0.25", "ci_low": "0.2", "ci_high": "0.3"},
            {"section": "comparison", "model": "lightgcn_ips - mf", "setting": "unbiased/gt2.0",
             "metric": "recall@20", "value": "0.01", "ci_low": "-0.01", "ci_high": "0.03"}]
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n{README_BEGIN}\nold typed table 0.999\n{README_END}\ntail\n")
    splice_readme(readme, readme_block(rows, "runs/demo"))
    text = readme.read_text()
    assert "0.999" not in text and text.startswith("# x\n") and text.endswith("tail\n")
    assert "0.2500 [0.2000, 0.3000]" in text and "not significant" in text
    assert text.count(README_BEGIN) == 1 and text.count(README_END) == 1
