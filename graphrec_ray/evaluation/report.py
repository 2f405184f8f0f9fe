"""The results report of one run directory, built from the run's artifacts only.

``graphrec report --run-dir runs/X`` (or ``python -m graphrec_ray.evaluation.report --run-dir runs/X``) writes
``results_table.csv`` (long format: one value per row, with its interval where the run has one),
``results_table.md`` (one table per section) and ``calibration_curve.png`` to ``--out-dir`` (default
``outputs/``) and a copy of all three under ``<run_dir>/report/``. Nothing is recomputed from data or models:

* retrieval: ``retrieval/metrics.json`` -- Recall@10/20/50/500 and NDCG@10/20 per model and protocol, with the
  95% bootstrap interval over users when the metrics file carries it (``<key>/ci_low``, ``<key>/ci_high``);
* paired model comparisons: ``retrieval/per_user/seed=*.npz`` (>= 3 seeds,
  :mod:`graphrec_ray.evaluation.compare`) -- primary model minus each other model, with a verdict;
* ranking: every ``ranking*/metrics.csv`` (one folder per ranker, e.g. ``ranking/`` and a second ranker trained
  with another ``neg_sample_rate`` copied to ``ranking_<tag>/``) -- AUC, MSE/RMSE, ECE (equal-mass and
  equal-width), Brier, log-loss per ranker and calibrator, observed and (simulator) true;
* calibration curve: every ``ranking*/calibration_curves.json`` (the reliability bins written by the ranking job);
* serving latency: a load-test file (``serve_latency.csv`` or ``serve_load.json`` of
  ``benchmarks/serve_load.py``) in the run directory or in ``outputs/``;
* optional sections, rendered generically from whatever CSV files exist: ``pareto/`` (``pareto.csv``,
  ``pareto_curve.png``), ``ab/`` (``ab_results.csv``), ``ope/`` (``ope_results.csv``).

A section whose source is missing is left out, with one line naming the file that would fill it: the report never
prints a placeholder value.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from graphrec_ray.errors import UserError
from graphrec_ray.layout import RunLayout
from graphrec_ray.manifest import MANIFEST_NAME

RETRIEVAL_METRICS = ("recall@10", "recall@20", "recall@50", "recall@500", "ndcg@10", "ndcg@20")
#: protocol prefixes of retrieval/metrics.json reported, in order (validation is for selection, not reported)
RETRIEVAL_PROTOCOLS = ("test", "unbiased/ge0.5", "unbiased/gt2.0", "true")
RANKING_METRICS = ("auc", "mse", "rmse", "ece_mass", "ece_width", "brier", "log_loss", "true_ece_mass",
                   "true_ece_width", "true_brier", "true_log_loss", "true_mae", "log_loss_vs_raw", "brier_vs_raw",
                   "ece_mass_vs_raw", "true_log_loss_vs_raw", "true_brier_vs_raw", "true_ece_mass_vs_raw")
#: optional sections: (title, folder under the run dir, files that fill it)
OPTIONAL_SECTIONS = (("Pareto sweep", "pareto", ("pareto.csv",)), ("A/B test", "ab", ("ab_results.csv",)),
                     ("Off-policy evaluation", "ope", ("ope_results.csv",)))
LATENCY_FILES = ("serve_latency.csv", "serve_load.json")
CSV_COLUMNS = ("section", "model", "setting", "metric", "value", "ci_low", "ci_high")
OUTPUTS = ("results_table.csv", "results_table.md", "calibration_curve.png")


@dataclass
class Report:
    """What the report collects: long-format rows, Markdown blocks, curve panels, notes on missing sources."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    markdown: list[str] = field(default_factory=list)
    panels: dict[str, dict[str, dict]] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    images: list[Path] = field(default_factory=list)

    def add(self, section: str, model: str, setting: str, metric: str, value: float,
            ci: tuple[float, float] | None = None) -> None:
        self.rows.append({"section": section, "model": model, "setting": setting, "metric": metric,
                          "value": value, "ci_low": "" if ci is None else ci[0], "ci_high": "" if ci is None else ci[1]})


def _num(v: Any) -> float | None:
    """A finite float from a JSON/CSV value, else None."""
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _ci(r: dict[str, Any], key: str) -> tuple[float, float] | None:
    """``(low, high)`` from ``key/ci_low``, ``key/ci_high`` of a row or metrics dict, when both are numbers."""
    lo, hi = _num(r.get(f"{key}/ci_low")), _num(r.get(f"{key}/ci_high"))
    return (lo, hi) if lo is not None and hi is not None else None


def _fmt(v: float, ci: tuple[float, float] | None = None) -> str:
    s = f"{v:.4f}"
    return s if ci is None else f"{s} [{ci[0]:.4f}, {ci[1]:.4f}]"


def _md_table(header: list[str], body: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in body]
    return "\n".join(lines)


def _retrieval(run_dir: Path, rep: Report) -> None:
    path = RunLayout(run_dir).retrieval_metrics
    if not path.is_file():
        rep.missing.append(f"Retrieval quality: no {path}")
        return
    m = json.loads(path.read_text())
    models: dict[str, dict[str, Any]] = m.get("models", {})
    primary = m.get("primary")
    body, any_ci = [], False
    for name, metrics in models.items():
        for proto in RETRIEVAL_PROTOCOLS:
            cells, seen = [], False
            for metric in RETRIEVAL_METRICS:
                key = f"{proto}/{metric}"
                v = _num(metrics.get(key))
                if v is None:
                    cells.append("")
                    continue
                seen = True
                ci = _ci(metrics, key)
                any_ci = any_ci or ci is not None
                rep.add("retrieval", name, proto, metric, v, ci)
                cells.append(_fmt(v, ci))
            if seen:
                label = f"{name} (primary)" if name == primary else name
                n = _num(metrics.get(f"{proto}/n_users"))
                body.append([label, proto, "" if n is None else str(int(n))] + cells)
    text = ["## Retrieval quality", "",
            f"From `{path}`. Protocols: `test` = temporal test split of big_matrix (training positives excluded); "
            "`unbiased/ge0.5`, `unbiased/gt2.0` = fully observed small_matrix, relevant when watch_ratio >= 0.5 / "
            "> 2.0; `true` = simulator's true p(click) >= threshold."]
    text.append("Cells: mean over users [95% bootstrap interval over users]." if any_ci else
                "This metrics.json carries no intervals (written before intervals were added); rerun "
                "`graphrec train-retrieval` to get them. Values are means over users.")
    text += ["", _md_table(["model", "protocol", "users"] + [k.replace("@", "@") for k in RETRIEVAL_METRICS], body)]
    rep.markdown.append("\n".join(text))


def _comparisons(run_dir: Path, rep: Report) -> None:
    from graphrec_ray.evaluation.compare import MIN_SEEDS, compare_seed_files

    folder = RunLayout(run_dir).per_user_dir
    files = sorted(folder.glob("seed=*.npz")) if folder.is_dir() else []
    if len(files) < MIN_SEEDS:
        rep.missing.append(f"Paired model comparisons: need >= {MIN_SEEDS} per-seed files {folder}/seed=*.npz "
                           f"(found {len(files)})")
        return
    metrics_path = RunLayout(run_dir).retrieval_metrics
    primary = json.loads(metrics_path.read_text()).get("primary") if metrics_path.is_file() else None
    from graphrec_ray.evaluation.compare import load_per_user

    models = list(load_per_user(files[0]))
    primary = primary if primary in models else models[0]
    keys = [f"{p}/{m}" for p in RETRIEVAL_PROTOCOLS for m in ("recall@20", "ndcg@20")]
    body = []
    for other in models:
        if other == primary:
            continue
        for key, iv in compare_seed_files(files, primary, other, keys).items():
            rep.add("comparison", f"{primary} - {other}", key.rsplit("/", 1)[0], key.rsplit("/", 1)[1],
                    iv.estimate, (iv.low, iv.high))
            body.append([f"{primary} - {other}", key, _fmt(iv.estimate, (iv.low, iv.high)), iv.verdict()])
    rep.markdown.append("\n".join([
        "## Paired model comparisons", "",
        f"From {len(files)} seeds in `{folder}`: mean per-user difference (each user averaged over seeds), 95% "
        "bootstrap interval over users; \"better\"/\"worse\" only when the interval excludes zero.", "",
        _md_table(["comparison", "metric", "difference [95% CI]", "verdict"], body)]))


def _ranking_rows(path: Path) -> list[dict[str, Any]]:
    """Rows of one ``metrics.csv``; the older raw/calibrated column layout is split into two calibrator rows."""
    rows = list(csv.DictReader(path.open()))
    if not rows or "calibrator" in rows[0]:
        return rows
    method = "calibrated"
    manifest = path.parent / MANIFEST_NAME
    if manifest.is_file():
        method = json.loads(manifest.read_text()).get("calibration", method)
    out = []
    for r in rows:
        for suffix, cal in (("raw", "raw"), ("cal", method)):
            new = {"model": r["model"], "calibrator": cal, "split": r["split"], "n": r.get("n", "")}
            for k in ("auc", "mse", "rmse"):
                new[k] = r.get(k, "")
            for old, key in (("ece_mass", "ece_mass"), ("ece_width", "ece_width"), ("brier", "brier"),
                             ("true_mae", "true_mae"), ("true_ece", "true_ece_mass")):
                if f"{old}_{suffix}" in r:
                    new[key] = r[f"{old}_{suffix}"]
            out.append(new)
    return out


def _ranking(run_dir: Path, rep: Report) -> None:
    dirs = sorted(d for d in run_dir.glob("ranking*") if (d / RunLayout.RANKING_METRICS).is_file())
    if not dirs:
        rep.missing.append(f"Ranker and calibration: no {run_dir}/ranking*/metrics.csv")
        return
    body, cols = [], [c for c in RANKING_METRICS]
    present: set[str] = set()
    table: list[tuple[list[str], dict[str, Any]]] = []
    for d in dirs:
        for r in _ranking_rows(d / RunLayout.RANKING_METRICS):
            ranker = f"{d.name}/{r['model']}"
            setting = f"{r['split']}, {r['calibrator']}"
            rate = r.get("neg_sample_rate", "")
            for metric in cols:
                v = _num(r.get(metric))
                if v is not None:
                    present.add(metric)
                    rep.add("ranking", ranker, setting + (f", neg_sample_rate={rate}" if rate else ""), metric, v,
                            _ci(r, metric))
            table.append(([ranker, r["split"], rate or "1", r["calibrator"] + (" *" if r.get("serving") == "1" else ""),
                           r.get("n", "")], r))
    cols = [c for c in cols if c in present]
    for head, r in table:
        body.append(head + [_fmt(v, _ci(r, c)) if (v := _num(r.get(c))) is not None else "" for c in cols])
    rep.markdown.append("\n".join([
        "## Ranker and calibration", "",
        f"From {', '.join(f'`{d}/metrics.csv`' for d in dirs)}. auc: click ROC-AUC; mse/rmse: value head vs "
        "log1p(watch_ratio); ece_mass/ece_width: 15-bin ECE with equal-mass / equal-width bins; brier; log_loss "
        "(nats); true_*: the same against the simulator's true click probabilities; *_vs_raw: paired difference "
        "against the raw calibrator on the same users (negative = lower = better). Calibrators are fitted on "
        "validation; `*` marks the one chosen on validation for serving. [low, high]: 95% bootstrap interval over "
        "users (rows of a user resampled together), where the metrics file has one.", "",
        _md_table(["ranker", "split", "neg_sample_rate", "calibrator", "n"] + cols, body)]))


def _curves(run_dir: Path, rep: Report) -> None:
    for d in sorted(run_dir.glob("ranking*")):
        f = d / RunLayout.CALIBRATION_CURVES
        if f.is_file():
            data = json.loads(f.read_text())
            for title, curves in data.get("panels", {}).items():
                rep.panels[f"{d.name} (neg_sample_rate {data.get('neg_sample_rate', 1.0):g}): {title}"] = curves
    if not rep.panels:
        rep.missing.append(f"Calibration curve: no {run_dir}/ranking*/calibration_curves.json (written by "
                           "`graphrec train-ranker`)")


def _latency_sources(run_dir: Path, out_dir: Path) -> list[Path]:
    return [base / name for base in (run_dir, run_dir / "serve", out_dir) for name in LATENCY_FILES]


def _latency(run_dir: Path, out_dir: Path, rep: Report) -> None:
    src = next((p for p in _latency_sources(run_dir, out_dir) if p.is_file()), None)
    if src is None:
        rep.missing.append("Serving latency: no load-test file (" +
                           ", ".join(str(p) for p in _latency_sources(run_dir, out_dir)) + ")")
        return
    body = []
    if src.suffix == ".json":
        data = json.loads(src.read_text())
        note = f"From `{src}` (`benchmarks/serve_load.py`, run dir `{data.get('run_dir', '?')}`, " \
               f"{data.get('requests', '?')} requests per variant)."
        for group, by_c in data.get("results", {}).items():
            for conc, variants in by_c.items():
                for variant, r in variants.items():
                    vals = {k: _num(r.get(f"{k}_ms")) for k in ("p50", "p95", "p99")}
                    if any(v is None for v in vals.values()):
                        continue
                    setting = f"{group}, concurrency {conc.lstrip('c')}"
                    for k, v in vals.items():
                        rep.add("serving", variant, setting, f"{k}_ms", v)  # type: ignore[arg-type]
                    rps = _num(r.get("rps"))
                    body.append([variant, setting] + [f"{vals[k]:.2f}" for k in ("p50", "p95", "p99")] +
                                ["" if rps is None else f"{rps:.1f}"])
        text = _md_table(["variant", "setting", "p50 ms", "p95 ms", "p99 ms", "req/s"], body)
    else:
        note = f"From `{src}`."
        header, rows = _read_csv(src)
        for r in rows:
            for k in ("p50_ms", "p95_ms", "p99_ms", "p50", "p95", "p99"):
                v = _num(r.get(k))
                if v is not None:
                    rep.add("serving", str(r.get("variant", r.get(header[0], ""))), "", k, v)
        text = _md_table(header, [[r.get(h, "") for h in header] for r in rows])
    rep.markdown.append("\n".join(["## Serving latency", "", note, "", text]))


def _read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
        return list(reader.fieldnames or []), rows


def _optional(run_dir: Path, rep: Report) -> None:
    for title, folder, expected in OPTIONAL_SECTIONS:
        d = run_dir / folder
        csvs = sorted(d.glob("*.csv")) if d.is_dir() else []
        if not csvs:
            rep.missing.append(f"{title}: no {d}/{expected[0]}")
            continue
        text = [f"## {title}", ""]
        for f in csvs:
            header, rows = _read_csv(f)
            text += [f"From `{f}`:", "", _md_table(header, [[_cell(r.get(h, "")) for h in header] for r in rows]), ""]
            for i, r in enumerate(rows):
                for h in header:
                    v = _num(r.get(h))
                    if v is not None:
                        rep.add(folder, f"{f.stem}[{i}]", str(r.get(header[0], "")), h, v)
        for img in sorted(d.glob("*.png")):
            rep.images.append(img)
            text.append(f"Figure: `{img}`")
        rep.markdown.append("\n".join(text).rstrip())


def _cell(v: str) -> str:
    f = _num(v)
    if f is None or v.strip().lstrip("-").isdigit():
        return v
    return f"{f:.4g}"


def build_report(run_dir: str | Path, out_dir: str | Path = "outputs") -> dict[str, Any]:
    """Collect every section of ``run_dir`` and write the report files (see the module docstring).

    Args:
        run_dir: a pipeline run directory.
        out_dir: where ``results_table.csv``/``.md`` and ``calibration_curve.png`` go (default ``outputs``); a copy
            goes to ``run_dir/report/``.

    Returns:
        ``{"files": [paths written], "missing": [one line per omitted section], "n_rows": int}``.

    Raises:
        UserError: ``run_dir`` is not a directory or holds none of the artifacts.
    """
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    if not run_dir.is_dir():
        raise UserError(f"run directory {run_dir} not found")
    rep = Report()
    _retrieval(run_dir, rep)
    _comparisons(run_dir, rep)
    _ranking(run_dir, rep)
    _curves(run_dir, rep)
    _latency(run_dir, out_dir, rep)
    _optional(run_dir, rep)
    if not rep.rows:
        raise UserError(f"{run_dir} holds no retrieval/ranking metrics, load test or evaluation CSVs to report")
    out_dir.mkdir(parents=True, exist_ok=True)
    written = [out_dir / "results_table.csv", out_dir / "results_table.md"]
    with written[0].open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(CSV_COLUMNS))
        w.writeheader()
        w.writerows(rep.rows)
    md = [f"# Results: `{run_dir}`", "", "Generated by `graphrec report` from the run's artifacts; do not edit.", ""]
    md += [block + "\n" for block in rep.markdown]
    if rep.panels:
        md.append("Reliability diagram: `calibration_curve.png` (every calibrator of every ranker).\n")
    if rep.missing:
        md += ["## Not in this run", ""] + [f"- {line}" for line in rep.missing]
    written[1].write_text("\n".join(md).rstrip() + "\n")
    if rep.panels:
        from graphrec_ray.calibration.reliability import plot_bin_panels

        written.append(plot_bin_panels(rep.panels, out_dir / "calibration_curve.png", title="Ranker calibration"))
    copy_dir = run_dir / "report"
    copy_dir.mkdir(exist_ok=True)
    for p in written + rep.images:
        if p.resolve() != (copy_dir / p.name).resolve():
            shutil.copyfile(p, copy_dir / p.name)
    return {"files": [str(p) for p in written], "missing": rep.missing, "n_rows": len(rep.rows)}


README_BEGIN = "<!-- results:begin (generated by graphrec report --readme; do not edit) -->"
README_END = "<!-- results:end -->"
#: the README's compact view: (protocol, metric) columns of the retrieval table
README_RETRIEVAL = (("unbiased/gt2.0", "recall@20"), ("unbiased/gt2.0", "ndcg@10"), ("unbiased/ge0.5", "ndcg@10"),
                    ("true", "ndcg@10"), ("test", "recall@20"))
README_RANKING = ("auc", "ece_mass", "true_ece_mass", "brier", "log_loss", "log_loss_vs_raw")


def _cell_of(rows: list[dict[str, Any]], model: str, setting: str, metric: str) -> str:
    for r in rows:
        if r["model"] == model and r["setting"] == setting and r["metric"] == metric:
            ci = (float(r["ci_low"]), float(r["ci_high"])) if r["ci_low"] != "" else None
            return _fmt(float(r["value"]), ci)
    return ""


def readme_block(rows: list[dict[str, Any]], run_dir: str | Path) -> str:
    """A compact Markdown summary of the report's long-format ``rows`` for the README: retrieval on the unbiased
    protocols, paired comparisons, the ranker's test rows per calibrator, serving latency (when present)."""
    out = [README_BEGIN, "", f"From `graphrec report --run-dir {run_dir} --readme README.md`; mean [95% bootstrap "
           "interval over users]. Full tables: `outputs/results_table.md`.", ""]
    ret = [r for r in rows if r["section"] == "retrieval"]
    if ret:
        models = list(dict.fromkeys(r["model"] for r in ret))
        head = ["model"] + [f"{m} ({p})" for p, m in README_RETRIEVAL]
        out += [_md_table(head, [[m] + [_cell_of(ret, m, p, k) for p, k in README_RETRIEVAL] for m in models]), ""]
    comp = [r for r in rows if r["section"] == "comparison"]
    if comp:
        body = []
        for r in comp:
            lo, hi = float(r["ci_low"]), float(r["ci_high"])
            verdict = "better" if lo > 0 else "worse" if hi < 0 else "not significant"
            body.append([r["model"], f"{r['setting']} {r['metric']}", _fmt(float(r["value"]), (lo, hi)), verdict])
        out += [_md_table(["comparison", "metric", "difference", "verdict"], body), ""]
    rank = [r for r in rows if r["section"] == "ranking" and r["setting"].startswith("test")]
    if rank:
        keys = list(dict.fromkeys((r["model"], r["setting"]) for r in rank))
        body = [[m, st.split(", ", 1)[1]] + [_cell_of(rank, m, st, k) for k in README_RANKING] for m, st in keys]
        out += [_md_table(["ranker (test split)", "calibrator, sampling"] + list(README_RANKING), body), ""]
    lat = [r for r in rows if r["section"] == "serving"]
    if lat:
        keys = list(dict.fromkeys((r["model"], r["setting"]) for r in lat))
        body = [[m, st] + [_cell_of(lat, m, st, k) for k in ("p50_ms", "p95_ms", "p99_ms")] for m, st in keys]
        out += [_md_table(["serving variant", "setting", "p50 ms", "p95 ms", "p99 ms"], body), ""]
    decision = decision_block(run_dir)
    if decision:
        out += [decision]
    return "\n".join(out + [README_END])


AB_METRICS = ("ctr", "value_per_user", "session_length", "distinct_categories")  # the README's A/B columns
OPE_HEADLINE = ("dr", "switch_dr", "cascade_dr", "rips", "ips", "dm")  # the README's OPE rows


def _iv(est: float, lo: Any, hi: Any) -> str:
    return _fmt(float(est), (float(lo), float(hi))) if lo not in ("", None) else f"{float(est):.4f}"


def decision_block(run_dir: str | Path) -> str:
    """README lines from the decision-support artifacts of ``run_dir`` (Pareto summary, A/B results, OPE table);
    empty when none exists."""
    run_dir = Path(run_dir)
    out: list[str] = []
    par = run_dir / "pareto" / "pareto_summary.json"
    if par.is_file():
        d = json.loads(par.read_text())
        k = d["knee"]
        out += [f"Pareto sweep (`{par}`): {d['n_settings']} settings, {d['n_non_dominated']} non-dominated, "
                f"hypervolume {d['hypervolume']:.4f} (grid alone {d['hypervolume_by_searcher'].get('grid', 0):.4f}, "
                f"NSGA-II alone {d['hypervolume_by_searcher'].get('nsga2', 0):.4f}); knee w_engagement "
                f"{k['w_engagement']:.3f}, w_value {k['w_value']:.3f}, lambda {k['lambda_diversity']:.3f}, pool "
                f"{k['pool_size']}. Knee minus serving weights, paired over {d['users_holdout']} held-out users:", ""]
        body = [[obj, _iv(v["difference"], v["ci_low"], v["ci_high"]), v["verdict"]]
                for obj, v in d["knee_minus_serving"].items()]
        out += [_md_table(["objective (simulator truth, top-10)", "knee - serving", "verdict"], body), ""]
    ab = run_dir / "ab" / "ab_results.json"
    if ab.is_file():
        d = json.loads(ab.read_text())
        arms = list(dict.fromkeys(a["arm"] for a in d["arms"]))
        cell = {(a["arm"], a["metric"]): f"{_iv(a['estimate'], a['ci_low'], a['ci_high'])} ({float(a['true']):.4f})"
                for a in d["arms"]}
        out += [f"Mock A/B test (`{ab}`): estimate [95% interval] (exact true value).", ""]
        out += [_md_table(["arm"] + list(AB_METRICS), [[a] + [cell.get((a, m), "") for m in AB_METRICS]
                                                       for a in arms]), ""]
        body = [[f"{x['arm']} - {x['control']}", x["metric"],
                 f"{_iv(x['estimate'], x['ci_low'], x['ci_high'])} ({float(x['true_difference']):.4f})", x["verdict"]]
                for x in d["differences"] if x["metric"] in AB_METRICS]
        out += [_md_table(["difference", "metric", "estimate [95% CI] (truth)", "verdict"], body), ""]
    ope = run_dir / "ope" / "ope_results.csv"
    if ope.is_file():
        _, rows = _read_csv(ope)
        rows = [r for r in rows if r.get("estimator") in OPE_HEADLINE and "setting" in r]
        if rows:
            out += [f"Off-policy evaluation (`{ope}`): relative error against the exact true value, mean over logs "
                    "and target policies [95% interval], interval coverage, Kendall tau of the target ranking.", ""]
            body = [[r["setting"], r["estimator"], f"{int(float(r['n_rounds'])):,}",
                     _iv(r["rel_error"], r.get("rel_error_low", ""), r.get("rel_error_high", "")),
                     f"{float(r['coverage']):.2f}", f"{float(r['kendall_tau']):.2f}"] for r in rows]
            out += [_md_table(["setting", "estimator", "logged rounds", "relative error", "coverage", "Kendall tau"],
                              body), ""]
    return "\n".join(out)


def splice_readme(readme: str | Path, block: str) -> None:
    """Replace the text between :data:`README_BEGIN` and :data:`README_END` in ``readme`` with ``block``."""
    path = Path(readme)
    text = path.read_text()
    start, end = text.find(README_BEGIN), text.find(README_END)
    if start < 0 or end < start:
        raise UserError(f"{path} has no results block ({README_BEGIN} ... {README_END})")
    path.write_text(text[:start] + block + text[end + len(README_END):])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="graphrec report",
                                description="Write the results table and calibration curve of a run directory.")
    p.add_argument("--run-dir", default="runs/demo", help="run directory (default: runs/demo)")
    p.add_argument("--out-dir", default="outputs", help="output folder (default: outputs); a copy goes to "
                                                        "<run-dir>/report/")
    p.add_argument("--readme", default=None, metavar="PATH",
                   help="also rewrite the results block of this README from the report (e.g. README.md)")
    args = p.parse_args(argv)
    res = build_report(args.run_dir, args.out_dir)
    if args.readme:
        with open(res["files"][0], newline="") as f:
            splice_readme(args.readme, readme_block(list(csv.DictReader(f)), args.run_dir))
        print(f"updated the results block of {args.readme}")
    for f in res["files"]:
        print(f"wrote {f}")
    for line in res["missing"]:
        print(f"omitted: {line}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except UserError as exc:
        print(f"graphrec report: error: {exc}", file=sys.stderr)
        sys.exit(2)
