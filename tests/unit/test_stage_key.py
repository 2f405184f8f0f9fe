"""Resumable pipeline bookkeeping (graphrec_ray/stage_key.py): a finished stage is recognised only when its key
matches and its files verify; a stage cut short is never taken as finished."""

from __future__ import annotations

from pathlib import Path

from graphrec_ray.manifest import write_manifest
from graphrec_ray.stage_key import code_version, file_identity, is_done, mark_done, mark_started, stage_key


def _stage(tmp_path: Path, name: str = "retrieval") -> Path:
    d = tmp_path / name
    d.mkdir()
    (d / "emb.npy").write_bytes(b"\x00\x01")
    write_manifest(d, name, "cfg", ["emb.npy"])
    return d


def test_finished_stage_with_same_key_is_done(tmp_path: Path) -> None:
    up = _stage(tmp_path, "preprocess")
    d = _stage(tmp_path)
    key = stage_key("train-retrieval", "cfg-1", [up], "code-1")
    assert not is_done(d, key)  # never marked
    mark_done(d, key)
    assert is_done(d, key)
    assert key == stage_key("train-retrieval", "cfg-1", [up], "code-1")  # deterministic


def test_key_changes_with_config_upstream_code_and_inputs(tmp_path: Path) -> None:
    up = _stage(tmp_path, "preprocess")
    base = stage_key("s", "cfg", [up], "code", extra=[["big_matrix.csv", 10, 1]])
    assert stage_key("s", "cfg2", [up], "code", extra=[["big_matrix.csv", 10, 1]]) != base
    assert stage_key("s", "cfg", [up], "code2", extra=[["big_matrix.csv", 10, 1]]) != base
    assert stage_key("s", "cfg", [up], "code", extra=[["big_matrix.csv", 11, 1]]) != base
    (up / "emb.npy").write_bytes(b"\x07")
    write_manifest(up, "preprocess", "cfg", ["emb.npy"])  # upstream re-ran with other output
    assert stage_key("s", "cfg", [up], "code", extra=[["big_matrix.csv", 10, 1]]) != base


def test_stage_cut_short_or_tampered_is_not_done(tmp_path: Path) -> None:
    d = _stage(tmp_path)
    mark_done(d, "k")
    mark_started(d)  # a rerun began and was killed before mark_done
    assert not is_done(d, "k")
    mark_done(d, "k")
    (d / "emb.npy").write_bytes(b"tampered")
    assert not is_done(d, "k")  # files no longer match the manifest


def test_code_version_and_file_identity(tmp_path: Path) -> None:
    pkg = tmp_path / "graphrec_ray"
    pkg.mkdir()
    (pkg / "a.py").write_text("x = 1\n")
    v1 = code_version(tmp_path, ["graphrec_ray"])
    (pkg / "a.py").write_text("x = 2\n")
    assert code_version(tmp_path, ["graphrec_ray"]) != v1
    (tmp_path / "big.csv").write_text("abc")
    ident = file_identity([tmp_path / "big.csv", tmp_path / "missing.csv"])
    assert [row[:2] for row in ident] == [["big.csv", 3]]


def test_reasons_to_rerun(tmp_path: Path) -> None:
    from graphrec_ray.stage_key import why_not_done

    assert why_not_done(tmp_path / "nothing", "k") == "not run yet"
    d = _stage(tmp_path)
    assert why_not_done(d, "k") == "unfinished"
    mark_done(d, "k")
    assert why_not_done(d, "k") is None and why_not_done(d, "other") == "inputs changed"
    (d / "emb.npy").write_bytes(b"x")
    assert why_not_done(d, "k") == "files changed"
