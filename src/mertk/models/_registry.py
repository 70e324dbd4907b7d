"""Model registration and the by-name API (``create_model``, ``list_models``, ``describe_models``).

Entry points are small factories registered timm-style at the bottom of each family module::

    @register_model("laenet", paper="laenet-lien-2020", description="...",
                    input_spec=InputSpec("uvs", (3, 28, 28), "..."))
    def laenet(**kw) -> LAENet: ...

The registry metadata holds the default ``input_spec`` so the preprocessing pipeline can be built
from a model's name without instantiating it.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch import nn

from ..registry import MODELS
from ._base import InputSpec, MerModel, count_params

Factory = Callable[..., MerModel]


def register_model(name: str, *, paper: str, description: str, input_spec: InputSpec) -> Callable[[Factory], Factory]:
    """Decorator registering a model factory in :data:`mertk.registry.MODELS`."""
    return MODELS.register(name, paper=paper, description=description, input_spec=input_spec)


def create_model(name: str, **kwargs: Any) -> MerModel:
    """Build a registered model; keyword arguments override its defaults.

    Raises:
        UnknownNameError: ``name`` is not registered (the message lists the valid names).
    """
    return MODELS.get(name)(**kwargs)


def list_models() -> list[str]:
    """Sorted names of all registered models."""
    return MODELS.names()


def describe_models() -> list[dict[str, Any]]:
    """One row per model at its default configuration.

    Keys: ``name``, ``params`` (learnable parameters), ``input`` (shape without batch, as a list),
    ``feature``, ``paper``, ``description``. Models are built on the ``meta`` device, so no weights
    are allocated or initialised.
    """
    rows = []
    for entry in MODELS:
        with torch.device("meta"):
            model: nn.Module = entry.obj()
        spec: InputSpec = entry.meta["input_spec"]
        rows.append(
            {
                "name": entry.name,
                "params": count_params(model),
                "input": list(spec.shape),
                "feature": spec.feature,
                "paper": entry.meta["paper"],
                "description": entry.meta["description"],
            }
        )
    return rows
