"""Explaining trained models: saliency maps (original and improved, shcnn-miao-2019) and overlays."""

from .saliency import (
    ExplainError,
    SaliencyResult,
    adversarial_check,
    overlay,
    per_frame,
    saliency_maps,
    saliency_pixels,
    save_overlay,
)

__all__ = [
    "ExplainError", "SaliencyResult", "adversarial_check", "overlay", "per_frame",
    "saliency_maps", "saliency_pixels", "save_overlay",
]
