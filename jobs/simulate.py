"""``graphrec simulate``: write a seeded KuaiRec-layout dataset with exact ground truth.

Usage::

    graphrec simulate --out data/sim                      # demo preset (seconds)
    graphrec simulate --out data/sim_full preset=full     # KuaiRec scale, ~12.5M big_matrix rows
    graphrec simulate --out data/sim_bursty preset=bursty # robustness presets: bursty, popularity_strong,
                                                          # popularity_weak, rating_like, sparse (demo size)
    python -m jobs.simulate --out data/sim --config configs/simulate.yaml seed=7 exposure_bias=2.5

Writes the six CSVs in the published KuaiRec 2.0 format plus ``ground_truth/`` (see
:mod:`graphrec_ray.sources.simulator`). Pure numpy/pyarrow: no Ray cluster is started.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from graphrec_ray.config import config_hash
from graphrec_ray.errors import UserError
from graphrec_ray.sources.simulator import SimulatorConfig, simulate
from jobs.common import load_stage_config, make_parser

DEFAULT_CONFIG = "configs/simulate.yaml"


#: written by the simulator beside its CSVs: ``{"config_hash": ...}``; a folder without it was not written by us
STAMP = ".graphrec_simulator.json"
_LEGACY_STAMP = ".simulator_config_hash"  # what `graphrec demo` wrote before the simulator stamped its own output


def simulator_stamp(data_dir: Path) -> str | None:
    """Config hash of the simulator output in ``data_dir``, or ``None`` when the simulator did not write it."""
    data_dir = Path(data_dir)
    if (data_dir / STAMP).is_file():
        try:
            return str(json.loads((data_dir / STAMP).read_text())["config_hash"])
        except (ValueError, KeyError):
            return ""  # ours, but unreadable: never equal to a config hash, so it is rewritten
    if (data_dir / _LEGACY_STAMP).is_file():
        return (data_dir / _LEGACY_STAMP).read_text().strip()
    return None


def holds_foreign_data(data_dir: Path) -> bool:
    """True when ``data_dir`` holds any file the simulator did not stamp (e.g. real KuaiRec or other data)."""
    data_dir = Path(data_dir)
    return data_dir.is_dir() and simulator_stamp(data_dir) is None and any(data_dir.iterdir())


def run(cfg: SimulatorConfig, out_dir: Path, progress: bool = True) -> dict[str, Any]:
    """Generate the dataset into ``out_dir`` (the data folder, not a run directory); return the summary.

    Refuses a folder that holds anything the simulator did not write (it never overwrites input it did not
    write); a folder of earlier simulator output is rewritten. The output is stamped with the config hash.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"--out {out_dir} exists and is not a folder")
    if holds_foreign_data(out_dir):
        raise UserError(f"{out_dir} holds files the simulator did not write; choose an empty or new --out folder")
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / STAMP).write_text(json.dumps({"config_hash": ""}) + "\n")  # ours while writing (even if cut short)
    try:
        summary = simulate(cfg, out_dir, progress=progress)
    except ValueError as exc:  # inconsistent sizes, e.g. small block larger than the matrix
        raise UserError(f"invalid simulator settings: {exc}") from None
    (out_dir / _LEGACY_STAMP).unlink(missing_ok=True)
    (out_dir / STAMP).write_text(json.dumps({"config_hash": config_hash(cfg)}) + "\n")
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = make_parser("graphrec simulate", "Write a seeded KuaiRec-layout dataset with ground truth.",
                         DEFAULT_CONFIG)
    parser.add_argument("--out", default="data/sim", help="data folder to write (default: data/sim)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars, print only the summary path")
    args = parser.parse_args(argv)
    cfg = load_stage_config(SimulatorConfig, args)
    summary = run(cfg, Path(args.out), progress=not args.quiet)
    rows = ", ".join(f"{k} {v:,}" for k, v in summary["rows"].items())
    print(f"wrote {args.out}: {rows}")
    if not args.quiet:
        print(json.dumps({"quirks": summary["quirks"], "click_rate": summary["click_rate"],
                          "exposure": summary["exposure"]}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
