"""LBP-TOP + linear SVM (Zhao & Pietikainen 2007), the classical baseline the five papers compare with.

The descriptor: a grey clip ``(T, H, W)`` is seen as three stacks of planes, XY (one per frame), XT
(one per row) and YT (one per column). Every plane gets scikit-image's uniform LBP codes, and every
voxel thus three codes. The volume is cut into a ``(rows, cols, time)`` grid of blocks, and each block
gets one histogram of codes per plane, each L1-normalised; the feature is their concatenation,
ordered ``block, plane, bin``: ``rows * cols * time * 3 * n_bins`` values.

Choices and their reasons:

- LBP codes use ``method="nri_uniform"`` (uniform patterns, not rotation invariant: 59 bins for
  P = 8, the "u2" codes of the LBP-TOP paper). Rotation invariance (``"uniform"``, P + 2 bins) would
  merge, in the XT and YT planes, patterns that differ by the direction of motion.
- scikit-image samples a circle, so in the XT and YT planes the radius is the same along time and
  along x or y: ``radii = (r_xy, r_xt, r_yt)`` is one radius per plane (the paper's elliptic
  R_X != R_T sampling is not available there).
- Voxels within a radius of the volume's border are left out of every histogram (their circle would
  read outside the clip; scikit-image reads zeros there).
- Class scores are the SVM's one-vs-rest margins; :meth:`LBPTOPSVM.predict_proba` turns them into a
  softmax, which keeps the SVM's decision (argmax) but is not a calibrated probability. Calibration
  (``CalibratedClassifierCV``) would need another split of the few training subjects.

Hyper-parameters (block grid, radii, C) come in two ways: the model's own values, or ``search``, a
mapping of candidate lists that :mod:`mertk.engine.classical` tries by subject-wise inner validation
on each fold's training subjects.

The model is fitted, not trained by gradient: it is registered with ``kind="classical"`` and its
parameter count is the linear SVM's weights and biases at the model's block grid.
"""

from __future__ import annotations

import itertools
from typing import Any, Mapping, Sequence

import numpy as np

from ._base import InputSpec, ModelError
from ._registry import register_model

PLANES = ("xy", "xt", "yt")
LBP_METHODS = ("nri_uniform", "uniform")
SEARCH_KEYS = ("grid", "radii", "C")


def n_bins(points: int, method: str) -> int:
    """Number of distinct codes of scikit-image's LBP ``method`` with ``points`` neighbours."""
    if method == "nri_uniform":
        return points * (points - 1) + 3
    if method == "uniform":
        return points + 2
    raise ModelError(f"LBP method {method!r} is unknown; choose from: {', '.join(LBP_METHODS)}")


def grey_clip(clip: np.ndarray) -> np.ndarray:
    """A ``(T, H, W)`` uint8 grey clip from ``(T, H, W, 3)`` RGB bytes (the ``clip_rgb`` feature) or grey bytes."""
    import cv2

    clip = np.asarray(clip)
    if clip.dtype != np.uint8:
        raise ModelError(f"LBP-TOP needs uint8 frames, got {clip.dtype}")
    if clip.ndim == 4 and clip.shape[-1] == 3:
        return np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in clip])
    if clip.ndim == 3:
        return clip
    raise ModelError(f"LBP-TOP needs a (T, H, W, 3) or (T, H, W) clip, got shape {clip.shape}")


def lbp_top_codes(grey: np.ndarray, radii: Sequence[float], points: int = 8,
                  method: str = "nri_uniform") -> np.ndarray:
    """The three planes' LBP codes of every voxel: ``(3, T', H', W')`` uint8, planes in :data:`PLANES`
    order, cropped by the largest radius in each axis so that no code reads outside the clip."""
    from skimage.feature import local_binary_pattern

    r_xy, r_xt, r_yt = (float(r) for r in radii)
    if min(r_xy, r_xt, r_yt) <= 0:
        raise ModelError(f"LBP-TOP radii must be > 0, got {tuple(radii)}")
    n_bins(points, method)
    t, h, w = grey.shape
    mt = int(np.ceil(max(r_xt, r_yt)))
    my = int(np.ceil(max(r_xy, r_yt)))
    mx = int(np.ceil(max(r_xy, r_xt)))
    if t <= 2 * mt or h <= 2 * my or w <= 2 * mx:
        raise ModelError(f"LBP-TOP radii {tuple(radii)} leave no voxel of a {t}x{h}x{w} clip")
    lbp = lambda plane, r: local_binary_pattern(plane, points, r, method)  # noqa: E731
    xy = np.stack([lbp(grey[k], r_xy) for k in range(t)])
    xt = np.stack([lbp(grey[:, k, :], r_xt) for k in range(h)], axis=1)
    yt = np.stack([lbp(grey[:, :, k], r_yt) for k in range(w)], axis=2)
    return np.stack([c[mt:t - mt, my:h - my, mx:w - mx] for c in (xy, xt, yt)]).astype(np.uint8)


def block_histograms(codes: np.ndarray, grid: Sequence[int], bins: int) -> np.ndarray:
    """Per-block, per-plane L1-normalised code histograms of :func:`lbp_top_codes` output, flattened
    in ``block (row, col, time), plane, bin`` order; ``grid`` is ``(rows, cols, time)``."""
    rows, cols, times = (int(g) for g in grid)
    _, t, h, w = codes.shape
    if min(rows, cols, times) < 1 or rows > h or cols > w or times > t:
        raise ModelError(f"LBP-TOP grid {tuple(grid)} does not fit the {t}x{h}x{w} voxels that have codes")
    edges = lambda n, k: np.minimum(np.arange(n) * k // n, k - 1)  # noqa: E731  (block index of each position)
    spatial = edges(h, rows)[None, :, None] * cols + edges(w, cols)[None, None, :]
    block = spatial * times + edges(t, times)[:, None, None]
    n_blocks = rows * cols * times
    out = np.empty((n_blocks, len(PLANES), bins), dtype=np.float64)
    for p in range(len(PLANES)):
        counts = np.bincount((block * bins + codes[p]).ravel(), minlength=n_blocks * bins).reshape(n_blocks, bins)
        out[:, p] = counts / counts.sum(axis=1, keepdims=True)
    return out.reshape(-1).astype(np.float32)


def lbp_top(clip: np.ndarray, grid: Sequence[int] = (5, 5, 1), radii: Sequence[float] = (1, 1, 1),
            points: int = 8, method: str = "nri_uniform") -> np.ndarray:
    """The LBP-TOP descriptor of one clip (module docstring): ``(rows * cols * time * 3 * n_bins,)``."""
    return block_histograms(lbp_top_codes(grey_clip(clip), radii, points, method), grid, n_bins(points, method))


def _triple(value: Any, what: str) -> tuple:
    items = tuple(value) if isinstance(value, (list, tuple)) else (value,) * 3
    if len(items) != 3:
        raise ModelError(f"LBP-TOP {what} takes 3 values, got {value!r}")
    return items


class LBPTOPSVM:
    """LBP-TOP descriptor + ``sklearn.svm.LinearSVC`` (one-vs-rest, ``class_weight`` balanced by default).

    Args:
        num_classes: output classes.
        input_size: ``(T, H, W)`` of the ``clip_rgb`` clips the pipeline builds.
        grid: ``(rows, cols, time)`` blocks.
        radii: LBP radius in the XY, XT and YT planes.
        points: LBP neighbours per plane.
        method: scikit-image LBP method (``nri_uniform`` or ``uniform``).
        C: the SVM's regularisation constant.
        class_weight: passed to LinearSVC (``"balanced"`` or ``None``).
        search: candidate lists for ``grid``, ``radii`` and ``C`` tried by inner validation (absent
            keys keep the model's value); ``None`` uses the model's values.
        inner_folds: subject-wise inner folds for the search (fewer when fewer subjects train).
        max_iter: LinearSVC iterations.
    """

    kind = "classical"

    def __init__(self, num_classes: int = 3, *, input_size: Sequence[int] = (16, 128, 128),
                 grid: Sequence[int] = (5, 5, 1), radii: Sequence[float] | float = (1, 1, 1), points: int = 8,
                 method: str = "nri_uniform", C: float = 1.0, class_weight: str | None = "balanced",
                 search: Mapping[str, Sequence[Any]] | None = None, inner_folds: int = 3, max_iter: int = 10_000):
        if num_classes < 2:
            raise ModelError(f"LBPTOPSVM needs num_classes >= 2, got {num_classes}")
        t, h, w = (int(v) for v in _triple(input_size, "input_size"))
        self.num_classes = int(num_classes)
        self.input_spec = InputSpec("clip_rgb", (3, t, h, w), f"{t} frames x {h}x{w} clip, grey inside LBP-TOP")
        self.grid = tuple(int(g) for g in _triple(grid, "grid"))
        self.radii = tuple(float(r) for r in _triple(radii, "radii"))
        self.points, self.method = int(points), method
        self.bins = n_bins(self.points, method)
        self.C, self.class_weight = float(C), class_weight
        self.search = {k: list(v) for k, v in dict(search or {}).items()}
        unknown = sorted(set(self.search) - set(SEARCH_KEYS))
        if unknown:
            raise ModelError(f"LBPTOPSVM search key {unknown[0]!r} is unknown; valid keys: {', '.join(SEARCH_KEYS)}")
        if any(not v for v in self.search.values()):
            raise ModelError("LBPTOPSVM search lists must not be empty")
        if inner_folds < 2:
            raise ModelError(f"LBPTOPSVM inner_folds must be >= 2, got {inner_folds}")
        self.inner_folds, self.max_iter = int(inner_folds), int(max_iter)
        self.svm: Any = None
        self.classes_: np.ndarray | None = None

    @property
    def num_features(self) -> int:
        """Length of the descriptor at the model's grid."""
        return int(np.prod(self.grid)) * len(PLANES) * self.bins

    @property
    def num_params(self) -> int:
        """The linear SVM's weights and biases: one row per class (one-vs-rest; one row for 2 classes)."""
        rows = 1 if self.num_classes == 2 else self.num_classes
        return rows * (self.num_features + 1)

    def hyperparameters(self) -> dict[str, Any]:
        """The model's current block grid, radii and C (plain lists, as results.json records them)."""
        return {"grid": list(self.grid), "radii": list(self.radii), "C": self.C}

    def candidates(self) -> list[dict[str, Any]]:
        """Every combination of the ``search`` lists (the model's own value for an absent key)."""
        own = self.hyperparameters()
        lists = [self.search.get(k, [own[k]]) for k in SEARCH_KEYS]
        return [dict(zip(SEARCH_KEYS, combo)) for combo in itertools.product(*lists)]

    def with_hyperparameters(self, grid: Sequence[int], radii: Sequence[float], C: float) -> "LBPTOPSVM":
        """An unfitted copy with other hyper-parameters and no search."""
        t, h, w = self.input_spec.shape[1:]
        return LBPTOPSVM(self.num_classes, input_size=(t, h, w), grid=grid, radii=radii, points=self.points,
                         method=self.method, C=C, class_weight=self.class_weight, inner_folds=self.inner_folds,
                         max_iter=self.max_iter)

    def descriptor(self, clip: np.ndarray) -> np.ndarray:
        """:func:`lbp_top` of one clip at the model's settings."""
        return lbp_top(clip, self.grid, self.radii, self.points, self.method)

    @staticmethod
    def descriptor_key(candidate: Mapping[str, Any]) -> tuple:
        """What a candidate's descriptor depends on: ``(grid, radii)`` (not C)."""
        return tuple(int(g) for g in candidate["grid"]), tuple(float(r) for r in candidate["radii"])

    def descriptors(self, clips: Sequence[np.ndarray], *, progress: bool = False) -> dict[tuple, np.ndarray]:
        """Every clip's descriptor at every ``(grid, radii)`` of :meth:`candidates`: ``{key: (N, F)}``.

        The codes of one radius setting are computed once per clip and histogrammed for each grid.
        """
        from ..progress import ProgressBar

        by_radii: dict[tuple, list[tuple]] = {}
        for grid, radii in sorted({self.descriptor_key(c) for c in self.candidates()}):
            by_radii.setdefault(radii, []).append(grid)
        out: dict[tuple, list[np.ndarray]] = {(g, r): [] for r, grids in by_radii.items() for g in grids}
        with ProgressBar(progress, len(clips) * len(by_radii), "LBP-TOP descriptors") as advance:
            for radii, grids in by_radii.items():
                for clip in clips:
                    codes = lbp_top_codes(grey_clip(clip), radii, self.points, self.method)
                    for grid in grids:
                        out[(grid, radii)].append(block_histograms(codes, grid, self.bins))
                    advance(1)
        return {k: np.stack(v) for k, v in out.items()}

    def fit(self, features: np.ndarray, y: np.ndarray, *, seed: int = 0) -> "LBPTOPSVM":
        """Fit the SVM on descriptors ``(N, num_features)``; a single class present gives a constant model."""
        from sklearn.svm import LinearSVC

        y = np.asarray(y)
        self.classes_ = np.unique(y)
        self.svm = None
        if len(self.classes_) > 1:
            self.svm = LinearSVC(C=self.C, class_weight=self.class_weight, max_iter=self.max_iter, random_state=seed)
            self.svm.fit(features, y)
        return self

    def decision_function(self, features: np.ndarray) -> np.ndarray:
        """``(N, num_classes)`` margins; classes absent from training get ``-inf``."""
        if self.classes_ is None:
            raise ModelError("LBPTOPSVM is not fitted")
        out = np.full((len(features), self.num_classes), -np.inf)
        if self.svm is None:
            out[:, self.classes_[0]] = 0.0
            return out
        scores = self.svm.decision_function(features)
        if scores.ndim == 1:  # two classes: sklearn returns the margin of the second
            scores = np.stack([-scores, scores], axis=1)
        out[:, self.classes_] = scores
        return out

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        """Softmax of :meth:`decision_function` (same argmax as the SVM; not calibrated)."""
        from scipy.special import softmax

        return softmax(self.decision_function(features), axis=1).astype(np.float32)


@register_model(
    "lbptop",
    paper="baseline (Zhao & Pietikainen 2007), compared in the papers",
    description="LBP-TOP (XY/XT/YT uniform LBP, 5x5x1 blocks) + linear SVM; params = SVM weights, fitted",
    input_spec=InputSpec("clip_rgb", (3, 16, 128, 128), "16 frames x 128x128 clip, grey inside LBP-TOP"),
    kind="classical",
)
def lbptop(**kw) -> LBPTOPSVM:
    return LBPTOPSVM(**kw)
