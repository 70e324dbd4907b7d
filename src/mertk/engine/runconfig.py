"""The resolved configuration of a run, saved as ``config.yaml`` in its run directory.

A :class:`RunConfig` holds everything that decides a run's results: the recipe (after ``--set``), the
dataset folder, the pipeline and trainer configurations, the classes and label map, the pipeline
version and an official clip list with its digest. Its digest names the run
directory (:func:`mertk.engine.rundir.run_dir_for`), so the same command finds the same directory.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import yaml

from ..errors import DataError
from .recipe import Recipe, RecipeError, recipe_from_dict
from .trainconfig import TrainConfig

CONFIG_FILE = "config.yaml"
# where the run ran: written to config.yaml beside the configuration, not part of it
LOCATION_KEYS = ("cache_dir", "run_dir")


def prepare_config_from_dict(features: Mapping[str, Any]):
    """The :class:`~mertk.preprocess.pipeline.PrepareConfig` of its ``as_dict()`` form."""
    from ..preprocess.pipeline import PrepareConfig

    raw = dict(features)
    raw["size"] = tuple(raw["size"])
    raw["flow_params"] = tuple(dict(raw.get("flow_params") or {}).items())
    if "frame_select" in raw:
        raw["frame_select"] = tuple(raw["frame_select"])
    return PrepareConfig(**raw)


def _plain_config(config: Any) -> dict[str, Any]:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(config).items()}


@dataclass(frozen=True)
class RunConfig:
    """One run's resolved configuration (see the module docstring).

    Attributes:
        recipe: the recipe as run (overrides applied).
        data_root: the dataset's folder.
        features: the :class:`~mertk.preprocess.pipeline.PrepareConfig` of the clips.
        train: the :class:`~mertk.engine.trainconfig.TrainConfig`.
        classes: the class names, in label-index order.
        label_map: the registered label map.
        pipeline_version: features made by another pipeline version never resume a run.
        official_list, official_sha256: the official clip list defining a composite and its SHA-256.
    """

    recipe: Recipe
    data_root: str
    features: Any
    train: TrainConfig
    classes: tuple[str, ...]
    label_map: str
    pipeline_version: str
    official_list: str | None = None
    official_sha256: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain data in ``config.yaml``'s layout (optional entries only when set)."""
        return {
            "recipe": self.recipe.to_dict(),
            "data_root": self.data_root,
            **({"official_list": self.official_list, "official_sha256": self.official_sha256}
               if self.official_list is not None else {}),
            "features": self.features.as_dict(),
            "train": _plain_config(self.train),
            "classes": list(self.classes),
            "label_map": self.label_map,
            "pipeline_version": self.pipeline_version,
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], *, source: str = "run configuration") -> "RunConfig":
        """The inverse of :meth:`to_dict`; ``cache_dir`` and ``run_dir`` (written beside it) are ignored."""
        fields = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(raw) - set(fields) - set(LOCATION_KEYS))
        if unknown:
            raise RecipeError(f"{source}: unknown key {unknown[0]!r}; valid keys: {', '.join(fields)}")
        missing = [k for k in ("recipe", "data_root", "features", "train", "classes", "label_map", "pipeline_version")
                   if k not in raw]
        if missing:
            raise RecipeError(f"{source}: missing {missing[0]!r}")
        try:
            features = prepare_config_from_dict(raw["features"])
            train = TrainConfig(**dict(raw["train"]))
        except (TypeError, ValueError, KeyError) as exc:
            raise RecipeError(f"{source}: {exc}") from None
        return cls(recipe=recipe_from_dict(raw["recipe"], source=source), data_root=str(raw["data_root"]),
                   features=features, train=train, classes=tuple(raw["classes"]), label_map=str(raw["label_map"]),
                   pipeline_version=str(raw["pipeline_version"]), official_list=raw.get("official_list"),
                   official_sha256=raw.get("official_sha256"))

    def digest(self) -> str:
        """The short hash of :meth:`to_dict` that names the run directory."""
        return hashlib.sha1(json.dumps(self.to_dict(), sort_keys=True, default=str).encode()).hexdigest()[:10]


def read_run_config(run_dir: str | Path) -> RunConfig:
    """The :class:`RunConfig` saved in a run directory (a missing or malformed file is a DataError naming it)."""
    return read_run_files(run_dir)[0]


def read_run_files(run_dir: str | Path) -> tuple[RunConfig, dict[str, str]]:
    """The :class:`RunConfig` saved in a run directory and where the run ran (``cache_dir``, ``run_dir``
    as written beside it; absent keys are left out). A missing or malformed file is a DataError naming it."""
    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        raise DataError(path, "missing: not a run directory")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise DataError(path, f"not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(raw, Mapping):
        raise DataError(path, "not a mapping of settings")
    try:
        config = RunConfig.from_dict(raw, source=str(path))
    except RecipeError as exc:
        raise DataError(path, str(exc).removeprefix(f"{path}: ")) from None
    return config, {k: str(raw[k]) for k in LOCATION_KEYS if raw.get(k)}
