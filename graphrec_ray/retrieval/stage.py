"""The retrieval stage: select-then-refit every model, evaluate every protocol, write ``run_dir/retrieval/``.

One entry, :func:`run`, that a unit test calls without Ray: how each embedding model is fitted is injected
(``fit_model``; default :func:`fit_local`, in this process), so ``jobs/train_retrieval.py`` only adds Ray Train
(:func:`fit_one` inside each DDP worker, with checkpoints) and MLflow (``on_model``) around it.

Outputs (``docs/ARCHITECTURE.md``): ``user_embeddings.npy`` / ``item_embeddings.npy`` of ``cfg.model`` (the refit),
``metrics.json`` (every model, every protocol, the selected and refit steps), ``per_user/seed=<seed>.npz`` (per-user
values for paired comparisons over seeds) and ``manifest.json`` with ``embedding_version`` and the Tune search's
choice when one was applied (``search.json``, written by ``graphrec tune-retrieval``).
"""

from __future__ import annotations

import hashlib
import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

from graphrec_ray.config import config_hash
from graphrec_ray.errors import DataError
from graphrec_ray.ids import IdMap
from graphrec_ray.interactions import Interactions, load_interactions
from graphrec_ray.layout import RunLayout
from graphrec_ray.manifest import read_manifest, write_manifest
from graphrec_ray.retrieval.base import EmbeddingRecommender
from graphrec_ray.retrieval.config import RetrievalConfig

#: ``(name, cfg, layout, fixed_steps) -> final state`` of :func:`graphrec_ray.retrieval.fit.select_then_refit`
#: (``user``, ``item``, ``history``, ``selected_step``, ``budget_steps``, ``refit_steps``, optional
#: ``checkpoint_path``)
FitModel = Callable[[str, RetrievalConfig, RunLayout, "int | None"], dict[str, Any]]
#: ``(name, metrics, state or None for popularity) -> None``, called once per model after it is evaluated
OnModel = Callable[[str, dict[str, float], "dict[str, Any] | None"], None]


# ---------------------------------------------------------------------------------------------- inputs
def load_inputs(preprocess_dir: str | Path) -> dict[str, Any]:
    """Id maps, their sizes and the four splits from ``run_dir/preprocess``.

    Returns:
        ``{"n_users", "n_items", "user_map", "item_map", "train", "val", "test", "eval_small"}`` (splits as
        :class:`~graphrec_ray.interactions.Interactions`).
    """
    layout = RunLayout(Path(preprocess_dir).parent)
    if not layout.user_map.is_file() or not layout.item_map.is_file():
        raise DataError(f"no preprocessed data in {layout.preprocess} (run `graphrec preprocess` first)")
    users, items = IdMap.load(layout.user_map), IdMap.load(layout.item_map)
    U, I = len(users), len(items)
    out: dict[str, Any] = {"n_users": U, "n_items": I, "user_map": users, "item_map": items}
    for split in ("train", "val", "test", "eval_small"):
        out[split] = load_interactions(layout.split(split), U, I)
    return out


def item_weights(cfg: RetrievalConfig, exposures: Interactions, positives: Interactions,
                 layout: RunLayout) -> np.ndarray:
    """``(I,)`` IPS weights (:func:`graphrec_ray.retrieval.build.build_item_weights`) with the run's propensities."""
    from graphrec_ray.retrieval.build import build_item_weights

    return build_item_weights(cfg, exposures, positives, layout.item_propensity)


def resume_key(cfg: RetrievalConfig) -> str:
    """Hash of the fields that define a training run; the step budget (``epochs``, ``max_steps``), baselines,
    evaluation and Ray resources are left out, so a run started again with a longer budget or other workers resumes
    from its checkpoint (the global batch, hence every optimiser step, does not depend on the worker count)."""
    from graphrec_ray.training import TrainerConfig

    t = cfg.trainer
    core = replace(cfg, epochs=1, max_steps=0, max_evals=1, baselines=(), baselines_max_positives=0, concurrent_fits=1,
                   model="lightgcn", eval_batch_size=1,
                   experiment="", tracking_uri=None, torch_threads=1,
                   trainer=TrainerConfig(early_stopping_patience=t.early_stopping_patience, min_delta=t.min_delta))
    return config_hash(core)


# ----------------------------------------------------------------------------------------------- fitting
def fit_one(name: str, cfg: RetrievalConfig, inputs: dict[str, Any], layout: RunLayout,
            fixed_steps: int | None = None, state: dict[str, Any] | None = None, on_point: Any = None,
            progress: bool = False, device: Any = "cpu", rank: int = 0, world: int = 1,
            wrap: Callable[[Any], Any] | None = None) -> dict[str, Any]:
    """Select-then-refit embedding model ``name`` (:func:`graphrec_ray.retrieval.fit.fit_select_refit`) with the
    stage's IPS weights (from every model, so validation reports ``ips_*`` metrics for all), in-process
    (:func:`fit_local`) or inside every Ray Train worker (``jobs/train_retrieval.py`` passes ``rank``/``world``,
    ``wrap`` = DDP ``prepare_model``, a resumed ``state`` and an ``on_point`` that checkpoints).

    Args:
        inputs: :func:`load_inputs`; positives use ``cfg.positive_threshold``, IPS weights the run's propensities
            (selection: train exposures; refit: train + val).
        fixed_steps: skip selection and refit for this many steps (the Tune search's choice).
        device: torch device of the model and adjacency.
    """
    from graphrec_ray.retrieval.fit import fit_select_refit

    def weights(exposures: Interactions, positives: Interactions) -> np.ndarray:
        return item_weights(cfg, exposures, positives, layout)

    return fit_select_refit(name, cfg, inputs["train"], inputs["val"], weights, fixed_steps, state, on_point,
                            progress, device, rank, world, wrap)


def fit_local(name: str, cfg: RetrievalConfig, layout: RunLayout, fixed_steps: int | None = None) -> dict[str, Any]:
    """The default :data:`FitModel`: :func:`fit_one` in this process (no Ray, no checkpoints)."""
    return fit_one(name, cfg, load_inputs(layout.preprocess), layout, fixed_steps)


# ----------------------------------------------------------------------------------------------- search


def load_search(layout: RunLayout) -> dict[str, Any] | None:
    """``run_dir/retrieval/search.json`` written by ``graphrec tune-retrieval``, or None."""
    path = layout.search
    return json.loads(path.read_text()) if path.is_file() else None


def apply_search(cfg: RetrievalConfig, search: dict[str, Any] | None) -> RetrievalConfig:
    """``cfg`` with the searched hyperparameters (``search["params"]``) when ``cfg.use_search``."""
    from graphrec_ray.retrieval.fit import with_params

    if search is None or not cfg.use_search:
        return cfg
    return with_params(cfg, search["params"])


def load_ground_truth(layout: RunLayout) -> Any | None:
    """The simulator's ground truth when the preprocessed data came from the simulator, else None."""
    try:
        data_dir = read_manifest(layout.preprocess).get("data_dir")
    except FileNotFoundError:
        return None
    if not data_dir or not (Path(data_dir) / "ground_truth").is_dir():
        return None
    from graphrec_ray.sources.simulator.ground_truth import GroundTruth

    return GroundTruth.load(data_dir)


# --------------------------------------------------------------------------------------------------- run
def baseline_plan(cfg: RetrievalConfig, n_positives: int) -> tuple[list[str], list[str]]:
    """``(models to fit, primary first; embedding baselines skipped)`` for ``n_positives`` training positives.

    Every embedding baseline costs about as much as the primary model, so above ``cfg.baselines_max_positives``
    (when > 0) only ``popularity`` is kept beside the primary: at the full KuaiRec scale on a 2-core machine the
    two embedding baselines would triple retrieval's time (issue 14). ``retrieval.baselines_max_positives=0``
    trains them all at any size.
    """
    wanted = [b for b in cfg.baselines if b != cfg.model]
    large = 0 < cfg.baselines_max_positives < n_positives
    skipped = [b for b in wanted if large and b != "popularity"]
    return [cfg.model] + [b for b in wanted if b not in skipped], skipped


def run(cfg: RetrievalConfig, layout: RunLayout, fit_model: FitModel | None = None,
        on_model: OnModel | None = None, concurrent: int = 1) -> dict[str, Any]:
    """Fit ``cfg.model`` and ``cfg.baselines``, evaluate all, write ``layout.retrieval``; returns the metrics.

    When ``run_dir/retrieval/search.json`` exists (``graphrec tune-retrieval``) and ``cfg.use_search``, its
    hyperparameters replace ``cfg``'s and the searched model is refit for the searched number of steps without a
    second selection.

    Args:
        cfg: the stage config.
        layout: the run directory (reads ``preprocess/``, writes ``retrieval/``).
        fit_model: how an embedding model is fitted (default :func:`fit_local`; the job passes Ray Train's).
        on_model: called with each model's name, metrics and final state (None for popularity) once evaluated.
        concurrent: embedding models fitted at the same time (threads calling ``fit_model``; default 1 = one after
            another). The job passes how many Ray Train worker groups the cluster holds at once, so on a cluster
            the baselines train beside the primary instead of after it; results and their order do not change.

    Returns:
        the content of ``metrics.json`` (``{"models": {name: {metric: value}}, "primary", "search"}``) plus
        ``"embedding_version"``.
    """
    from graphrec_ray.evaluation.compare import save_per_user
    from graphrec_ray.retrieval.build import training_positives
    from graphrec_ray.retrieval.evaluate import evaluate
    from graphrec_ray.retrieval.popularity import MostPopular
    from graphrec_ray.retrieval.popularity_prior import export_tables

    fit_model = fit_model or fit_local
    inputs = load_inputs(layout.preprocess)
    layout.retrieval.mkdir(parents=True, exist_ok=True)
    search = load_search(layout) if cfg.use_search else None
    cfg = apply_search(cfg, search)
    positives = training_positives(cfg, inputs["train"])
    all_rows = inputs["train"].concat(inputs["val"])
    refit_pos = training_positives(cfg, all_rows) if cfg.refit else positives
    refit_splits = ("train", "val") if cfg.refit else ("train",)
    weights = item_weights(cfg, inputs["train"], positives, layout)
    gt = load_ground_truth(layout)
    names, skipped = baseline_plan(cfg, len(positives))
    per_user: dict[str, dict[str, np.ndarray]] = {}
    metrics: dict[str, Any] = {"models": {}, "primary": cfg.model,
                               "search": None if search is None else {"params": search["params"],
                                                                     "steps": search["steps"],
                                                                     "model": search["model"]}}
    if skipped:
        metrics["skipped_baselines"] = skipped

    def fixed_steps(name: str) -> int | None:
        return int(search["steps"]) if search is not None and search["model"] == name else None

    embedding = [n for n in names if n != "popularity"]
    pool = ThreadPoolExecutor(max_workers=concurrent) if concurrent > 1 and len(embedding) > 1 else None
    started = {n: pool.submit(fit_model, n, cfg, layout, fixed_steps(n)) for n in embedding} if pool else {}
    try:
        for name in names:
            t0 = time.perf_counter()
            state: dict[str, Any] | None = None
            if name == "popularity":
                m = evaluate(MostPopular().fit(positives), cfg, inputs, ("train",), None, weights,
                             validation=True)  # validation score of the train-only fit, for reference
                m = {k: v for k, v in m.items() if k.startswith("val/")}
                m.update(evaluate(MostPopular().fit(refit_pos), cfg, inputs, refit_splits, gt, weights,
                                  per_user=per_user.setdefault(name, {})))
                info: dict[str, Any] = {}
            else:
                state = started[name].result() if name in started else fit_model(name, cfg, layout, fixed_steps(name))
                # IPS models carry the popularity prior as one more coordinate (exported and evaluated alike)
                user, item = export_tables(name, cfg, state["user"], state["item"], refit_pos,
                                           all_rows if cfg.refit else inputs["train"])
                rec = EmbeddingRecommender(user, item)
                sel = [r for r in state["history"] if r.get("phase") == 0.0]
                best = [r for r in sel if int(r["step"]) == int(state["selected_step"])]
                info = {"selected_step": int(state["selected_step"]), "budget_steps": int(state["budget_steps"]),
                        "refit_steps": int(state["refit_steps"]), "selection_points": len(sel),
                        "steps_run": int(sel[-1]["step"]) if sel else 0}
                m = {f"val/{k[4:]}": v for k, v in (best[0] if best else {}).items() if k.startswith("val_")}
                if name == cfg.model:
                    write_embeddings(layout, user, item)
                m.update(evaluate(rec, cfg, inputs, refit_splits, gt, weights, per_user=per_user.setdefault(name, {})))
            metrics["models"][name] = {**m, **info, "train_s": time.perf_counter() - t0}
            if on_model is not None:
                on_model(name, metrics["models"][name], state)
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
    # per-user values of this seed, for paired comparisons over >= 3 seeds (graphrec report)
    save_per_user(layout.per_user(cfg.seed), per_user)
    metrics["embedding_version"] = write_outputs(layout, cfg, metrics)
    return metrics


def write_embeddings(layout: RunLayout, user: np.ndarray, item: np.ndarray) -> None:
    """``(U, d)`` / ``(I, d)`` float32 tables to ``user_embeddings.npy`` / ``item_embeddings.npy``."""
    np.save(layout.user_embeddings, np.ascontiguousarray(user, dtype=np.float32))
    np.save(layout.item_embeddings, np.ascontiguousarray(item, dtype=np.float32))


def write_outputs(layout: RunLayout, cfg: RetrievalConfig, metrics: dict[str, Any]) -> str:
    """``metrics.json`` and the manifest; returns the embedding version (16 hex of both tables' SHA-256)."""
    h = hashlib.sha256()
    for p in (layout.user_embeddings, layout.item_embeddings):
        h.update(p.read_bytes())
    version = h.hexdigest()[:16]
    layout.retrieval_metrics.write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    dim = int(np.load(layout.item_embeddings, mmap_mode="r").shape[1])
    write_manifest(layout.retrieval, "retrieval", config_hash(cfg),
                   [layout.user_embeddings.name, layout.item_embeddings.name, layout.retrieval_metrics.name],
                   {"embedding_version": version, "dim": dim, "model": cfg.model,
                    "score": "inner_product", "n_users": int(np.load(layout.user_embeddings, mmap_mode="r").shape[0]),
                    "n_items": int(np.load(layout.item_embeddings, mmap_mode="r").shape[0]),
                    "selected_step": metrics["models"][cfg.model].get("selected_step"),
                    "refit_steps": metrics["models"][cfg.model].get("refit_steps"),
                    "search": metrics.get("search")})
    return version
