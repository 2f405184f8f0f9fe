"""Download command without network: checksum, zip integrity, expected files, no-internet message."""

from __future__ import annotations

import hashlib
import time
import zipfile
from pathlib import Path

import pytest

from graphrec_ray.errors import DataError, UserError
from graphrec_ray.sources import kuairec as kr
from graphrec_ray.sources.download import DownloadConfig, download_kuairec, extract, fetch, verify_archive


def _archive(tmp_path: Path, skip: str | None = None) -> Path:
    path = tmp_path / "KuaiRec.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name in kr.ALL_FILES:
            if name != skip:
                zf.writestr(f"KuaiRec 2.0/data/{name}", ",".join(kr.COLUMNS[name]) + "\n")
        zf.writestr("KuaiRec 2.0/figs/readme.txt", "not data")
    return path


def test_verify_and_extract_a_good_archive(tmp_path: Path) -> None:
    z = _archive(tmp_path)
    md5 = hashlib.md5(z.read_bytes()).hexdigest()
    info = verify_archive(z, md5.upper())
    assert info["md5"] == md5 and info["members"]["big_matrix.csv"] == "KuaiRec 2.0/data/big_matrix.csv"
    files = extract(z, tmp_path / "data")
    assert files.root == tmp_path / "data"
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == sorted(kr.ALL_FILES)


def test_checksum_mismatch_is_rejected(tmp_path: Path) -> None:
    z = _archive(tmp_path)
    with pytest.raises(DataError, match="MD5"):
        verify_archive(z, "0" * 32)


def test_corrupt_and_incomplete_archives_are_rejected(tmp_path: Path) -> None:
    stored = tmp_path / "stored.zip"
    with zipfile.ZipFile(stored, "w", compression=zipfile.ZIP_STORED) as zf:
        for name in kr.ALL_FILES:
            zf.writestr(f"data/{name}", ",".join(kr.COLUMNS[name]) + "\n")
    raw = stored.read_bytes()
    at = raw.index(b"play_duration")                                   # inside big_matrix.csv's stored bytes
    stored.write_bytes(raw[:at] + b"PLAY" + raw[at + 4:])              # same size, wrong CRC
    with pytest.raises(DataError, match="CRC"):
        verify_archive(stored, None)
    not_zip = tmp_path / "html.zip"
    not_zip.write_text("<html>rate limited</html>")
    with pytest.raises(DataError, match="not a valid zip"):
        verify_archive(not_zip, None)
    (tmp_path / "x").mkdir()
    partial = _archive(tmp_path / "x", skip="social_network.csv")
    with pytest.raises(DataError, match="social_network.csv"):
        verify_archive(partial, None)


def test_download_from_a_local_url_verifies_and_cleans_up(tmp_path: Path) -> None:
    z = _archive(tmp_path)
    cfg = DownloadConfig(url=z.resolve().as_uri(), md5=hashlib.md5(z.read_bytes()).hexdigest())
    info = download_kuairec(tmp_path / "out", cfg, progress=False)
    assert info["downloaded"] and kr.check_layout(tmp_path / "out")
    assert not (tmp_path / "out" / "KuaiRec.zip").exists()           # archive removed unless keep_archive
    with pytest.raises(DataError, match="MD5"):
        download_kuairec(tmp_path / "out2", DownloadConfig(url=cfg.url, md5="f" * 32), progress=False)


def test_no_internet_gives_one_line_pointing_to_the_simulator(tmp_path: Path) -> None:
    t0 = time.monotonic()
    with pytest.raises(UserError) as exc:
        fetch("http://127.0.0.1:9/KuaiRec.zip", tmp_path / "k.zip", timeout_s=2.0, progress=False)
    assert time.monotonic() - t0 < 10
    msg = str(exc.value)
    assert "graphrec simulate" in msg and "\n" not in msg
    assert not list(tmp_path.iterdir())                                # no partial file left behind


def test_cli_download_without_network(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from jobs.cli import main

    rc = main(["download", "--out", str(tmp_path / "d"), "--quiet", "url=http://127.0.0.1:9/KuaiRec.zip",
               "timeout_s=2"])
    err = capsys.readouterr().err
    assert rc == 2 and "graphrec simulate" in err and "Traceback" not in err
