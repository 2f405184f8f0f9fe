"""Retrieval quality on every simulator preset: the pipeline's default retrieval vs an independent PyG reference.

For each preset (``demo`` and the robustness presets of issue 10) the script simulates a log, preprocesses it
(default split), and trains side by side on the same split:

* ``pipeline``: the retrieval stage's default model (``configs/retrieval.yaml``: ``lightgcn_ips`` with the
  popularity prior column it exports) with its select-then-refit schedule
  (:func:`graphrec_ray.retrieval.fit.fit_in_process`, the loop of the Ray Train job);
* ``pipeline_old``: the same model under the schedule before issue 10 (epochs of per-worker batches, early
  stopping on IPS-weighted validation NDCG@10 with patience 6, best epoch exported, no refit, no popularity
  prior), for before/after;
* ``pyg_ref``: an independent plain ``torch_geometric.nn.LightGCN`` (dim 64, 3 layers, Adam lr 1e-2, PyG's
  ``recommendation_loss`` with uniform negatives, early stop on validation Recall@20 with patience 5 epochs, then a
  refit on training + validation positives for the chosen epochs), positives ``watch_ratio >= --ref-threshold``
  (default: the pipeline's ``positive_threshold``, so only the training differs);
* ``mf``: the pipeline's MF-BPR with its default schedule; ``popularity``: most-popular;
* ``engagement``: the pipeline's item prior alone, not personalised (each item's shrunk mean ``log1p`` watch ratio
  over its training + validation views, :func:`graphrec_ray.retrieval.popularity_prior.engagement`): what the
  pipeline's personal part adds on top of the prior it exports is ``pipeline - engagement``;
* ``oracle`` / ``item_oracle`` (simulator data only, not baselines but ceilings): every user's items ranked by the
  simulator's true ``P(watch_ratio >= 2.0)``, and by its mean over all users (the best non-personalised list), so
  the table shows how much of what is learnable the models learn.

Metrics: the unbiased protocol (``small_matrix`` users x items; relevance ``>= 0.5`` and ``>= 2.0``: the
authors' ``> 2.0`` is empty on ``rating_like``, whose top level is 2.0, and equal to it on continuous ratios) and, on
simulator data, the true-preference protocol, Recall@20 / NDCG@20 per user; 95 % bootstrap intervals over users
and paired differences (``graphrec_ray.evaluation.stats``). Goal (issue 10): pipeline >= 0.95x the reference's
Recall@20 on every preset and never below most-popular. Nothing here is tuned on these numbers.

Usage::

    python benchmarks/retrieval_quality.py                       # all presets, demo size
    python benchmarks/retrieval_quality.py --presets demo sparse --seeds 0 1 2

Writes ``outputs/retrieval_quality.csv`` (one row per preset, model, protocol), ``.json`` (with the pairs) and
``.md`` (the README's table; ``--table-only`` rewrites it from the csv/json).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from graphrec_ray.config import load_config  # noqa: E402
from graphrec_ray.evaluation.stats import bootstrap_mean, bootstrap_ratio, paired_difference  # noqa: E402
from graphrec_ray.interactions import Interactions  # noqa: E402
from graphrec_ray.retrieval.base import EmbeddingRecommender  # noqa: E402
from graphrec_ray.retrieval.config import RetrievalConfig  # noqa: E402
from graphrec_ray.retrieval.evaluate import per_user_true, per_user_unbiased  # noqa: E402
from graphrec_ray.retrieval.fit import fit_in_process  # noqa: E402
from graphrec_ray.retrieval.popularity import MostPopular  # noqa: E402
from graphrec_ray.retrieval.popularity_prior import engagement, export_tables  # noqa: E402

PRESETS = ("demo", "bursty", "popularity_strong", "popularity_weak", "rating_like", "sparse")
PROTOCOLS = (("unbiased_ge0.5", ">=", 0.5), ("unbiased_ge2.0", ">=", 2.0), ("true", "", 0.5))
#: the defaults before issue 10, in today's terms (2 workers x 1024 = global 2048, epochs 40, ips_ndcg@10 on
#: validation positives at the training threshold 2.0, patience 6, best epoch exported, no refit)
OLD_SCHEDULE = ["epochs=40", "min_steps=0", "max_evals=1000", "refit=false", "val_metric=ips_ndcg@10",
                "trainer.early_stopping_patience=6", "positive_threshold=2.0", "val_relevance=null",
                "popularity_prior=0", "popularity_prior_n0=0"]


def prepare(preset: str, root: Path, seed: int, scale: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    """Simulate ``preset`` and preprocess it; returns (``load_inputs`` dict, ground truth)."""
    from graphrec_ray.layout import RunLayout
    from graphrec_ray.preprocess.config import PreprocessConfig
    from graphrec_ray.preprocess.stage import preprocess_local
    from graphrec_ray.retrieval.stage import load_inputs
    from graphrec_ray.sources.simulator import SimulatorConfig, simulate
    from graphrec_ray.sources.simulator.ground_truth import GroundTruth

    data = root / preset / "data"
    simulate(SimulatorConfig(preset=preset, seed=seed, **scale), data, progress=False)
    layout = RunLayout(root / preset / "run")
    preprocess_local(PreprocessConfig(data_dir=str(data)), layout.preprocess)
    return load_inputs(layout.preprocess), GroundTruth.load(data)


def pyg_reference(train: Interactions, val: Interactions, threshold: float, seed: int, dim: int = 64,
                  layers: int = 3, lr: float = 1e-2, batch: int = 2048, patience: int = 5,
                  max_epochs: int = 150) -> tuple[np.ndarray, np.ndarray, Interactions, int]:
    """Plain PyG LightGCN: early stop on val Recall@20, refit on train + val; returns (U, I emb, positives, epochs)."""
    from torch_geometric.nn import LightGCN as PygLightGCN

    from graphrec_ray.evaluation.protocols import temporal_protocol

    U, I = train.n_users, train.n_items

    def fit(pos: Interactions, epochs: int, val_split: Interactions | None) -> tuple[np.ndarray, np.ndarray, int]:
        torch.manual_seed(seed)
        model = PygLightGCN(U + I, dim, layers)
        u_t = torch.from_numpy(pos.user_idx)
        i_t = torch.from_numpy(pos.item_idx) + U
        edge_index = torch.stack([torch.cat([u_t, i_t]), torch.cat([i_t, u_t])])
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        gen = torch.Generator().manual_seed(seed)
        best, best_ep, bad, best_emb = -1.0, 0, 0, None
        for ep in range(1, epochs + 1):
            perm = torch.randperm(len(pos), generator=gen)
            for start in range(0, len(pos), batch):
                idx = perm[start:start + batch]
                neg = torch.randint(U, U + I, (idx.numel(),), generator=gen)
                emb = model.get_embedding(edge_index)
                eu = emb[u_t[idx]]
                pos_rank = (eu * emb[i_t[idx]]).sum(-1)
                neg_rank = (eu * emb[neg]).sum(-1)
                nodes = torch.cat([u_t[idx], i_t[idx], neg]).unique()
                loss = model.recommendation_loss(pos_rank, neg_rank, node_id=nodes, lambda_reg=1e-4)
                opt.zero_grad()
                loss.backward()
                opt.step()
            if val_split is None:
                continue
            with torch.no_grad():
                emb = model.get_embedding(edge_index).numpy()
            r = temporal_protocol(EmbeddingRecommender(emb[:U], emb[U:]).score, val_split, pos.matrix(), threshold,
                                  recall_ks=(20,), ndcg_ks=(20,), ci=False)["recall@20"]
            if r > best + 1e-4:
                best, best_ep, bad, best_emb = r, ep, 0, emb
            else:
                bad += 1
                if bad >= patience:
                    break
        if val_split is None:
            with torch.no_grad():
                best_emb = model.get_embedding(edge_index).numpy()
            best_ep = epochs
        return best_emb[:U], best_emb[U:], best_ep

    train_pos = train.relevant(">=", threshold)
    _, _, epochs = fit(train_pos, max_epochs, val)
    refit_pos = train.concat(val).relevant(">=", threshold)
    u, i, _ = fit(refit_pos, epochs, None)
    return u, i, refit_pos, epochs


def per_user(score_fn: Any, seen: Interactions, inputs: dict[str, Any], gt: Any) -> dict[str, np.ndarray]:
    """``{protocol/metric: (n,)}`` per-user values for every protocol in :data:`PROTOCOLS`."""
    out: dict[str, np.ndarray] = {}
    for name, op, thr in PROTOCOLS:
        if name == "true":
            users = np.unique(inputs["eval_small"].user_idx)
            p = gt.p_click(inputs["user_map"].to_raw(users), inputs["item_map"].to_raw(np.arange(inputs["n_items"])))
            m = per_user_true(score_fn, users, p, seen, thr)
        else:
            m = per_user_unbiased(score_fn, inputs["eval_small"], seen, op, thr)
        out.update({f"{name}/{k}": v for k, v in m.items() if k != "users"})
    return out


def truth_scores(gt: Any, inputs: dict[str, Any], personal: bool, threshold: float = 2.0) -> Any:
    """``(B,) -> (B, I)`` the simulator's true ``P(watch_ratio >= threshold)`` (``personal``) or its mean over all
    users (the same row for everyone)."""
    items = inputs["item_map"].to_raw(np.arange(inputs["n_items"]))
    if not personal:
        mean = gt.p_watch_at_least(inputs["user_map"].to_raw(np.arange(inputs["n_users"])), items, threshold).mean(0)
        return lambda users: np.broadcast_to(mean, (np.asarray(users).size, mean.size)).copy()
    return lambda users: gt.p_watch_at_least(inputs["user_map"].to_raw(np.asarray(users)), items, threshold)


def run_preset(preset: str, root: Path, seeds: list[int], cfg: RetrievalConfig, ref_threshold: float,
               scale: dict[str, Any], models: list[str]) -> dict[str, Any]:
    """All models on one preset, every seed; returns per-model per-user arrays ``(S, n)`` and timings."""
    t0 = time.perf_counter()
    inputs, gt = prepare(preset, root, seeds[0], scale)
    prep_s = time.perf_counter() - t0
    per_model: dict[str, dict[str, list[np.ndarray]]] = {m: {} for m in models}
    info: dict[str, dict[str, float]] = {m: {"train_s": 0.0} for m in models}
    old_cfg = load_config(RetrievalConfig, None, OLD_SCHEDULE)
    old_cfg = replace(cfg, **{k: getattr(old_cfg, k) for k in ("epochs", "min_steps", "max_evals", "refit",
                                                                "val_metric", "positive_threshold", "val_relevance",
                                                                "popularity_prior", "popularity_prior_n0")},
                      trainer=replace(cfg.trainer, early_stopping_patience=6))
    for seed in seeds:
        for name in models:
            t = time.perf_counter()
            c = replace(cfg, seed=seed)
            if name == "popularity":
                seen = inputs["train"].concat(inputs["val"]).relevant(">=", cfg.positive_threshold)
                score = MostPopular().fit(seen).score
            elif name in ("oracle", "item_oracle"):
                seen = inputs["train"].concat(inputs["val"]).relevant(">=", cfg.positive_threshold)
                score = truth_scores(gt, inputs, personal=name == "oracle")
            elif name == "engagement":
                views = inputs["train"].concat(inputs["val"])
                seen = views.relevant(">=", cfg.positive_threshold)
                z = engagement(views, cfg.popularity_prior_shrinkage)
                score = EmbeddingRecommender(np.ones((views.n_users, 1), np.float32), z[:, None]).score
            elif name == "pyg_ref":
                u, i, seen, ep = pyg_reference(inputs["train"], inputs["val"], ref_threshold, seed)
                score = EmbeddingRecommender(u, i).score
                info[name]["epochs"] = ep
            else:
                model = cfg.model if name.startswith("pipeline") else name
                c = replace(old_cfg, seed=seed) if name == "pipeline_old" else c
                st = fit_in_process(model, c, inputs["train"], inputs["val"])
                # the tables the stage exports (IPS models: with the popularity prior column)
                user, item = export_tables(model, c, st["user"], st["item"], st["refit_positives"],
                                           inputs["train"].concat(inputs["val"]))
                seen, score = st["refit_positives"], EmbeddingRecommender(user, item).score
                info[name].update(selected_step=st["selected_step"], budget_steps=st["budget_steps"])
            for key, v in per_user(score, seen, inputs, gt).items():
                per_model[name].setdefault(key, []).append(v)
            info[name]["train_s"] += time.perf_counter() - t
    arrays = {m: {k: np.stack(v) for k, v in d.items()} for m, d in per_model.items()}
    return {"arrays": arrays, "info": info, "prepare_s": prep_s,
            "n_train_pos": len(inputs["train"].relevant(">=", cfg.positive_threshold))}


def summarise(preset: str, res: dict[str, Any], seed: int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """CSV rows (per model and metric, with intervals) and the paired comparisons of ``pipeline``."""
    rows: list[dict[str, Any]] = []
    arrays = res["arrays"]
    for model, d in arrays.items():
        for key, v in d.items():
            iv = bootstrap_mean(v, seed=seed)
            rows.append({"preset": preset, "model": model, "metric": key, "estimate": iv.estimate,
                         "ci_low": iv.low, "ci_high": iv.high, "n_users": iv.n, **res["info"][model]})
    pairs: dict[str, Any] = {}
    if "pipeline" in arrays:
        for other in arrays:
            if other == "pipeline":
                continue
            for key, v in arrays["pipeline"].items():
                diff = paired_difference(v, arrays[other][key], seed=seed)
                entry = {"diff": diff.estimate, "ci_low": diff.low, "ci_high": diff.high,
                         "verdict": diff.verdict()}
                a, b = np.nanmean(v, axis=0), np.nanmean(arrays[other][key], axis=0)
                ok = np.isfinite(a) & np.isfinite(b)
                ratio = bootstrap_ratio(a[ok], b[ok], seed=seed)
                entry.update(ratio=ratio.estimate, ratio_low=ratio.low, ratio_high=ratio.high)
                pairs[f"pipeline-{other}/{key}"] = entry
    return rows, pairs


def write_outputs(out: Path, rows: list[dict[str, Any]], doc: dict[str, Any], keys: list[str]) -> None:
    """``out``.csv (``rows``, columns ``keys``) and ``out``.json (``doc``), the benchmark's figures."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out.with_suffix(".csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)
    out.with_suffix(".json").write_text(json.dumps(doc, indent=2, sort_keys=True, default=float) + "\n")


def markdown_table(rows: list[dict[str, Any]], doc: dict[str, Any], key: str = "unbiased_ge2.0/recall@20") -> str:
    """The README's table: per preset, every model's ``key`` and ``pipeline``'s paired differences (with verdicts)."""
    est = {(r["preset"], r["model"]): r["estimate"] for r in rows if r["metric"] == key}
    models = [m for m in ("pipeline", "pipeline_old", "pyg_ref", "mf", "popularity", "engagement", "item_oracle",
                          "oracle")
              if any(k[1] == m for k in est)]
    others = [m for m in models if m != "pipeline"]
    ratio = "pyg_ref" in others
    head = ["preset", *models, *(["pipeline / pyg_ref"] if ratio else []), *(f"pipeline − {m}" for m in others)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for preset, entry in doc["presets"].items():
        cells = [preset, *(f"{float(est[(preset, m)]):.3f}" for m in models)]
        if ratio:
            e = entry["pairs"][f"pipeline-pyg_ref/{key}"]
            cells.append(f"{e['ratio']:.2f} [{e['ratio_low']:.2f}, {e['ratio_high']:.2f}]")
        for m in others:
            e = entry["pairs"].get(f"pipeline-{m}/{key}")
            cells.append("" if e is None else
                         f"{e['diff']:+.4f} [{e['ci_low']:+.4f}, {e['ci_high']:+.4f}] {e['verdict']}")
        lines.append("| " + " | ".join(cells) + " |")
    return (f"Recall@20 ({key.split('/')[0]}), seeds {doc['seeds']}, {doc['wall_s']:.0f} s\n\n" + "\n".join(lines)
            + "\n")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--presets", nargs="+", default=list(PRESETS))
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--models", nargs="+",
                   default=["pipeline", "pipeline_old", "pyg_ref", "mf", "popularity", "engagement", "item_oracle",
                            "oracle"])
    p.add_argument("--ref-threshold", type=float, default=None,
                   help="positive watch ratio of the PyG reference (default: the pipeline's positive_threshold)")
    p.add_argument("--config", default="configs/retrieval.yaml")
    p.add_argument("--n-users", type=int, default=None, help="override the preset's user count (scale)")
    p.add_argument("--n-items", type=int, default=None)
    p.add_argument("overrides", nargs="*", help="retrieval config overrides key=value")
    p.add_argument("--out", default="outputs/retrieval_quality")
    p.add_argument("--table-only", action="store_true", help="rewrite <out>.md from <out>.csv/.json, run nothing")
    args = p.parse_args(argv)
    if args.table_only:
        out = Path(args.out)
        with open(out.with_suffix(".csv"), newline="") as f:
            saved = list(csv.DictReader(f))
        out.with_suffix(".md").write_text(markdown_table(saved, json.loads(out.with_suffix(".json").read_text())))
        print(out.with_suffix(".md").read_text())
        return 0
    torch.set_num_threads(1)
    cfg = load_config(RetrievalConfig, args.config, args.overrides)
    if args.ref_threshold is None:
        args.ref_threshold = cfg.positive_threshold
    scale = {k: v for k, v in (("n_users", args.n_users), ("n_items", args.n_items)) if v is not None}
    t_all = time.perf_counter()
    rows: list[dict[str, Any]] = []
    doc: dict[str, Any] = {"config": args.config, "overrides": args.overrides, "seeds": args.seeds,
                           "ref_threshold": args.ref_threshold, "presets": {}}
    with tempfile.TemporaryDirectory(prefix="graphrec-rq-") as tmp:
        for preset in args.presets:
            t = time.perf_counter()
            res = run_preset(preset, Path(tmp), args.seeds, cfg, args.ref_threshold, scale, args.models)
            r, pairs = summarise(preset, res, args.seeds[0])
            rows += r
            doc["presets"][preset] = {"pairs": pairs, "info": res["info"], "prepare_s": res["prepare_s"],
                                      "n_train_pos": res["n_train_pos"], "wall_s": time.perf_counter() - t}
            print(f"\n== {preset} ({time.perf_counter() - t:.0f} s, {res['n_train_pos']} training positives)")
            for row in r:
                if row["metric"].endswith("recall@20"):
                    print(f"  {row['model']:>13} {row['metric']:<26} {row['estimate']:.4f} "
                          f"[{row['ci_low']:.4f}, {row['ci_high']:.4f}]")
            for key, e in pairs.items():
                if key.endswith("recall@20"):
                    print(f"  {key:<45} {e['diff']:+.4f} [{e['ci_low']:+.4f}, {e['ci_high']:+.4f}] {e['verdict']}"
                          f"  ratio {e['ratio']:.2f} [{e['ratio_low']:.2f}, {e['ratio_high']:.2f}]")
    doc["wall_s"] = time.perf_counter() - t_all
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".md").write_text(markdown_table(rows, doc))
    write_outputs(out, rows, doc, sorted({k for r in rows for k in r},
                                         key=lambda k: (k not in ("preset", "model", "metric"), k)))
    print(f"\nwhole sweep {doc['wall_s']:.0f} s; wrote {out}.csv / .json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
