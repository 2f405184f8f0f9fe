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
