"""Preprocessing stages: face and landmarks, crop, alignment, magnification, flow, encodings."""
