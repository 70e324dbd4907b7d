"""Model registration and the by-name API (``create_model``, ``list_models``, ``describe_models``).

Entry points are small factories registered timm-style at the bottom of each family module::

    @register_model("laenet", paper="laenet-lien-2020", description="...",
                    input_spec=InputSpec("uvs", (3, 28, 28), "..."))
    def laenet(**kw) -> LAENet: ...

The registry metadata holds the default ``input_spec`` and the model's own preprocessing defaults
(``default_cfg``: ``PrepareConfig`` fields beyond its feature family's, as timm keeps ``default_cfgs``
beside each model) so the preprocessing pipeline can be built from a model's name without
instantiating it.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import torch
from torch import nn

from ..registry import MODELS
from ._base import InputSpec, MerModel, count_params

Factory = Callable[..., MerModel]


#: What a registered model is: a torch :class:`MerModel` trained by gradient, or a classical
#: estimator fitted in closed form (``fit`` / ``predict_proba`` on descriptors, :mod:`mertk.engine.classical`).
MODEL_KINDS = ("torch", "classical")


def register_model(name: str, *, paper: str, description: str, input_spec: InputSpec, kind: str = "torch",
                   default_cfg: Mapping[str, Any] | None = None) -> Callable[[Factory], Factory]:
    """Decorator registering a model factory in :data:`mertk.registry.MODELS`.

    ``default_cfg`` holds the model's preprocessing defaults (``PrepareConfig`` fields) over those of
    its feature family, e.g. LAENet's eye mask; ``config_for_model`` applies them.
    """
    if kind not in MODEL_KINDS:
        raise ValueError(f"model kind {kind!r} is unknown; choose from: {', '.join(MODEL_KINDS)}")
    return MODELS.register(name, paper=paper, description=description, input_spec=input_spec, kind=kind,
                           default_cfg=dict(default_cfg or {}))


def create_model(name: str, **kwargs: Any) -> MerModel:
    """Build a registered model; keyword arguments override its defaults.

    Raises:
        UnknownNameError: ``name`` is not registered (the message lists the valid names).
    """
    return MODELS.get(name)(**kwargs)


def list_models(kind: str | None = None) -> list[str]:
    """Sorted names of the registered models (of one :data:`MODEL_KINDS` kind when given)."""
    return [n for n in MODELS.names() if kind is None or model_kind(n) == kind]


def model_kind(name: str) -> str:
    """``torch`` or ``classical`` (see :data:`MODEL_KINDS`)."""
    return MODELS.entry(name).meta["kind"]


def describe_models() -> list[dict[str, Any]]:
    """One row per model at its default configuration.

    Keys: ``name``, ``kind``, ``params``, ``input`` (shape without batch, as a list), ``feature``,
    ``paper``, ``description``. ``params`` is the learnable parameter count of a torch model, and
    the number of fitted weights of a classical one (a linear SVM's weights and biases). Torch models
    are built on the ``meta`` device, so no weights are allocated or initialised.
    """
    rows = []
    for entry in MODELS:
        with torch.device("meta"):
            model: Any = entry.obj()
        spec: InputSpec = entry.meta["input_spec"]
        rows.append(
            {
                "name": entry.name,
                "kind": entry.meta["kind"],
                "params": count_params(model) if isinstance(model, nn.Module) else model.num_params,
                "input": list(spec.shape),
                "feature": spec.feature,
                "paper": entry.meta["paper"],
                "description": entry.meta["description"],
            }
        )
    return rows
