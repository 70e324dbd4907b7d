"""Checkpoints that carry everything prediction needs, loaded safely.

A checkpoint is one ``torch.save`` file holding only plain containers, strings, numbers and tensors,
so it loads with ``torch.load(..., weights_only=True)`` (no pickled code runs). It holds:

- the weights and the registered model's name and constructor arguments;
- the class names (in output order) and the label map they came from;
- every preprocessing parameter (:class:`~mertk.preprocess.pipeline.PrepareConfig`), so ``predict``
  rebuilds the features exactly as training did;
- the inference rule (``none``, ``vote``, ``ten_crop``) and fitted arrays some models need at test
  time (STRCN-A's pixel mask);
- provenance: recipe, run directory, clips trained on, versions;
- a SHA-256 digest over all of the above, checked on load, so an edited file is refused.

A run writes ``model.pt``: a model trained on every clip of the run with the recipe's settings (the
per-fold models only produce the LOSO/LOVO figures).
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from .. import __version__
from ..errors import DataError
from ..fileio import atomic_write

FORMAT = "mertk-checkpoint"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class Checkpoint:
    """A trained model and everything needed to run it on new clips.

    Attributes:
        model: registered model name (:func:`mertk.models.create_model`).
        model_kwargs: constructor arguments, ``num_classes`` included.
        classes: class names in the order of the model's outputs.
        label_map: the label map the classes came from.
        features: :meth:`PrepareConfig.as_dict` of the training-time preprocessing.
        inference: how a clip's samples are combined (``none``, ``vote``, ``ten_crop``).
        state_dict: the weights (CPU tensors).
        arrays: fitted arrays needed at test time (e.g. ``strcn_mask``), as tensors.
        meta: provenance (recipe, run_dir, clips, seed, versions...).
    """

    model: str
    model_kwargs: Mapping[str, Any]
    classes: tuple[str, ...]
    label_map: str
    features: Mapping[str, Any]
    inference: str
    state_dict: Mapping[str, Any] = field(repr=False)
    arrays: Mapping[str, Any] = field(default_factory=dict, repr=False)
    meta: Mapping[str, Any] = field(default_factory=dict)

    def prepare_config(self):
        """The training-time :class:`~mertk.preprocess.pipeline.PrepareConfig`."""
        from .runconfig import prepare_config_from_dict

        return prepare_config_from_dict(self.features)

    def build_model(self, device: str = "cpu"):
        """The model with the checkpoint's weights, in eval mode."""
        from ..errors import ModelError
        from ..models import create_model

        model = create_model(self.model, **dict(self.model_kwargs))
        try:
            model.load_state_dict(dict(self.state_dict), strict=True)
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()
            raise ModelError(f"checkpoint weights do not fit model {self.model}: {first[1].strip() if len(first) > 1 else first[0]}") from None
        return model.to(device).eval()

    def payload(self) -> dict[str, Any]:
        """The plain dict written to disk (without the digest)."""
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "model": self.model,
            "model_kwargs": _plain(self.model_kwargs),
            "classes": list(self.classes),
            "label_map": self.label_map,
            "features": _plain(self.features),
            "inference": self.inference,
            "state_dict": {k: v.detach().cpu().contiguous() for k, v in self.state_dict.items()},
            "arrays": {k: _tensor(v) for k, v in self.arrays.items()},
            "meta": _plain({"mertk": __version__, **self.meta}),
        }


def _plain(value: Any) -> Any:
    """JSON-able plain data (tuples to lists, numpy scalars to Python numbers)."""
    return json.loads(json.dumps(value, default=lambda v: v.item() if isinstance(v, np.generic) else str(v)))


def _tensor(value: Any):
    import torch

    return value.detach().cpu().contiguous() if isinstance(value, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(value))


def digest(payload: Mapping[str, Any]) -> str:
    """SHA-256 over the payload's metadata (canonical JSON) and every tensor's dtype, shape and bytes."""
    h = hashlib.sha256()
    meta = {k: v for k, v in payload.items() if k not in ("state_dict", "arrays", "digest")}
    h.update(json.dumps(meta, sort_keys=True).encode())
    for group in ("state_dict", "arrays"):
        for name in sorted(payload.get(group, {})):
            t = payload[group][name]
            h.update(f"{group}/{name}/{t.dtype}/{tuple(t.shape)}".encode())
            h.update(t.contiguous().view(-1).view(dtype=__import__("torch").uint8).numpy().tobytes())
    return h.hexdigest()


def save_checkpoint(path: str | Path, checkpoint: Checkpoint) -> Path:
    """Write ``checkpoint`` atomically (temporary file, then rename) and return the path."""
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = checkpoint.payload()
    payload["digest"] = digest(payload)
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return atomic_write(path, buffer.getvalue())


_TORCH_HINTS = ("Weights only load failed", "Please file an issue", "Check the documentation", "In PyTorch")


def _load_problem(exc: Exception) -> str:
    """The cause in torch.load's error, on one line: no ANSI codes, no advice to disable weights_only."""
    text = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", str(exc))
    lines = [line.strip().removeprefix("WeightsUnpickler error:").strip() for line in text.splitlines()]
    kept = [line for line in lines if line and not line.startswith(_TORCH_HINTS)]
    return "; ".join(kept) or (lines[0] if lines and lines[0] else type(exc).__name__)


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Read a checkpoint written by :func:`save_checkpoint`.

    Loads with ``weights_only=True``. A missing, truncated, foreign or edited file raises
    :class:`~mertk.errors.DataError` naming the file and the problem.
    """
    import torch

    path = Path(path)
    if path.is_dir():
        path = path / "model.pt" if (path / "model.pt").is_file() else path
    if not path.is_file():
        raise DataError(path, "checkpoint not found" if not path.is_dir() else "a run directory without model.pt")
    try:
        with warnings.catch_warnings():  # torch's own warnings (pickle protocol...) would add lines to the error
            warnings.simplefilter("ignore")
            payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # zipfile, pickle and torch raise many types for a damaged file
        raise DataError(path, f"not a readable mertk checkpoint ({type(exc).__name__}: {_load_problem(exc)})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise DataError(path, f"not a mertk checkpoint (no '{FORMAT}' marker)")
    if payload.get("format_version") != FORMAT_VERSION:
        raise DataError(path, f"checkpoint format version {payload.get('format_version')!r}; this mertk reads {FORMAT_VERSION}")
    missing = [k for k in ("model", "model_kwargs", "classes", "label_map", "features", "inference", "state_dict", "digest")
               if k not in payload]
    if missing:
        raise DataError(path, f"checkpoint lacks {', '.join(missing)}")
    for group in ("state_dict", "arrays"):
        entries = payload.get(group, {})
        if not isinstance(entries, dict):
            raise DataError(path, f"checkpoint {group} is not a mapping of tensors")
        for name, value in entries.items():
            if not isinstance(value, torch.Tensor):
                raise DataError(path, f"checkpoint {group} entry {name!r} is not a tensor")
    if digest(payload) != payload["digest"]:
        raise DataError(path, "checkpoint digest mismatch: the file was modified after it was written")
    return Checkpoint(
        model=payload["model"],
        model_kwargs=payload["model_kwargs"],
        classes=tuple(payload["classes"]),
        label_map=payload["label_map"],
        features=payload["features"],
        inference=payload["inference"],
        state_dict=payload["state_dict"],
        arrays=payload.get("arrays", {}),
        meta=payload.get("meta", {}),
    )


def model_inputs(checkpoint: Checkpoint, arrays: Mapping[str, np.ndarray]):
    """The model input samples of one prepared clip (``prepare_frames`` output) and which one is the apex.

    Returns ``(x, apex)``: a float tensor ``(S, ...)`` and a boolean array ``(S,)``. SHCNN-style
    ``hsi_flow`` gives one sample per flow image; STRCN-A applies the stored pixel mask; other
    families give one sample.
    """
    import torch

    from ..errors import ModelError
    from ..preprocess.features import feature_family
    from .inputs import model_view

    feature = checkpoint.features["feature"]
    family = feature_family(feature)
    x = np.asarray(arrays["x"])
    if family.per_frame:
        apex_index = int(arrays.get("apex_index", len(x) - 1))
        xs = np.stack([model_view(f, feature) for f in x])
        apex = np.arange(len(x)) == apex_index
    elif family.pixel_mask:
        if "strcn_mask" not in checkpoint.arrays:
            raise ModelError(f"checkpoint of {checkpoint.model} lacks the STRCN pixel mask")
        mask = checkpoint.arrays["strcn_mask"].numpy().astype(bool)
        xs = family.masked_view(x, mask)[None]
        apex = np.array([True])
    elif checkpoint.inference == "ten_crop":
        from .inputs import model_input_spec, ten_crops

        size = model_input_spec(checkpoint.model, dict(checkpoint.model_kwargs)).shape[-1]
        xs = np.stack([model_view(c, feature) for c in ten_crops(x, size)])
        apex = np.zeros(len(xs), dtype=bool)
    else:
        xs = model_view(x, feature)[None]
        apex = np.array([True])
    return torch.from_numpy(np.ascontiguousarray(xs, dtype=np.float32)), apex


def classify(checkpoint: Checkpoint, model: Any, arrays: Mapping[str, np.ndarray]) -> tuple[np.ndarray, int]:
    """Class probabilities and predicted class of one prepared clip, combined by the checkpoint's rule."""
    from .inputs import aggregate
    from .train import evaluate

    x, apex = model_inputs(checkpoint, arrays)
    probs = evaluate(model, x)
    return aggregate(probs, checkpoint.inference, apex)
