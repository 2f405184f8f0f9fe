"""``manifest.json`` beside each stage's outputs: versions, config hash, row counts, checksums."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from graphrec_ray.schema import SCHEMA_VERSION

MANIFEST_NAME = "manifest.json"


def file_digest(path: str | Path, algorithm: str = "sha256", chunk: int = 1 << 20) -> str:
    """Hex digest (``"sha256"``, ``"md5"``, ...) of a file's bytes, read in ``chunk``-byte blocks."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes (the checksum every manifest records)."""
    return file_digest(path, "sha256")


def write_manifest(stage_dir: str | Path, stage: str, config_hash: str, files: list[str],
                   extra: dict[str, Any] | None = None) -> Path:
    """Write ``stage_dir/manifest.json`` listing ``files`` (names relative to ``stage_dir``) with checksums.

    The manifest holds no timestamps, so the same inputs and config give byte-identical manifests.
    """
    stage_dir = Path(stage_dir)
    entries = {name: {"sha256": sha256_file(stage_dir / name), "bytes": (stage_dir / name).stat().st_size}
               for name in sorted(files)}
    doc = {"schema_version": SCHEMA_VERSION, "stage": stage, "config_hash": config_hash,
           "files": entries, **(extra or {})}
    out = stage_dir / MANIFEST_NAME
    out.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    return out


def read_manifest(stage_dir: str | Path) -> dict[str, Any]:
    """Read a stage's manifest; raises ``FileNotFoundError`` if missing."""
    return json.loads((Path(stage_dir) / MANIFEST_NAME).read_text())


def verify_manifest(stage_dir: str | Path) -> list[str]:
    """Names of listed files whose checksum no longer matches (empty list: all good)."""
    doc = read_manifest(stage_dir)
    return [n for n, e in doc["files"].items() if sha256_file(Path(stage_dir) / n) != e["sha256"]]
