"""``graphrec download``: fetch, verify (MD5, size, zip CRCs, expected files) and unpack KuaiRec 2.0.

Usage::

    graphrec download --out data/kuairec                       # needs internet (~432 MB)
    graphrec download --out data/kuairec --archive ~/KuaiRec.zip  # verify + unpack a manual download
    graphrec download --out data/kuairec url=https://mirror/KuaiRec.zip md5=""

Without internet it stops with one line pointing to ``graphrec simulate``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from graphrec_ray.sources.download import DownloadConfig, download_kuairec
from jobs.common import load_stage_config, make_parser


def run(cfg: DownloadConfig, out_dir: Path, archive: Path | None = None, progress: bool = True) -> dict[str, Any]:
    """Download (or take ``archive``), verify and unpack into ``out_dir``; return the archive info."""
    return download_kuairec(out_dir, cfg, archive=archive, progress=progress)


def main(argv: list[str] | None = None) -> int:
    parser = make_parser("graphrec download", "Download and verify the real KuaiRec 2.0 archive.", None)
    parser.add_argument("--out", default="data/kuairec", help="data folder to fill (default: data/kuairec)")
    parser.add_argument("--archive", default=None, help="use this local KuaiRec.zip instead of downloading")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    cfg = load_stage_config(DownloadConfig, args)
    info = run(cfg, Path(args.out), Path(args.archive) if args.archive else None, progress=not args.quiet)
    print(f"KuaiRec 2.0 in {info['data_dir']} (md5 {info['md5']}, sha256 {info['sha256']}, {info['bytes']:,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
