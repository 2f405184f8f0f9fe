"""Seconds per LightGCN training step: this project's exact fast propagation vs PyG's ``LightGCN``, same graph.

A step is forward (3-layer propagation + BPR scores of a batch of (user, pos, neg) triples) + backward, with
float32 embeddings of size 64. Both models start from the same weights; the script also reports the max abs
difference of their final embeddings (the equality the unit tests check at 1e-5).

Baselines, all in the same process on the same graph:

* ``pyg_prenorm`` (the headline baseline): PyG's ``LightGCN(..., normalize=False)`` (the flag goes to every
  ``LGConv``) over a sparse ``adj_t`` that was symmetric-normalised once with ``gcn_norm`` and stored as a
  ``torch.sparse_csr`` tensor: PyG's fastest documented path (one ``spmm`` per layer, no per-edge messages, no
  re-normalisation);
* ``pyg``: ``torch_geometric.nn.models.LightGCN.get_embedding`` over the homogeneous ``edge_index``, which runs
  ``gcn_norm`` and builds a ``(2E, d)`` message tensor in every layer of every step (the slowest path; second row);
* ``scatter``: a pure-torch ``index_add_`` propagation equal to PyG's message passing (used where PyG is missing);
* ours: ``graphrec_ray.retrieval.lightgcn.LightGCN`` with ``R~`` as CSR and (optionally) dense, and on CUDA
  dense with TF32 tensor cores.

The floor of each variant is ``max(FLOPs / measured peak, bytes / measured bandwidth)`` for its 12 products per
step (3 layers x 2 blocks, forward and backward), with the peak and bandwidth measured here (a large matmul and a
large copy). Figures go to ``outputs/lightgcn_benchmark.json`` (``--out``).

Usage::

    python benchmarks/lightgcn_step.py                              # CPU, small_matrix-sized graph
    python benchmarks/lightgcn_step.py --device cuda --scale full   # GPU, full KuaiRec scale
    python benchmarks/lightgcn_step.py --pipeline                   # + demo-scale full-pipeline time on CPU
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from graphrec_ray.graph.bipartite import BipartiteGraph, NormalizedAdjacency, normalized_adjacency  # noqa: E402
from graphrec_ray.retrieval.lightgcn import LightGCN  # noqa: E402

SCALES = {  # users, items, edges
    "small": (1411, 3327, 500_000),  # small_matrix-sized graph (issue's CPU goal)
    "full": (7176, 10728, 12_450_000),  # KuaiRec big_matrix scale (issue's GPU goal)
    "tiny": (300, 500, 20_000),  # smoke test of this script
}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def timeit(fn: Callable[[], Any], device: torch.device, repeats: int, warmup: int = 2,
           max_s: float = 60.0) -> float:
    """Median seconds of ``fn`` over ``repeats`` runs (fewer if they exceed ``max_s`` in total)."""
    for _ in range(warmup):
        fn()
    sync(device)
    times: list[float] = []
    start = time.perf_counter()
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t)
        if time.perf_counter() - start > max_s:
            break
    return float(np.median(times))


def random_graph(users: int, items: int, edges: int, seed: int) -> BipartiteGraph:
    """Uniformly random bipartite graph with about ``edges`` distinct edges (seeded)."""
    rng = np.random.default_rng(seed)
    n = int(edges * 1.1) if edges < users * items * 0.5 else edges * 2
    key = np.unique(rng.integers(0, users * items, size=n, dtype=np.int64))
    key = rng.permutation(key)[:edges]
    return BipartiteGraph.from_interactions(key // items, key % items, users, items)


def scatter_embedding(x: torch.Tensor, src: torch.Tensor, dst: torch.Tensor, w: torch.Tensor,
                      layers: int) -> torch.Tensor:
    """PyG-equivalent propagation with explicit messages: ``out[dst] += w * x[src]`` per layer."""
    out = x / (layers + 1)
    for _ in range(layers):
        msg = x[src] * w[:, None]
        x = torch.zeros_like(x).index_add_(0, dst, msg)
        out = out + x / (layers + 1)
    return out


def measure_peaks(device: torch.device) -> dict[str, float]:
    """Measured copy bandwidth (bytes read + written per s) and fp32 / TF32 matmul FLOP/s."""
    n = 1 << 26 if device.type == "cuda" else 1 << 24
    a = torch.empty(n, dtype=torch.float32, device=device).uniform_()
    bw = 2 * 4 * n / timeit(lambda: a.clone(), device, 10)
    m = 8192 if device.type == "cuda" else 1024
    x = torch.randn(m, m, device=device)
    peaks = {"bandwidth_Bps": bw}
    if device.type == "cuda":
        old = torch.backends.cuda.matmul.allow_tf32
        torch.backends.cuda.matmul.allow_tf32 = False
        peaks["fp32_flops"] = 2 * m ** 3 / timeit(lambda: x @ x, device, 5)
        torch.backends.cuda.matmul.allow_tf32 = True
        peaks["tf32_flops"] = 2 * m ** 3 / timeit(lambda: x @ x, device, 5)
        torch.backends.cuda.matmul.allow_tf32 = old
    else:
        peaks["fp32_flops"] = 2 * m ** 3 / timeit(lambda: x @ x, device, 5)
    return peaks


def floor_s(layout: str, U: int, I: int, nnz: int, d: int, layers: int, peaks: dict[str, float],
            tf32: bool = False, batch: int = 0) -> dict[str, float]:
    """Lower bound for one step: ``2 * layers`` products forward and as many backward, plus the batch's
    3 row gathers forward and 3 scatter-adds backward (``batch x d`` floats read and written each)."""
    products = 2 * layers * 2
    io = (U + I) * d * 4 * 2 + 6 * batch * d * 4 * 2 / products  # dense operands + batch rows per product
    if layout.startswith("dense"):
        half = layout != "dense"
        flops = products * 2.0 * U * I * d
        bytes_ = products * (U * I * (2 if half else 4)) + products * io / 2
        peak = peaks.get("tf32_flops" if (tf32 or half) else "fp32_flops", peaks["fp32_flops"]) * (2 if half else 1)
    else:  # CSR: values (4 B) + column index (8 B) per nnz, plus dense operands once
        flops = products * 2.0 * nnz * d
        bytes_ = products * nnz * 12 + products * io / 2
        peak = peaks["fp32_flops"]
    return {"flops": flops, "bytes": bytes_, "compute_s": flops / peak, "memory_s": bytes_ / peaks["bandwidth_Bps"],
            "floor_s": max(flops / peak, bytes_ / peaks["bandwidth_Bps"])}


def bench(args: argparse.Namespace) -> dict[str, Any]:
    device = torch.device(args.device)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    U, I, E = SCALES[args.scale]
    t0 = time.perf_counter()
    g = random_graph(U, I, E, args.seed)
    build_s = time.perf_counter() - t0
    d, L = args.dim, args.layers
    info: dict[str, Any] = {"device": args.device, "scale": args.scale, "n_users": U, "n_items": I,
                            "edges": g.num_edges, "density": g.density, "dim": d, "layers": L,
                            "graph_build_s": build_s, "torch": torch.__version__,
                            "machine": platform.processor() or platform.machine(),
                            "cpu_threads": torch.get_num_threads()}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(0)
    peaks = measure_peaks(device)
    info["peaks"] = peaks
    print(f"graph {U} x {I}, {g.num_edges} edges (density {g.density:.3f}), d={d}, L={L}, device {device}")
    print(f"measured: bandwidth {peaks['bandwidth_Bps'] / 1e9:.1f} GB/s, fp32 {peaks['fp32_flops'] / 1e12:.2f} TFLOP/s"
          + (f", tf32 {peaks['tf32_flops'] / 1e12:.1f} TFLOP/s" if "tf32_flops" in peaks else ""))

    ours = LightGCN(U, I, d, L, seed=args.seed).to(device)
    weight0 = ours.embedding.weight.detach().clone()
    edge_index = g.edge_index().to(device)
    variants: list[tuple[str, str, bool]] = [("ours_csr", "csr", False)]
    if device.type == "cuda" or g.density >= 0.05:
        variants.append(("ours_dense", "dense", False))
    if device.type == "cuda":
        variants.append(("ours_dense_tf32", "dense", True))
        # not exact (inputs rounded to 16 bits): shown for the bytes-bound floor, see the equality figures
        variants += [("ours_dense_bf16", "dense_bf16", False), ("ours_dense_fp16", "dense_fp16", False)]
    adjs: dict[str, NormalizedAdjacency] = {}
    low = {"dense_bf16": torch.bfloat16, "dense_fp16": torch.float16}
    for name, layout, _ in variants:
        if layout not in adjs:
            adjs[layout] = normalized_adjacency(g, "dense" if layout in low else layout, device,
                                                dtype=low.get(layout, torch.float32))

    pyg = pyg_pre = adj_t = None
    try:
        from torch_geometric.nn.conv.gcn_conv import gcn_norm
        from torch_geometric.nn.models import LightGCN as PygLightGCN
        from torch_geometric.utils import to_torch_csr_tensor

        pyg = PygLightGCN(U + I, d, L).to(device)
        pyg_pre = PygLightGCN(U + I, d, L, normalize=False).to(device)
        with torch.no_grad():
            pyg.embedding.weight.copy_(weight0)
            pyg_pre.embedding.weight.copy_(weight0)
        # normalised once, as LGConv would in every layer (no self loops), then kept as sparse CSR adj_t
        ei_norm, w_norm = gcn_norm(edge_index, None, U + I, add_self_loops=False)
        adj_t = to_torch_csr_tensor(ei_norm.flip(0), w_norm, size=(U + I, U + I))
    except ImportError:
        print("torch_geometric missing: PyG baselines replaced by the pure-torch scatter reference")
    w_edge = torch.from_numpy(np.concatenate([g.normalized_values()] * 2)).to(device)
    src, dst = edge_index[0], edge_index[1]
    scatter_w = torch.nn.Parameter(weight0.clone())

    # equality on the same weights (float32, full-precision matmuls)
    torch.backends.cuda.matmul.allow_tf32 = False
    with torch.no_grad():
        ref = (pyg.get_embedding(edge_index) if pyg is not None
               else scatter_embedding(weight0, src, dst, w_edge, L))
        results: dict[str, Any] = {"equality": {}}
        for name, layout, tf32 in variants:
            torch.backends.cuda.matmul.allow_tf32 = tf32
            eu, ei = ours.final_embeddings(adjs[layout])
            results["equality"][name] = float((torch.cat([eu, ei]) - ref).abs().max())
        torch.backends.cuda.matmul.allow_tf32 = False
        results["equality"]["ref_abs_max"] = float(ref.abs().max())
        if pyg_pre is not None:
            results["equality"]["pyg_prenorm"] = float((pyg_pre.get_embedding(adj_t) - ref).abs().max())
    del ref
    # gradient equality of one BPR batch (4096 triples) against the reference
    gq = torch.Generator().manual_seed(args.seed + 1)
    bu, bp, bn = (torch.randint(0, n, (4096,), generator=gq).to(device) for n in (U, I, I))

    def loss_of(out_u: torch.Tensor, out_i: torch.Tensor) -> torch.Tensor:
        u = out_u.index_select(0, bu)
        return -F.logsigmoid((u * out_i.index_select(0, bp)).sum(-1)
                             - (u * out_i.index_select(0, bn)).sum(-1)).mean()

    if pyg is not None:
        pyg.zero_grad(set_to_none=True)
        out = pyg.get_embedding(edge_index)
        loss_of(out[:U], out[U:]).backward()
        ref_grad = pyg.embedding.weight.grad.detach().clone()
        del out
    else:
        scatter_w.grad = None
        out = scatter_embedding(scatter_w, src, dst, w_edge, L)
        loss_of(out[:U], out[U:]).backward()
        ref_grad = scatter_w.grad.detach().clone()
        del out
    results["equality"]["grad_ref_abs_max"] = float(ref_grad.abs().max())
    for name, layout, tf32 in variants:
        torch.backends.cuda.matmul.allow_tf32 = tf32
        ours.zero_grad(set_to_none=True)
        loss_of(*ours.get_embedding(adjs[layout])).backward()
        results["equality"][f"grad_{name}"] = float((ours.embedding.weight.grad - ref_grad).abs().max())
    torch.backends.cuda.matmul.allow_tf32 = False
    del ref_grad

    gen = torch.Generator().manual_seed(args.seed)
    timings: dict[str, dict[str, float]] = {}
    for batch in args.batches:
        users = torch.randint(0, U, (batch,), generator=gen).to(device)
        pos = torch.randint(0, I, (batch,), generator=gen).to(device)
        neg = torch.randint(0, I, (batch,), generator=gen).to(device)
        row: dict[str, float] = {}

        def bpr(out_u: torch.Tensor, out_i: torch.Tensor) -> torch.Tensor:
            # the same batch loss for every variant (index_select: cheaper backward than advanced indexing)
            u = out_u.index_select(0, users)
            s_pos = (u * out_i.index_select(0, pos)).sum(-1)
            return -F.logsigmoid(s_pos - (u * out_i.index_select(0, neg)).sum(-1)).mean()

        for name, layout, tf32 in variants:
            adj = adjs[layout]

            def step() -> None:
                ours.zero_grad(set_to_none=True)
                bpr(*ours.get_embedding(adj)).backward()

            torch.backends.cuda.matmul.allow_tf32 = tf32
            row[name] = timeit(step, device, args.repeats)
            if device.type == "cuda" and layout != "csr":
                # the same step captured once as a CUDA graph: replay skips ~60 kernel launches from Python
                try:
                    row[name + "_graph"] = timeit(cuda_graphed(ours, adj, bpr), device, args.repeats)
                except RuntimeError as exc:  # capture unsupported by some op: report, keep the eager figure
                    print(f"CUDA graph capture of {name} failed: {exc}")
                ours.zero_grad(set_to_none=True)
            torch.backends.cuda.matmul.allow_tf32 = False

        if pyg is not None and not args.skip_pyg:
            def pyg_step() -> None:
                pyg.zero_grad(set_to_none=True)
                out = pyg.get_embedding(edge_index)
                bpr(out[:U], out[U:]).backward()

            def pyg_prenorm_step() -> None:
                pyg_pre.zero_grad(set_to_none=True)
                out = pyg_pre.get_embedding(adj_t)
                bpr(out[:U], out[U:]).backward()

            row["pyg_prenorm"] = timeit(pyg_prenorm_step, device, args.repeats)
            row["pyg"] = timeit(pyg_step, device, args.pyg_repeats, warmup=1)
        if args.scatter or pyg is None:
            def scatter_step() -> None:
                scatter_w.grad = None
                out = scatter_embedding(scatter_w, src, dst, w_edge, L)
                bpr(out[:U], out[U:]).backward()

            row["scatter"] = timeit(scatter_step, device, args.pyg_repeats, warmup=1)
        timings[str(batch)] = row
    results["seconds_per_step"] = timings
    results["floor"] = {f"{name}@{b}": floor_s(layout, U, I, g.num_edges, d, L, peaks, tf32, b)
                        for name, layout, tf32 in variants for b in args.batches}

    baseline = "pyg_prenorm" if pyg is not None and not args.skip_pyg else "scatter"
    second = "pyg" if baseline == "pyg_prenorm" else None
    print(f"\nseconds per step (forward + backward), headline baseline = {baseline}"
          + (f", second row = {second} (re-normalises every layer of every step)" if second else ""))
    header = f"{'batch':>7} " + " ".join(f"{n:>16}" for n in next(iter(timings.values())))
    print(header)
    for batch, row in timings.items():
        print(f"{batch:>7} " + " ".join(f"{v * 1e3:>13.2f} ms" for v in row.values()))
        for name in row:
            if name.startswith("ours") and baseline in row:
                print(f"        {name}: {row[baseline] / row[name]:.1f}x faster than {baseline}"
                      + (f" ({row[second] / row[name]:.1f}x faster than {second})" if second in row else ""))
    results["speedup"] = {f"{name}@{b}": {base: row[base] / row[name] for base in (baseline, second) if base in row}
                          for b, row in timings.items() for name in row if name.startswith("ours")}
    for key, f in results["floor"].items():
        name, b = key.split("@")
        got = min(timings[b][name], timings[b].get(name + "_graph", float("inf")))
        f["measured_over_floor"] = got / f["floor_s"]
        print(f"floor {key}: {f['floor_s'] * 1e3:.3f} ms (compute {f['compute_s'] * 1e3:.3f} ms, "
              f"memory {f['memory_s'] * 1e3:.3f} ms); measured / floor = {got / f['floor_s']:.1f}")
    print("max |ours - reference| on the same weights:", {k: f"{v:.2e}" for k, v in results["equality"].items()})
    return {**info, **results, "baseline": baseline, "second_baseline": second}


def cuda_graphed(model: LightGCN, adj: NormalizedAdjacency,
                 loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> Callable[[], None]:
    """Capture forward + backward of ``loss_fn(*model.get_embedding(adj))`` as a CUDA graph; returns its replay.

    Whole-step capture as in PyTorch's CUDA-graph docs: warm up on a side stream, drop the grads, capture; each
    replay recomputes the loss and writes the gradient into the same (graph-owned) ``.grad`` tensor.
    """
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            model.zero_grad(set_to_none=True)
            loss_fn(*model.get_embedding(adj)).backward()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    model.zero_grad(set_to_none=True)
    with torch.cuda.graph(graph):
        loss_fn(*model.get_embedding(adj)).backward()
    return graph.replay


def pipeline_time(seed: int) -> dict[str, float]:
    """Wall time of simulate(demo) + preprocess (local) + train-retrieval (Ray Train local mode, default config)."""
    os.environ.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{tempfile.mkdtemp()}/mlflow.db")
    from graphrec_ray.config import load_config
    from graphrec_ray.layout import RunLayout
    from graphrec_ray.preprocess.config import PreprocessConfig
    from graphrec_ray.preprocess.stage import preprocess_local
    from graphrec_ray.retrieval.config import RetrievalConfig
    from graphrec_ray.sources.simulator import SimulatorConfig, simulate
    from jobs import train_retrieval

    root = Path(tempfile.mkdtemp(prefix="graphrec-bench-"))
    t0 = time.perf_counter()
    simulate(SimulatorConfig(preset="demo", seed=seed), root / "data", progress=False)
    t1 = time.perf_counter()
    preprocess_local(PreprocessConfig(data_dir=str(root / "data")), RunLayout(root / "run").preprocess)
    t2 = time.perf_counter()
    cfg = load_config(RetrievalConfig, None, ["trainer.num_workers=0"])
    metrics = train_retrieval.run(cfg, root / "run")
    t3 = time.perf_counter()
    out = {"simulate_s": t1 - t0, "preprocess_s": t2 - t1, "train_retrieval_s": t3 - t2, "total_s": t3 - t0}
    for name, m in metrics["models"].items():
        out[f"{name}_train_s"] = m["train_s"]
        out[f"{name}_steps"] = float(m.get("steps_run", 0))
        out[f"{name}_refit_steps"] = float(m.get("refit_steps", 0))
    print("demo pipeline (CPU, local mode, default config):", {k: round(v, 1) for k, v in out.items()})
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--scale", default="small", choices=sorted(SCALES))
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--layers", type=int, default=3)
    p.add_argument("--batches", type=int, nargs="+", default=[4096, 65536])
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--pyg-repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = default)")
    p.add_argument("--skip-pyg", action="store_true")
    p.add_argument("--scatter", action="store_true", help="also time the pure-torch scatter reference")
    p.add_argument("--pipeline", action="store_true", help="also time the demo-scale pipeline on CPU")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="outputs/lightgcn_benchmark.json")
    args = p.parse_args(argv)
    doc = bench(args)
    if args.pipeline:
        doc["pipeline_demo_cpu"] = pipeline_time(args.seed)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    existing = json.loads(out.read_text()) if out.is_file() else {}
    existing[f"{args.device}_{args.scale}"] = doc
    out.write_text(json.dumps(existing, indent=2, sort_keys=True) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
