"""Benchmark: the Ray Data preprocessing job vs the plain single-process pyarrow pass, same data, same run.

On the full-scale simulated KuaiRec (``data/sim_full``: 7,176 users x 10,728 items, ~12.5M big_matrix rows,
generated once with the simulator's ``full`` preset if absent) or a ``--scale``d copy for a smoke run. Both paths
read the one-time CSV -> Parquet cache (its conversion is timed separately and excluded, as the issue allows) and
write byte-identical outputs (checked here). Printed and written to ``outputs/preprocess_benchmark.json``:

- rows/s of each path (raw rows in, big + small, over the stage's wall time) and the ratio Ray / plain
  (goal: Ray Data within 1.5x of the plain pass, i.e. ``ray_seconds / local_seconds <= 1.5``);
- peak memory of each path as the summed PSS of the driver and every Ray process it started (raylet, GCS,
  workers, object store pages), sampled every 0.2 s, against the CSV size (goal: < 3x data size); also the
  growth during the run (peak minus the PSS just before: excludes the interpreter, imports and the idle
  cluster, which dominate at small scale).

Every measured run is a fresh subprocess (``--child``), so no run inherits memory an earlier one left in the
allocator; the Ray child starts its local cluster before the clock starts.

Usage::

    python -m benchmarks.preprocess_throughput                 # full scale (minutes; heavy on 2 cores)
    python -m benchmarks.preprocess_throughput --scale 0.05    # smoke run on ~5% of the users
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable

import psutil

from graphrec_ray.preprocess.config import PreprocessConfig
from graphrec_ray.preprocess.stage import SOURCES, prepare_inputs, preprocess_local

FULL_USERS, FULL_SMALL_USERS = 7176, 1411


class PeakPss:
    """Sample the summed PSS of this process and all its descendants in a background thread."""

    def __init__(self, interval_s: float = 0.2) -> None:
        self.interval_s = interval_s
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def sample() -> int:
        me = psutil.Process()
        total = 0
        for p in [me, *me.children(recursive=True)]:
            try:
                total += p.memory_full_info().pss
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                pass
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.sample())
            self._stop.wait(self.interval_s)

    def __enter__(self) -> "PeakPss":
        self.peak = self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.sample())


def ensure_data(data_dir: Path, scale: float) -> None:
    """Generate the simulated dataset into ``data_dir`` once (``full`` preset, users scaled by ``scale``)."""
    if (data_dir / "big_matrix.csv").is_file() and (data_dir / "small_matrix.csv").is_file():
        return
    from graphrec_ray.sources.simulator import SimulatorConfig, simulate

    kw: dict[str, Any] = {}
    if scale < 1.0:
        kw = {"n_users": max(10, round(FULL_USERS * scale)), "small_users": max(5, round(FULL_SMALL_USERS * scale))}
    print(f"generating simulator data (preset full, scale {scale}) into {data_dir} ...", flush=True)
    simulate(SimulatorConfig(preset="full", **kw), data_dir, progress=True)


def timed(fn: Callable[[], Any]) -> tuple[float, int, int, Any]:
    """``(seconds, peak PSS, PSS just before, result)`` of ``fn()``."""
    base = PeakPss.sample()
    with PeakPss() as mem:
        t0 = time.perf_counter()
        out = fn()
        seconds = time.perf_counter() - t0
    return seconds, mem.peak, base, out


def same_files(a: Path, b: Path) -> bool:
    names = sorted(p.name for p in a.iterdir())
    return names == sorted(p.name for p in b.iterdir()) and all(
        (a / n).read_bytes() == (b / n).read_bytes() for n in names)


def child(mode: str, data_dir: Path, out_dir: Path, num_cpus: int) -> dict[str, Any]:
    """One measured run in a fresh process (no memory retained from an earlier run): ``local`` or ``ray``."""
    cfg = PreprocessConfig(data_dir=str(data_dir))
    if mode == "local":
        s, peak, base, _ = timed(lambda: preprocess_local(cfg, out_dir))
        return {"seconds": s, "peak_pss_bytes": peak, "pss_before_bytes": base}
    import ray

    from jobs.preprocess import run as run_job

    ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)
    import ray.data

    ray.data.DataContext.get_current().enable_progress_bars = False
    time.sleep(2.0)  # let the cluster settle; its start-up is not part of the job
    try:
        s, peak, base, _ = timed(lambda: run_job(cfg, out_dir.parent, progress=False, track=False))
    finally:
        ray.shutdown()
    return {"seconds": s, "peak_pss_bytes": peak, "pss_before_bytes": base}


def run_child(mode: str, data_dir: Path, out_dir: Path, num_cpus: int) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "benchmarks.preprocess_throughput", "--child", mode, "--data-dir", str(data_dir),
           "--child-out", str(out_dir), "--num-cpus", str(num_cpus)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{mode} run failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scale", type=float, default=1.0, help="fraction of the full preset's users (default 1.0)")
    p.add_argument("--data-dir", default=None, help="default: data/sim_full, or data/sim_scale<scale>")
    p.add_argument("--num-cpus", type=int, default=os.cpu_count() or 1, help="CPUs of the local Ray cluster")
    p.add_argument("--reps", type=int, default=1, help="(plain, Ray) pairs, each run in a fresh process; best of each")
    p.add_argument("--out", default="outputs/preprocess_benchmark.json")
    p.add_argument("--child", choices=["local", "ray"], default=None, help=argparse.SUPPRESS)
    p.add_argument("--child-out", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    data_dir = Path(args.data_dir or ("data/sim_full" if args.scale >= 1.0 else f"data/sim_scale{args.scale:g}"))
    if args.child:
        print(json.dumps(child(args.child, data_dir, Path(args.child_out), args.num_cpus)))
        return 0
    ensure_data(data_dir, args.scale)
    csv_bytes = sum((data_dir / s).stat().st_size for s in SOURCES)
    load_start = os.getloadavg()

    cfg = PreprocessConfig(data_dir=str(data_dir))  # cache in <data_dir>/_parquet_cache: built once, reused
    stamps = [Path(cfg.data_dir) / "_parquet_cache" / Path(s).stem / "_stamp.json" for s in SOURCES]
    before = [p.stat().st_mtime_ns if p.is_file() else None for p in stamps]
    t0 = time.perf_counter()
    caches = prepare_inputs(cfg, progress=True)
    convert_s = time.perf_counter() - t0
    cache_existed = before == [p.stat().st_mtime_ns for p in stamps]  # no stamp rewritten: nothing converted
    rows_in = sum(c.n_rows for c in caches.values())
    print(f"data: {rows_in:,} rows, {csv_bytes / 2**30:.2f} GiB CSV; one-time CSV->Parquet cache {convert_s:.1f}s"
          f"{' (already built)' if cache_existed else ''}", flush=True)

    work = Path(tempfile.mkdtemp(prefix="graphrec_bench_"))
    local_runs, ray_runs = [], []
    identical = True
    try:
        for rep in range(args.reps):
            for mode, runs in (("local", local_runs), ("ray", ray_runs)):
                r = run_child(mode, data_dir, work / f"{mode}{rep}" / "preprocess", args.num_cpus)
                runs.append(r)
                growth = (r["peak_pss_bytes"] - r["pss_before_bytes"]) / 2**30
                print(f"[{rep}] {'plain pyarrow pass' if mode == 'local' else 'Ray Data job      '}: "
                      f"{r['seconds']:.1f}s  {rows_in / r['seconds']:,.0f} rows/s  peak PSS "
                      f"{r['peak_pss_bytes'] / 2**30:.2f} GiB (growth {growth:.2f} GiB)", flush=True)
            identical &= same_files(work / f"local{rep}" / "preprocess", work / f"ray{rep}" / "preprocess")
    finally:
        shutil.rmtree(work, ignore_errors=True)

    best_local = min(r["seconds"] for r in local_runs)
    best_ray = min(r["seconds"] for r in ray_runs)
    local_peak = max(r["peak_pss_bytes"] for r in local_runs)
    ray_peak = max(r["peak_pss_bytes"] for r in ray_runs)
    ray_before = min(r["pss_before_bytes"] for r in ray_runs)
    local_before = min(r["pss_before_bytes"] for r in local_runs)
    result = {
        "data_dir": str(data_dir), "scale": args.scale, "rows_in": rows_in, "csv_bytes": csv_bytes,
        "rows_in_per_source": {s: c.n_rows for s, c in caches.items()},
        "one_time_csv_to_parquet_seconds": round(convert_s, 2), "cache_already_built": cache_existed,
        "local_seconds_best": round(best_local, 2), "ray_seconds_best": round(best_ray, 2),
        "local_rows_per_s": round(rows_in / best_local), "ray_rows_per_s": round(rows_in / best_ray),
        "ratio_ray_over_local_seconds": round(best_ray / best_local, 3),
        "goal_ratio_max": 1.5,
        "local_peak_pss_bytes": local_peak, "ray_peak_pss_bytes": ray_peak,
        "ray_pss_before_bytes": ray_before, "local_pss_before_bytes": local_before,
        "local_peak_over_data": round(local_peak / csv_bytes, 3),
        "ray_peak_over_data": round(ray_peak / csv_bytes, 3),
        "local_growth_over_data": round((local_peak - local_before) / csv_bytes, 3),
        "ray_growth_over_data": round((ray_peak - ray_before) / csv_bytes, 3),
        "goal_peak_over_data_max": 3.0,
        "outputs_identical": identical,
        "runs": {"local": local_runs, "ray": ray_runs},
        "machine": {"cpus": os.cpu_count(), "ray_num_cpus": args.num_cpus, "python": platform.python_version(),
                    "loadavg_start": load_start, "loadavg_end": os.getloadavg(),
                    "note": "shared machine: other processes compete for the CPUs (see loadavg)"},
    }
    print(f"\nrows/s  plain {result['local_rows_per_s']:,}  Ray Data {result['ray_rows_per_s']:,}  "
          f"time ratio Ray/plain {result['ratio_ray_over_local_seconds']:.2f} (goal <= 1.5)")
    print(f"peak PSS / CSV size  plain {result['local_peak_over_data']:.2f}  Ray {result['ray_peak_over_data']:.2f} "
          f"(growth during the run: plain {result['local_growth_over_data']:.2f}, Ray "
          f"{result['ray_growth_over_data']:.2f}; goal < 3)  identical outputs: {identical}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
