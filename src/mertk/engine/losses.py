"""Losses, class weights, batch mixing and epoch sampling: the pieces of one training step.

The trainer (:mod:`mertk.engine.train`) picks among them by its :class:`~mertk.engine.trainconfig.TrainConfig`:
:func:`compute_loss` (``ce``, ``soft``, ``balanced``, ``focal``), :func:`class_balanced_weights`,
:func:`mix_batch` and :func:`mixed_loss` (mixup, CutMix), :func:`jitter_factors`, :func:`l2_penalty`,
and the epoch samplers :func:`epoch_indices` and :func:`balanced_epoch_indices`.

One epoch of a training set of ``n`` samples at batch size ``B`` is ``ceil(n / b)`` gradient steps of
exactly ``b = min(B, n)`` samples each: a fresh shuffle is cut into batches and, when ``n`` is not a
multiple of ``b``, the last batch is topped up with the first samples of a second shuffle instead of
being short. Every step therefore has the same size (which fold batching needs, and which keeps
BatchNorm statistics from a tiny last batch out of training), the number of steps per epoch is the
usual one, and over many epochs every sample is drawn equally often.
"""

from __future__ import annotations

import math
from typing import Any, Iterable

import numpy as np
import torch
import torch.nn.functional as F

from .trainconfig import TrainError


def balanced_weights(y: torch.Tensor, num_classes: int) -> torch.Tensor:
    """STRCN's per-sample weights, inversely proportional to the sample's class ratio in the batch.

    ``beta_i = N / (K * n_{y_i})`` for a batch of ``N`` samples with ``n_c`` samples of class ``c`` and
    ``K`` classes present: every present class gets the same total weight ``N / K`` and the weights
    average 1 (the paper fixes only the proportionality). ``y`` is ``(..., N)``; the result has its shape.
    """
    onehot = F.one_hot(y, num_classes).to(torch.float32)
    counts = onehot.sum(-2, keepdim=True)
    present = (counts > 0).sum(-1, keepdim=True).to(torch.float32)
    n_own = (onehot * counts).sum(-1)
    return y.shape[-1] / (present.squeeze(-1) * n_own)


def balanced_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """STRCN's multi-class balanced loss (Xia et al. 2019, eq. 9-10), averaged over the batch.

    With softmax probabilities ``p`` and one-hot ``y``, eq. 9 gives ``p_t = p^y (1 - p)^(1 - y)``
    elementwise over classes, and eq. 10 sums ``-beta_i log p_t`` over the classes of sample ``i``:
    ``-beta_i [log p_{y_i} + sum_{c != y_i} log(1 - p_c)]``. The batch mean (not the paper's sum) keeps
    the learning rate on the scale of MatConvNet, whose trainer divides the summed gradient by the
    batch size. ``logits`` is ``(..., N, C)``, ``y`` ``(..., N)``; returns ``(...)``.
    """
    logp = F.log_softmax(logits, -1)
    log1mp = torch.log1p(-logp.exp().clamp(max=1 - 1e-6))
    onehot = F.one_hot(y, logits.shape[-1]).to(logp.dtype)
    per_sample = -(onehot * logp + (1 - onehot) * log1mp).sum(-1)
    return (balanced_weights(y, logits.shape[-1]) * per_sample).mean(-1)


def class_balanced_weights(y: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Per-class weights ``n / (K * n_c)`` of a training set's labels ``y (n,)``.

    ``n_c`` is the count of class ``c`` and ``K`` the number of classes present, so every present
    class carries the same total weight and the weights average 1 over the training samples; an
    absent class gets 0. The trainers compute them from a fold's training samples only.
    """
    counts = torch.bincount(y.long().cpu(), minlength=num_classes).to(torch.float32)
    present = (counts > 0).sum().to(torch.float32)
    return torch.where(counts > 0, len(y) / (present * counts.clamp_min(1)), torch.zeros(()))


def compute_loss(logits: torch.Tensor, y: torch.Tensor, kind: str, *, weights: torch.Tensor | None = None,
                 gamma: float = 2.0) -> torch.Tensor:
    """Mean loss over the batch axis: ``logits (..., N, C)``; ``y (..., N)`` labels or ``(..., N, C)`` targets.

    ``soft`` takes target distributions (FERPlus votes) and equals ``ce`` on one-hot targets.
    ``focal`` is ``-(1 - p_y)^gamma log p_y`` (``ce`` at ``gamma = 0``). ``weights (..., C)`` (``ce``
    and ``focal``) multiply each sample's loss by its class's weight before the batch mean.
    """
    if kind == "balanced":
        return balanced_loss(logits, y)
    logp = F.log_softmax(logits, -1)
    if kind == "soft":
        return -(y * logp).sum(-1).mean(-1)
    per_sample = -logp.gather(-1, y.unsqueeze(-1)).squeeze(-1)
    if kind == "focal":
        per_sample = per_sample * (1 - (-per_sample).exp()).pow(gamma)
    if weights is not None:
        per_sample = per_sample * weights.gather(-1, y)
    return per_sample.mean(-1)


def mixed_loss(logits: torch.Tensor, y: torch.Tensor, kind: str, lam: float | torch.Tensor, perm: torch.Tensor,
               **kwargs: Any) -> torch.Tensor:
    """The loss of a mixed batch: ``lam * loss(y) + (1 - lam) * loss(y[perm])``.

    Every loss of :func:`compute_loss` but ``balanced`` is linear in the target distribution, so this
    is the ``soft`` loss against the mixed targets ``lam * y + (1 - lam) * y[perm]`` (with the class
    weights and the focal factor where set). ``lam`` is a number or ``(...)``, ``perm`` ``(..., N)``;
    ``kwargs`` go to :func:`compute_loss`.
    """
    if y.is_floating_point():
        other = y.gather(-2, perm.unsqueeze(-1).expand_as(y))
    else:
        other = y.gather(-1, perm)
    return lam * compute_loss(logits, y, kind, **kwargs) + (1 - lam) * compute_loss(logits, other, kind, **kwargs)


def mix_batch(xb: torch.Tensor, generator: torch.Generator, *, mixup: float = 0.0,
              cutmix: float = 0.0) -> tuple[torch.Tensor, float, torch.Tensor]:
    """Mixup or CutMix of a batch ``(b, C, H, W)``; returns (mixed batch, lam, perm).

    A permutation ``perm`` of the batch and ``lam ~ Beta(alpha, alpha)`` are drawn from ``generator``.
    Mixup returns ``lam * x + (1 - lam) * x[perm]``. CutMix pastes a box of ``x[perm]`` into ``x``: its
    sides are ``sqrt(1 - lam)`` of the input's, its centre uniform, the box clipped to the input, and
    ``lam`` is then corrected to the share of the input left unpasted.
    """
    alpha = mixup or cutmix
    perm = torch.randperm(len(xb), generator=generator)
    rng = np.random.default_rng(int(torch.randint(2**62, (1,), generator=generator)))
    lam = float(rng.beta(alpha, alpha))
    other = xb[perm.to(xb.device)]
    if mixup:
        return lam * xb + (1 - lam) * other, lam, perm
    h, w = xb.shape[-2:]
    cut = math.sqrt(1 - lam)
    ch, cw = int(h * cut), int(w * cut)
    cy, cx = int(rng.integers(h)), int(rng.integers(w))
    y0, y1 = max(cy - ch // 2, 0), min(cy + ch - ch // 2, h)
    x0, x1 = max(cx - cw // 2, 0), min(cx + cw - cw // 2, w)
    out = xb.clone()
    out[..., y0:y1, x0:x1] = other[..., y0:y1, x0:x1]
    return out, 1 - (y1 - y0) * (x1 - x0) / (h * w), perm


def jitter_factors(b: int, strength: float, generator: torch.Generator) -> torch.Tensor:
    """``b`` magnitude-jitter factors drawn from ``U(1 - strength, 1 + strength)`` with ``generator``.

    Multiplying a flow sample by a factor scales its motion magnitudes; strain channels, computed
    from the flow's spatial derivatives, scale linearly with it, so one factor per sample keeps
    [u, v, strain] consistent. On non-flow inputs (grey images) it is a contrast change.
    """
    return 1 - strength + 2 * strength * torch.rand(b, generator=generator)


def l2_penalty(params: Iterable[torch.Tensor], *, stacked: bool = False) -> torch.Tensor:
    """``sum ||w||^2`` over convolution and linear weights (tensors of 2+ dims; biases and norms excluded).

    With ``stacked`` the tensors carry a leading fold axis and the result is one value per fold.
    """
    lead = 1 if stacked else 0
    terms = [p.pow(2).flatten(lead).sum(-1) for p in params if p.dim() - lead >= 2]
    if not terms:
        raise TrainError("train.l2 > 0 but the model has no weight matrix or kernel to penalise")
    return torch.stack(terms).sum(0)


def epoch_indices(n: int, batch_size: int, generator: torch.Generator) -> torch.Tensor:
    """One epoch's batches as ``(steps, b)`` positions into ``range(n)`` (see the module docstring)."""
    b = min(batch_size, n)
    steps = math.ceil(n / b)
    order = torch.randperm(n, generator=generator)
    if steps * b > n:
        order = torch.cat([order, torch.randperm(n, generator=generator)[: steps * b - n]])
    return order.view(steps, b)


def balanced_epoch_indices(labels: torch.Tensor, batch_size: int, generator: torch.Generator) -> torch.Tensor:
    """One class-balanced epoch as ``(steps, b)`` positions into ``range(len(labels))``.

    As many steps of as many samples as :func:`epoch_indices`, drawn with replacement, each sample
    with probability proportional to ``1 / n_c`` of its class ``c`` in ``labels`` (the fold's
    training labels), so every present class is drawn equally often in expectation.
    """
    n = len(labels)
    b = min(batch_size, n)
    steps = math.ceil(n / b)
    labels = labels.long().cpu()
    p = 1.0 / torch.bincount(labels)[labels].to(torch.float64)
    return torch.multinomial(p, steps * b, replacement=True, generator=generator).view(steps, b)

