"""Explaining trained models: saliency maps (original and improved, shcnn-miao-2019) and overlays.

The names are imported lazily so that ``mertk --help`` does not pay for torch and matplotlib.
"""

from importlib import import_module
from typing import Any

__all__ = [
    "ExplainError", "SaliencyResult", "adversarial_check", "overlay", "per_frame",
    "saliency_maps", "saliency_pixels", "save_overlay",
]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(import_module(".saliency", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
