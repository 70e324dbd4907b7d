"""Saliency maps of any mertk model: Simonyan's original map and Miao et al.'s improved map.

For one input ``I`` with logits ``o`` (the last fully connected layer) and target class ``j``
(shcnn-miao-2019, sections II.C and III.F):

- original map ``grad_I S_j`` with ``S = softmax(o)`` (eq. 4). When the network is very sure
  (``S_j`` within ~1e-6 of 1) every ``dS_j/do_k`` (eq. 7) is ~0 and the map vanishes.
- improved map ``grad_I V_j`` with ``V = softmax(o / M)`` and the shrinkage factor
  ``M = max_k |o_k|`` (eqs. 8-10). Eq. 12 differentiates ``V`` with ``M`` held constant, so ``M`` is
  evaluated at ``I`` and detached from the graph (the map is not the gradient of ``M``'s max).
- saliency pixels ``{p : dV_j/dp >= 0}`` (eq. 11), and the paper's adversarial check (section IV.G):
  lower the saliency pixels by 20 and see whether the class changes.

Maps have the input's shape ``(C, H, W)`` or ``(C, T, H, W)``. Multi-channel inputs reduce to
pixels by summing the gradient over channels: lowering a pixel by ``delta`` in every channel changes
``V_j`` by ``-delta * sum_c dV_j/dp_c`` to first order, so a pixel is salient when that sum is >= 0
(for a single channel this is exactly eq. 11).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib
import matplotlib.image
import numpy as np
import torch
from torch import nn

from ..errors import MertkError


class ExplainError(MertkError, ValueError):
    """Bad input to a saliency function (shape, target class, degenerate logits)."""


@dataclass(frozen=True)
class SaliencyResult:
    """Original and improved saliency maps of one input.

    Attributes:
        original: ``grad_I S_j`` (eq. 4), the input's shape without the batch dimension.
        improved: ``grad_I V_j`` (eq. 10), same shape.
        target: the class ``j`` the maps are taken for (the requested one or the predicted one).
        scores: ``softmax(o)`` over the classes, computed in float64 from the logits so that
            ``1 - S_j`` is exact even when ``S_j`` rounds to 1 in float32.
        logits: ``o``, the model's outputs.
        shrinkage: ``M = max_k |o_k|`` (eq. 8).
    """

    original: np.ndarray
    improved: np.ndarray
    target: int
    scores: np.ndarray
    logits: np.ndarray
    shrinkage: float


def _prepare(model: nn.Module, x: torch.Tensor | np.ndarray) -> torch.Tensor:
    """One input as a (1, ...) tensor on the model's device and dtype."""
    t = x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))
    spec = getattr(model, "input_spec", None)
    # The declared rank tells a batch of one from a one-channel clip; other modules: 3-D or 4-D per sample.
    batched = t.dim() == len(spec.shape) + 1 if spec is not None else t.dim() == 5
    if batched and t.shape[0] == 1:
        t, batched = t[0], False
    if batched or t.dim() not in (3, 4):
        raise ExplainError(
            f"saliency needs one input (C, H, W) or (C, T, H, W) (or a batch of one), got {tuple(t.shape)}"
        )
    param = next(model.parameters())
    return t.detach().to(device=param.device, dtype=param.dtype)[None]


def _logits(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Logits of a (1, ...) batch in eval mode (the model's mode is restored)."""
    was_training = model.training
    model.eval()
    try:
        return model(x)[0]
    finally:
        model.train(was_training)


def _check_target(target: int | None, logits: torch.Tensor) -> int:
    n = logits.shape[0]
    if target is None:
        return int(logits.argmax())
    if not 0 <= int(target) < n:
        raise ExplainError(f"target class {target} is out of range for a model with {n} classes")
    return int(target)


def saliency_maps(model: nn.Module, x: torch.Tensor | np.ndarray, *, target: int | None = None) -> SaliencyResult:
    """Original (``grad_I softmax(o)_j``) and improved (``grad_I softmax(o / M)_j``) maps of one input.

    Args:
        model: any model returning logits (a :class:`mertk.models.MerModel`); run in eval mode, its
            mode is restored afterwards and its parameters' ``.grad`` are not touched.
        x: one input ``(C, H, W)`` / ``(C, T, H, W)``, or a batch of one; cast to the model's dtype.
        target: class ``j``; the predicted class when None.

    Raises:
        ExplainError: bad shape, target out of range, or all logits zero (``M = 0``).
        ModelError: the input does not match the model's input spec.
    """
    xb = _prepare(model, x).requires_grad_(True)
    logits = _logits(model, xb)
    j = _check_target(target, logits)
    shrink = logits.detach().abs().max()
    if not torch.isfinite(logits.detach()).all():
        raise ExplainError("the model's logits are NaN or inf (does the input hold NaN or inf values?)")
    if not float(shrink) > 0:
        raise ExplainError(
            "all logits are 0, so the shrinkage factor M = max|o_j| is 0 and V = softmax(o / M) is undefined"
        )
    original = torch.autograd.grad(torch.softmax(logits, -1)[j], xb, retain_graph=True)[0]
    improved = torch.autograd.grad(torch.softmax(logits / shrink, -1)[j], xb)[0]
    o = logits.detach()
    return SaliencyResult(
        original=original[0].cpu().numpy(),
        improved=improved[0].cpu().numpy(),
        target=j,
        scores=torch.softmax(o.double(), -1).cpu().numpy(),
        logits=o.cpu().numpy(),
        shrinkage=float(shrink),
    )


def _check_map(saliency_map: np.ndarray, what: str) -> np.ndarray:
    m = np.asarray(saliency_map)
    if m.ndim not in (3, 4):
        raise ExplainError(f"{what} needs a map of shape (C, H, W) or (C, T, H, W), got {m.shape}")
    return m


def saliency_pixels(improved_map: np.ndarray) -> np.ndarray:
    """Boolean mask ``{p : dV_j/dp >= 0}`` (eq. 11) over pixels: ``(H, W)`` or ``(T, H, W)``.

    A pixel's gradient is summed over the channels (axis 0) first; see the module docstring.
    Pixels with a zero gradient count as salient, as ``>=`` in the paper's definition says.
    """
    return _check_map(improved_map, "saliency_pixels").sum(axis=0) >= 0


def per_frame(saliency_map: np.ndarray) -> np.ndarray:
    """Per-frame maps ``(T, H, W)`` of a clip map ``(C, T, H, W)``: the largest ``|gradient|`` over channels."""
    m = np.asarray(saliency_map)
    if m.ndim != 4:
        raise ExplainError(f"per_frame needs a clip map (C, T, H, W), got {m.shape}")
    return np.abs(m).max(axis=0)


def _predict(model: nn.Module, xb: torch.Tensor, target: int) -> tuple[int, float]:
    with torch.no_grad():
        logits = _logits(model, xb)
    return int(logits.argmax()), float(torch.softmax(logits.double(), -1)[target])


def adversarial_check(
    model: nn.Module,
    x: torch.Tensor | np.ndarray,
    *,
    delta: float | None = None,
    target: int | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """The paper's check that saliency pixels matter: lower them by ``delta`` and re-classify.

    The improved saliency pixels (eq. 11, over all frames for a clip) are lowered by ``delta`` in
    every channel; as a control, the same number of pixels drawn uniformly at random (``seed``) are
    lowered by the same amount. Values are not clipped (flow features may be negative).

    Args:
        delta: intensity decrease; None takes the paper's 20 on a 0..255 scale: 20 when the input's
            largest absolute value exceeds 1 (uint8-scale input), else 20/255.
        target: class ``j`` whose saliency is used; the predicted class when None.

    Returns:
        ``target``, ``delta``, ``n_pixels`` (salient pixels), ``n_total`` (all pixels),
        ``pred_before``, ``score_before`` (``S_j`` on the input), and for ``saliency`` and
        ``random``: ``pred_<kind>``, ``changed_<kind>`` (prediction differs from ``pred_before``),
        ``score_<kind>`` and ``score_change_<kind>`` (``S_j`` after minus before). Scores are
        float64 softmax of the logits.
    """
    xb = _prepare(model, x)
    result = saliency_maps(model, xb, target=target)
    j = result.target
    if delta is None:
        delta = 20.0 if float(xb.abs().max()) > 1 else 20.0 / 255.0
    mask = saliency_pixels(result.improved)
    n = int(mask.sum())
    rng = np.random.default_rng(seed)
    random_mask = np.zeros(mask.size, dtype=bool)
    random_mask[rng.choice(mask.size, size=n, replace=False)] = True
    pred0, score0 = _predict(model, xb, j)
    report: dict[str, Any] = {
        "target": j, "delta": float(delta), "n_pixels": n, "n_total": int(mask.size),
        "pred_before": pred0, "score_before": score0,
    }
    for kind, m in (("saliency", mask), ("random", random_mask.reshape(mask.shape))):
        lowered = xb - float(delta) * torch.as_tensor(m, device=xb.device).to(xb.dtype)[None, None]
        pred, score = _predict(model, lowered, j)
        report |= {f"pred_{kind}": pred, f"changed_{kind}": pred != pred0,
                   f"score_{kind}": score, f"score_change_{kind}": score - score0}
    return report


def _to_rgb01(image: np.ndarray) -> np.ndarray:
    """An (H, W), (H, W, 1) or (H, W, 3) image as float RGB in [0, 1]."""
    img = np.asarray(image)
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[..., 0]
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    if img.ndim != 3 or img.shape[2] != 3:
        raise ExplainError(f"overlay needs an image (H, W), (H, W, 1) or (H, W, 3), got {np.asarray(image).shape}")
    if img.dtype == np.uint8:
        return img.astype(np.float64) / 255.0
    img = img.astype(np.float64)
    lo, hi = img.min(), img.max()
    if lo >= 0 and hi <= 1:
        return img
    return (img - lo) / (hi - lo) if hi > lo else np.zeros_like(img)


def overlay(image: np.ndarray, saliency_map: np.ndarray, *, alpha: float = 0.5, cmap: str = "jet") -> np.ndarray:
    """Blend a colour-mapped ``|saliency|`` onto the face/flow image; returns uint8 RGB ``(H, W, 3)``.

    Args:
        image: ``(H, W)`` grey or ``(H, W, 3)`` RGB; uint8 is taken as 0..255, floats in [0, 1] as
            they are, other floats are min-max scaled.
        saliency_map: ``(H, W)`` or ``(C, H, W)`` (reduced by the largest ``|gradient|`` over
            channels); scaled by its largest magnitude, so an all-zero map shows as the colormap's 0.
        alpha: weight of the heat map (0 = image only, 1 = heat map only).
        cmap: a matplotlib colormap name.
    """
    if not 0 <= alpha <= 1:
        raise ExplainError(f"overlay alpha must be in [0, 1], got {alpha}")
    heat = np.abs(np.asarray(saliency_map, dtype=np.float64))
    if heat.ndim == 3:
        heat = heat.max(axis=0)
    rgb = _to_rgb01(image)
    if heat.shape != rgb.shape[:2]:
        raise ExplainError(f"overlay: saliency map {heat.shape} does not match image {rgb.shape[:2]}")
    peak = heat.max()
    coloured = matplotlib.colormaps[cmap](heat / peak if peak > 0 else heat)[..., :3]
    return np.round(255 * ((1 - alpha) * rgb + alpha * coloured)).astype(np.uint8)


def save_overlay(path: str | Path, image: np.ndarray, saliency_map: np.ndarray, *,
                 alpha: float = 0.5, cmap: str = "jet") -> Path:
    """Write :func:`overlay` as a PNG at ``path`` (parent folders are created); returns the path."""
    path = Path(path)
    rgb = overlay(image, saliency_map, alpha=alpha, cmap=cmap)
    path.parent.mkdir(parents=True, exist_ok=True)
    matplotlib.image.imsave(path, rgb, format="png")
    return path
