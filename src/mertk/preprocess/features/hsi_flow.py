"""``hsi_flow``: HSI-coded flow from the first frame to every later frame, T-1 x 3 x H x W uint8 (SHCNN).

Every flow image is one model sample; ``inference=vote`` combines their predictions. ``apex_index``
becomes the apex's position among the flow images.

Hue codes the flow's direction, so a mirrored HSI image is not the mirrored pixels: with ``flip``
the mirrored copies ``x_flip`` are the HSI images of the mirrored, u-negated flows (same intensity
scale, since mirroring keeps every magnitude), one training sample each.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any, Mapping

import numpy as np

from ..encode import hsi_clip
from .base import FeatureFamily, Timer, mirror_flow, no_timer, register_family


class HSIFlow(FeatureFamily):
    name = "hsi_flow"
    description = "HSI-coded flow from the first frame to every later frame, T-1 x 3 x H x W uint8 (SHCNN)"
    defaults = MappingProxyType({"crop": "laenet", "flow": "tvl1"})
    size = (112, 112)
    dtype = np.uint8
    per_frame = True
    flip = flip_from_flow = True
    panels = ("HSI-coded flow at the apex",)
    panels_rgb = True

    def flow_pairs(self, n_frames: int, config: Any) -> int:
        return n_frames - 1

    def shape(self, config: Any, n_frames: int) -> tuple[int, ...]:
        return (n_frames - 1, 3, *config.size)

    def encode(self, frames: np.ndarray, grey: np.ndarray | None, points: np.ndarray, apex: int, config: Any,
               timer: Timer = no_timer) -> dict[str, np.ndarray]:
        from ..flow import get_flow_method

        method = get_flow_method(config.flow, **dict(config.flow_params))
        with timer("flow"):
            flows = method.batch([grey[0]] * (len(grey) - 1), list(grey[1:]))
        with timer("encode"):
            out = {"x": hsi_clip(flows, config.size, normalise=config.hsi_normalise),
                   "apex_index": np.array(apex - 1, dtype=np.int32)}
            if config.flip:
                out["x_flip"] = hsi_clip([mirror_flow(f) for f in flows], config.size, normalise=config.hsi_normalise)
        return out

    def panel_stack(self, arrays: Mapping[str, np.ndarray]) -> np.ndarray:
        x = np.asarray(arrays["x"])
        apex = int(np.clip(int(arrays.get("apex_index", len(x) - 1)), 0, len(x) - 1))
        return x[apex].astype(np.float32)[None] / 255.0

    def panels_note(self) -> str:
        return "mean of each class's HSI-coded onset->apex flow image (hue: direction, saturation: magnitude)"


register_family(HSIFlow())
