"""Quality of the step schedule whose batch grows with the edges (issue 14) against the fixed-batch schedule.

At the ``full`` preset's sizes divided by ``--scale-div`` N (density kept, as ``benchmarks/pipeline_full.py``), the
script simulates and preprocesses once, then fits the primary model (``lightgcn_ips``) in this process with the
stage's select-then-refit loop (:func:`graphrec_ray.retrieval.fit.fit_in_process`, the loop of the Ray Train job)
under two schedules on the same split and seed:

* ``old``: a fixed global batch (``steps_per_epoch=0``): the budget grows with the positives;
* ``new``: ``steps_per_epoch`` (default: ``configs/retrieval.yaml``'s, or ``--new-steps-per-epoch``): the batch
  grows instead, so the budget stops at ``epochs * steps_per_epoch`` steps.

Reported: optimiser steps (budget, run, refit), the global batch, training seconds, and the unbiased
``small_matrix`` Recall@20 / NDCG@20 (relevance ``>= 0.5`` and ``>= 2.0``) and true-preference Recall@20 per user,
with 95 % bootstrap intervals over users and the paired difference ``new - old``
(:func:`graphrec_ray.evaluation.stats.paired_difference`, over ``--seeds`` training seeds on one simulated log:
each user's difference is averaged over the seeds, then users are resampled): "no loss" when the interval's upper
end is >= 0 (not significantly worse). Nothing is chosen from these figures.

Usage::

    python benchmarks/retrieval_schedule.py --scale-div 2 --seeds 0 1 2   # the default schedule where it acts
    python benchmarks/retrieval_schedule.py --scale-div 4 --new-steps-per-epoch 8   # a 3x batch at full / 4

Writes ``outputs/retrieval_schedule.json`` / ``.csv`` (merged per ``N / steps_per_epoch``).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from graphrec_ray.config import load_config  # noqa: E402
from graphrec_ray.evaluation.stats import bootstrap_mean, paired_difference  # noqa: E402
from graphrec_ray.retrieval.base import EmbeddingRecommender  # noqa: E402
from graphrec_ray.retrieval.config import RetrievalConfig  # noqa: E402
from graphrec_ray.retrieval.fit import budget_for, fit_in_process  # noqa: E402
from graphrec_ray.sources.simulator.presets import PRESETS  # noqa: E402
from retrieval_quality import per_user, prepare  # noqa: E402

FULL = PRESETS["full"]


def scale_for(div: int) -> dict[str, int]:
    """``full`` preset sizes divided by ``div`` (density kept), as ``benchmarks/pipeline_full.py``."""
    return {"n_users": max(2, round(FULL.n_users / div)), "n_items": max(2, round(FULL.n_items / div)),
            "small_users": max(1, round(FULL.small_users / div)), "small_items": max(1, round(FULL.small_items / div))}


def fit(cfg: RetrievalConfig, inputs: dict[str, Any], gt: Any) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Per-user values of every protocol and the schedule's figures of one select-then-refit fit."""
    t0 = time.perf_counter()
    st = fit_in_process(cfg.model, cfg, inputs["train"], inputs["val"])
    secs = time.perf_counter() - t0
    sel = [r for r in st["history"] if r["phase"] == 0.0]
    pos = inputs["train"].relevant(">=", cfg.positive_threshold)
    b = budget_for(cfg, len(pos))
    info = {"global_batch": b.global_batch, "steps_per_epoch": b.steps_per_epoch, "budget_steps": st["budget_steps"],
            "steps_run": int(sel[-1]["step"]) if sel else 0, "selected_step": int(st["selected_step"]),
            "refit_steps": int(st["refit_steps"]), "train_s": secs,
            "step_s": sum(r.get("train_s", 0.0) for r in st["history"]) / max(
                1, (int(sel[-1]["step"]) if sel else 0) + int(st["refit_steps"])),
            "val_s": sum(r.get("val_s", 0.0) for r in sel), "selected_val_recall@20": st["selected_val"]}
    return per_user(EmbeddingRecommender(st["user"], st["item"]).score, st["refit_positives"], inputs, gt), info


def run_div(div: int, root: Path, base: RetrievalConfig, new_k: int, seeds: list[int],
            data_seed: int = 0) -> dict[str, Any]:
    """Both schedules at ``full / div`` on one simulated log (``data_seed``), one fit per training seed; per-user
    arrays ``(S, n)`` pair seed with seed and user with user (``paired_difference`` averages seeds per user)."""
    t0 = time.perf_counter()
    inputs, gt = prepare("full", root / f"div{div}", data_seed, scale_for(div))
    n_pos = len(inputs["train"].relevant(">=", base.positive_threshold))
    out: dict[str, Any] = {"scale_div": div, "positives": n_pos, "prepare_s": time.perf_counter() - t0,
                           "data_seed": data_seed, "seeds": seeds, "schedules": {}, "pairs": {}}
    arrays: dict[str, dict[str, np.ndarray]] = {}
    for label, k in (("new", new_k), ("old", 0)):
        runs, infos = [], []
        for seed in seeds:
            per, info = fit(replace(base, steps_per_epoch=k, seed=seed), inputs, gt)
            runs.append(per)
            infos.append(info)
            print(f"N={div} {label} (steps_per_epoch={k}) seed {seed}: {info}", flush=True)
        arrays[label] = {key: np.stack([r[key] for r in runs]) for key in runs[0]}
        info = {key: float(np.mean([i[key] for i in infos])) for key in infos[0]}  # means over the seeds
        out["schedules"][label] = {**info, "steps_per_epoch_setting": k, "per_seed": infos}
        for key, v in arrays[label].items():
            out["schedules"][label].update(bootstrap_mean(v, seed=0).as_dict(key))
    for key in arrays["new"]:
        d = paired_difference(arrays["new"][key], arrays["old"][key], seed=0)
        out["pairs"][key] = {"diff": d.estimate, "ci_low": d.low, "ci_high": d.high, "n_users": d.n,
                             "verdict": d.verdict("new better", "new worse")}
        print(f"  new - old {key}: {d.estimate:+.4f} [{d.low:+.4f}, {d.high:+.4f}] {out['pairs'][key]['verdict']}")
    return out


def write(doc: dict[str, Any], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2, sort_keys=True, default=float) + "\n")
    lines = ["scale_div,positives,schedule,steps_per_epoch,global_batch,budget_steps,steps_run,refit_steps,train_s,"
             "metric,estimate,ci_low,ci_high"]
    for r in doc["runs"].values():
        for label, s in r["schedules"].items():
            for key, p in r["pairs"].items():
                lines.append(f"{r['scale_div']},{r['positives']},{label},{s['steps_per_epoch_setting']},"
                             f"{s['global_batch']},{s['budget_steps']},{s['steps_run']},{s['refit_steps']},"
                             f"{s['train_s']:.1f},{key},{s[key]:.5f},{s[key + '/ci_low']:.5f},"
                             f"{s[key + '/ci_high']:.5f}")
        for key, p in r["pairs"].items():
            lines.append(f"{r['scale_div']},{r['positives']},new-old,,,,,,,{key},{p['diff']:.5f},{p['ci_low']:.5f},"
                         f"{p['ci_high']:.5f}")
    out.with_suffix(".csv").write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--scale-div", type=int, nargs="+", default=[2])
    p.add_argument("--new-steps-per-epoch", type=int, default=None, help="default: configs/retrieval.yaml's")
    p.add_argument("--seeds", type=int, nargs="+", default=[0], help="training seeds (default 0)")
    p.add_argument("--data-seed", type=int, default=0, help="simulator seed (default 0)")
    p.add_argument("--config", default="configs/retrieval.yaml")
    p.add_argument("--out", default="outputs/retrieval_schedule.json")
    args = p.parse_args(argv)
    base = load_config(RetrievalConfig, args.config, [])
    new_k = base.steps_per_epoch if args.new_steps_per_epoch is None else args.new_steps_per_epoch
    out = Path(args.out)
    doc = json.loads(out.read_text()) if out.is_file() else {"runs": {}}
    with tempfile.TemporaryDirectory(prefix="graphrec-schedule-") as tmp:
        for div in args.scale_div:
            doc["runs"][f"{div}/{new_k}/seeds{len(args.seeds)}"] = run_div(div, Path(tmp), base, new_k, args.seeds,
                                                                          args.data_seed)
            write(doc, out)
    print(f"wrote {out} and {out.with_suffix('.csv')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
