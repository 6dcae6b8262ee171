"""The report's plots: matplotlib figures rendered to inline SVG strings (no files, no network, no pyplot state).

Text stays text (``svg.fonttype: none``) and the 2-D projection's points are rasterised inside the SVG, so a
report of 60,000 retailers stays a few hundred kilobytes.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

NOISE_COLOR = "#b8bcc4"
COLORS = ["#4269d0", "#efb118", "#ff725c", "#6cc5b0", "#3ca951", "#ff8ab7", "#a463f2", "#97bbf5", "#9c6b4e",
          "#9498a0", "#1f77b4", "#d62728", "#2ca02c", "#8c564b", "#e377c2", "#17becf", "#bcbd22"]
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
MAX_POINTS = 6000


def color(cluster: int) -> str:
    return NOISE_COLOR if cluster < 0 else COLORS[cluster % len(COLORS)]


def _figure(width: float = 6.4, height: float = 3.6):  # -> matplotlib.figure.Figure
    from matplotlib.figure import Figure  # a bare Figure renders with Agg/SVG without touching pyplot

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def to_svg(fig) -> str:
    """The figure as an ``<svg>`` element (XML prolog and DOCTYPE dropped, ids salted deterministically)."""
    from matplotlib import rc_context

    buffer = io.StringIO()
    with rc_context({"svg.fonttype": "none", "svg.hashsalt": "stableseg-report"}):
        fig.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    text = buffer.getvalue()
    return text[text.index("<svg") :]


def cluster_sizes(labels: Mapping[str, np.ndarray]) -> str:
    """Bars of cluster sizes (noise first, as "noise") for each space side by side."""
    fig = _figure(6.4 + 1.2 * (len(labels) - 1), 3.4)
    axes = fig.subplots(1, len(labels), squeeze=False)[0]
    for ax, (space, values) in zip(axes, labels.items(), strict=True):
        ids, counts = np.unique(values, return_counts=True)
        ax.bar([("noise" if i < 0 else str(i)) for i in ids], counts, color=[color(int(i)) for i in ids])
        ax.set_title(f"{space}: {int((ids >= 0).sum())} clusters")
        ax.set_xlabel("cluster")
    axes[0].set_ylabel("retailers")
    return to_svg(fig)


def contingency(rows: np.ndarray, cols: np.ndarray, row_name: str, col_name: str) -> str:
    """A heatmap of how the clusters of two spaces overlap (retailers per pair)."""
    table = pd.crosstab(pd.Series(rows, name=row_name), pd.Series(cols, name=col_name))
    fig = _figure(6.4, 0.45 * len(table) + 1.6)
    ax = fig.add_subplot()
    ax.imshow(table.to_numpy(), cmap="Blues", aspect="auto")
    ax.set_xticks(range(len(table.columns)), [("noise" if c < 0 else str(c)) for c in table.columns])
    ax.set_yticks(range(len(table.index)), [("noise" if c < 0 else str(c)) for c in table.index])
    ax.set_xlabel(f"{col_name} cluster")
    ax.set_ylabel(f"{row_name} cluster")
    peak = table.to_numpy().max() or 1
    for (i, j), n in np.ndenumerate(table.to_numpy()):
        if n:
            ax.text(j, i, f"{n:,}", ha="center", va="center", fontsize=7, color="white" if n > peak / 2 else "black")
    return to_svg(fig)


def seasonality(curves: Mapping[int, Sequence[float]]) -> str:
    """One line per cluster: its members' mean share of a year's volume per calendar month."""
    fig = _figure()
    ax = fig.add_subplot()
    for cluster, curve in curves.items():
        ax.plot(MONTHS, curve, marker="o", markersize=3, color=color(cluster), linestyle=":" if cluster < 0 else "-",
                label="noise" if cluster < 0 else f"cluster {cluster}")
    ax.set_ylabel("share of yearly volume")
    ax.yaxis.set_major_formatter("{x:.1%}")
    ax.legend(fontsize=7, ncols=4)
    return to_svg(fig)


def loss_curve(history: Mapping[str, Sequence[float]]) -> str:
    fig = _figure(6.4, 3.2)
    ax = fig.add_subplot()
    for key, label in (("loss", "training"), ("val_loss", "validation")):
        if history.get(key):
            ax.plot(range(1, len(history[key]) + 1), history[key], label=label)
    ax.set_xlabel("epoch")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_ylabel("MSE loss")
    ax.set_yscale("log")
    ax.legend()
    return to_svg(fig)


def projection(latent: np.ndarray, labels: np.ndarray, seed: int = 0) -> tuple[str, float]:
    """The latent space projected on its two principal components, coloured by cluster (at most MAX_POINTS
    retailers drawn, a fixed random sample); returns the SVG and the variance share the two components keep."""
    from sklearn.decomposition import PCA

    pca = PCA(2, random_state=seed).fit(latent)
    rows = np.arange(len(latent))
    if len(rows) > MAX_POINTS:
        rows = np.sort(np.random.default_rng(seed).choice(rows, MAX_POINTS, replace=False))
    xy = pca.transform(latent[rows])
    fig = _figure(6.4, 4.8)
    ax = fig.add_subplot()
    for cluster in sorted(set(labels[rows].tolist())):
        mask = labels[rows] == cluster
        ax.scatter(xy[mask, 0], xy[mask, 1], s=4, alpha=0.6 if cluster >= 0 else 0.35, color=color(cluster),
                   label="noise" if cluster < 0 else f"cluster {cluster}", rasterized=True, linewidths=0)
    ax.set_xlabel("component 1")
    ax.set_ylabel("component 2")
    ax.legend(fontsize=7, markerscale=3, ncols=4)
    return to_svg(fig), float(pca.explained_variance_ratio_.sum())
