"""Reliability diagram (PNG, matplotlib Agg backend): mean prediction vs observed frequency per bin."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from graphrec_ray.calibration.metrics import Strategy, ece, reliability_bins


def plot_reliability(curves: dict[str, tuple[np.ndarray, np.ndarray]], path: str | Path, n_bins: int = 15,
                     strategy: Strategy = "equal_mass", title: str = "Reliability") -> Path:
    """Draw one line per named ``(probs (N,), targets (N,))`` pair and save a PNG at ``path``.

    Each legend entry carries that curve's ECE (``n_bins`` bins, default 15, ``strategy`` default
    equal-mass). The diagonal is perfect calibration. Returns ``path``.
    """
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.0, 5.0), dpi=100)
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="perfect")
    for name, (p, t) in curves.items():
        b = reliability_bins(p, t, n_bins, strategy)
        ax.plot(b.mean_pred, b.mean_target, marker="o", markersize=3,
                label=f"{name} (ECE={ece(p, t, n_bins, strategy):.4f})")
    ax.set_xlabel("mean predicted p(click)")
    ax.set_ylabel("observed click frequency")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_title(f"{title} ({n_bins} {strategy.replace('_', '-')} bins)")
    ax.legend(loc="upper left", fontsize=7)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    plt.close(fig)
    return path


def curve_bins(curves: dict[str, tuple[np.ndarray, np.ndarray]], n_bins: int = 15,
               strategy: Strategy = "equal_mass") -> dict[str, dict[str, list[float] | float]]:
    """JSON-ready bins of each named ``(probs (N,), targets (N,))`` curve, so a report can redraw it later.

    Returns:
        ``{name: {"mean_pred": [...], "mean_target": [...], "count": [...], "ece": float}}``.
    """
    out: dict[str, dict[str, list[float] | float]] = {}
    for name, (p, t) in curves.items():
        b = reliability_bins(p, t, n_bins, strategy)
        out[name] = {"mean_pred": b.mean_pred.tolist(), "mean_target": b.mean_target.tolist(),
                     "count": b.count.astype(float).tolist(), "ece": ece(p, t, n_bins, strategy)}
    return out


def plot_bin_panels(panels: dict[str, dict[str, dict]], path: str | Path, title: str = "Reliability") -> Path:
    """One reliability panel per ``{panel title: curve_bins(...) output}``, two per row, saved as a PNG.

    Every curve of a panel is drawn with its ECE in the legend; the diagonal is perfect calibration.
    """
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    import textwrap

    n = max(1, len(panels))
    ncols = min(n, 2)
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(5.5 * ncols, 5.5 * nrows), dpi=100, squeeze=False)
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    names = list(dict.fromkeys(name for curves in panels.values() for name in curves))
    color = {name: f"C{i % 10}" for i, name in enumerate(names)}  # one colour per curve name in every panel
    for ax, (panel, curves) in zip(axes.ravel(), panels.items()):
        ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="perfect")
        for name, b in curves.items():
            ax.plot(b["mean_pred"], b["mean_target"], marker="o", markersize=3, color=color[name],
                    label=f"{name} (ECE={float(b['ece']):.4f})")
        ax.set_xlabel("mean predicted p(click)")
        ax.set_ylabel("mean target")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_title(textwrap.fill(panel, 60), fontsize=9)
        ax.legend(loc="upper left", fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    plt.close(fig)
    return path
