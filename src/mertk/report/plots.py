"""Figures of the run report, returned as PNG bytes (drawn with :mod:`mertk.figures`)."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..figures import confusion_png, png, pyplot
from .analysis import MeanMaps


def mean_maps_figure(maps: MeanMaps, classes: Sequence[str]) -> bytes:
    """One row per class, one column per panel; a panel's colour scale is shared by all classes
    (diverging and centred on 0 for signed flow components) so rows can be compared."""
    plt = pyplot()
    k, p = maps.maps.shape[0], len(maps.panels)
    fig, axes = plt.subplots(k, p, figsize=(1.9 * p + 1.6, 1.9 * k + 0.7), squeeze=False)
    for c in range(p):
        if maps.rgb:
            cmap, lo, hi = None, 0.0, 1.0
        elif maps.signed[c]:
            peak = float(np.nanmax(np.abs(maps.maps[:, c]))) or 1.0
            cmap, lo, hi = "RdBu_r", -peak, peak
        else:
            cmap, lo, hi = "viridis", float(np.nanmin(maps.maps[:, c])), float(np.nanmax(maps.maps[:, c]))
        shown = None
        for r in range(k):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            if maps.counts[r] == 0:
                ax.text(0.5, 0.5, "no clips", ha="center", va="center", fontsize=9, transform=ax.transAxes)
            else:
                data = maps.maps[r, c]
                img = np.clip(data.transpose(1, 2, 0), 0, 1) if maps.rgb else data
                shown = ax.imshow(img, cmap=cmap, vmin=lo, vmax=hi, interpolation="nearest")
            if r == 0:
                ax.set_title(maps.panels[c], fontsize=10)
            if c == 0:
                ax.set_ylabel(f"{classes[r]}\n(n={int(maps.counts[r])})", fontsize=9)
        if shown is not None and not maps.rgb:
            fig.colorbar(shown, ax=list(axes[:, c]), orientation="horizontal", fraction=0.04, pad=0.04, aspect=18)
    return png(fig)


def cosine_figure(matrix: np.ndarray, classes: Sequence[str]) -> bytes:
    """The class x class mean cosine similarity as a heat map with the values written in."""
    plt = pyplot()
    k = len(classes)
    fig, ax = plt.subplots(figsize=(1.6 + 0.95 * k, 1.2 + 0.8 * k))
    shown = ax.imshow(np.nan_to_num(matrix, nan=0.0), cmap="magma", vmin=-1 if np.nanmin(matrix) < 0 else 0, vmax=1)
    for i in range(k):
        for j in range(k):
            v = matrix[i, j]
            ax.text(j, i, "n/a" if np.isnan(v) else f"{v:.3f}", ha="center", va="center", fontsize=9,
                    color="black" if not np.isnan(v) and v > 0.55 else "white")
    ax.set_xticks(range(k), classes, rotation=30, ha="right")
    ax.set_yticks(range(k), classes)
    fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.04)
    ax.set_title("mean cosine similarity of penultimate features", fontsize=9)
    fig.tight_layout()
    return png(fig)


def confusion_figure(report: dict[str, Any], title: str) -> bytes:
    """The confusion matrix, redrawn from ``results.json`` when ``confusion.png`` is missing."""
    return confusion_png(report, title=title)
