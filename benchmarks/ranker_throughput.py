"""Ranker benchmark: training throughput (samples/s) and 500-candidate scoring latency, on CPU.

Synthetic tables at KuaiRec 2.0 scale (7,176 users, 10,728 items, 64-d retrieval embeddings,
31 categories, 63 days of item statistics: D = 213 features) and random events, so the figures
measure the code path, not a dataset:

* training: one epoch of the real training step (features built per batch by the shared builder,
  forward, backward, Adam) for the MMoE alone, against the baseline of the two single-task MLPs
  (same features, half the MMoE's parameters each) trained side by side;
* scoring: ``RankerBundle.score`` for 500 candidates (factorised first layer with the item side precomputed,
  ``graphrec_ray/ranking/factorized.py``, + Platt) against two baselines in the same process: the full
  feature matrix through the MMoE (``(500, 213)`` features from the precomputed tables, then the model) and a
  naive per-candidate loop (one feature build and one model call per candidate).

Goals on a 2-core CPU: >= 30k training samples/s, <= 3 ms p50 for 500 candidates.
Writes ``outputs/ranker_benchmark.json``. Run: ``python -m benchmarks.ranker_throughput``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from graphrec_ray.calibration.platt import PlattCalibrator
from graphrec_ray.ranking.bundle import RankerBundle
from graphrec_ray.ranking.config import RankingConfig
from graphrec_ray.ranking.context import RequestContext
from graphrec_ray.ranking.data import Events
from graphrec_ray.ranking.features import DAILY_WIDTH, FeatureBuilder, FeatureSpec
from graphrec_ray.ranking.train import build_models, fit_input_norms, train_epoch

N_USERS, N_ITEMS, DIM, N_CAT, N_DAYS = 7176, 10728, 64, 31, 63
FIRST_DAY = 18448  # 2020-07-05


def synthetic_builder(seed: int = 0) -> FeatureBuilder:
    """KuaiRec-sized random feature tables."""
    rng = np.random.default_rng(seed)
    spec = FeatureSpec(DIM, tuple(range(N_CAT)), ("UNKNOWN", "full_active", "high_active", "middle_active"),
                       (1.0,) * 18, FIRST_DAY, N_DAYS)
    f32 = np.float32
    return FeatureBuilder(spec, rng.normal(size=(N_USERS, DIM)).astype(f32), rng.random((N_USERS, 30)).astype(f32),
                          rng.normal(size=(N_ITEMS, DIM + 1 + N_CAT)).astype(f32),
                          rng.random((N_ITEMS, N_DAYS + 1, DAILY_WIDTH)).astype(f32))


def synthetic_events(n: int, seed: int = 1) -> Events:
    rng = np.random.default_rng(seed)
    u, i = rng.integers(0, N_USERS, n), rng.integers(0, N_ITEMS, n)
    ts = (FIRST_DAY + rng.random(n) * N_DAYS) * 86400.0
    return Events(user_idx=u.astype(np.int32), item_idx=i.astype(np.int32), user_id=u, video_id=i, timestamp=ts,
                  position=rng.integers(0, 30, n).astype(np.int32), since_last=rng.random(n).astype(np.float32) * 100,
                  label_click=(rng.random(n) < 0.7).astype(np.float32), label_value=rng.random(n).astype(np.float32))


def train_throughput(builder: FeatureBuilder, events: Events, cfg: RankingConfig, names: tuple[str, ...]) -> float:
    """Samples per second of one epoch training the models ``names`` side by side (features built once per batch)."""
    models = {n: m for n, m in build_models(cfg, builder.dim, *builder.n_ids).items() if n in names}
    fit_input_norms(models, builder, events, 20_000, seed=0)
    opts = {n: torch.optim.Adam(m.parameters(), lr=cfg.lr) for n, m in models.items()}
    warm = events.take(slice(0, cfg.batch_size * 2))
    train_epoch(models, opts, builder, warm, cfg, epoch=0)
    t0 = time.perf_counter()
    out = train_epoch(models, opts, builder, events, cfg, epoch=1)
    return out["samples"] / (time.perf_counter() - t0)


def latencies(fn, repeats: int) -> np.ndarray:
    for _ in range(20):
        fn()
    out = np.empty(repeats)
    for r in range(repeats):
        t0 = time.perf_counter()
        fn()
        out[r] = time.perf_counter() - t0
    return out * 1e3


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--train-rows", type=int, default=300_000, help="samples in the timed training epoch")
    p.add_argument("--repeats", type=int, default=1000, help="timed scoring requests")
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads (1 is fastest on 2 shared cores)")
    p.add_argument("--out", default="outputs/ranker_benchmark.json")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    cfg = RankingConfig()
    builder = synthetic_builder()
    events = synthetic_events(args.train_rows)
    mmoe_sps = train_throughput(builder, events, cfg, ("mmoe",))
    pair_sps = train_throughput(builder, events, cfg, ("click", "value"))

    model = build_models(cfg, builder.dim, *builder.n_ids)["mmoe"]
    fit_input_norms({"mmoe": model}, builder, events, 20_000, seed=0)
    bundle = RankerBundle(builder, model, PlattCalibrator(0.9, -0.1), "bench")
    rng = np.random.default_rng(2)
    cands = rng.choice(N_ITEMS, 500, replace=False)
    ctx = RequestContext(timestamp=(FIRST_DAY + 40.5) * 86400.0, position_in_session=3, seconds_since_last_view=42.0)

    def naive() -> None:  # one feature build and one model call per candidate
        with torch.inference_mode():
            for i in cands:
                x = torch.from_numpy(bundle.features(17, np.array([i]), ctx))
                model(x, torch.tensor([17]), torch.tensor([i]))

    def full_matrix() -> None:  # the (500, D) feature matrix through the whole model, then calibration
        with torch.inference_mode():
            x = torch.from_numpy(bundle.features(17, cands, ctx))
            out = model(x, torch.full((cands.size,), 17), torch.from_numpy(cands)).numpy()
        bundle.calibrator.predict(out[:, 0])

    fast = latencies(lambda: bundle.score(17, cands, ctx), args.repeats)
    full = latencies(full_matrix, args.repeats)
    slow = latencies(naive, max(20, args.repeats // 50))
    feat = latencies(lambda: bundle.features(17, cands, ctx), args.repeats)
    res = {
        "feature_dim": builder.dim, "threads": args.threads, "train_rows": args.train_rows,
        "batch_size": cfg.batch_size, "mmoe": {"n_experts": cfg.n_experts, "expert_hidden": list(cfg.expert_hidden)},
        "train_samples_per_s_mmoe": mmoe_sps, "train_samples_per_s_single_task_pair": pair_sps,
        "train_ratio_mmoe_vs_pair": mmoe_sps / pair_sps,
        "score500_ms_p50": float(np.percentile(fast, 50)), "score500_ms_p99": float(np.percentile(fast, 99)),
        "features500_ms_p50": float(np.percentile(feat, 50)),
        "full_matrix_score500_ms_p50": float(np.percentile(full, 50)),
        "score_speedup_vs_full_matrix_p50": float(np.percentile(full, 50) / np.percentile(fast, 50)),
        "naive_score500_ms_p50": float(np.percentile(slow, 50)), "naive_score500_ms_p99": float(np.percentile(slow, 99)),
        "score_speedup_vs_naive_p50": float(np.percentile(slow, 50) / np.percentile(fast, 50)),
        "goals": {"train_samples_per_s": 30_000, "score500_ms_p50": 3.0},
    }
    print(f"training   MMoE {mmoe_sps:,.0f} samples/s  vs single-task pair {pair_sps:,.0f} samples/s "
          f"(ratio {res['train_ratio_mmoe_vs_pair']:.2f}; goal >= 30,000)")
    print(f"scoring    500 candidates p50 {res['score500_ms_p50']:.2f} ms  p99 {res['score500_ms_p99']:.2f} ms "
          f"(features p50 {res['features500_ms_p50']:.2f} ms; goal p50 <= 3 ms)")
    print(f"baseline   full feature matrix through the model p50 {res['full_matrix_score500_ms_p50']:.2f} ms -> "
          f"{res['score_speedup_vs_full_matrix_p50']:.1f}x faster factorised")
    print(f"baseline   naive per-candidate p50 {res['naive_score500_ms_p50']:.1f} ms -> "
          f"{res['score_speedup_vs_naive_p50']:.0f}x faster batched")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
