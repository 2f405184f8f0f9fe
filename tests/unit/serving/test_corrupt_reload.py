"""A reload to corrupt or truncated model files is refused with a clear error; the previous version keeps serving.

Regression (issue 13): a same-size corrupt embedding file (bit flips) loaded without complaint and would have
been served; only files that numpy or torch could not parse were refused, with a bare "could not be loaded".
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from graphrec_ray.layout import RunLayout
from graphrec_ray.serving.versions import CorruptArtifact, load_version, verify_files, version_id
from serve_app.collocated import Recommender
from serve_app.deployments import RankingStage, RerankingStage, RetrievalStage
from serve_app.version_pointer import CORRUPT, VersionBoard, follow
from tests.unit.serving.planted import RANKER, USER_RAW, make_run_dir
from tests.unit.serving.test_topologies import FakeRequest, _cfg, _graph


def _flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-5] ^= 0xFF  # same size, one float's bits changed: numpy loads it without complaint
    path.write_bytes(bytes(data))


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


@pytest.mark.parametrize("damage", [_flip, _truncate], ids=["bit-flip", "truncated"])
@pytest.mark.parametrize("which", ["user_embeddings", "item_embeddings"])
def test_reload_to_damaged_files_is_refused_and_the_old_version_serves(tmp_path: Path, damage, which: str) -> None:
    v1 = make_run_dir(tmp_path / "v1", seed=0, embedding_version="emb-v1")
    v3 = make_run_dir(tmp_path / "v3", seed=11, embedding_version="emb-v3")
    damage(getattr(RunLayout(v3.run_dir), which))
    cfg = _cfg(tmp_path)
    vid1 = version_id(v1.run_dir)
    stages = [RetrievalStage(cfg, str(v1.run_dir)), RankingStage(cfg, str(v1.run_dir)),
              RerankingStage(cfg, str(v1.run_dir))]

    async def go() -> None:
        board = VersionBoard(str(v1.run_dir), vid1)
        fronts = [Recommender(cfg, str(v1.run_dir)), _graph(cfg, v1.run_dir)]
        followers = [await follow(board, m.prepare, m.commit, vid1) for m in [*fronts, *stages]]
        try:
            for f in fronts:
                f.board = board
            r = await fronts[0].reload(FakeRequest({"run_dir": "v3"}, "s3cret"))
            assert r.status_code == 422
            msg = json.loads(r.body)["error"]
            assert CORRUPT in msg and f"every replica still serves {vid1}" in msg and str(tmp_path) not in msg
            assert [f.current_version() for f in fronts] == [vid1, vid1]
            for f in fronts:
                body = await f.recommend(str(int(USER_RAW(2))))
                assert body["model_version"] == vid1
        finally:  # a failed assertion must not leave the followers' watch loops running (the test would hang)
            for f in followers:
                f.stop()

    asyncio.run(go())


def test_verify_files_names_the_damaged_file(tmp_path: Path) -> None:
    v = make_run_dir(tmp_path / "v", seed=1)
    layout = RunLayout(v.run_dir)
    verify_files(layout.user_embeddings, layout.item_embeddings)  # intact: no error
    _flip(layout.item_embeddings)
    with pytest.raises(CorruptArtifact, match="item_embeddings.npy does not match the checksum"):
        load_version(v.run_dir, RANKER)
    layout.user_embeddings.unlink()
    with pytest.raises(CorruptArtifact, match="user_embeddings.npy"):
        verify_files(layout.user_embeddings)
