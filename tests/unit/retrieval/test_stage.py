"""The retrieval stage's ``run`` without Ray (:mod:`graphrec_ray.retrieval.stage`): outputs, manifest, a known
answer through an injected fit, the in-process fit, the resume key and the Tune search's values."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from graphrec_ray.config import load_config
from graphrec_ray.layout import RunLayout
from graphrec_ray.manifest import read_manifest, verify_manifest
from graphrec_ray.retrieval import stage
from graphrec_ray.retrieval.config import RetrievalConfig
from graphrec_ray.retrieval.popularity import MostPopular
from graphrec_ray.retrieval.stage import apply_search, load_inputs, load_search, resume_key
from tests.unit.ranking.conftest import make_tiny_run


@pytest.fixture(scope="module")
def tiny_layout(tmp_path_factory: pytest.TempPathFactory) -> RunLayout:
    return RunLayout(make_tiny_run(tmp_path_factory.mktemp("retrieval_stage")))


def popularity_fit(name: str, cfg: RetrievalConfig, layout: RunLayout, fixed_steps: int | None) -> dict[str, Any]:
    """An injected fit whose embeddings score exactly like most-popular on the refit positives."""
    inputs = load_inputs(layout.preprocess)
    pos = inputs["train"].concat(inputs["val"]).relevant(">=", cfg.positive_threshold)
    u, i = MostPopular().fit(pos).embeddings()
    return {"user": u, "item": i, "history": [{"phase": 0.0, "step": 7.0, "val_recall@20": 0.25}],
            "selected_step": 7, "budget_steps": 10, "refit_steps": 7}


def test_run_writes_outputs_and_an_injected_popularity_fit_scores_like_popularity(tiny_layout: RunLayout) -> None:
    cfg = load_config(RetrievalConfig, None, ["baselines=[popularity]", "positive_threshold=0.5"])
    seen: list[str] = []
    metrics = stage.run(cfg, tiny_layout, popularity_fit, lambda name, m, state: seen.append(name))

    out = tiny_layout.retrieval
    assert seen == ["lightgcn_ips", "popularity"]
    assert verify_manifest(out) == []
    man = read_manifest(out)
    assert set(man["files"]) == {"user_embeddings.npy", "item_embeddings.npy", "metrics.json"}
    version = hashlib.sha256(tiny_layout.user_embeddings.read_bytes() + tiny_layout.item_embeddings.read_bytes())
    assert man["embedding_version"] == metrics["embedding_version"] == version.hexdigest()[:16]
    assert (man["dim"], man["selected_step"], man["refit_steps"], man["model"]) == (1, 7, 7, "lightgcn_ips")
    assert json.loads((out / "metrics.json").read_text())["models"] == json.loads(json.dumps(metrics["models"]))
    assert (out / "per_user" / f"seed={cfg.seed}.npz").is_file()

    ips, pop = metrics["models"]["lightgcn_ips"], metrics["models"]["popularity"]
    assert ips["val/recall@20"] == 0.25 and ips["selection_points"] == 1 and ips["steps_run"] == 7
    protocols = [k for k in pop if k.split("/")[0] in ("test", "unbiased", "true")]
    assert {"test/recall@20", "unbiased/gt2.0/ndcg@10", "true/ndcg@10"} <= set(protocols)
    assert np.isfinite([pop["test/recall@20"], pop["unbiased/ge0.5/ndcg@10"], pop["true/ndcg@10"]]).all()
    for k in protocols:  # same scores, same seen items removed: the same figures
        assert ips[k] == pytest.approx(pop[k], nan_ok=True), k


def test_in_process_fit_selects_within_the_budget_and_refits(tiny_layout: RunLayout) -> None:
    cfg = load_config(RetrievalConfig, None, ["dim=8", "batch_size=64", "epochs=2", "min_steps=0", "max_evals=2",
                                              "positive_threshold=0.5", "hard_ratio=0.0"])
    state = stage.fit_local("lightgcn_ips", cfg, tiny_layout)
    sel = [r for r in state["history"] if r["phase"] == 0.0]
    assert state["phase"] == "done" and len(sel) == 2 and state["budget_steps"] == int(sel[-1]["step"])
    assert state["refit_steps"] == state["selected_step"] in [int(r["step"]) for r in sel]
    n_users, n_items = len(load_inputs(tiny_layout.preprocess)["user_map"]), state["item"].shape[0]
    assert state["user"].shape == (n_users, 8) and state["item"].shape == (n_items, 8)


def test_resume_key_ignores_epochs_workers_and_baselines_but_not_the_model_recipe() -> None:
    base = load_config(RetrievalConfig, None, [])
    same = load_config(RetrievalConfig, None, ["epochs=99", "trainer.num_workers=4", "baselines=[mf]",
                                               "torch_threads=2", "trainer.cpus_per_worker=2.0",
                                               "baselines_max_positives=7"])
    assert resume_key(base) == resume_key(same)  # a longer or wider rerun resumes the same checkpoints
    for change in ("lr=0.01", "clip_max=5.0", "hard_ratio=0.3", "positive_threshold=0.5", "dim=32",
                   "steps_per_epoch=3"):  # the batch, hence every step, depends on steps_per_epoch
        assert resume_key(load_config(RetrievalConfig, None, [change])) != resume_key(base), change


def test_search_values_replace_the_config_unless_use_search_is_off(tmp_path: Path) -> None:
    layout = RunLayout(Path(tmp_path))
    assert load_search(layout) is None
    layout.retrieval.mkdir(parents=True)
    doc = {"model": "lightgcn_ips", "steps": 123, "params": {"lr": 0.003, "positive_threshold": 0.5, "epochs": 30}}
    layout.search.write_text(json.dumps(doc))
    base = load_config(RetrievalConfig, None, [])
    got = apply_search(base, load_search(layout))
    assert (got.lr, got.positive_threshold, got.epochs, got.dim) == (0.003, 0.5, 30, base.dim)
    assert apply_search(load_config(RetrievalConfig, None, ["use_search=false"]), doc).lr == base.lr
    with pytest.raises(ValueError):
        apply_search(base, {**doc, "params": {"no_such_field": 1}})


def test_embedding_baselines_are_skipped_above_the_positive_limit_but_popularity_stays(tiny_layout: RunLayout) -> None:
    """Issue 14: at full KuaiRec scale the two embedding baselines tripled retrieval's time on 2 cores; above
    ``baselines_max_positives`` only the primary and popularity are fitted, and metrics.json says which were skipped.
    Fails if the limit were ignored (mf would be fitted) or popularity dropped with them."""
    cfg = load_config(RetrievalConfig, None, ["baselines=[popularity,mf,lightgcn]", "positive_threshold=0.5"])
    assert stage.baseline_plan(cfg, 100_000) == (["lightgcn_ips", "popularity", "mf", "lightgcn"], [])
    assert stage.baseline_plan(cfg, 100_001) == (["lightgcn_ips", "popularity"], ["mf", "lightgcn"])
    assert stage.baseline_plan(replace(cfg, baselines_max_positives=0), 10**9)[1] == []  # 0: always all
    small = replace(cfg, baselines_max_positives=1)  # the tiny run has more positives than 1
    fitted: list[str] = []
    metrics = stage.run(small, tiny_layout, lambda name, *a: (fitted.append(name), popularity_fit(name, *a))[1])
    assert fitted == ["lightgcn_ips"]
    assert set(metrics["models"]) == {"lightgcn_ips", "popularity"}
    assert metrics["skipped_baselines"] == ["mf", "lightgcn"]


def test_concurrent_fits_overlap_and_give_the_same_metrics_in_the_same_order(tiny_layout: RunLayout) -> None:
    """Issue 14: on a cluster the embedding models train at the same time (one Ray Train worker group each). Known
    answer: with ``concurrent=2`` both injected fits must be inside ``fit_model`` at once (a 2-party barrier; one
    after another it breaks after its timeout), and metrics.json is the same as one after another, in the same
    order."""
    import threading

    cfg = load_config(RetrievalConfig, None, ["baselines=[popularity,mf]", "positive_threshold=0.5"])
    barrier = threading.Barrier(2, timeout=20)

    def meeting_fit(name: str, *a: Any) -> dict[str, Any]:
        barrier.wait()
        return popularity_fit(name, *a)

    together = stage.run(cfg, tiny_layout, meeting_fit, concurrent=2)
    apart = stage.run(cfg, tiny_layout, popularity_fit)
    assert list(together["models"]) == list(apart["models"]) == ["lightgcn_ips", "popularity", "mf"]
    strip = lambda d: {n: {k: v for k, v in m.items() if k != "train_s"} for n, m in d["models"].items()}  # noqa: E731
    assert json.dumps(strip(together), sort_keys=True) == json.dumps(strip(apart), sort_keys=True)
    barrier = threading.Barrier(2, timeout=0.5)  # the same meeting one after another: nobody comes
    with pytest.raises(threading.BrokenBarrierError):
        stage.run(cfg, tiny_layout, meeting_fit)
