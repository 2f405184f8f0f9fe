"""FAISS index benchmark: recall@K against exact search and queries/s, per index type, nprobe/efSearch and size.

Simulated embeddings (d=64) shaped like trained LightGCN vectors: a Gaussian mixture (one component per ~100
items, so neighbourhoods are real) with log-normal norms (popular items have longer vectors). Queries are user
vectors drawn from the same mixture. Recall@100 and @10 are against ``IndexFlatIP`` top-K; queries/s are for
one query per call on one thread (the serving pattern: a request is a batch of one; replicas share cores).
The baseline in every row is exact search (``Flat``) at the same size: ``qps_vs_flat``. Each configuration is
also measured at ``--serve-k`` (default 1000): serving asks FAISS for ``k_candidates + |seen|`` items so that
enough remain after removing already-seen ones (KuaiRec users have seen ~1,700 of 10,728 items on average).

    python benchmarks/faiss_index.py                    # demo (1,500), 10,728 (KuaiRec), 100k, 1M items
    python benchmarks/faiss_index.py --sizes 1500 10728 # quick

Writes ``outputs/faiss_benchmark.csv`` and prints the fastest index reaching recall@100 >= 0.99 per size.
HNSW is skipped at 1M unless ``--hnsw-1m`` (its build takes minutes on 2 cores). Index builds use 2 threads.
"""

from __future__ import annotations

import argparse
import csv
import math
import time
from pathlib import Path

import faiss
import numpy as np

from graphrec_ray.index.faiss_index import ItemIndex, exact_topk, recall_at_k

K = 100


def simulate(n_items: int, n_queries: int, dim: int, seed: int, noise: float = 0.4) -> tuple[np.ndarray, np.ndarray]:
    """``(items (n_items, dim), queries (n_queries, dim))`` float32 from a seeded Gaussian mixture.

    ``noise`` is the per-dimension spread around unit-variance component centres (0.4: clusters are distinct
    but overlap; larger values make the vectors nearly isotropic, where every approximate index loses recall).
    """
    rng = np.random.default_rng(seed)
    n_comp = max(8, n_items // 100)
    centres = rng.standard_normal((n_comp, dim)).astype(np.float32)
    items = np.empty((n_items, dim), dtype=np.float32)
    for start in range(0, n_items, 200_000):  # bounded temporaries at 1M
        m = min(200_000, n_items - start)
        comp = rng.integers(0, n_comp, m)
        x = centres[comp] + noise * rng.standard_normal((m, dim)).astype(np.float32)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        items[start:start + m] = x * rng.lognormal(0.0, 0.3, (m, 1)).astype(np.float32)
    comp = rng.integers(0, n_comp, n_queries)
    queries = (centres[comp] + noise * rng.standard_normal((n_queries, dim))).astype(np.float32)
    return items, queries


def configs(n: int, hnsw: bool) -> list[tuple[str, dict]]:
    """(factory, search params) to try at catalogue size ``n``."""
    nlist = int(2 ** round(math.log2(max(16.0, 4 * math.sqrt(n)))))
    out: list[tuple[str, dict]] = [("Flat", {})]
    out += [(f"IVF{nlist},Flat", {"nprobe": p}) for p in (4, 16, 64, 256) if p <= nlist]
    # 4-bit fast-scan PQ (32 bytes per item): trains in seconds; 8-bit PQ32 took minutes at 10k items here
    out += [(f"IVF{nlist},PQ32x4fs", {"nprobe": p}) for p in (16, 64) if p <= nlist]
    out += [(f"IVF{nlist},PQ32x4fs,RFlat", {"nprobe": p, "refine_k_factor": 8.0}) for p in (16, 64, 256)
            if p <= nlist]
    if hnsw:
        out += [("HNSW32", {"ef_search": e}) for e in (128, 256)]
    return out


def time_queries(index: ItemIndex, queries: np.ndarray, k: int, threads: int) -> tuple[float, np.ndarray]:
    """Queries/s at one query per call on ``threads`` FAISS threads, and the ids ``(B, k)``."""
    faiss.omp_set_num_threads(threads)
    ids = np.empty((queries.shape[0], k), dtype=np.int64)
    index.search(queries[:5], k)  # warm-up
    best = float("inf")
    for _ in range(3):  # best of 3 passes: the machine is shared, the minimum is the least disturbed
        t0 = time.perf_counter()
        for i in range(queries.shape[0]):
            ids[i] = index.search(queries[i:i + 1], k)[1][0]
        best = min(best, time.perf_counter() - t0)
    return queries.shape[0] / best, ids


def bench_size(n: int, dim: int, n_queries: int, seed: int, hnsw: bool, max_train: int, threads: int,
               build_threads: int, noise: float = 0.4, serve_k: int = 0) -> list[dict]:
    items, queries = simulate(n, n_queries, dim, seed, noise)
    exact = exact_topk(items, queries, K)
    serve_k = min(serve_k, n)
    exact_serve = exact_topk(items, queries, serve_k) if serve_k else None
    rows: list[dict] = []
    flat_serve_qps = None
    built: dict[str, tuple[ItemIndex, float]] = {}
    flat_qps = None
    for factory, params in configs(n, hnsw):
        if factory not in built:
            faiss.omp_set_num_threads(build_threads)
            t0 = time.perf_counter()
            built[factory] = (ItemIndex.build(items, factory, "bench", max_train=max_train, seed=seed),
                              time.perf_counter() - t0)
        index, build_s = built[factory]
        index.nprobe = params.get("nprobe", index.nprobe)
        index.ef_search = params.get("ef_search", index.ef_search)
        index.refine_k_factor = params.get("refine_k_factor", index.refine_k_factor)
        index.apply_params()
        qps, ids = time_queries(index, queries, K, threads)
        flat_qps = qps if factory == "Flat" else flat_qps
        serve_cols: dict = {}
        if exact_serve is not None:
            sq, sids = time_queries(index, queries, serve_k, threads)
            flat_serve_qps = sq if factory == "Flat" else flat_serve_qps
            serve_cols = {"serve_k": serve_k, "recall_at_serve_k": round(recall_at_k(sids, exact_serve), 4),
                          "qps_serve_k": round(sq, 1), "qps_serve_k_vs_flat": round(sq / flat_serve_qps, 2)}
        row = {"n_items": n, "dim": dim, "factory": factory, "nprobe": params.get("nprobe", ""),
               "ef_search": params.get("ef_search", ""), "refine_k_factor": params.get("refine_k_factor", ""),
               "recall_at_100": round(recall_at_k(ids, exact), 4),
               "recall_at_10": round(recall_at_k(ids[:, :10], exact[:, :10]), 4), "qps": round(qps, 1),
               "qps_vs_flat": round(qps / flat_qps, 2), "build_s": round(build_s, 2), "queries": n_queries,
               **serve_cols}
        rows.append(row)
        print(f"{n:>8} {factory:<22} nprobe={row['nprobe']!s:<3} ef={row['ef_search']!s:<4} "
              f"recall@100={row['recall_at_100']:.4f} recall@10={row['recall_at_10']:.4f} "
              f"qps={row['qps']:>8.1f} ({row['qps_vs_flat']:.2f}x Flat) build={row['build_s']}s"
              + (f" | k={serve_k}: recall={row['recall_at_serve_k']:.4f} qps={row['qps_serve_k']:.0f} "
                 f"({row['qps_serve_k_vs_flat']:.2f}x Flat)" if serve_cols else ""), flush=True)
    return rows


def choose(rows: list[dict], min_recall: float = 0.99, recall: str = "recall_at_100",
           qps: str = "qps") -> dict[int, dict]:
    """Per size: the fastest configuration with ``recall >= min_recall`` (Flat always qualifies)."""
    best: dict[int, dict] = {}
    for r in rows:
        if r.get(recall, 0) >= min_recall and (r["n_items"] not in best or r[qps] > best[r["n_items"]][qps]):
            best[r["n_items"]] = r
    return best


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[1500, 10_728, 100_000, 1_000_000])
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--queries", type=int, default=300, help="queries per size (1M uses a third)")
    p.add_argument("--max-train", type=int, default=60_000, help="training sample for IVF/PQ")
    p.add_argument("--hnsw-1m", action="store_true", help="also build HNSW at >= 1M items")
    p.add_argument("--threads", type=int, default=1, help="FAISS threads when timing queries (1: per replica)")
    p.add_argument("--build-threads", type=int, default=2, help="FAISS threads when training/adding")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--noise", type=float, default=0.4, help="cluster spread of the simulated embeddings")
    p.add_argument("--serve-k", type=int, default=1000,
                   help="also measure at the k serving asks FAISS for (k_candidates + seen items); 0 = skip")
    p.add_argument("--out", default="outputs/faiss_benchmark.csv")
    args = p.parse_args(argv)
    rows: list[dict] = []
    for n in args.sizes:
        nq = args.queries if n < 1_000_000 else max(50, args.queries // 3)
        rows += bench_size(n, args.dim, nq, args.seed, hnsw=n < 1_000_000 or args.hnsw_1m,
                           max_train=args.max_train, threads=args.threads, build_threads=args.build_threads,
                           noise=args.noise, serve_k=args.serve_k)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(dict.fromkeys(k for r in rows for k in r)))
        w.writeheader()
        w.writerows(rows)
    print(f"\nwrote {out}\nfastest index with recall@100 >= 0.99 (baseline: Flat = exact search):")
    for n, r in choose(rows).items():
        print(f"  {n:>8} items: {r['factory']:<22} nprobe={r['nprobe']!s:<3} ef={r['ef_search']!s:<4} "
              f"{r['qps']:.0f} q/s = {r['qps_vs_flat']:.2f}x Flat, recall@100={r['recall_at_100']}")
    if args.serve_k:
        print(f"fastest with recall@serve_k >= 0.99 (serving asks for k = k_candidates + seen, here {args.serve_k}):")
        for n, r in choose(rows, recall="recall_at_serve_k", qps="qps_serve_k").items():
            print(f"  {n:>8} items: {r['factory']:<22} nprobe={r['nprobe']!s:<3} ef={r['ef_search']!s:<4} "
                  f"{r['qps_serve_k']:.0f} q/s = {r['qps_serve_k_vs_flat']:.2f}x Flat, "
                  f"recall@{r['serve_k']}={r['recall_at_serve_k']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
