"""Download, verify and unpack the real KuaiRec 2.0 archive (machines with internet only).

Source: the dataset's Zenodo record 18164998 (https://zenodo.org/records/18164998), file
``KuaiRec.zip`` (~432 MB, CC BY-SA 4.0), linked from https://kuairec.com. The MD5 below is the
checksum Zenodo lists for that file as quoted by two independent public projects that verify it
(we could not open the Zenodo page from this machine); Zenodo publishes MD5 only, so there is no
published SHA-256. Besides the MD5 we always check that the download has the announced
``Content-Length``, that the zip's CRCs are intact and that all six expected CSVs are inside;
the SHA-256 of the archive is returned so a run can record it.

Without internet the fetch fails fast with a one-line :class:`UserError` pointing to
``graphrec simulate`` (the embedded simulator writes the same layout).
"""

from __future__ import annotations

import shutil
import socket
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from graphrec_ray.errors import DataError, UserError
from graphrec_ray.manifest import file_digest
from graphrec_ray.sources import kuairec as kr

__all__ = ["KUAIREC_URL", "KUAIREC_MD5", "DownloadConfig", "fetch", "verify_archive", "extract", "download_kuairec"]

KUAIREC_URL = "https://zenodo.org/records/18164998/files/KuaiRec.zip"
KUAIREC_MD5 = "261550d472c48eff4990fb13c0e5bcf7"
_NO_NET_HINT = "no internet? generate the simulator data instead: `graphrec simulate --out data/sim`"


@dataclass(frozen=True)
class DownloadConfig:
    """Settings of ``graphrec download`` (all overridable as ``key=value``)."""

    url: str = KUAIREC_URL          # official Zenodo file of KuaiRec 2.0
    md5: str = KUAIREC_MD5          # expected MD5 of the archive; "" skips it (size/zip/file checks remain)
    timeout_s: float = 30.0         # socket timeout per connection/read; a dead network fails in this time
    keep_archive: bool = False      # keep KuaiRec.zip beside the data after unpacking


def fetch(url: str, dest: str | Path, timeout_s: float = 30.0, progress: bool = True) -> Path:
    """Stream ``url`` to ``dest`` (via ``dest.part``, renamed when complete).

    Raises:
        UserError: network unreachable / DNS failure / timeout / HTTP error (one line, with the
            simulator hint), or fewer bytes than the announced ``Content-Length``.
    """
    from tqdm.auto import tqdm

    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as resp:  # noqa: S310 - fixed https/file URL
            total = int(resp.headers.get("Content-Length") or 0)
            got = 0
            with open(part, "wb") as f, tqdm(total=total or None, unit="B", unit_scale=True, desc=dest.name,
                                            disable=not progress, leave=False) as bar:
                while block := resp.read(1 << 20):
                    f.write(block)
                    got += len(block)
                    bar.update(len(block))
    except urllib.error.HTTPError as exc:
        part.unlink(missing_ok=True)
        raise UserError(f"download of {url} failed: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, socket.timeout, TimeoutError, ConnectionError, OSError) as exc:
        part.unlink(missing_ok=True)
        reason = getattr(exc, "reason", exc)
        raise UserError(f"cannot reach {url} ({reason}); {_NO_NET_HINT}") from None
    if total and got != total:
        part.unlink(missing_ok=True)
        raise UserError(f"download of {url} stopped at {got:,} of {total:,} bytes; run it again")
    part.replace(dest)
    return dest


def _members(zf: zipfile.ZipFile) -> dict[str, zipfile.ZipInfo]:
    """Expected CSV name -> zip member (matched by base name, any folder; first match wins)."""
    found: dict[str, zipfile.ZipInfo] = {}
    for info in zf.infolist():
        name = PurePosixPath(info.filename).name
        if name in kr.ALL_FILES and not info.is_dir() and "__MACOSX" not in info.filename:
            found.setdefault(name, info)
    return found


def verify_archive(archive: str | Path, md5: str | None = KUAIREC_MD5) -> dict[str, Any]:
    """Check the archive's MD5 (unless ``md5`` is empty/None), zip integrity and the six CSVs.

    Returns:
        ``{"md5", "sha256", "bytes", "members": {csv name: path inside the zip}}``.

    Raises:
        DataError: checksum mismatch, corrupt zip (bad CRC / not a zip), or missing CSVs (named).
    """
    path = Path(archive)
    if not path.is_file():
        raise DataError(f"archive {path} does not exist")
    got_md5 = file_digest(path, "md5")
    if md5 and got_md5 != md5.lower():
        raise DataError(f"{path.name}: MD5 {got_md5} does not match the published {md5.lower()} "
                        f"(incomplete or altered download; delete it and run again)")
    try:
        with zipfile.ZipFile(path) as zf:
            bad = zf.testzip()
            members = _members(zf)
    except zipfile.BadZipFile as exc:
        raise DataError(f"{path.name} is not a valid zip archive ({exc})") from None
    if bad is not None:
        raise DataError(f"{path.name}: corrupt member {bad} (CRC mismatch)")
    missing = [n for n in kr.ALL_FILES if n not in members]
    if missing:
        raise DataError(f"{path.name} lacks {', '.join(missing)}: not a KuaiRec 2.0 archive")
    return {"md5": got_md5, "sha256": file_digest(path, "sha256"), "bytes": path.stat().st_size,
            "members": {n: members[n].filename for n in kr.ALL_FILES}}


def extract(archive: str | Path, data_dir: str | Path) -> kr.KuaiRecFiles:
    """Write the six CSVs of ``archive`` flat into ``data_dir`` (nothing else; no paths from the zip used)."""
    out = Path(data_dir)
    out.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(archive) as zf:
        members = _members(zf)
        for name in kr.ALL_FILES:
            if name not in members:
                raise DataError(f"{Path(archive).name} lacks {name}")
            tmp = out / (name + ".part")
            with zf.open(members[name]) as src, open(tmp, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
            tmp.replace(out / name)
    return kr.check_layout(out)


def download_kuairec(data_dir: str | Path, cfg: DownloadConfig = DownloadConfig(),
                     archive: str | Path | None = None, progress: bool = True) -> dict[str, Any]:
    """Fetch (unless ``archive`` is given), verify and unpack KuaiRec 2.0 into ``data_dir``.

    Args:
        data_dir: target folder; gets the six CSVs (``check_layout`` passes afterwards).
        cfg: URL, expected MD5, timeout, whether to keep the zip.
        archive: an already downloaded ``KuaiRec.zip`` (e.g. fetched with a browser); it is verified
            the same way and never deleted.
        progress: tqdm bar for the download.

    Returns:
        ``verify_archive`` info plus ``data_dir`` and ``downloaded`` (bool).
    """
    out = Path(data_dir)
    downloaded = archive is None
    zpath = Path(archive) if archive is not None else fetch(cfg.url, out / "KuaiRec.zip", cfg.timeout_s, progress)
    info = verify_archive(zpath, cfg.md5 or None)
    extract(zpath, out)
    if downloaded and not cfg.keep_archive:
        zpath.unlink(missing_ok=True)
    return {**info, "data_dir": str(out), "downloaded": downloaded}
