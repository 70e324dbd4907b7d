"""Prepared clips to model samples, and folds over clips to folds over samples.

A clip (or image) may give several samples. SHCNN classifies every flow image of a clip and votes;
ten-crop evaluation sums the scores of ten crops; augmentations (apex+1 flow, flips, rotations,
magnification, frame selection) add training-only samples. A flip mirrors an image or clip here
(:meth:`~mertk.preprocess.features.FeatureFamily.mirror`); a flow family's mirrored copies were built
at prepare time from the mirrored flow (``x_flip``, ``x_aug_flip``, and ``x_flip`` of every extra
magnification factor's features), so they are read here. Magnification and frame selection multiply
(STRCN): every factor of ``augment.magnify`` (besides the clip's own ``features.magnify``) and the clip's
own factor each give one copy from all frames and one per share of ``augment.frame_select``, i.e.
``len(factors) x (1 + len(shares))`` training samples per clip. Folds are built over clips by the
protocol and then expanded to samples (:func:`sample_folds`), so no sample of a test clip ever trains.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from ..errors import MertkError
from ..records import ClipRecord, ImageRecord
from ..preprocess.features import feature_family
from .inputs import model_view, ten_crops
from .recipe import Recipe

Record = ClipRecord | ImageRecord


def record_id(record: Record) -> str:
    """The id a record is known by across a run (its clip key, or ``dataset/item`` for an image)."""
    return record.key if isinstance(record, ClipRecord) else f"{record.dataset}/{record.item}"


@dataclass
class Samples:
    """Model inputs: ``x[j]`` belongs to clip ``owner[j]``; ``train_only`` samples never test;
    ``apex`` marks the apex frame's sample of a clip (SHCNN's tie-break)."""

    x: np.ndarray
    owner: np.ndarray
    train_only: np.ndarray
    apex: np.ndarray

    def __len__(self) -> int:
        return len(self.owner)


def geometric_copies(x: np.ndarray, feature: str, flip: bool, rotate: Sequence[float]) -> list[np.ndarray]:
    """Flipped and rotated copies of one clip ``(T, H, W, 3)`` or grey image ``(1, H, W)``; with both,
    the rotations apply to the original and the mirrored image (the 3D-CNN paper's x10)."""
    family = feature_family(feature)
    bases = [x]
    if flip:
        bases.append(family.mirror(x))
    out = bases[1:]
    for base in bases:
        for angle in rotate:
            out.append(family.rotated(base, angle))
    return [np.ascontiguousarray(o) for o in out]


def _flipped(arrays: Any, key: str, rid: str) -> np.ndarray:
    """The prepared mirrored copy ``key`` of a record (``augment.flip`` on a ``flip_from_flow`` family)."""
    if key not in arrays:
        raise MertkError(f"{rid}: augment.flip needs the prepared mirrored copy {key!r} (PrepareConfig.flip=true)")
    return np.asarray(arrays[key])


def magnify_levels(recipe: Recipe, config: Any) -> list[float]:
    """The extra magnification factors of a run: ``augment.magnify`` without the clips' own factor."""
    return [a for a in dict.fromkeys(float(a) for a in recipe.augment.magnify) if a != config.magnify]


def build_samples(features: list[Any], extra: dict[float, dict[str, Any]], feature: str, recipe: Recipe,
                  crop: int | None) -> Samples:
    """Samples of every clip (see the module docstring); ``extra`` maps a magnification factor to
    the features prepared with it (by record id)."""
    aug = recipe.augment
    family = feature_family(feature)
    per_frame = family.per_frame
    flow_flip = aug.flip and family.flip_from_flow
    image_flip = aug.flip and not family.flip_from_flow
    xs: list[np.ndarray] = []
    owner: list[int] = []
    train_only: list[bool] = []
    apex: list[bool] = []

    def add(x: np.ndarray, i: int, only_train: bool, is_apex: bool = False) -> None:
        xs.append(model_view(x, feature))
        owner.append(i)
        train_only.append(only_train)
        apex.append(is_apex)

    for i, feat in enumerate(features):
        arrays = feat.arrays
        x = np.asarray(arrays["x"])
        rid = record_id(feat.record)
        if per_frame:
            apex_index = int(arrays.get("apex_index", len(x) - 1))
            for t in range(len(x)):
                add(x[t], i, False, t == apex_index)
            for frame in _flipped(arrays, "x_flip", rid) if flow_flip else ():
                add(frame, i, True)
            for alpha in sorted(extra):
                more = extra[alpha][rid].arrays
                for frame in np.asarray(more["x"]):
                    add(frame, i, True)
                for frame in _flipped(more, "x_flip", rid) if flow_flip else ():
                    add(frame, i, True)
            continue
        if recipe.inference == "ten_crop":
            for c in ten_crops(x, crop or x.shape[-1]):
                add(c, i, False)
            continue
        add(x, i, False, True)
        if flow_flip:
            add(_flipped(arrays, "x_flip", rid), i, True)
        if aug.apex_plus_one and "x_aug" in arrays:
            add(np.asarray(arrays["x_aug"]), i, True)
            if flow_flip:
                add(_flipped(arrays, "x_aug_flip", rid), i, True)
        for copy in geometric_copies(x, feature, image_flip, aug.rotate) if (image_flip or aug.rotate) else ():
            add(copy, i, True)
        for copy in np.asarray(arrays.get("x_select", ())):
            add(copy, i, True)
        for alpha in sorted(extra):
            if rid in extra[alpha]:
                more = extra[alpha][rid].arrays
                add(np.asarray(more["x"]), i, True)
                if flow_flip:
                    add(_flipped(more, "x_flip", rid), i, True)
                for copy in np.asarray(more.get("x_select", ())):
                    add(copy, i, True)
    if not xs:
        raise MertkError("no samples: every clip was skipped")
    return Samples(np.stack(xs), np.array(owner), np.array(train_only), np.array(apex))


def classical_samples(features: list[Any]) -> Samples:
    """One sample per clip, kept as the pipeline's bytes (a classical model computes its own descriptor)."""
    n = len(features)
    return Samples(np.stack([np.asarray(f.arrays["x"]) for f in features]), np.arange(n),
                   np.zeros(n, dtype=bool), np.ones(n, dtype=bool))


def sample_folds(clip_folds: Sequence[Any], samples: Samples) -> list[Any]:
    """Expand folds over clips to folds over samples (test and validation: the clips' non-augmented
    samples; train: every sample of the training clips)."""
    from .protocols import Fold

    out = []
    for fold in clip_folds:
        parts = {}
        for part in ("train", "test", "val"):
            clips = np.zeros(samples.owner.max() + 1, dtype=bool)
            clips[list(getattr(fold, part))] = True
            chosen = clips[samples.owner] if part == "train" else clips[samples.owner] & ~samples.train_only
            parts[part] = tuple(np.flatnonzero(chosen))
        out.append(Fold(fold.name, parts["train"], parts["test"], parts["val"]))
    return out


def masked_inputs(samples: Samples, train_clip_samples: np.ndarray, feature: str) -> tuple[np.ndarray, np.ndarray]:
    """Inputs of one fold for a ``pixel_mask`` feature family (STRCN-A): the mask fitted on the fold's
    training clips only, then applied to every sample. Returns ``(x, mask)``: the family's
    :meth:`~mertk.preprocess.features.FeatureFamily.masked_view` of every sample (STRCN-A:
    ``(N, 3, n_pixels, T)`` floats in [0, 1]) and the mask."""
    family = feature_family(feature)
    mask = family.fit_mask(samples.x[j] for j in train_clip_samples)
    return np.stack([family.masked_view(x, mask) for x in samples.x]), mask
