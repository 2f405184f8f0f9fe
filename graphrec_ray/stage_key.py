"""Resumable pipelines: a stage is skipped when its key matches and its files still verify.

A stage's **key** digests everything its outputs depend on: the stage name, its resolved config hash, the
manifests of the stages it reads (their bytes: checksums of every upstream file), extra inputs (e.g. the raw
data files' sizes and modification times) and the **code version** (a digest of the project's Python sources,
so a code change reruns what it may change; no git needed, so it works in a ``ray job submit`` working dir).

Protocol, per stage directory:

1. :func:`mark_started` removes the stage's key file before the stage runs;
2. the stage writes its outputs and its ``manifest.json``;
3. :func:`mark_done` writes the key file **last**.

A stage killed at any point therefore has no key file and runs again on the next submit; a finished stage whose
key matches and whose files verify against its manifest (:func:`graphrec_ray.manifest.verify_manifest`) is
skipped (:func:`is_done`).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Iterable

from graphrec_ray.manifest import MANIFEST_NAME, verify_manifest

KEY_FILE = ".stage_key.json"  # written last into a finished stage's directory
CODE_PACKAGES = ("graphrec_ray", "jobs", "serve_app", "tune")  # sources whose change reruns stages


def code_version(root: str | Path, packages: Iterable[str] = CODE_PACKAGES) -> str:
    """16-hex digest of every ``*.py`` file (relative path and bytes) under ``root/<package>``."""
    root = Path(root)
    h = hashlib.sha256()
    for pkg in packages:
        for path in sorted((root / pkg).rglob("*.py")):
            h.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def file_identity(paths: Iterable[str | Path]) -> list[list[Any]]:
    """``[[name, bytes, mtime_ns], ...]`` of existing files: a cheap identity for large raw inputs."""
    out: list[list[Any]] = []
    for p in sorted(Path(x) for x in paths):
        if p.is_file():
            st = p.stat()
            out.append([p.name, st.st_size, st.st_mtime_ns])
    return out


def stage_key(stage: str, config_hash: str, upstream_dirs: Iterable[str | Path], code: str,
              extra: Any = None) -> str:
    """16-hex key of a stage run: name, config hash, upstream manifests' bytes, code version, extra inputs."""
    h = hashlib.sha256()
    h.update(json.dumps([stage, config_hash, code, extra], sort_keys=True, default=str).encode())
    for d in upstream_dirs:
        m = Path(d) / MANIFEST_NAME
        h.update(b"\0" + (m.read_bytes() if m.is_file() else b"<missing>"))
    return h.hexdigest()[:16]


def why_not_done(stage_dir: str | Path, key: str) -> str | None:
    """``None`` when ``stage_dir`` holds a finished run with this ``key`` whose files match their manifest, else
    why it must run: ``"not run yet"``, ``"unfinished"``, ``"inputs changed"`` or ``"files changed"``."""
    stage_dir = Path(stage_dir)
    if not (stage_dir / MANIFEST_NAME).is_file():
        return "not run yet"
    try:
        recorded = json.loads((stage_dir / KEY_FILE).read_text()).get("key")
    except (OSError, ValueError, AttributeError):
        return "unfinished"
    if recorded != key:
        return "inputs changed"  # config, upstream outputs, raw data or code
    try:
        return "files changed" if verify_manifest(stage_dir) else None
    except (OSError, ValueError, KeyError):
        return "files changed"


def is_done(stage_dir: str | Path, key: str) -> bool:
    """True when ``stage_dir`` holds a finished run with this ``key`` whose files match their manifest."""
    return why_not_done(stage_dir, key) is None


def mark_started(stage_dir: str | Path) -> None:
    """Forget a previous finished state: from now until :func:`mark_done` the stage counts as unfinished."""
    (Path(stage_dir) / KEY_FILE).unlink(missing_ok=True)


def mark_done(stage_dir: str | Path, key: str) -> None:
    """Record ``key`` as the stage's finished state (call after its manifest is written)."""
    stage_dir = Path(stage_dir)
    stage_dir.mkdir(parents=True, exist_ok=True)
    tmp = stage_dir / (KEY_FILE + ".tmp")
    tmp.write_text(json.dumps({"key": key}) + "\n")
    tmp.replace(stage_dir / KEY_FILE)
