"""Figures as PNG bytes (matplotlib, Agg backend), at a floor every other one may use: the run engine
draws a run's confusion matrix and training curves with them, and the report its own figures."""

from __future__ import annotations

import io
from typing import Any

import numpy as np


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def png(fig: Any, dpi: int = 100) -> bytes:
    """The figure as PNG bytes (the figure is closed)."""
    plt = pyplot()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    plt.close(fig)
    return buffer.getvalue()


def confusion_png(report: dict[str, Any], *, title: str = "") -> bytes:
    """Confusion matrix (rows true, columns predicted; counts and row shares) as PNG bytes."""
    plt = pyplot()
    matrix = np.asarray(report["confusion"], dtype=float)
    classes = report["classes"]
    shares = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(1.2 + 0.9 * len(classes), 1.0 + 0.8 * len(classes)))
    ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(classes)):
        for j in range(len(classes)):
            ax.text(j, i, f"{int(matrix[i, j])}", ha="center", va="center",
                    color="white" if shares[i, j] > 0.5 else "black")
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    uf1, uar = report.get("uf1"), report.get("uar")
    ax.set_title(f"{title}\nUF1 {uf1:.3f}  UAR {uar:.3f}" if uf1 is not None and uar is not None else title, fontsize=9)
    fig.tight_layout()
    return png(fig)


def curves_png(histories: dict[str, list[dict]], *, title: str = "") -> bytes:
    """Training loss and accuracy per epoch, one thin line per fold and their mean, as PNG bytes."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    for ax, key in zip(axes, ("loss", "train_acc")):
        curves = [[float(h[key]) for h in hist if key in h] for hist in histories.values()]
        curves = [c for c in curves if c]
        for c in curves:
            ax.plot(range(1, len(c) + 1), c, color="0.75", lw=0.6)
        if curves:
            n = min(len(c) for c in curves)
            ax.plot(range(1, n + 1), np.mean([c[:n] for c in curves], axis=0), color="C0", lw=1.8, label="mean over folds")
            ax.legend(fontsize=8)
        ax.set_xlabel("epoch")
        ax.set_ylabel(key)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return png(fig)
