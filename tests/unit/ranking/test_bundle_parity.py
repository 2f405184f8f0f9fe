"""Features at serving equal features at training for the same event (RankerBundle path vs the training
dataset path), and the bundle's scores are the model's calibrated outputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from graphrec_ray.calibration.platt import PlattCalibrator, sigmoid
from graphrec_ray.layout import RunLayout
from graphrec_ray.manifest import write_manifest
from graphrec_ray.ranking.bundle import FEATURE_SPEC_FILE, RankerBundle, save_model, save_serving_tables
from graphrec_ray.ranking.context import RequestContext
from graphrec_ray.ranking.data import load_events, load_feature_builder
from graphrec_ray.ranking.config import RankingConfig
from graphrec_ray.ranking.train import build_models, model_hparams


@pytest.fixture(scope="module")
def trained_like_run(tiny_run: Path) -> Path:
    """Write ranking/ outputs as the job does (random MMoE, known Platt parameters)."""
    layout = RunLayout(tiny_run)
    layout.ranking.mkdir(exist_ok=True)
    builder = load_feature_builder(tiny_run)
    builder.spec.save(layout.ranking / FEATURE_SPEC_FILE)
    cfg = RankingConfig(n_experts=2, expert_hidden=(8,), tower_hidden=(4,), id_embedding_dim=3)
    models = build_models(cfg, builder.dim, *builder.n_ids)
    save_model(models["mmoe"], model_hparams(cfg, models)["mmoe"], layout.ranker_model)
    PlattCalibrator(a=0.7, b=-0.2).save(layout.calibrator)
    tables = save_serving_tables(builder, layout.ranking)
    write_manifest(layout.ranking, "ranking", "test", ["model.pt", "calibrator.json", FEATURE_SPEC_FILE, *tables])
    return tiny_run


def test_serving_features_equal_training_features(trained_like_run: Path) -> None:
    events = load_events(trained_like_run)
    train_builder = load_feature_builder(trained_like_run)
    bundle = RankerBundle.load(trained_like_run, torch_threads=0)
    checked = 0
    for split in ("val", "test", "eval_small"):
        ev = events[split]
        offline = ev.features(train_builder)
        for r in np.linspace(0, len(ev) - 1, 15).astype(int):
            ctx = RequestContext(timestamp=float(ev.timestamp[r]), position_in_session=int(ev.position[r]),
                                 seconds_since_last_view=float(ev.since_last[r]))
            online = bundle.features(int(ev.user_idx[r]), np.array([ev.item_idx[r]]), ctx)
            np.testing.assert_array_equal(online[0], offline[r])
            checked += 1
    assert checked == 45
    # session context crosses split borders: some val views continue a session started in train
    assert (events["val"].position > 0).any() and (events["val"].since_last >= 0).mean() > 0.5


def test_bundle_scores_are_calibrated_model_outputs(trained_like_run: Path) -> None:
    bundle = RankerBundle.load(trained_like_run, torch_threads=0)
    assert bundle.version.startswith("ranker-") and len(bundle.version) == len("ranker-") + 12
    items = np.arange(min(30, bundle.builder.item_table.shape[0]))
    ctx = RequestContext(timestamp=1_594_000_000.0, position_in_session=2, seconds_since_last_view=40.0)
    p, v = bundle.score(3, items, ctx)
    assert p.shape == v.shape == items.shape and p.dtype == v.dtype == np.float32
    assert bundle.model.ids.dim == 3
    with torch.no_grad():
        x = torch.from_numpy(bundle.features(3, items, ctx))
        out = bundle.model(x, torch.full((items.size,), 3), torch.from_numpy(items)).numpy()
    np.testing.assert_allclose(p, sigmoid(0.7 * out[:, 0] - 0.2), rtol=1e-5)
    np.testing.assert_allclose(v, out[:, 1], rtol=1e-6)
    assert bundle.score(3, np.array([], dtype=np.int64), ctx)[0].shape == (0,)


def test_bundle_rejects_indices_outside_the_maps(trained_like_run: Path) -> None:
    bundle = RankerBundle.load(trained_like_run, torch_threads=0)
    n_users, n_items = bundle.builder.n_ids
    ctx = RequestContext(timestamp=1_594_000_000.0)
    with pytest.raises(IndexError):
        bundle.score(n_users, np.array([0]), ctx)
    with pytest.raises(IndexError):
        bundle.score(0, np.array([0, n_items]), ctx)
    with pytest.raises(IndexError):
        bundle.score(0, np.array([-1]), ctx)


def test_run_dir_serves_after_the_raw_data_folder_is_deleted(trained_like_run: Path, tmp_path: Path) -> None:
    """Regression (issue 9, item 2): RankerBundle.load re-read the raw KuaiRec side tables from the data folder
    recorded at training, so a run directory could not be served on its own. Copy the run, delete the data
    folder it came from, and serve the whole request path from the copy alone."""
    import json
    import shutil

    from graphrec_ray.index.config import IndexConfig
    from graphrec_ray.serving.cache import EmbeddingCache
    from graphrec_ray.serving.config import ServeConfig
    from graphrec_ray.serving.request_path import recommend
    from graphrec_ray.serving.versions import load_version
    from jobs import build_index

    before = RankerBundle.load(trained_like_run, torch_threads=0)
    ctx = RequestContext(timestamp=1_594_000_000.0, position_in_session=1, seconds_since_last_view=20.0)
    want = before.score(2, np.arange(12), ctx)
    data_dir = Path(json.loads((trained_like_run / "preprocess" / "manifest.json").read_text())["data_dir"])
    copy = tmp_path / "copied_run"
    shutil.copytree(trained_like_run, copy)
    moved = tmp_path / "data_gone"
    data_dir.rename(moved)  # the raw folder is gone (restored below for the module's other tests)
    try:
        bundle = RankerBundle.load(copy, torch_threads=0)
        np.testing.assert_array_equal(bundle.score(2, np.arange(12), ctx)[0], want[0])
        # retrieval manifest and FAISS index as the stages write them, then the in-process request path
        write_manifest(copy / "retrieval", "retrieval", "test", ["user_embeddings.npy", "item_embeddings.npy"],
                       {"embedding_version": "emb-tiny"})
        build_index.run(IndexConfig(verify_queries=10), copy, progress=False, track=False)
        version = load_version(copy, "graphrec_ray.ranking.bundle:RankerBundle.load")
        users = version.ids.user_map.raw_ids
        body = recommend(version, int(users[1]), 5, ServeConfig(), EmbeddingCache(None), ctx)
        assert len(body["items"]) == 5 and body["cold_start"] is False
    finally:
        moved.rename(data_dir)


def test_tampered_serving_table_is_refused(trained_like_run: Path, tmp_path: Path) -> None:
    import shutil

    from graphrec_ray.errors import DataError
    from graphrec_ray.ranking.bundle import SERVING_TABLES

    copy = tmp_path / "tampered"
    shutil.copytree(trained_like_run, copy)
    path = copy / "ranking" / SERVING_TABLES / "features_item_table.npy"
    blob = bytearray(path.read_bytes())
    blob[-1] ^= 0xFF
    path.write_bytes(bytes(blob))
    with pytest.raises(DataError, match="checksum"):
        RankerBundle.load(copy, torch_threads=0)
