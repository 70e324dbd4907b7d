"""Dataset loaders, label maps and composites (fake trees and the synthetic benchmark: :mod:`mertk.synth`).

Every loader reads a dataset exactly as its owners ship it and is registered in
``mertk.registry.DATASETS``; open one by name with :func:`open_dataset`::

    from mertk.data import open_dataset
    ds = open_dataset("casme2", "/data/CASME2")
    ds.records      # every annotation row that parsed (ClipRecord)
    ds.usable()     # those whose frames were found
    ds.skipped      # every row or clip that could not be used, with the reason

Every dataset derives from :class:`Dataset` (composites too: ``ds.kind == "composite"``); the usual
folder names of each dataset under a data folder are part of its registration (:func:`dataset_folder`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..registry import DATASETS

# Importing the loader modules registers them.
from . import casme, casme2, casme3, ckplus, features, fer2013, fourdme, mmew, samm, samm_long, smic  # noqa: F401  (registration)
from . import composite  # noqa: F401  (registers the composites)
from .base import Dataset, dataset_folder
from .composite import Composite
from .labels import LABEL_MAPS, LabelMap, get_label_map

__all__ = ["open_dataset", "list_datasets", "dataset_folder", "Dataset", "Composite", "LabelMap", "LABEL_MAPS", "get_label_map"]


def open_dataset(name: str, root: str | Path, **kwargs: Any):
    """Open the registered dataset or composite ``name`` at ``root`` (unknown names list the valid ones)."""
    factory = DATASETS.get(name)
    return factory(root, **kwargs)


def list_datasets() -> list[str]:
    """Names of every registered dataset and composite."""
    return DATASETS.names()
