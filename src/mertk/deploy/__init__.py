"""Deployment: export trained models to ONNX and run them with onnxruntime.

>>> from mertk.deploy import export_onnx, OnnxClassifier
>>> path = export_onnx("runs/laenet-megc2019-.../model.pt", "laenet.onnx")   # doctest: +SKIP
>>> OnnxClassifier(path, threads=2)(x)          # (N, classes) softmax probabilities  # doctest: +SKIP
"""

from .onnx_export import INPUT_NAME, OUTPUT_NAME, OnnxClassifier, export_onnx, parity

__all__ = ["INPUT_NAME", "OUTPUT_NAME", "OnnxClassifier", "export_onnx", "parity"]
