"""``uvs``: [u, v, optical strain] of the onset->apex flow, 3 x H x W float (STSTNet, LAENet).

Built from clips, or read from precomputed [u, v, strain] images of a still-image dataset. The strain
is computed from the unmasked flow, then the eye mask (LAENet, section 2.2.4) zeroes every channel,
so the mask's border shows no strain that the face does not have. With ``flip`` the mirrored copy
``x_flip`` is encoded (and normalised) from the mirrored, u-negated flow; a precomputed image has no
flow to mirror, so ``flip`` rejects it.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

import numpy as np

from ...errors import DataError
from ..crop import resize
from ..encode import uvs_image
from ..eyemask import apply_eye_mask
from ..strain import optical_strain
from .base import ApexFlowFamily, Timer, no_timer, register_family


class UVS(ApexFlowFamily):
    name = "uvs"
    description = "[u, v, optical strain] of the onset->apex flow, 3 x H x W float (STSTNet, LAENet)"
    images = True
    defaults = MappingProxyType({"crop": "laenet", "flow": "tvl1"})
    size = (28, 28)
    panels = ("u", "v", "strain")

    def channels(self, flow: np.ndarray, mask: np.ndarray | None, config: Any, timer: Timer = no_timer) -> np.ndarray:
        with timer("strain"):
            strain = optical_strain(flow)
        with timer("encode"):
            if mask is not None:
                flow, strain = apply_eye_mask(flow, mask), apply_eye_mask(strain, mask)
            return uvs_image(flow, strain, normalise=config.uvs_normalise, size=config.size).transpose(2, 0, 1)

    def encode_image(self, image: np.ndarray, config: Any, source: Any) -> dict[str, np.ndarray]:
        if image.ndim != 3 or image.shape[2] != 3:
            raise DataError(source, f"a [u, v, strain] map needs 3 channels, got shape {image.shape}")
        if config.flip:
            raise DataError(source, "flip mirrors the raw flow, and a precomputed [u, v, strain] image has none "
                                    "(its normalisation is unknown, so its u cannot be negated)")
        return {"x": (resize(image, config.size).astype(np.float32) / 255.0).transpose(2, 0, 1)}


register_family(UVS())
