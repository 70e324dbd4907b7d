"""Feature families: one module per family, each registered in :data:`mertk.registry.FEATURES`.

Importing this package registers every family; :func:`feature_family` returns one by name (an
unknown name lists the registered ones). See :mod:`.base` for what a family owns.
"""

from __future__ import annotations

from ...registry import FEATURES
from . import clip_rgb, flow_uv, gray_face, hsi_flow, shallow, strcn_pixels, uvs  # noqa: F401  (register the families)
from .base import FeatureFamily, Timer, no_timer, register_family, select_frames


def feature_family(name: str) -> FeatureFamily:
    """The registered feature family ``name``.

    Raises:
        UnknownNameError: ``name`` is not registered (the message lists the valid names).
    """
    return FEATURES.get(name)


__all__ = ["FEATURES", "FeatureFamily", "Timer", "feature_family", "no_timer", "register_family", "select_frames"]
