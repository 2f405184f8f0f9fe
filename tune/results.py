"""Ray-free half of the Pareto sweep: the trial table, front, knee, hypervolume, plot, pick and Serve config.

``tune/pareto.py`` runs the trials on Ray Tune and hands their settings and metrics here as a table with one row
per setting (columns :data:`SETTING_COLUMNS`, ``searcher``, ``trial_id`` and every objective with ``/ci_low`` and
``/ci_high``). Reference rows (``searcher`` = ``"serving"``: the weights in ``configs/serve_app.yaml``;
``"seed"``: the seed's scoring block) are evaluated the same way and shown beside the trials.

A weighted-sum grid only reaches the CONVEX part of a front (a point in a concave dent is never the maximiser of
any weighted sum); the NSGA-II search is not a weighted sum and fills those parts, which is why the summary
reports the hypervolume of each searcher's trials separately as well as of all of them.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from graphrec_ray.errors import UserError
from graphrec_ray.evaluation.pareto import DEFAULT_REFERENCE, hypervolume, knee_index, non_dominated_mask
from graphrec_ray.evaluation.policy_eval import OBJECTIVES, PolicyEvaluator, RerankSetting
from graphrec_ray.evaluation.stats import paired_difference

SETTING_COLUMNS = ("w_engagement", "w_value", "lambda_diversity", "pool_size")
REFERENCE_SEARCHERS = ("serving", "seed")
SEED_SETTING = RerankSetting(0.6, 0.4, 0.3, 10)  # the seed's scoring block (w_revenue is w_value)


def setting_of(row: pd.Series | dict[str, Any]) -> RerankSetting:
    """The :class:`RerankSetting` of a table row."""
    return RerankSetting(float(row["w_engagement"]), float(row["w_value"]), float(row["lambda_diversity"]),
                         int(row["pool_size"]))


def row_of(searcher: str, trial_id: str, setting: RerankSetting, metrics: dict[str, float]) -> dict[str, Any]:
    """One table row: searcher, trial id, the setting, and ``metrics`` (objectives with their ``/ci_*``)."""
    row: dict[str, Any] = {"searcher": searcher, "trial_id": trial_id,
                           "w_engagement": setting.w_engagement, "w_value": setting.w_value,
                           "lambda_diversity": setting.lambda_diversity, "pool_size": int(setting.pool_size)}
    for name in OBJECTIVES:
        for suffix in ("", "/ci_low", "/ci_high"):
            row[name + suffix] = float(metrics.get(name + suffix, math.nan))
    return row


def mark_front(table: pd.DataFrame, objectives: tuple[str, ...]) -> pd.DataFrame:
    """Copy of ``table`` with ``non_dominated`` (over all rows, on ``objectives``) and ``knee`` columns."""
    out = table.reset_index(drop=True).copy()
    pts = out[list(objectives)].to_numpy(dtype=np.float64)
    mask = non_dominated_mask(pts)
    out["non_dominated"] = mask
    out["knee"] = False
    if len(out):
        out.loc[knee_index(pts, mask), "knee"] = True
    return out


def summarize(table: pd.DataFrame, objectives: tuple[str, ...], reference: float = DEFAULT_REFERENCE) -> dict:
    """Hypervolume (all rows and per searcher), front size, the knee's setting and objectives."""
    pts = table[list(objectives)].to_numpy(dtype=np.float64)
    per_searcher = {s: hypervolume(g[list(objectives)].to_numpy(np.float64), reference)
                    for s, g in table.groupby("searcher") if s not in REFERENCE_SEARCHERS}
    knee = table[table["knee"]].iloc[0]
    return {
        "objectives": list(objectives),
        "hypervolume": hypervolume(pts, reference),
        "hypervolume_reference": [reference] * len(objectives) if np.isscalar(reference) else list(reference),
        "hypervolume_by_searcher": per_searcher,
        "n_settings": int(len(table)),
        "n_by_searcher": {str(k): int(v) for k, v in table["searcher"].value_counts().items()},
        "n_non_dominated": int(table["non_dominated"].sum()),
        "knee": _row_dict(knee),
    }


def _row_dict(row: pd.Series) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in row.items():
        if isinstance(v, (np.bool_, bool)):
            out[str(k)] = bool(v)
        elif isinstance(v, (np.integer,)):
            out[str(k)] = int(v)
        elif isinstance(v, (np.floating, float)):
            out[str(k)] = None if math.isnan(float(v)) else float(v)
        else:
            out[str(k)] = v
    return out


def pick(table: pd.DataFrame, spec: str) -> int:
    """Row index chosen by ``spec``: ``"knee"``, or ``"max-value-at-ctr=<x>"`` (the largest value among rows whose
    engagement estimate is at least ``x``; ties: higher engagement, then lower row index).

    Raises:
        UserError: unknown spec, or no row reaches the engagement floor.
    """
    if spec == "knee":
        return int(np.flatnonzero(table["knee"].to_numpy())[0])
    prefix = "max-value-at-ctr="
    if spec.startswith(prefix):
        try:
            floor = float(spec[len(prefix):])
        except ValueError:
            raise UserError(f"--pick {spec}: '{spec[len(prefix):]}' is not a number") from None
        ok = table.index[table["engagement"].to_numpy() >= floor]
        if len(ok) == 0:
            best = float(table["engagement"].max())
            raise UserError(f"--pick {spec}: no setting reaches engagement {floor} (the best is {best:.4f})")
        sub = table.loc[ok]
        order = np.lexsort((sub.index.to_numpy(), -sub["engagement"].to_numpy(), -sub["value"].to_numpy()))
        return int(sub.index[order[0]])
    raise UserError(f"--pick must be 'knee' or 'max-value-at-ctr=<x>', got '{spec}'")


def compare(evaluator: PolicyEvaluator, a: RerankSetting, b: RerankSetting, seed: int = 0) -> dict[str, dict]:
    """Paired per-user differences ``a - b`` of engagement, value, diversity with intervals and verdicts."""
    ra, rb = evaluator.evaluate(a), evaluator.evaluate(b)
    out: dict[str, dict] = {}
    for name in ("engagement", "value", "diversity"):
        iv = paired_difference(ra.per_user[name], rb.per_user[name], evaluator.level, evaluator.n_boot, seed)
        out[name] = {"difference": iv.estimate, "ci_low": iv.low, "ci_high": iv.high, "verdict": iv.verdict()}
    return out


# ------------------------------------------------------------------------------------------- Serve config


#: Serve deployments that take the reranking knobs as ``user_config``: the collocated app's one deployment and
#: the graph's Reranking stage.
RERANK_DEPLOYMENTS = ("Recommender", "Reranking")


def _serve_cfg(serve_yaml: str | Path | None) -> Any:
    from graphrec_ray.config import load_config
    from graphrec_ray.serving.config import ServeConfig

    return load_config(ServeConfig, serve_yaml if serve_yaml and Path(serve_yaml).is_file() else None)


def serving_setting(serve_app_yaml: str | Path, serve_yaml: str | Path | None = None) -> RerankSetting:
    """The setting served today: ``ServeConfig`` (``serve_yaml``) under any reranking ``user_config`` that the
    Serve config file ``serve_app_yaml`` sets live (a ``Recommender`` or ``Reranking`` deployment entry).

    Raises:
        UserError: unreadable Serve config file.
    """
    cfg = _serve_cfg(serve_yaml)
    dep = _rerank_deployment(_read_yaml(serve_app_yaml))
    user_config = (dep or {}).get("user_config") or {}
    merged = {"w_engagement": cfg.w_engagement, "w_value": cfg.w_value, "lambda_diversity": cfg.lambda_diversity,
              "top_n_serve": cfg.top_n_serve, **user_config}
    return RerankSetting(float(merged["w_engagement"]), float(merged["w_value"]), float(merged["lambda_diversity"]),
                         int(merged["top_n_serve"]))


def _read_yaml(path: str | Path) -> dict:
    p = Path(path)
    if not p.is_file():
        raise UserError(f"Serve config file not found: {p}")
    doc = yaml.safe_load(p.read_text())
    if not isinstance(doc, dict) or not doc.get("applications"):
        raise UserError(f"{p}: not a Serve config (needs an 'applications' list)")
    return doc


def _rerank_deployment(doc: dict) -> dict | None:
    for app in doc.get("applications") or []:
        for dep in app.get("deployments") or []:
            if dep.get("name") in RERANK_DEPLOYMENTS:
                return dep
    return None


def write_serve_config(template: str | Path, out: str | Path, setting: RerankSetting,
                       run_dir: str | Path | None = None, note: str = "", serve_yaml: str | Path | None = None) -> Path:
    """Copy the Serve config ``template`` to ``out`` with ``setting`` as the reranking deployment's ``user_config``.

    The entry is the template's ``Recommender``/``Reranking`` deployment if it has one, else a new entry named
    after ``ServeConfig.topology`` of ``serve_yaml`` (``Recommender`` for collocated, ``Reranking`` for graph).
    ``run_dir`` (made absolute) replaces the first application's ``args.run_dir``, so the weights are served with
    the model they were chosen on. ``serve deploy out`` then applies the ``user_config`` in place (no restart).

    Raises:
        UserError: ``out`` is the template itself (the checked-in config is never overwritten).
    """
    template, out = Path(template), Path(out)
    if out.resolve() == template.resolve():
        raise UserError(f"--serve-config-out must differ from the template {template} (it is never overwritten)")
    doc = _read_yaml(template)
    user_config = {**setting.user_config(), "top_n_serve": int(setting.pool_size)}
    dep = _rerank_deployment(doc)
    app = doc["applications"][0]
    if dep is None:
        topology = getattr(_serve_cfg(serve_yaml), "topology", "graph")
        dep = {"name": "Recommender" if topology == "collocated" else "Reranking"}
        app.setdefault("deployments", []).append(dep)
    dep["user_config"] = user_config
    if run_dir is not None:
        app.setdefault("args", {})["run_dir"] = str(Path(run_dir).resolve())
    out.parent.mkdir(parents=True, exist_ok=True)
    header = f"# Written by `graphrec pareto` from {template}{' (' + note + ')' if note else ''}.\n"
    header += f"# Apply in place on a running cluster: serve deploy {out}\n"
    out.write_text(header + yaml.safe_dump(doc, sort_keys=False))
    return out


# ------------------------------------------------------------------------------------------------ outputs


def plot(table: pd.DataFrame, path: str | Path, title: str = "") -> Path:
    """``pareto_curve.png``: engagement vs value (colour = diversity) and engagement vs diversity; every row, the
    non-dominated ones ringed, the knee starred, the serving and seed settings marked."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 5))
    trials = table[~table["searcher"].isin(REFERENCE_SEARCHERS)]
    front = table[table["non_dominated"]]
    for ax, y in zip(axes, ("value", "diversity")):
        other = "diversity" if y == "value" else "value"
        for searcher, marker in (("grid", "s"), ("nsga2", "o")):
            g = trials[trials["searcher"] == searcher]
            if len(g):
                sc = ax.scatter(g["engagement"], g[y], c=g[other], cmap="viridis", marker=marker, s=22,
                                alpha=0.75, label=f"{searcher} ({len(g)})")
        ax.scatter(front["engagement"], front[y], facecolors="none", edgecolors="red", s=70, linewidths=1.0,
                   label=f"non-dominated ({len(front)})")
        knee = table[table["knee"]]
        ax.scatter(knee["engagement"], knee[y], marker="*", s=260, c="gold", edgecolors="black", zorder=5,
                   label="knee")
        for searcher, marker, colour in (("serving", "X", "black"), ("seed", "P", "magenta")):
            r = table[table["searcher"] == searcher]
            if len(r):
                ax.errorbar(r["engagement"], r[y],
                            xerr=[r["engagement"] - r["engagement/ci_low"], r["engagement/ci_high"] - r["engagement"]],
                            yerr=[r[y] - r[f"{y}/ci_low"], r[f"{y}/ci_high"] - r[y]], fmt=marker, ms=11,
                            color=colour, zorder=6, label=f"{searcher} weights")
        ax.set_xlabel("engagement: true click rate of the served top-10")
        ax.set_ylabel({"value": "value: true E[log1p(watch ratio)]", "diversity": "intra-list category diversity"}[y])
        if len(trials):
            fig.colorbar(sc, ax=ax, label=other)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7, loc="best")
    fig.suptitle(title or "Reranking settings: true outcomes (front over engagement, value, diversity)")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_outputs(table: pd.DataFrame, summary: dict, out_dirs: list[Path], title: str = "") -> list[Path]:
    """Write ``pareto.csv``, ``pareto_summary.json`` and ``pareto_curve.png`` into each of ``out_dirs``."""
    written: list[Path] = []
    for d in out_dirs:
        d.mkdir(parents=True, exist_ok=True)
        table.to_csv(d / "pareto.csv", index=False)
        (d / "pareto_summary.json").write_text(json.dumps(summary, indent=2, default=_json_default) + "\n")
        written += [d / "pareto.csv", d / "pareto_summary.json", plot(table, d / "pareto_curve.png", title)]
    return written


def _json_default(v: Any) -> Any:
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating,)):
        return None if math.isnan(float(v)) else float(v)
    if isinstance(v, np.bool_):
        return bool(v)
    return str(v)
