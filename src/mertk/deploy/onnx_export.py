"""ONNX export of any registered model (or a checkpoint) and an onnxruntime classifier.

The exported graph takes ``input`` of shape ``(N, *input_spec.shape)`` (float32, ``N`` dynamic) and
returns ``probs``, the softmax probabilities ``(N, num_classes)``. Exported from a checkpoint, the
file's ``metadata_props`` hold the class names, the registered model name and arguments, the recipe,
the label map, the inference rule and the preprocessing parameters (all under ``mertk.*``; lists and
mappings as JSON), so a deployment needs only the ``.onnx`` file and :class:`OnnxClassifier`.
A checkpoint's inference rule (``vote``, ``ten_crop``) combines per-sample probabilities and stays
outside the graph: the graph classifies samples, :func:`mertk.engine.checkpoint.model_inputs` builds them.

Exporter: the TorchScript-based exporter (``torch.onnx.export(..., dynamo=False)``). Both exporters
reach parity (max |p_onnx - p_torch| below 1e-6) on all 26 registered models, but the dynamo exporter
(torch 2.13's default) spends 2-3 s per model in ``torch.export`` and decompositions, the
TorchScript one 0.02-3 s; every model here is a static feed-forward graph (STRCN's recurrence is
unrolled a fixed number of steps), which tracing captures exactly.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import DataError, MertkError, ModelError, check_writable
from ..fileio import atomic_write

INPUT_NAME = "input"
OUTPUT_NAME = "probs"
META_PREFIX = "mertk."


class Probabilities(torch.nn.Module):
    """``softmax(model(x))``: the graph that is exported (always in eval mode)."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.model(x), dim=1)


def _resolve(model_or_checkpoint: Any) -> tuple[Any, Any]:
    """``(model in eval mode, checkpoint or None)`` from a model, a Checkpoint, or a checkpoint path / run dir."""
    from ..engine.checkpoint import Checkpoint, load_checkpoint
    from ..models import MerModel

    if isinstance(model_or_checkpoint, MerModel):
        return model_or_checkpoint, None
    if isinstance(model_or_checkpoint, Checkpoint):
        return model_or_checkpoint.build_model(), model_or_checkpoint
    if isinstance(model_or_checkpoint, (str, os.PathLike)):
        checkpoint = load_checkpoint(model_or_checkpoint)
        return checkpoint.build_model(), checkpoint
    raise ModelError(f"export_onnx takes a mertk model, a Checkpoint or a checkpoint path, got {type(model_or_checkpoint).__name__}")


def _metadata(model: Any, checkpoint: Any) -> dict[str, str]:
    from .. import __version__

    spec = model.input_spec
    meta: dict[str, Any] = {
        "mertk_version": __version__,
        "architecture": type(model).__name__,
        "feature": spec.feature,
        "input_shape": list(spec.shape),
        "num_classes": model.num_classes,
    }
    if checkpoint is not None:
        meta.update({
            "model": checkpoint.model,
            "model_kwargs": dict(checkpoint.model_kwargs),
            "classes": list(checkpoint.classes),
            "label_map": checkpoint.label_map,
            "inference": checkpoint.inference,
            "features": dict(checkpoint.features),
            "recipe": checkpoint.meta.get("recipe"),
        })
    return {META_PREFIX + k: v if isinstance(v, str) else json.dumps(v) for k, v in meta.items()}


def export_onnx(model_or_checkpoint: Any, out: str | Path, *, opset: int | None = None) -> Path:
    """Export a model to ONNX with a dynamic batch axis and softmax probabilities as output.

    Args:
        model_or_checkpoint: a registered model instance (:class:`~mertk.models.MerModel`), a
            :class:`~mertk.engine.checkpoint.Checkpoint`, or the path of a checkpoint or run directory.
        out: the ``.onnx`` file to write (atomically: a temporary file, then a rename).
        opset: ONNX opset version (``None``: the exporter's default).

    Returns:
        ``out`` as a :class:`~pathlib.Path`.

    Raises:
        DataError: an unreadable checkpoint (see :func:`~mertk.engine.checkpoint.load_checkpoint`).
        ModelError: the input is not a model or checkpoint, or the exporter fails on it.
    """
    import onnx

    model, checkpoint = _resolve(model_or_checkpoint)
    out = Path(out)
    was_training = model.training
    wrapper = Probabilities(model)
    example = torch.zeros(2, *model.input_spec.shape)
    buffer = io.BytesIO()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer warnings
            torch.onnx.export(
                wrapper, (example,), buffer, dynamo=False, opset_version=opset,
                input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
            )
    except Exception as exc:  # the exporter raises many types (unsupported operator, opset, tracing)
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ModelError(f"ONNX export of {type(model).__name__} failed: {first[:200]}") from None
    finally:
        model.train(was_training)
    proto = onnx.load_from_string(buffer.getvalue())
    for key, value in _metadata(model, checkpoint).items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    out.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(out, proto.SerializeToString())


class OnnxClassifier:
    """An exported model run by onnxruntime on the CPU, returning class probabilities.

    Attributes:
        path: the ``.onnx`` file.
        metadata: its ``mertk.*`` metadata (JSON values decoded).
        classes: class names in output order (empty when exported from a bare model).
        input_shape: the input shape without the batch axis.
    """

    def __init__(self, path: str | Path, *, threads: int = 2):
        """Open ``path`` with ``threads`` intra-op threads (no busy-waiting between calls).

        Raises:
            DataError: the file is missing or not a readable ONNX model.
        """
        import onnxruntime as ort

        self.path = Path(path)
        if not self.path.is_file():
            raise DataError(self.path, "ONNX model not found")
        options = ort.SessionOptions()
        options.intra_op_num_threads = max(1, int(threads))
        options.inter_op_num_threads = 1
        # Spinning threads would take the cores from the flow and face stages between model calls.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self.session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidProtobuf types
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise DataError(self.path, f"not a readable ONNX model ({first[:200]})") from None
        raw = self.session.get_modelmeta().custom_metadata_map
        self.metadata = {k[len(META_PREFIX):]: _decode(v) for k, v in raw.items() if k.startswith(META_PREFIX)}
        self.classes: tuple[str, ...] = tuple(self.metadata.get("classes", ()))
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        self.input_shape = tuple(inp.shape[1:])

    def __call__(self, x: Any) -> np.ndarray:
        """Probabilities ``(N, num_classes)`` of a batch ``(N, *input_shape)`` (array or tensor)."""
        x = np.ascontiguousarray(x.detach().cpu().numpy() if hasattr(x, "detach") else x, dtype=np.float32)
        if x.ndim != len(self.input_shape) + 1 or tuple(x.shape[1:]) != self.input_shape:
            raise ModelError(f"{self.path.name} expects input (N, {', '.join(map(str, self.input_shape))}), got {tuple(x.shape)}")
        return self.session.run(None, {self.input_name: x})[0]


def _decode(value: str) -> Any:
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value


def parity(model: Any, path: str | Path, *, batches: tuple[int, ...] = (1, 3), seed: int = 0) -> float:
    """Max |p_onnx - p_torch| over random normal batches of the given sizes (the model in eval mode)."""
    was_training = model.training
    wrapper = Probabilities(model)
    classifier = OnnxClassifier(path, threads=1)
    gen = torch.Generator().manual_seed(seed)
    worst = 0.0
    try:
        for n in batches:
            x = torch.randn(n, *model.input_spec.shape, generator=gen)
            with torch.no_grad():
                expected = wrapper(x).numpy()
            worst = max(worst, float(np.abs(classifier(x) - expected).max()))
    finally:
        model.train(was_training)
    return worst


def add_export_parser(sub: Any) -> argparse.ArgumentParser:
    """Add ``mertk export CHECKPOINT --onnx OUT [--opset N] [--json]`` to argparse subparsers."""
    text = "export a checkpoint to ONNX (softmax probabilities, dynamic batch) and check parity with PyTorch"
    p = sub.add_parser("export", help=text, description=text)
    p.add_argument("checkpoint", type=Path, help="a checkpoint file (model.pt) or a run directory holding one")
    p.add_argument("--onnx", type=Path, required=True, metavar="OUT", help="the .onnx file to write")
    p.add_argument("--opset", type=int, default=None, help="ONNX opset version (default: the exporter's)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    return p


def cmd_export(args: argparse.Namespace) -> int:
    """Export, then measure parity on random inputs (batches of 1 and 3) and print it."""
    import onnx

    from ..engine.checkpoint import load_checkpoint

    check_writable(args.onnx, folder=False)
    checkpoint = load_checkpoint(args.checkpoint)
    model = checkpoint.build_model()
    start = time.perf_counter()
    path = export_onnx(checkpoint, args.onnx, opset=args.opset)
    seconds = time.perf_counter() - start
    diff = parity(model, path)
    opsets = {o.domain or "ai.onnx": o.version for o in onnx.load(str(path), load_external_data=False).opset_import}
    summary = {"onnx": str(path), "bytes": path.stat().st_size, "model": checkpoint.model,
               "classes": list(checkpoint.classes), "opset": opsets.get("ai.onnx"),
               "export_seconds": round(seconds, 3), "parity_max_abs_diff": diff}
    if not diff < 1e-4:
        raise MertkError(f"{path}: ONNX output differs from PyTorch by {diff:.2e} (> 1e-4) on random inputs")
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"wrote {path} ({summary['bytes'] / 1e6:.2f} MB, opset {summary['opset']}, {checkpoint.model}, "
              f"classes {', '.join(checkpoint.classes)}) in {seconds:.2f} s")
        print(f"parity on random inputs (batches of 1 and 3): max |p_onnx - p_torch| = {diff:.2e}")
    return 0
