"""``strcn_pixels``: the cropped clip normalised to ``frames`` frames, T x H x W x 3 uint8 (STRCN-A).

Faces are 64 x 48 (H x W) whatever the model's input shape (which counts selected pixels, not rows
and columns). The mask of micro-expression-aware pixels is fitted on training folds only, at training
time (``pixel_mask``), so the model view is the clip itself until the mask is applied.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any, Sequence

import numpy as np

from ..eyemask import apply_strcn_mask, fit_strcn_mask
from .base import FrameSequenceFamily, as_float, register_family


class StrcnPixels(FrameSequenceFamily):
    name = "strcn_pixels"
    description = "the eye-box clip at 64 x 48, 30 frames, T x H x W x 3 uint8; pixels selected per fold (STRCN-A)"
    defaults = MappingProxyType({"crop": "strcn", "frames": 30, "temporal": "tim"})
    size = (64, 48)
    pixel_mask = True

    def input_size(self, shape: Sequence[int]) -> tuple[int, int]:
        return self.size

    def model_view(self, x: np.ndarray) -> np.ndarray:
        return x

    def fit_mask(self, train_x: Any) -> np.ndarray:
        return fit_strcn_mask(train_x, percentile=30)

    def masked_view(self, x: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """``(3, n_pixels, T)`` floats in [0, 1]: the selected pixels of every frame, channels first."""
        return as_float(apply_strcn_mask(x, mask)).transpose(2, 0, 1)


register_family(StrcnPixels())
