"""The retrieval item prior judged by the served product: each setting runs the whole demo pipeline, then the mock A/B.

A retrieval metric alone can reward a candidate generator that starves the ranker (issue 10: the selection rule's
winner, engagement prior at gamma 16, ranked every user's candidates in the same engagement order). This script
runs ``graphrec demo`` (simulate once, preprocess, train-retrieval, build-index, train-ranker; no Serve smoke test,
no Pareto sweep, no embedding baselines) for each prior setting and each training seed, then ``graphrec ab`` on the
run, and reads the **exact** true value of the serving arm (``runs/X/ab/ab_results.json``: the simulator's
expectation over the 200 evaluation users, no sampling noise) beside the retrieval stage's unbiased Recall@20.
The only randomness left is training: settings are compared per seed (same seed = same data, same initialisation)
and the mean difference over seeds gets a t-interval over seeds.

Usage::

    python benchmarks/prior_end_to_end.py        # count prior vs the default vs gamma 16, seeds 0 1 2
    python benchmarks/prior_end_to_end.py --settings count:popularity_prior_signal=count,popularity_prior=16 \\
        default: --seeds 0 1

Writes ``outputs/prior_end_to_end.csv`` (one row per setting and seed) and ``.json`` (the paired differences).
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

#: name:overrides (comma-separated retrieval keys); the first setting is the baseline of the differences
DEFAULT_SETTINGS = (("count:popularity_prior_signal=count,popularity_prior=16,popularity_prior_n0=0.5,"
                     "popularity_prior_shrinkage=10"), "default:",
                    "engagement16:popularity_prior=16,popularity_prior_shrinkage=10")
#: the serving arm's exact true values read from the A/B results
AB_METRICS = ("value_per_user", "session_length", "distinct_categories", "ctr")
RETRIEVAL_METRIC = "unbiased/gt2.0/recall@20"


def parse_setting(text: str) -> tuple[str, list[str]]:
    """``"name:a=1,b=2"`` -> ``("name", ["retrieval.a=1", "retrieval.b=2"])``; ``"name:"`` -> no overrides."""
    name, _, rest = text.partition(":")
    return name, [f"retrieval.{kv}" for kv in rest.split(",") if kv]


def run_one(root: Path, name: str, overrides: list[str], seed: int) -> dict[str, Any]:
    """Pipeline + A/B for one setting and seed; returns the serving arm's true values and Recall@20."""
    run_dir = root / f"{name}_s{seed}"
    t0 = time.perf_counter()
    common = ["--no-pareto", "--serve-smoke", "0", "--data-dir", str(root / "data"), "--run-dir", str(run_dir)]
    subprocess.run(["graphrec", "demo", *common, *overrides, "retrieval.baselines=[]", f"retrieval.seed={seed}",
                    f"ranking.seed={seed}"], check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["graphrec", "ab", "--run-dir", str(run_dir)], check=True, stdout=subprocess.DEVNULL)
    ab = json.loads((run_dir / "ab" / "ab_results.json").read_text())
    row: dict[str, Any] = {"setting": name, "seed": seed, "overrides": " ".join(overrides)}
    for r in ab["arms"]:
        if r["arm"] == "serving" and r["metric"] in AB_METRICS:
            row[f"true_{r['metric']}"] = float(r["true"])
    metrics = json.loads((run_dir / "retrieval" / "metrics.json").read_text())
    row[RETRIEVAL_METRIC] = float(metrics["models"][metrics["primary"]][RETRIEVAL_METRIC])
    row["wall_s"] = time.perf_counter() - t0
    return row


def paired(rows: list[dict[str, Any]], base: str, other: str, key: str) -> dict[str, float]:
    """Mean over seeds of ``other - base`` on ``key`` with a 95 % t-interval over seeds (NaN with one seed)."""
    by = {(r["setting"], r["seed"]): r[key] for r in rows}
    seeds = sorted({r["seed"] for r in rows if (base, r["seed"]) in by and (other, r["seed"]) in by})
    d = np.array([by[(other, s)] - by[(base, s)] for s in seeds])
    half = float(stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else float("nan")
    return {"diff": float(d.mean()), "ci_low": float(d.mean()) - half, "ci_high": float(d.mean()) + half,
            "seeds": len(d), "verdict": "not significant" if not half < abs(float(d.mean())) else
            ("higher" if d.mean() > 0 else "lower")}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--settings", nargs="+", default=list(DEFAULT_SETTINGS), help="name:key=value,... (retrieval)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--out", default="outputs/prior_end_to_end")
    args = p.parse_args(argv)
    settings = [parse_setting(s) for s in args.settings]
    rows: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="graphrec-prior-e2e-") as tmp:
        for seed in args.seeds:
            for name, overrides in settings:
                row = run_one(Path(tmp), name, overrides, seed)
                rows.append(row)
                print(f"{name} seed {seed}: " + ", ".join(f"{k} {v:.4f}" for k, v in row.items()
                                                           if isinstance(v, float) and k != "wall_s")
                      + f" ({row['wall_s']:.0f} s)", flush=True)
    base = settings[0][0]
    keys = [RETRIEVAL_METRIC, *(f"true_{m}" for m in AB_METRICS)]
    doc: dict[str, Any] = {"settings": dict(settings), "seeds": args.seeds, "baseline": base, "pairs": {},
                           "wall_s": time.perf_counter() - t0}
    for name, _ in settings[1:]:
        for key in keys:
            e = paired(rows, base, name, key)
            doc["pairs"][f"{name}-{base}/{key}"] = e
            print(f"  {name} - {base} {key}: {e['diff']:+.4f} [{e['ci_low']:+.4f}, {e['ci_high']:+.4f}] "
                  f"{e['verdict']} (seeds {e['seeds']})")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out.with_suffix(".csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=sorted({k for r in rows for k in r}, key=lambda k: (k not in (
            "setting", "seed"), k)))
        w.writeheader()
        w.writerows(rows)
    out.with_suffix(".json").write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    print(f"{doc['wall_s']:.0f} s; wrote {out}.csv / .json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
