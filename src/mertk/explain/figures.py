"""Figures of saliency maps shared by ``mertk explain`` and the run report.

- :func:`saliency_figure`: the input, the original and improved maps (shcnn-miao-2019) and the saliency pixels;
- :func:`frames_figure`: a clip model's improved map frame by frame;
- :func:`display_image`: a model input sample as something to look at;
- :func:`representative_sample`: which of a clip's samples the figures show.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

if TYPE_CHECKING:  # the saliency module imports torch and matplotlib: load it only when a figure is drawn
    from .saliency import SaliencyResult


def representative_sample(apex: np.ndarray, inference: str) -> int:
    """The sample a clip's saliency is shown for: its apex sample, or the centre crop of ten crops."""
    if inference == "ten_crop":
        return 4
    return int(np.flatnonzero(apex)[0]) if apex.any() else 0


def display_image(x: np.ndarray) -> np.ndarray:
    """A model input sample ``(C, H, W)`` as something to look at: RGB for 3 channels, grey for 1,
    the flow magnitude for 2 (u, v)."""
    x = np.asarray(x, dtype=np.float64)
    if x.shape[0] == 3:
        return x.transpose(1, 2, 0)
    if x.shape[0] == 2:
        return np.hypot(x[0], x[1])
    return x[0] if x.shape[0] == 1 else np.abs(x).max(axis=0)


def _sample_view(x: np.ndarray, result: SaliencyResult) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """(image, original map, improved map, note) in 2-D: a clip shows its frame of largest improved saliency."""
    from .saliency import per_frame

    if x.ndim == 4:
        energy = per_frame(result.improved).reshape(x.shape[1], -1).sum(axis=1)
        t = int(np.argmax(energy))
        return display_image(x[:, t]), result.original[:, t], result.improved[:, t], f"frame {t + 1} of {x.shape[1]}"
    return display_image(x), result.original, result.improved, ""


def _png(fig: Any) -> bytes:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return buffer.getvalue()


def _mark(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The image in grey with the pixels of ``mask`` tinted red (uint8 RGB)."""
    from .saliency import overlay

    grey = overlay(image, np.zeros(mask.shape), alpha=0.0).astype(np.float64).mean(axis=2, keepdims=True)
    rgb = np.repeat(grey, 3, axis=2)
    rgb[mask] = 0.45 * rgb[mask] + 0.55 * np.array([230.0, 30.0, 30.0])
    return np.round(rgb).astype(np.uint8)


def saliency_figure(x: np.ndarray, result: SaliencyResult, classes: Sequence[str], *, title: str = "",
                    check: Mapping[str, Any] | None = None) -> bytes:
    """PNG: the input, the original map and the improved map overlaid on it, and the saliency pixels.

    Each map is scaled by its own largest magnitude (its norm is printed above it), so a vanished
    original map shows as noise or blank while its norm says how small it is.
    """
    from .saliency import overlay, saliency_pixels

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    image, original, improved, where = _sample_view(np.asarray(x), result)
    mask = saliency_pixels(improved[:, None] if improved.ndim == 2 else improved)
    mask = mask[0] if mask.ndim == 3 else mask
    mask_all = saliency_pixels(result.improved)
    panels = [
        (overlay(image, np.zeros(image.shape[:2]), alpha=0.0), "input" + (f" ({where})" if where else "")),
        (overlay(image, original), f"original map |grad S| = {np.linalg.norm(result.original):.2e}"),
        (overlay(image, improved), f"improved map |grad V| = {np.linalg.norm(result.improved):.2e}"),
        (_mark(image, mask), f"saliency pixels (red): {int(mask_all.sum())} of {mask_all.size}"),
    ]
    fig, axes = plt.subplots(1, 4, figsize=(11.2, 3.3))
    for ax, (img, label) in zip(axes, panels):
        ax.imshow(img, interpolation="nearest")
        ax.set_title(label, fontsize=8.5)
        ax.axis("off")
    top = int(np.argmax(result.scores))
    line = (f"{title}  target {classes[result.target]}, top score {classes[top]} {result.scores[top]:.4f}, "
            f"M = {result.shrinkage:.3g}")
    if check is not None:
        line += (f"\nlower saliency pixels by {check['delta']:.3g}: {classes[check['pred_before']]} -> "
                 f"{classes[check['pred_saliency']]} (S_j {check['score_change_saliency']:+.4f}); same number of random "
                 f"pixels: -> {classes[check['pred_random']]} (S_j {check['score_change_random']:+.4f})")
    fig.suptitle(line.strip(), fontsize=9)
    fig.tight_layout()
    return _png(fig)


def frames_figure(x: np.ndarray, result: SaliencyResult, *, max_frames: int = 16) -> bytes:
    """PNG: the improved map of a clip model frame by frame (largest ``|gradient|`` over channels)."""
    from .saliency import overlay, per_frame

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    maps = per_frame(result.improved)
    t = maps.shape[0]
    chosen = np.unique(np.linspace(0, t - 1, min(t, max_frames)).round().astype(int))
    cols = min(8, len(chosen))
    rows = int(np.ceil(len(chosen) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(1.6 * cols, 1.8 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, i in zip(axes.flat, chosen):
        ax.imshow(overlay(display_image(np.asarray(x)[:, i]), maps[i]), interpolation="nearest")
        ax.set_title(f"frame {i + 1}", fontsize=8)
    fig.suptitle("improved saliency per frame (each frame scaled by the clip's own map)", fontsize=9)
    fig.tight_layout()
    return _png(fig)
