"""The one file hash (:func:`graphrec_ray.manifest.file_digest`) and the manifests built on it."""

from __future__ import annotations

import hashlib
from pathlib import Path

from graphrec_ray.manifest import file_digest, read_manifest, sha256_file, verify_manifest, write_manifest


def test_file_digest_matches_hashlib(tmp_path: Path) -> None:
    p = tmp_path / "x.bin"
    p.write_bytes(b"kuairec" * 100_000)
    assert file_digest(p, "md5", chunk=4096) == hashlib.md5(b"kuairec" * 100_000).hexdigest()
    assert file_digest(p) == hashlib.sha256(b"kuairec" * 100_000).hexdigest()


def test_manifest_records_sha256_and_detects_a_changed_file(tmp_path: Path) -> None:
    (tmp_path / "a.npy").write_bytes(b"abc")
    write_manifest(tmp_path, "retrieval", "cfg", ["a.npy"])
    assert read_manifest(tmp_path)["files"]["a.npy"]["sha256"] == sha256_file(tmp_path / "a.npy") \
        == hashlib.sha256(b"abc").hexdigest()
    assert verify_manifest(tmp_path) == []
    (tmp_path / "a.npy").write_bytes(b"abd")
    assert verify_manifest(tmp_path) == ["a.npy"]
