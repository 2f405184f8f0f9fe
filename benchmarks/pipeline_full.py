"""Every stage's wall time, peak memory and throughput at the ``full`` preset's sizes divided by ``--scale-div``.

The pipeline is :func:`jobs.pipeline.run` itself (simulate → preprocess → train-retrieval → build-index →
train-ranker → serve smoke; no Pareto sweep), on a private local Ray cluster, with the ``full`` preset's users,
items and fully observed block divided by N (density kept, so edges and big_matrix rows shrink by about N²).

Measured per stage:

* wall seconds (the stage's own call, as ``jobs.pipeline`` times it; Ray's start is outside every stage);
* peak memory of the whole process tree: a thread samples, every ``--sample-s`` seconds, the driver and all its
  descendants (Ray's GCS, raylet, workers, Ray Train and Serve actors) with psutil, and keeps the peak of the **sum
  of RSS** (an upper bound: pages shared between processes — libraries, Ray's object store — count once per process)
  and the peak of the **sum of PSS** (shared pages split between their processes: the tree's real footprint);
* throughput: big_matrix rows/s (simulate, preprocess), optimiser steps/s (retrieval), training rows/s (ranker), items/s (index),
  requests/s (serve smoke).

The retrieval loop's real seconds per optimiser step (``train_s`` of its history rows, selection and refit apart,
validation excluded; rank 0 of the Ray Train workers) stand beside the step kernel's
(:func:`benchmarks.lightgcn_step.timeit` of forward + backward of ``LightGCN`` on the same training graph, at the
per-worker batch and the workers' torch threads), with their ratio (issue 14's goal: loop ≤ 1.5 × kernel).

``--scale-div 1`` runs the full preset itself (24 min on the 2-core VM since the issue 14 schedules; it took
> 40 min before). From smaller divisors alone, :func:`extrapolate` fits a fixed cost plus a cost per
big_matrix row to each stage's times over the measured divisors, and for retrieval multiplies the optimiser steps of
scale 1 (the step budget of the positives scaled by N²) by the seconds per step extrapolated linearly in positives.
Both are labelled as extrapolations in the output.

Usage::

    python benchmarks/pipeline_full.py --scale-div 16            # one size; merges into outputs/pipeline_full.json
    python benchmarks/pipeline_full.py --scale-div 16 8          # two sizes, then the extrapolation
    python benchmarks/pipeline_full.py --extrapolate-only        # recompute the extrapolation from the file
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from graphrec_ray.sources.simulator.presets import PRESETS  # noqa: E402

FULL = PRESETS["full"]
STAGES = ("simulate", "preprocess", "train-retrieval", "build-index", "train-ranker", "serve-smoke")


# ---------------------------------------------------------------------------------------------- memory
class TreeMemory:
    """Samples the RSS and PSS sums of this process and all its descendants in a thread; peaks per stage."""

    def __init__(self, every_s: float = 1.0) -> None:
        import psutil

        self.proc, self.every_s = psutil.Process(), every_s
        self.stage = "setup"
        self.peaks: dict[str, dict[str, float]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def sample(self) -> tuple[float, float, float, int]:
        """``(rss_sum, pss_sum, driver_rss, processes)`` in bytes now."""
        import psutil

        procs = [self.proc, *self.proc.children(recursive=True)]
        rss = pss = 0.0
        for p in procs:
            try:
                full = p.memory_full_info()
                rss += full.rss
                pss += getattr(full, "pss", full.rss)
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
        return rss, pss, float(self.proc.memory_info().rss), len(procs)

    def _loop(self) -> None:
        while not self._stop.is_set():
            rss, pss, drv, n = self.sample()
            pk = self.peaks.setdefault(self.stage, {"rss_sum": 0.0, "pss_sum": 0.0, "driver_rss": 0.0,
                                                    "processes": 0})
            pk["rss_sum"], pk["pss_sum"] = max(pk["rss_sum"], rss), max(pk["pss_sum"], pss)
            pk["driver_rss"], pk["processes"] = max(pk["driver_rss"], drv), max(pk["processes"], n)
            self._stop.wait(self.every_s)

    def __enter__(self) -> "TreeMemory":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()


def _instrument(mem: TreeMemory, captured: dict[str, Any]) -> list[tuple[Any, str, Any]]:
    """Wrap each stage's entry so the sampler knows the current stage, and capture the retrieval states' history
    (the driver-side ``on_model`` of :func:`graphrec_ray.retrieval.stage.run`). Returns what to restore."""
    import jobs.build_index
    import jobs.preprocess
    import jobs.serve
    import jobs.simulate
    import jobs.train_ranker
    import jobs.train_retrieval
    from graphrec_ray.retrieval import stage as retrieval_stage

    saved = []

    def wrap(module: Any, attr: str, name: str) -> None:
        fn = getattr(module, attr)
        saved.append((module, attr, fn))

        def inner(*a: Any, **kw: Any) -> Any:
            mem.stage = name
            t0 = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                captured.setdefault("stage_seconds", {})[name] = time.perf_counter() - t0
                mem.stage = f"after-{name}"

        setattr(module, attr, inner)

    for module, attr, name in ((jobs.simulate, "run", "simulate"), (jobs.preprocess, "run", "preprocess"),
                               (jobs.train_retrieval, "run", "train-retrieval"),
                               (jobs.build_index, "run", "build-index"), (jobs.train_ranker, "run", "train-ranker"),
                               (jobs.serve, "main", "serve-smoke")):
        wrap(module, attr, name)

    run_fn = retrieval_stage.run
    saved.append((retrieval_stage, "run", run_fn))

    import graphrec_ray.retrieval.evaluate as retrieval_eval

    eval_fn = retrieval_eval.evaluate
    saved.append((retrieval_eval, "evaluate", eval_fn))

    def evaluate_timed(*a: Any, **kw: Any) -> Any:  # stage.run imports it at call time: this wrapper is used
        t0 = time.perf_counter()
        try:
            return eval_fn(*a, **kw)
        finally:
            captured.setdefault("eval_s", []).append(time.perf_counter() - t0)

    retrieval_eval.evaluate = evaluate_timed

    def run_capturing(cfg: Any, layout: Any, fit_model: Any = None, on_model: Any = None, **kw: Any) -> Any:
        def on(name: str, m: dict[str, float], state: dict[str, Any] | None) -> None:
            if state is not None:
                captured.setdefault("histories", {})[name] = list(state["history"])
            captured.setdefault("eval_by_model", {})[name] = sum(captured.pop("eval_s", []))
            if on_model is not None:
                on_model(name, m, state)

        def fit_timed(name: str, *a: Any, **kw: Any) -> Any:  # the Ray Train fit, start-up included
            t0 = time.perf_counter()
            try:
                return fit_model(name, *a, **kw)
            finally:
                captured.setdefault("fit_s", {})[name] = time.perf_counter() - t0

        captured["retrieval_cfg"] = cfg
        return run_fn(cfg, layout, fit_timed if fit_model is not None else None, on, **kw)

    retrieval_stage.run = run_capturing
    return saved


# ------------------------------------------------------------------------------------------------- kernel
def kernel_step_s(run_dir: Path, cfg: Any, repeats: int = 10) -> dict[str, float]:
    """Seconds of one forward + backward of the primary LightGCN on the run's training graph, at the per-worker
    batch and ``cfg.torch_threads`` threads (the step of ``benchmarks/lightgcn_step.py``, timed by its ``timeit``)."""
    import torch
    import torch.nn.functional as F

    from benchmarks.lightgcn_step import timeit
    from graphrec_ray.layout import RunLayout
    from graphrec_ray.retrieval.build import build_adjacency, build_model, training_positives
    from graphrec_ray.retrieval.stage import load_inputs

    threads = torch.get_num_threads()
    if cfg.torch_threads > 0:
        torch.set_num_threads(cfg.torch_threads)
    try:
        inputs = load_inputs(RunLayout(run_dir).preprocess)
        pos = training_positives(cfg, inputs["train"])
        name = cfg.model if cfg.model.startswith("lightgcn") else "lightgcn"
        model = build_model(name, cfg, pos.n_users, pos.n_items)
        adj = build_adjacency(cfg, pos, "cpu")
        workers = max(1, cfg.trainer.num_workers)
        from graphrec_ray.training import global_batch

        batch = max(1, global_batch(len(pos), cfg.batch_size, cfg.steps_per_epoch) // workers)  # the loop's
        gen = torch.Generator().manual_seed(0)
        users, p_i, n_i = (torch.randint(0, n, (batch,), generator=gen) for n in (pos.n_users, pos.n_items,
                                                                                  pos.n_items))

        def step() -> None:
            model.zero_grad(set_to_none=True)
            u, i = model.get_embedding(adj)
            uu = u.index_select(0, users)
            loss = -F.logsigmoid((uu * i.index_select(0, p_i)).sum(-1) - (uu * i.index_select(0, n_i)).sum(-1))
            loss.mean().backward()

        return {"kernel_step_s": timeit(step, torch.device("cpu"), repeats), "kernel_batch": float(batch),
                "kernel_threads": float(torch.get_num_threads()), "positives": float(len(pos)),
                "graph_nnz": float(len(pos))}
    finally:
        torch.set_num_threads(threads)


# -------------------------------------------------------------------------------------------------- run
def overrides_for(div: int) -> list[str]:
    """``full`` preset sizes divided by ``div`` (density kept)."""
    return ["simulate.preset=full", f"simulate.n_users={max(2, round(FULL.n_users / div))}",
            f"simulate.n_items={max(2, round(FULL.n_items / div))}",
            f"simulate.small_users={max(1, round(FULL.small_users / div))}",
            f"simulate.small_items={max(1, round(FULL.small_items / div))}"]


def run_scale(div: int, root: Path, serve_smoke: int = 10, extra: list[str] | None = None,
              sample_s: float = 1.0, until: str | None = None) -> dict[str, Any]:
    """Run the pipeline at ``full`` / ``div`` into ``root`` (up to stage ``until``, default all); returns the
    per-stage figures."""
    from jobs.pipeline import run, split_overrides

    run_dir, data_dir = root / f"run_div{div}", root / f"data_div{div}"
    for p in (run_dir, data_dir):
        shutil.rmtree(p, ignore_errors=True)
    captured: dict[str, Any] = {}
    t0 = time.perf_counter()
    with TreeMemory(sample_s) as mem:
        saved = _instrument(mem, captured)
        try:
            out = run(run_dir, data_dir, split_overrides([*overrides_for(div), *(extra or [])]),
                      serve_smoke=serve_smoke, pareto=False, until=until)
        finally:
            for module, attr, fn in saved:
                setattr(module, attr, fn)
    total = time.perf_counter() - t0
    doc = summarize(div, out, captured, mem.peaks, run_dir, serve_smoke)
    doc["total_wall_s"] = total
    doc["kernel"] = kernel_step_s(run_dir, captured["retrieval_cfg"])
    loop = doc["retrieval_loop"]
    for phase in ("select", "refit"):
        if loop.get(f"{phase}_step_s"):
            loop[f"{phase}_over_kernel"] = loop[f"{phase}_step_s"] / doc["kernel"]["kernel_step_s"]
    return doc


def summarize(div: int, out: dict[str, Any], captured: dict[str, Any], peaks: dict[str, dict[str, float]],
              run_dir: Path, serve_smoke: int) -> dict[str, Any]:
    """Per-stage seconds, peaks and throughput from the pipeline's output and the captured histories."""
    import pyarrow.parquet as pq

    from graphrec_ray.layout import RunLayout

    layout = RunLayout(run_dir)
    secs = out["seconds"]
    sim = out["stages"].get("simulate") or {}
    rows = _big_rows(sim, Path(out["data_dir"]))
    pre_rows = sum(pq.ParquetFile(layout.split(s)).metadata.num_rows for s in ("train", "val", "test"))
    metrics = json.loads(layout.retrieval_metrics.read_text())
    models = metrics["models"]
    ret_steps = sum(int(m.get("steps_run", 0)) + int(m.get("refit_steps", 0)) for m in models.values())
    rank = out["stages"].get("train-ranker") or {}
    rank_samples, rank_rate = _ranker_samples(layout)
    n_items = int(np.load(layout.item_embeddings, mmap_mode="r").shape[0])
    stages: dict[str, dict[str, Any]] = {}
    for name in STAGES:
        if name not in secs:
            continue
        s = float(secs[name])
        pk = peaks.get(name, {})
        row: dict[str, Any] = {"seconds": s, "peak_rss_sum_mb": pk.get("rss_sum", 0.0) / 2**20,
                               "peak_pss_sum_mb": pk.get("pss_sum", 0.0) / 2**20,
                               "peak_driver_rss_mb": pk.get("driver_rss", 0.0) / 2**20,
                               "processes": pk.get("processes", 0)}
        if name == "simulate":
            row.update(throughput=rows / s, unit="big_matrix rows/s", work=rows)
        elif name == "preprocess":
            row.update(throughput=rows / s, unit="big_matrix rows/s", work=rows, split_rows=pre_rows)
        elif name == "train-retrieval":
            row.update(throughput=ret_steps / s, unit="optimiser steps/s (all models, selection + refit)",
                       work=ret_steps)
        elif name == "build-index":
            row.update(throughput=n_items / s, unit="items/s", work=n_items)
        elif name == "train-ranker":
            row.update(throughput=rank_rate, unit="training rows/s per worker in its epochs (history)",
                       work=rank_samples, ranker_seconds=rank.get("seconds"))
        elif name == "serve-smoke":
            row.update(throughput=serve_smoke / s, unit="requests/s (incl. Serve start)", work=serve_smoke)
        stages[name] = row
    per_model = {}
    for name, m in models.items():
        hist = captured.get("histories", {}).get(name, [])
        sel = [r for r in hist if r.get("phase") == 0.0]
        ref = [r for r in hist if r.get("phase") == 1.0]
        per_model[name] = {
            "train_s": m.get("train_s"), "budget_steps": m.get("budget_steps"), "steps_run": m.get("steps_run"),
            "refit_steps": m.get("refit_steps"), "selected_step": m.get("selected_step"),
            "select_train_s": sum(r.get("train_s", 0.0) for r in sel),
            "select_val_s": sum(r.get("val_s", 0.0) for r in sel), "refit_train_s": sum(r.get("train_s", 0.0)
                                                                                          for r in ref),
            "validation_points": len(sel)}
        pm = per_model[name]
        pm["eval_s"] = captured.get("eval_by_model", {}).get(name)  # final evaluation of every protocol
        pm["fit_s"] = captured.get("fit_s", {}).get(name)  # driver's wall of the Ray Train fit
        if hist:
            pm["other_s"] = (m.get("train_s") or 0.0) - pm["select_train_s"] - pm["select_val_s"] - pm[
                "refit_train_s"]  # trainer start, data loading, final evaluation of every protocol
            if pm["fit_s"] is not None:  # Ray Train start-up, data loading in the workers, checkpoints
                pm["fit_overhead_s"] = pm["fit_s"] - pm["select_train_s"] - pm["select_val_s"] - pm["refit_train_s"]
    primary = models[metrics["primary"]]
    pm = per_model[metrics["primary"]]
    loop = {"model": metrics["primary"],
            "select_step_s": pm["select_train_s"] / max(1, int(primary.get("steps_run", 0))) or None,
            "refit_step_s": pm["refit_train_s"] / max(1, int(primary.get("refit_steps", 0))) or None}
    cfg = captured["retrieval_cfg"]
    return {"scale_div": div, "n_users": round(FULL.n_users / div), "n_items": round(FULL.n_items / div),
            "big_matrix_rows": rows, "split_rows": pre_rows, "stages": stages, "retrieval_models": per_model,
            "retrieval_loop": loop, "retrieval_workers": cfg.trainer.num_workers, "batch_size": cfg.batch_size,
            "retrieval_schedule": {"batch_size": cfg.batch_size, "epochs": cfg.epochs, "min_steps": cfg.min_steps,
                                   "max_steps": cfg.max_steps, "max_evals": cfg.max_evals,
                                   "steps_per_epoch": cfg.steps_per_epoch,
                                   "baselines_max_positives": cfg.baselines_max_positives,
                                   "skipped_baselines": metrics.get("skipped_baselines", [])},
            "pipeline_seconds": secs}


def _git_head() -> str:
    """The commit the figures were measured at (``+dirty`` with uncommitted changes), for the output file."""
    import subprocess

    root = Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True).stdout.strip()
        return head + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _big_rows(sim: dict[str, Any], data_dir: Path) -> int:
    for key in ("big_matrix_rows", "big_rows", "rows_big"):
        if key in sim:
            return int(sim[key])
    path = data_dir / "data" / "big_matrix.csv"
    path = path if path.is_file() else next(data_dir.rglob("big_matrix.csv"))
    with open(path, "rb") as f:
        return sum(1 for _ in f) - 1


def _ranker_samples(layout: Any) -> tuple[int, float]:
    """``(training samples over all epochs, mean train samples/s of the epochs)`` from the ranker's history."""
    try:
        hist = json.loads(layout.ranking_history.read_text())
    except (FileNotFoundError, ValueError):
        return 0, float("nan")
    rates = [h["train_samples_per_s"] for h in hist if "train_samples_per_s" in h]
    return int(sum(h.get("samples", 0) for h in hist)), float(np.mean(rates)) if rates else float("nan")


# ---------------------------------------------------------------------------------------------- extrapolation
def linear_fit(x: list[float], y: list[float]) -> tuple[float, float]:
    """``(c0, c1)`` of ``y = c0 + c1 · x`` by least squares (two points: through both); ``c0`` clipped at 0."""
    c1, c0 = np.polyfit(np.asarray(x, float), np.asarray(y, float), 1)
    return max(0.0, float(c0)), float(c1)


def extrapolate(runs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Scale-1 estimates from the measured divisors (an EXTRAPOLATION, not a measurement).

    Every stage but retrieval: ``t = c0 + c1 · rows`` fitted over the measured sizes (a fixed start-up cost plus a
    cost per big_matrix row) at scale 1's rows (``rows(N) · N²`` of the largest measured size). Retrieval: per model,
    its fixed cost (start-up + final evaluation, ``other_s``, fitted linearly in rows the same way) plus the scale-1
    step budget (60 epochs of ``batch_size`` over the positives · N², at least 50 steps) scaled by the share of its
    budget the model ran at the largest measured size (early stopping) and by one more selection phase for the
    refit, times the seconds per step fitted linearly in the number of positives, plus validation at its measured
    share of step time.
    """
    from graphrec_ray.training import step_budget

    divs = sorted(int(k) for k in runs)
    if len(divs) < 2:
        return {"note": "needs two scale divisors"}
    big = runs[str(divs[0])]
    rows1 = big["big_matrix_rows"] * divs[0] ** 2
    out: dict[str, Any] = {"label": "EXTRAPOLATION to scale 1 (full preset) from scale_div " + ", ".join(map(str, divs)),
                           "big_matrix_rows_at_1": rows1, "stages": {}}
    for name in STAGES:
        pts = [(runs[str(d)]["big_matrix_rows"], runs[str(d)]["stages"][name]["seconds"]) for d in divs
               if name in runs[str(d)]["stages"]]
        if len(pts) < 2:
            continue
        c0, c1 = linear_fit([p[0] for p in pts], [p[1] for p in pts])
        out["stages"][name] = {"seconds_at_1": c0 + c1 * rows1, "fixed_s": c0, "per_million_rows_s": c1 * 1e6,
                               "how": "t = fixed + per-row cost, fitted over the measured sizes"}
    ks = [(runs[str(d)]["kernel"]["positives"], runs[str(d)]["retrieval_loop"]["select_step_s"]) for d in divs
          if runs[str(d)]["retrieval_loop"].get("select_step_s")]
    if len(ks) >= 2:
        c0, c1 = linear_fit([k[0] for k in ks], [k[1] for k in ks])
        pos1 = big["kernel"]["positives"] * divs[0] ** 2
        step1 = c0 + c1 * pos1
        kern = [(runs[str(d)]["kernel"]["positives"], runs[str(d)]["kernel"]["kernel_step_s"]) for d in divs]
        k0, k1 = linear_fit([k[0] for k in kern], [k[1] for k in kern])
        # the schedule of the largest measured run (runs before issue 14 had a fixed batch: steps_per_epoch 0)
        sch = {"batch_size": big["batch_size"], "epochs": 60, "min_steps": 50, "max_steps": 0, "max_evals": 40,
               "steps_per_epoch": 0, "baselines_max_positives": 0, **big.get("retrieval_schedule", {})}
        budget = step_budget(int(pos1), sch["batch_size"], sch["epochs"], sch["min_steps"], sch["max_steps"],
                             sch["max_evals"], sch["steps_per_epoch"])
        limit = sch["baselines_max_positives"]
        total, detail = 0.0, {}
        for name, m in big["retrieval_models"].items():
            if not m.get("budget_steps"):
                continue
            if 0 < limit < pos1 and name != big["retrieval_loop"]["model"]:  # stage.baseline_plan at scale 1
                detail[name] = {"skipped_at_1": f"embedding baseline above {limit} positives"}
                continue
            oth = [(runs[str(d)]["big_matrix_rows"], runs[str(d)]["retrieval_models"][name].get("other_s", 0.0))
                   for d in divs]
            o0, o1 = linear_fit([o[0] for o in oth], [o[1] for o in oth])
            frac = (m["steps_run"] + m["refit_steps"]) / max(1, m["budget_steps"])  # early stopping; + the refit
            steps1 = budget.total_steps * frac
            val_share = m["select_val_s"] / max(1e-9, m["select_train_s"])
            t = steps1 * step1 * (1 + val_share * m["steps_run"] / max(1, m["steps_run"] + m["refit_steps"]))
            t += o0 + o1 * rows1
            detail[name] = {"budget_steps_at_1": budget.total_steps, "steps_at_1": steps1,
                            "validation_share_measured": val_share, "fixed_s_at_1": o0 + o1 * rows1,
                            "seconds_at_1": t}
            total += t
        out["stages"]["train-retrieval"] = {
            "seconds_at_1": total, "positives_at_1": pos1, "step_s_at_1": step1, "kernel_step_s_at_1": k0 + k1 * pos1,
            "models": detail, "schedule": sch, "budget_steps_at_1": budget.total_steps,
            "fixed_batch_budget_steps_at_1": step_budget(int(pos1), sch["batch_size"], sch["epochs"], sch["min_steps"],
                                                         sch["max_steps"], sch["max_evals"]).total_steps,
            "global_batch_at_1": budget.global_batch,
            "how": "per model: fixed cost + step budget at scale 1 x share of the budget run x seconds per step "
                   "(linear in positives) + validation at its measured share"}
    return out


def write(doc: dict[str, Any], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    with open(out.with_suffix(".csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["scale_div", "stage", "seconds", "peak_rss_sum_mb", "peak_pss_sum_mb", "peak_driver_rss_mb",
                    "throughput", "unit", "kind"])
        for div, r in sorted(doc["runs"].items(), key=lambda kv: -int(kv[0])):
            for name, s in r["stages"].items():
                w.writerow([div, name, f"{s['seconds']:.2f}", f"{s['peak_rss_sum_mb']:.0f}",
                            f"{s['peak_pss_sum_mb']:.0f}", f"{s['peak_driver_rss_mb']:.0f}",
                            f"{s.get('throughput', float('nan')):.3g}", s.get("unit", ""), "measured"])
        for name, s in doc.get("extrapolation", {}).get("stages", {}).items():
            w.writerow([1, name, f"{s['seconds_at_1']:.0f}", "", "", "", "", s["how"], "EXTRAPOLATED"])


def report(doc: dict[str, Any]) -> None:
    for div, r in sorted(doc["runs"].items(), key=lambda kv: -int(kv[0])):
        print(f"\nscale_div {div}: {r['n_users']} x {r['n_items']}, {r['big_matrix_rows']} big_matrix rows, "
              f"total {r['total_wall_s']:.0f} s")
        for name, s in r["stages"].items():
            print(f"  {name:<16} {s['seconds']:>8.1f} s  peak RSS sum {s['peak_rss_sum_mb']:>6.0f} MB  "
                  f"PSS sum {s['peak_pss_sum_mb']:>6.0f} MB  {s.get('throughput', float('nan')):.3g} {s.get('unit', '')}")
        lp, k = r["retrieval_loop"], r["kernel"]
        print(f"  retrieval loop ({lp['model']}): {(lp['select_step_s'] or 0) * 1e3:.1f} ms/step selection, "
              f"{(lp['refit_step_s'] or 0) * 1e3:.1f} ms/step refit; kernel {k['kernel_step_s'] * 1e3:.1f} ms "
              f"(batch {k['kernel_batch']:.0f}, {k['kernel_threads']:.0f} thread): loop/kernel "
              f"{lp.get('select_over_kernel', float('nan')):.2f} (goal <= 1.5)")
        for name, m in r["retrieval_models"].items():
            print(f"    {name:<13} {m['train_s'] or 0:>7.1f} s: steps {m['steps_run']}+{m['refit_steps']} of budget "
                  f"{m['budget_steps']}, select steps {m['select_train_s']:.1f} s, validation {m['select_val_s']:.1f} s, "
                  f"refit {m['refit_train_s']:.1f} s, other {m.get('other_s', float('nan')):.1f} s (Ray Train start-up etc. "
                  f"{m.get('fit_overhead_s') or float('nan'):.1f} s, final evaluation {m.get('eval_s') or 0:.1f} s)")
    ex = doc.get("extrapolation", {})
    if "stages" in ex:
        print(f"\n{ex['label']}:")
        for name, s in ex["stages"].items():
            print(f"  {name:<16} ~{s['seconds_at_1']:>8.0f} s   ({s['how']})")
        rs = ex["stages"].get("train-retrieval", {})
        if "models" in rs:
            print(f"    budget {rs['budget_steps_at_1']} steps per model at global batch {rs['global_batch_at_1']} "
                  f"(a fixed batch of {rs['schedule']['batch_size']}: {rs['fixed_batch_budget_steps_at_1']})")
            print(f"    {rs['step_s_at_1'] * 1e3:.0f} ms/step at {rs['positives_at_1']:.0f} positives (kernel "
                  f"{rs['kernel_step_s_at_1'] * 1e3:.0f} ms); " + ", ".join(
                      f"{n} {m['steps_at_1']:.0f} steps" if "steps_at_1" in m else f"{n} skipped"
                      for n, m in rs["models"].items()))
        print(f"  total ~{sum(s['seconds_at_1'] for s in ex['stages'].values()) / 60:.0f} min")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--scale-div", type=int, nargs="*", default=[16], help="divisors of the full preset's sizes")
    p.add_argument("--serve-smoke", type=int, default=10, help="requests of the serve smoke test (default 10)")
    p.add_argument("--workdir", default=None, help="where runs and data go (default: a temporary folder)")
    p.add_argument("--keep", action="store_true", help="keep the run and data folders")
    p.add_argument("--sample-s", type=float, default=1.0, help="memory sampling interval (default 1 s)")
    p.add_argument("--extrapolate-only", action="store_true")
    p.add_argument("--until", default=None, help="stop after this stage (e.g. train-retrieval; default: all)")
    p.add_argument("--out", default="outputs/pipeline_full.json")
    p.add_argument("overrides", nargs="*", metavar="stage.key=value", help="extra pipeline overrides")
    args = p.parse_args(argv)
    out = Path(args.out)
    doc = json.loads(out.read_text()) if out.is_file() else {}
    doc.setdefault("runs", {})
    if not args.extrapolate_only:
        os.environ.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{tempfile.mkdtemp()}/mlflow.db")
        root = Path(args.workdir or tempfile.mkdtemp(prefix="graphrec-full-"))
        for div in args.scale_div:
            r = run_scale(div, root, args.serve_smoke, args.overrides, args.sample_s, args.until)
            r.update(machine=platform.processor() or platform.machine(), cpus=os.cpu_count(),
                     date=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), overrides=args.overrides,
                     until=args.until, git=_git_head())
            doc["runs"][str(div)] = r
            doc["extrapolation"] = extrapolate(doc["runs"])
            write(doc, out)  # after every size: a later size cut short keeps the earlier ones
        if not args.keep and args.workdir is None:
            shutil.rmtree(root, ignore_errors=True)
    doc["extrapolation"] = extrapolate(doc["runs"])
    write(doc, out)
    report(doc)
    print(f"\nwrote {out} and {out.with_suffix('.csv')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
