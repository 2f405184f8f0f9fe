"""The ranking stage's wall time, phases, peak memory and quality at the ``full`` preset divided by ``--scale-div``.

Issue 14 measured ``train-ranker`` at 45 s (N = 16), 65 s (N = 8) and 501 s (N = 4, 0.77M big_matrix rows) inside
``benchmarks/pipeline_full.py``: growing faster than its rows. This script times the stage alone, on one run
directory made once per N and reused, so a change to the ranker is compared before/after on the same data:

* ``--make`` writes ``<workdir>/data_div<N>`` and ``<workdir>/run_div<N>``: the simulator at the ``full`` preset's
  sizes / N (as ``pipeline_full.py``), preprocess (single process), and the primary retrieval model only
  (``lightgcn_ips``, in process, no baselines: the ranker reads only its embeddings);
* each run is ``jobs.train_ranker.run`` (Ray Train, the shipped ``configs/ranking.yaml`` plus any ``key=value``
  overrides) or, with ``--in-process``, :func:`graphrec_ray.ranking.stage.run` in this process, optionally under
  cProfile (``--profile``: the top functions by cumulative time go to ``outputs/ranker_scale_profile_div<N>.txt``);
* recorded per run: wall seconds, the stage's own phase seconds (``summary["seconds"]``), the peak of the sum of
  PSS over this process and its descendants (psutil, 1 s samples), training rows, epochs run, and the MMoE's
  serving-calibrator test and eval_small rows of ``metrics.csv`` (AUC, ECE equal-mass, log-loss with their 95 %
  intervals from the bootstrap over users).

Every run is appended under its ``--label`` to ``outputs/ranker_scale.json`` (and a flat ``.csv``), so ``before``
and ``after`` runs of the same N sit side by side.

Usage::

    python benchmarks/ranker_scale.py --scale-div 4 --workdir /tmp/rk --make
    python benchmarks/ranker_scale.py --scale-div 4 --workdir /tmp/rk --label before
    python benchmarks/ranker_scale.py --scale-div 4 --workdir /tmp/rk --in-process --profile --label profile
"""

from __future__ import annotations

import argparse
import cProfile
import csv
import io
import json
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.pipeline_full import TreeMemory, overrides_for  # noqa: E402


def sim_overrides(div: int) -> list[str]:
    """``full`` preset sizes divided by ``div``: ``benchmarks/pipeline_full.py``'s, for the simulate stage alone."""
    return [o.removeprefix("simulate.") for o in overrides_for(div)]


def make_run_dir(div: int, root: Path) -> Path:
    """Simulate, preprocess and fit the primary retrieval model into ``root/run_div<div>``; returns the run dir."""
    import jobs.preprocess
    import jobs.simulate
    from graphrec_ray.layout import RunLayout
    from graphrec_ray.retrieval import stage as retrieval_stage
    from jobs.pipeline import load_stage

    data_dir, run_dir = root / f"data_div{div}", root / f"run_div{div}"
    t0 = time.perf_counter()
    jobs.simulate.run(load_stage("simulate", sim_overrides(div), Path("configs")), data_dir, progress=False)
    pre = load_stage("preprocess", [f"data_dir={data_dir}"], Path("configs"))
    jobs.preprocess.run(pre, run_dir, use_ray=False, progress=False, track=False)
    ret = load_stage("retrieval", ["baselines=[]", "trainer.num_workers=0"], Path("configs"))
    retrieval_stage.run(ret, RunLayout(run_dir))
    print(f"made {run_dir} in {time.perf_counter() - t0:.0f} s")
    return run_dir


def _mmoe_rows(layout: Any) -> dict[str, dict[str, float]]:
    """The MMoE's serving-calibrator rows of ``metrics.csv`` by split (AUC, ECE, log-loss with intervals)."""
    out: dict[str, dict[str, float]] = {}
    with open(layout.ranking_metrics) as f:
        for r in csv.DictReader(f):
            if r["model"] == "mmoe" and r["serving"] == "1":
                keep = {}
                for m in ("auc", "ece_mass", "log_loss", "true_ece_mass", "true_log_loss"):
                    for suffix in ("", "/ci_low", "/ci_high"):
                        v = r.get(m + suffix)
                        if v not in (None, ""):
                            keep[m + suffix] = float(v)
                out[r["split"]] = {"calibrator": r["calibrator"], "n": int(r["n"]), **keep}
    return out


def run_ranker(run_dir: Path, overrides: list[str], in_process: bool, profile: Path | None) -> dict[str, Any]:
    """One ranking stage on ``run_dir``; returns wall seconds, phases, peak PSS, rows and the MMoE's metrics."""
    import shutil

    import torch

    from graphrec_ray.layout import RunLayout
    from graphrec_ray.ranking import stage
    from jobs.pipeline import load_stage

    layout = RunLayout(run_dir)
    if layout.ranking.exists():  # never resume an earlier run's checkpoint; keep its models for paired comparisons
        kept = layout.root / f"ranking.{time.strftime('%Y%m%dT%H%M%S')}"
        shutil.rmtree(layout.ranking / "ray_train", ignore_errors=True)
        layout.ranking.rename(kept)
    cfg = load_stage("ranking", overrides, Path("configs"))
    prof = cProfile.Profile() if profile is not None else None
    t0 = time.perf_counter()
    with TreeMemory() as mem:
        if in_process:
            if cfg.torch_threads > 0:
                torch.set_num_threads(cfg.torch_threads)
            if prof is not None:
                prof.enable()
            summary = stage.run(cfg, layout)
            if prof is not None:
                prof.disable()
        else:
            import jobs.train_ranker

            summary = jobs.train_ranker.run(cfg, run_dir, progress=False, track=False)
    wall = time.perf_counter() - t0
    if prof is not None and profile is not None:
        buf = io.StringIO()
        pstats.Stats(prof, stream=buf).sort_stats("cumulative").print_stats(60)
        profile.parent.mkdir(parents=True, exist_ok=True)
        profile.write_text(buf.getvalue())
    manifest = json.loads((layout.ranking / "manifest.json").read_text())
    return {"wall_s": wall, "seconds": summary["seconds"], "peak_pss_sum_mb": mem.peaks["setup"]["pss_sum"] / 2**20,
            "rows": manifest.get("rows"), "epochs_run": len(summary["history"]),
            "history": [{k: v for k, v in h.items() if k.startswith(("epoch", "val_", "seconds", "samples"))}
                        for h in summary["history"]],
            "mmoe": _mmoe_rows(layout), "overrides": overrides, "in_process": in_process}


def write(doc: dict[str, Any], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
    cols = ["label", "scale_div", "wall_s", "peak_pss_sum_mb", "train_rows", "epochs_run", "phases",
            "test_auc", "test_auc_ci", "test_ece", "test_ece_ci", "small_auc", "small_auc_ci", "small_ece",
            "small_ece_ci"]
    with open(out.with_suffix(".csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(cols)
        for key, r in sorted(doc["runs"].items()):
            t, s = r["mmoe"].get("test", {}), r["mmoe"].get("eval_small", {})

            def ci(d: dict[str, float], m: str) -> str:
                return f"[{d.get(m + '/ci_low', float('nan')):.4f}, {d.get(m + '/ci_high', float('nan')):.4f}]"

            w.writerow([r["label"], r["scale_div"], f"{r['wall_s']:.1f}", f"{r['peak_pss_sum_mb']:.0f}",
                        (r["rows"] or {}).get("train"), r["epochs_run"],
                        " ".join(f"{k}={v:.1f}" for k, v in r["seconds"].items()),
                        f"{t.get('auc', float('nan')):.4f}", ci(t, "auc"), f"{t.get('ece_mass', float('nan')):.4f}",
                        ci(t, "ece_mass"), f"{s.get('auc', float('nan')):.4f}", ci(s, "auc"),
                        f"{s.get('ece_mass', float('nan')):.4f}", ci(s, "ece_mass")])


def paired(run_dir: Path, dir_a: Path, dir_b: Path, n_boot: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Paired differences B - A of the MMoE's serving-calibrated test and eval_small metrics of two ranking
    folders trained on the same run (AUC, ECE equal-mass, log-loss, value MSE): both models score the same rows,
    and one bootstrap over users (the same draws for both) gives each difference its 95 % interval."""
    import numpy as np

    from graphrec_ray.calibration.factory import load_calibrator
    from graphrec_ray.calibration.metrics import ece, log_loss
    from graphrec_ray.evaluation.cluster_bootstrap import UserBootstrap, percentile_interval
    from graphrec_ray.ranking.bundle import SERVING_TABLES, load_model
    from graphrec_ray.ranking.data import load_events
    from graphrec_ray.ranking.evaluate import _replicates
    from graphrec_ray.ranking.features import FeatureBuilder
    from graphrec_ray.ranking.train import predict
    from sklearn.metrics import roc_auc_score

    builder = FeatureBuilder.load(dir_a / SERVING_TABLES)
    events = load_events(run_dir)
    out: dict[str, Any] = {"a": str(dir_a), "b": str(dir_b), "n_boot": n_boot}
    for split in ("test", "eval_small"):
        ev = events[split]
        y, v = ev.label_click.astype(np.float64), ev.label_value.astype(np.float64)
        boot = UserBootstrap(ev.user_idx, n_boot, seed)
        est, reps = {}, {}
        for name, d in (("a", dir_a), ("b", dir_b)):
            pr = predict({"mmoe": load_model(d / "model.pt")}, builder, ev)
            p = np.clip(load_calibrator(d / "calibrator.json").predict(pr["mmoe_logit"]), 0.0, 1.0)
            value = pr["mmoe_value"].astype(np.float64)
            est[name] = {"auc": float(roc_auc_score(y, p)), "ece_mass": ece(p, y, 15, "equal_mass"),
                         "log_loss": log_loss(p, y), "mse": float(np.mean((value - v) ** 2))}
            reps[name] = _replicates(boot, p, y, value, v, None, 15, True)
        out[split] = {"a": est["a"], "b": est["b"]}
        for m in ("auc", "ece_mass", "log_loss", "mse"):
            iv = percentile_interval(est["b"][m] - est["a"][m], reps["b"][m] - reps["a"][m], n=boot.n_users)
            out[split][f"{m}_b_minus_a"] = {"estimate": iv.estimate, "ci_low": iv.low, "ci_high": iv.high}
    return out


def extrapolate(runs: dict[str, dict[str, Any]], label: str, epochs: int = 6, epoch_max_rows: int = 0) -> dict[str, Any]:
    """Scale-1 ranker seconds from the largest run labelled ``label`` (an extrapolation, not a measurement).

    At scale 1 the rows are N^2 times those of a run at N (density kept). Training: the run's epoch seconds (rank 0's
    ``seconds`` in the history) scale with the samples, ``epochs`` epochs (the most; early stopping may end sooner)
    of ``min(train rows, epoch_max_rows)`` rows, and the rest of its training phase (Ray Train's start-up,
    checkpoints, the per-epoch validation on the fixed-size validation sample) stays. Loading (``prepare``) and
    evaluation (final predictions, calibration, metrics) scale with their rows with no fixed part, which
    overestimates them. The largest run should train the same models as scale 1 (above ``baselines_max_rows`` the
    MMoE alone).
    """
    sel = [r for r in runs.values() if r["label"] == label and r.get("rows")]
    if not sel:
        return {}
    big = max(sel, key=lambda r: r["rows"]["train"])
    k = big["scale_div"] ** 2
    rows, rows1 = big["rows"], {s: n * k for s, n in big["rows"].items()}
    samples = sum(h["samples"] for h in big["history"]) * (1 if big.get("in_process") else 2)
    per_epoch1 = rows1["train"] if epoch_max_rows <= 0 else min(rows1["train"], epoch_max_rows)
    epoch_s = sum(h["seconds"] for h in big["history"])
    train_fixed = big["seconds"]["train"] - epoch_s
    train1 = train_fixed + epoch_s * epochs * per_epoch1 / samples
    n_eval = rows["val"] + rows["test"] + rows["eval_small"]
    eval_s = big["seconds"]["total"] - big["seconds"]["prepare"] - big["seconds"]["train"]
    prepare1 = big["seconds"]["prepare"] * sum(rows1.values()) / sum(rows.values())
    evaluate1 = eval_s * k
    return {"label": f"EXTRAPOLATION to scale 1 from the '{label}' run at N = {big['scale_div']} (not a measurement)",
            "from_scale_div": big["scale_div"], "rows_at_1": rows1,
            "prepare": {"seconds_at_n": big["seconds"]["prepare"], "seconds_at_1": prepare1},
            "train": {"fixed_s": train_fixed, "epoch_s_at_n": epoch_s, "samples_at_n": samples,
                      "samples_at_1": epochs * per_epoch1, "seconds_at_1": train1},
            "evaluate": {"seconds_at_n": eval_s, "eval_rows_at_n": n_eval, "seconds_at_1": evaluate1},
            "seconds_at_1": prepare1 + train1 + evaluate1,
            "peak_pss_sum_mb_at_n": big["peak_pss_sum_mb"]}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--scale-div", type=int, default=4)
    p.add_argument("--workdir", default="/tmp/graphrec-ranker-scale", help="holds data_div<N>/ and run_div<N>/ (made once with --make)")
    p.add_argument("--make", action="store_true", help="make the run directory (simulate, preprocess, retrieval)")
    p.add_argument("--label", default=None, help="name of this run in the output (default: no ranker run)")
    p.add_argument("--in-process", action="store_true", help="stage.run in this process instead of Ray Train")
    p.add_argument("--profile", action="store_true", help="cProfile the in-process run")
    p.add_argument("--out", default="outputs/ranker_scale.json")
    p.add_argument("--paired", nargs=3, default=None, metavar=("NAME", "DIR_A", "DIR_B"),
                   help="paired B - A differences of two ranking folders of --scale-div's run, stored as NAME")
    p.add_argument("--extrapolate", default=None, metavar="LABEL",
                   help="only (re)compute the scale-1 extrapolation from the runs with this label")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="ranking config overrides")
    args = p.parse_args(argv)
    os.environ.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{tempfile.mkdtemp()}/mlflow.db")
    out = Path(args.out)
    if args.extrapolate:
        doc = json.loads(out.read_text())
        doc["extrapolation"] = extrapolate(doc["runs"], args.extrapolate)
        write(doc, out)
        print(json.dumps(doc["extrapolation"], indent=1))
        return 0
    root, div = Path(args.workdir), args.scale_div
    if args.paired:
        name, a, b = args.paired
        doc = json.loads(out.read_text())
        doc.setdefault("paired", {})[name] = {"scale_div": div, **paired(root / f"run_div{div}", root / f"run_div{div}" / a,
                                                                       root / f"run_div{div}" / b)}
        write(doc, out)
        print(json.dumps(doc["paired"][name], indent=1))
        return 0
    run_dir = make_run_dir(div, root) if args.make else root / f"run_div{div}"
    if args.label is None:
        return 0
    prof = Path(f"outputs/ranker_scale_profile_div{div}_{args.label}.txt") if args.profile else None
    r = run_ranker(run_dir, args.overrides, args.in_process or args.profile, prof)
    r.update(label=args.label, scale_div=div, date=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
             cpus=os.cpu_count(), load_avg_1m=os.getloadavg()[0])
    doc = json.loads(out.read_text()) if out.is_file() else {"runs": {}}
    doc["runs"][f"div{div}/{args.label}"] = r
    write(doc, out)
    print(json.dumps({k: v for k, v in r.items() if k != "history"}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
