"""What a model sees of a prepared clip, shared by training, checkpoints, nested selection and the bench:
the model view of one sample, ten-crop evaluation and the rule that turns a clip's sample
probabilities into one prediction. Depends on nothing else of the engine."""

from __future__ import annotations

from typing import Any

import numpy as np

TEN_CROP_CORNERS = ("top-left", "top-right", "bottom-left", "bottom-right", "centre")


def model_view(x: np.ndarray, feature: str) -> np.ndarray:
    """One sample as the model takes it: the feature family's view (clips channels-first, bytes to [0, 1]
    floats; STRCN pixels stay as prepared, masked per fold by :func:`mertk.engine.samples.masked_inputs`)."""
    from ..preprocess.features import feature_family

    return feature_family(feature).model_view(x)


def model_input_spec(name: str, kwargs: dict[str, Any]):
    """The input spec of model ``name`` built with ``kwargs`` (on the meta device: no weights)."""
    import torch

    from ..models import create_model

    with torch.device("meta"):
        return create_model(name, **kwargs).input_spec


def ten_crops(image: np.ndarray, size: int) -> list[np.ndarray]:
    """The ten crops of a ``(C, H, W)`` image: four corners and the centre, each also mirrored."""
    _, h, w = image.shape
    top, left = (h - size) // 2, (w - size) // 2
    corners = [(0, 0), (0, w - size), (h - size, 0), (h - size, w - size), (top, left)]
    crops = [image[:, r:r + size, c:c + size] for r, c in corners]
    return crops + [c[:, :, ::-1] for c in crops]


def aggregate(probs: np.ndarray, rule: str, apex: np.ndarray) -> tuple[np.ndarray, int]:
    """One clip's probabilities and predicted class from its test samples' probabilities.

    ``vote``: majority of the per-sample classes, a tie going to the apex sample's class when it is
    among the tied classes (else the tied class of highest mean probability); probabilities are the
    mean. Otherwise (one sample, or ten crops) the mean probabilities decide (the sum of the scores).
    """
    mean = probs.mean(axis=0)
    if rule != "vote" or len(probs) == 1:
        return mean, int(np.argmax(mean))
    votes = np.bincount(probs.argmax(axis=1), minlength=probs.shape[1])
    tied = np.flatnonzero(votes == votes.max())
    if len(tied) == 1:
        return mean, int(tied[0])
    if apex.any():
        apex_class = int(probs[np.flatnonzero(apex)[0]].argmax())
        if apex_class in tied:
            return mean, apex_class
    return mean, int(tied[np.argmax(mean[tied])])
