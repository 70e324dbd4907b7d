"""Recipes: one paper experiment as a small YAML file, loaded into a frozen :class:`Recipe`.

A recipe names the data, the model, the preprocessing overrides, the protocol, the training
settings, optional pretraining, augmentations and the inference rule (schema: ``docs/recipes.md``).
The shipped recipes live in ``mertk/engine/recipes/*.yaml`` and are registered in
:data:`mertk.registry.RECIPES` under their file name::

    from mertk.engine.recipe import load_recipe
    recipe = load_recipe("laenet-megc2019", overrides=["train.epochs=5", "features.eye_mask=false"])

``overrides`` are ``section.key=value`` strings whose values are parsed as YAML. An unknown key is a
one-line :class:`~mertk.errors.MertkError` listing the valid keys at that level.

Loading builds the trainer's settings (``train``, a :class:`~mertk.engine.trainconfig.TrainConfig`),
so a bad ``train`` key or value fails there. A loaded recipe is checked against the registries and the
pipeline by :func:`validate_recipe` and resolved into the run's configurations: :func:`feature_config` (the
pipeline), :func:`train_config` (the trainer), :func:`prepare_config` and :func:`pretrain_config`, and
:func:`resolve_root` (the dataset folder under ``--data``; defaults :func:`default_data_dir` and
:func:`default_cache_dir`).
"""

from __future__ import annotations

import copy
import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import yaml

from ..config_types import check_value
from ..errors import MertkError
from ..registry import RECIPES
from .inputs import model_input_spec
from .trainconfig import TrainConfig

RECIPE_DIR = Path(__file__).with_name("recipes")
PROTOCOLS = ("loso", "lovo", "leave_one_video_out", "official", "leave_one_dataset_out")
INFERENCE = ("none", "vote", "ten_crop")
CLASSIFIER_MODES = ("reset", "keep")
FOLD_BATCHING = ("auto", True, False)


class RecipeError(MertkError):
    """A recipe file or a ``--set`` override is malformed."""


@dataclass(frozen=True)
class DataSpec:
    """Where the samples come from.

    Attributes:
        dataset: registered dataset or composite (``megc2019``, ``casme2``, ``megc2019-features``).
        root: folder relative to ``--data`` (absolute paths are kept); ``None`` finds the dataset's
            usual folder under ``--data`` (``CASME2``, ``SAMM``...; a composite uses ``--data`` itself).
        label_map: registered label map; ``None`` takes the composite's (required for single datasets).
        loader: keyword arguments of the loader (e.g. ``{cropped: true}`` for CASME II).
        official: an official clip list defining a composite exactly (MEGC 2019's
            ``combined_3class_gt.csv``), relative to ``--data`` unless absolute; ``None`` builds the
            composite from the spreadsheets through the label map.
    """

    dataset: str
    root: str | None = None
    label_map: str | None = None
    loader: Mapping[str, Any] = field(default_factory=dict)
    official: str | None = None


@dataclass(frozen=True)
class ModelSpec:
    """A registered model and its keyword arguments (``num_classes`` comes from the label map)."""

    name: str
    kwargs: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PretrainSpec:
    """Pretraining on another dataset before the folds (LAENet: CK+).

    ``dataset`` ``None`` means no pretraining. Labels go through ``label_map`` (default: the recipe's),
    e.g. megc2019 maps CK+ codes to negative/positive/surprise. ``classifier`` ``keep`` fine-tunes
    with the pretrained classifier, ``reset`` with a freshly initialised one. ``eye_mask`` masks the
    pretraining flow features (the recipe's ``features.eye_mask`` applies to its own dataset only);
    off by default: LAENet (section 2.2.4) describes the mask as a step of the micro-expression
    pipeline (section 2.2), not of the CK+ one (section 2.1).
    """

    dataset: str | None = None
    root: str | None = None
    label_map: str | None = None
    epochs: int = 100
    lr: float = 5e-5
    batch_size: int = 64
    classifier: str = "keep"
    eye_mask: bool = False


@dataclass(frozen=True)
class AugmentSpec:
    """Training-set augmentations (test samples are never augmented).

    Attributes:
        apex_plus_one: add the onset->apex+1 flow (``x_aug``) as an extra training sample.
        flip: add horizontally mirrored copies: of the image or clip (``clip_rgb``, ``gray_face``), or,
            for flow features, the features of the mirrored flow with u negated, built at prepare time
            (``PrepareConfig.flip``, ``x_flip``).
        rotate: add copies rotated by these angles in degrees (image and clip features; not flow,
            whose vectors would need rotating too).
        magnify: add copies prepared with Eulerian magnification at these factors (clip features).
        frame_select: add copies built from this share of the frames (STRCN-A, e.g. 0.9 .. 0.6).
    """

    apex_plus_one: bool = False
    flip: bool = False
    rotate: tuple[float, ...] = ()
    magnify: tuple[float, ...] = ()
    frame_select: tuple[float, ...] = ()


@dataclass(frozen=True)
class EnsembleSpec:
    """A seed ensemble: every fold is trained once per seed (the trainer's ``seed``), and the fold's
    test probabilities are the mean of its members' (:mod:`mertk.engine.ensemble`). Empty: one model.
    Pretraining and ``model.pt`` use the recipe's ``seed``; the folds and their inner splits are the
    same for every member."""

    seeds: tuple[int, ...] = ()


@dataclass(frozen=True)
class Recipe:
    """One experiment (see the module docstring and ``docs/recipes.md``).

    ``train`` is the trainer's :class:`~mertk.engine.trainconfig.TrainConfig`; :func:`recipe_from_dict`
    gives it the recipe's ``seed`` unless the recipe sets ``train.seed``.
    """

    name: str
    data: DataSpec
    model: ModelSpec
    paper: str = ""
    description: str = ""
    features: Mapping[str, Any] = field(default_factory=dict)
    protocol: str = "loso"
    protocol_options: Mapping[str, Any] = field(default_factory=dict)
    train: TrainConfig = field(default_factory=TrainConfig)
    pretrain: PretrainSpec = field(default_factory=PretrainSpec)
    augment: AugmentSpec = field(default_factory=AugmentSpec)
    inference: str = "none"
    fold_batching: str | bool = "auto"
    final_model: bool = True
    seed: int = 0
    ensemble: EnsembleSpec = field(default_factory=EnsembleSpec)
    select_grid: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Plain data (lists, dicts, scalars) as written to ``config.yaml``; ``train`` holds only the
        settings of :func:`train_settings`, so ``--set seed=N`` on this form still moves the trainer's seed."""
        return _plain({**dataclasses.asdict(self), "train": train_settings(self)})


_SECTIONS: dict[str, type] = {"data": DataSpec, "model": ModelSpec, "pretrain": PretrainSpec, "augment": AugmentSpec,
                              "ensemble": EnsembleSpec}
# sections whose keys are checked against another module's fields (train: when the recipe is built,
# the others when it is validated)
_FREE_SECTIONS = ("features", "train", "protocol_options")
_FREE_SUBKEYS = {("data", "loader"), ("model", "kwargs")}


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _fields(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


def _check_keys(given: Mapping[str, Any], valid: Sequence[str], where: str, source: str) -> None:
    for key in given:
        if key not in valid:
            raise RecipeError(f"{source}: unknown key {where}{key!r}; valid keys: {', '.join(valid)}")


def recipe_from_dict(raw: Mapping[str, Any], *, source: str = "recipe") -> Recipe:
    """Build a :class:`Recipe` from parsed YAML; unknown keys name the valid ones."""
    if not isinstance(raw, Mapping):
        raise RecipeError(f"{source}: a recipe is a mapping of sections, got {type(raw).__name__}")
    _check_keys(raw, _fields(Recipe), "", source)
    for required in ("name", "data", "model"):
        if required not in raw:
            raise RecipeError(f"{source}: missing {required!r}")
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key in _SECTIONS:
            if isinstance(value, str) and key in ("data", "model"):
                value = {"dataset" if key == "data" else "name": value}
            if value is None:
                value = {}
            if not isinstance(value, Mapping):
                raise RecipeError(f"{source}: section {key!r} must be a mapping, got {value!r}")
            cls = _SECTIONS[key]
            _check_keys(value, _fields(cls), f"{key}.", source)
            kwargs = dict(value)
            for sub in ("loader", "kwargs"):
                if sub in kwargs and kwargs[sub] is None:
                    kwargs[sub] = {}
            kwargs = {k: check_value(cls, k, v, error=RecipeError, prefix=f"{source}: {key}.") for k, v in kwargs.items()}
            try:
                values[key] = cls(**kwargs)
            except TypeError as exc:
                raise RecipeError(f"{source}: section {key!r}: {exc}") from None
        elif key in _FREE_SECTIONS:
            if value is None:
                value = {}
            if not isinstance(value, Mapping):
                raise RecipeError(f"{source}: section {key!r} must be a mapping, got {value!r}")
            values[key] = dict(value)
        else:
            values[key] = check_value(Recipe, key, value, error=RecipeError, prefix=f"{source}: ")
    values["train"] = _train_from(values.get("train", {}), values.get("seed", 0), source)
    recipe = Recipe(**values)
    if recipe.protocol not in PROTOCOLS:
        raise RecipeError(f"{source}: unknown protocol {recipe.protocol!r}; choose from: {', '.join(PROTOCOLS)}")
    if recipe.inference not in INFERENCE:
        raise RecipeError(f"{source}: unknown inference {recipe.inference!r}; choose from: {', '.join(INFERENCE)}")
    if recipe.fold_batching not in FOLD_BATCHING:
        raise RecipeError(f"{source}: fold_batching must be auto, true or false, got {recipe.fold_batching!r}")
    if recipe.pretrain.classifier not in CLASSIFIER_MODES:
        raise RecipeError(f"{source}: pretrain.classifier must be one of {', '.join(CLASSIFIER_MODES)}, "
                          f"got {recipe.pretrain.classifier!r}")
    if not isinstance(recipe.pretrain.eye_mask, bool):
        raise RecipeError(f"{source}: pretrain.eye_mask must be true or false, got {recipe.pretrain.eye_mask!r}")
    if not isinstance(recipe.seed, int):
        raise RecipeError(f"{source}: seed must be an integer, got {recipe.seed!r}")
    seeds = recipe.ensemble.seeds
    if seeds and (len(seeds) < 2 or len(set(seeds)) != len(seeds)):
        raise RecipeError(f"{source}: ensemble.seeds takes two or more distinct seeds, got {list(seeds)}")
    return recipe


def _train_from(given: Mapping[str, Any], seed: int, source: str) -> TrainConfig:
    """The recipe's :class:`TrainConfig` from its ``train`` section; ``seed`` unless it sets ``train.seed``."""
    _check_keys(given, _fields(TrainConfig), "train.", source)
    try:
        return TrainConfig(**{"seed": seed, **given})
    except (TypeError, ValueError) as exc:
        raise RecipeError(f"{source}: {exc}") from None


def apply_set(raw: dict[str, Any], assignments: Sequence[str], *, source: str = "--set") -> dict[str, Any]:
    """Apply ``section.key=value`` strings to a parsed recipe (a copy is returned).

    Values are parsed as YAML (``features.eye_mask=false``, ``augment.rotate=[5,-5]``). Keys are
    checked against the schema at each level; ``features``, ``train``, ``protocol_options``,
    ``data.loader`` and ``model.kwargs`` take any key here: ``train`` keys are checked when the recipe
    is built (:func:`recipe_from_dict`), the others when it is validated against the pipeline,
    model and protocol.
    """
    out = copy.deepcopy(dict(raw))
    for item in assignments:
        path, sep, text = item.partition("=")
        path = path.strip()
        if not sep or not path:
            raise RecipeError(f"{source} {item!r}: expected KEY=VALUE (e.g. train.epochs=5)")
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise RecipeError(f"{source} {item!r}: cannot parse the value ({getattr(exc, 'problem', exc)})") from None
        keys = path.split(".")
        top = keys[0]
        if top not in _fields(Recipe):
            raise RecipeError(f"{source} {item!r}: unknown key {top!r}; valid keys: {', '.join(_fields(Recipe))}")
        if len(keys) == 1:
            out[top] = value
            continue
        if top in _SECTIONS:
            section = out.get(top)
            if isinstance(section, str):
                section = {"dataset" if top == "data" else "name": section}
            section = dict(section or {})
            valid = _fields(_SECTIONS[top])
            if keys[1] not in valid:
                raise RecipeError(f"{source} {item!r}: unknown key {top}.{keys[1]!r}; valid keys: {', '.join(valid)}")
            if len(keys) > 2 and (top, keys[1]) not in _FREE_SUBKEYS:
                raise RecipeError(f"{source} {item!r}: {top}.{keys[1]} takes a value, not sub-keys")
            target = section
            for key in keys[1:-1]:
                target[key] = dict(target.get(key) or {})
                target = target[key]
            target[keys[-1]] = value
            out[top] = section
        elif top in _FREE_SECTIONS:
            if len(keys) > 2:
                raise RecipeError(f"{source} {item!r}: {top}.{keys[1]} takes a value, not sub-keys")
            section = dict(out.get(top) or {})
            section[keys[1]] = value
            out[top] = section
        else:
            raise RecipeError(f"{source} {item!r}: {top} takes a value, not sub-keys")
    return out


def read_recipe_file(path: str | Path) -> dict[str, Any]:
    """Parse a recipe YAML file into a mapping (errors name the file)."""
    path = Path(path)
    if not path.is_file():
        raise RecipeError(f"{path}: recipe file not found")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise RecipeError(f"{path}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(raw, dict):
        raise RecipeError(f"{path}: a recipe is a mapping of sections")
    return raw


def load_recipe(name_or_path: str | Path, overrides: Sequence[str] = ()) -> Recipe:
    """A shipped recipe by name (unknown names list the valid ones) or a recipe file, with overrides."""
    text = str(name_or_path)
    if text in RECIPES or not (text.endswith((".yaml", ".yml")) or Path(text).is_file()):
        path = RECIPES.get(text)
    else:
        path = Path(text)
    raw = read_recipe_file(path)
    return recipe_from_dict(apply_set(raw, overrides), source=str(path))


def list_recipes() -> list[str]:
    """Names of the shipped recipes."""
    return RECIPES.names()


def default_cache_dir() -> Path:
    """The feature cache: ``$MERTK_CACHE``, else ``~/.cache/mertk/features`` (shared with ``mertk prepare``)."""
    return Path(os.environ.get("MERTK_CACHE", Path.home() / ".cache" / "mertk" / "features"))


def default_data_dir() -> Path:
    """``$MERTK_DATA``, else the current directory."""
    return Path(os.environ.get("MERTK_DATA", "."))


def resolve_root(dataset: str, root: str | None, data: Path) -> Path:
    """The folder of ``dataset``: ``root`` relative to ``data``; else its usual folder under ``data``
    (``CASME2``, ``SAMM``...), else ``data`` itself (composites always use ``data``)."""
    from ..data import dataset_folder
    from ..registry import DATASETS

    if root is not None:
        path = Path(root).expanduser()
        return path if path.is_absolute() else data / path
    if DATASETS.entry(dataset).meta.get("kind") == "composite":
        return data
    return dataset_folder(dataset, data, default=data)


def feature_config(recipe: Recipe, num_classes: int | None = None):
    """The :class:`~mertk.preprocess.pipeline.PrepareConfig` of a recipe: the model's declared input
    (its feature family and size, as built with the recipe's kwargs) plus the recipe's overrides."""
    from ..errors import PreprocessError
    from ..preprocess.pipeline import PrepareConfig, config_for_model

    kwargs = dict(recipe.model.kwargs)
    if num_classes is not None:
        kwargs["num_classes"] = num_classes
    spec = model_input_spec(recipe.model.name, kwargs)
    fields = {f.name for f in dataclasses.fields(PrepareConfig)}
    unknown = sorted(set(recipe.features) - fields)
    if unknown:
        raise RecipeError(f"recipe {recipe.name}: unknown key features.{unknown[0]!r}; valid keys: {', '.join(sorted(fields))}")
    from ..preprocess.features import feature_family

    derived = feature_family(spec.feature).spec_config(spec.shape)
    overrides = {**derived, **{k: tuple(v) if isinstance(v, list) else v for k, v in recipe.features.items()}}
    try:
        config = config_for_model(recipe.model.name, input_spec=spec, **overrides)
    except PreprocessError as exc:
        raise RecipeError(f"recipe {recipe.name}: features: {exc}") from None
    if config.feature != spec.feature:
        raise RecipeError(f"recipe {recipe.name}: features.feature={config.feature!r} but model "
                          f"{recipe.model.name} takes {spec.feature!r}")
    return config


def train_config(recipe: Recipe, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """The recipe's :class:`~mertk.engine.trainconfig.TrainConfig` with ``overrides`` (field values) applied."""
    overrides = overrides or {}
    source = f"recipe {recipe.name}"
    _check_keys(overrides, _fields(TrainConfig), "train.", source)
    try:
        return dataclasses.replace(recipe.train, **overrides)
    except (TypeError, ValueError) as exc:
        raise RecipeError(f"{source}: {exc}") from None


def train_settings(recipe: Recipe) -> dict[str, Any]:
    """The training settings the recipe sets: the fields of ``recipe.train`` that differ from
    :class:`~mertk.engine.trainconfig.TrainConfig`'s defaults, whose ``seed`` is the recipe's ``seed``."""
    defaults = TrainConfig(seed=recipe.seed)
    return {f.name: getattr(recipe.train, f.name) for f in dataclasses.fields(TrainConfig)
            if getattr(recipe.train, f.name) != getattr(defaults, f.name)}


def prepare_config(recipe: Recipe, config: Any) -> Any:
    """The configuration the run prepares its clips with: ``config`` plus the frame-selection copies
    of ``augment.frame_select`` (shares below 1; the share 1 is the clip itself) and, with
    ``augment.flip`` on a ``flip_from_flow`` family, the mirrored flow copies (``flip``)."""
    changes: dict[str, Any] = {}
    shares = tuple(dict.fromkeys(float(s) for s in recipe.augment.frame_select if s < 1))
    if shares:
        changes["frame_select"] = shares
    if recipe.augment.flip and config.family.flip_from_flow:
        changes["flip"] = True
    return config.replace(**changes) if changes else config


def pretrain_config(recipe: Recipe, config: Any) -> Any:
    """The pipeline configuration of the pretraining dataset: the recipe's, with ``pretrain.eye_mask``."""
    return config.replace(eye_mask=recipe.pretrain.eye_mask)


def _families(flag: str) -> str:
    """The registered feature families that have ``flag`` (for error messages)."""
    from ..registry import FEATURES

    names = [e.name for e in FEATURES if getattr(e.obj, flag)]
    return " and ".join(filter(None, [", ".join(names[:-1]), names[-1]])) if names else "no"


def validate_recipe(recipe: Recipe) -> dict[str, Any]:
    """Check a recipe without touching data: model, dataset, label map, features, trainer, protocol.

    Returns a summary (model, its kind, feature, classes, label map). Raises :class:`RecipeError` (or the
    registry's UnknownNameError listing valid names) on the first problem.
    """
    from .. import models  # noqa: F401  (registers the models)
    from ..data import get_label_map
    from ..registry import DATASETS, MODELS

    entry = DATASETS.entry(recipe.data.dataset)
    MODELS.entry(recipe.model.name)
    composite_map = entry.meta.get("label_map")
    name = recipe.data.label_map or composite_map
    if name is None:
        raise RecipeError(f"recipe {recipe.name}: data.label_map is required for dataset {recipe.data.dataset!r}")
    if composite_map is not None and name != composite_map:
        raise RecipeError(f"recipe {recipe.name}: composite {recipe.data.dataset} uses label map {composite_map!r}, "
                          f"not {name!r}")
    label_map = get_label_map(name)
    if composite_map is None and not label_map.applies_to(recipe.data.dataset):
        raise RecipeError(f"recipe {recipe.name}: label map {name!r} has no classes for {recipe.data.dataset!r}")
    if recipe.data.official is not None and entry.meta.get("kind") != "composite":
        raise RecipeError(f"recipe {recipe.name}: data.official defines a composite; {recipe.data.dataset!r} is not one")
    if recipe.pretrain.dataset is not None:
        DATASETS.entry(recipe.pretrain.dataset)
        pre_map = get_label_map(recipe.pretrain.label_map or name)
        if not pre_map.applies_to(recipe.pretrain.dataset):
            raise RecipeError(f"recipe {recipe.name}: label map {pre_map.name!r} has no classes for pretraining "
                              f"dataset {recipe.pretrain.dataset!r}")
        if recipe.pretrain.classifier == "keep" and pre_map.classes != label_map.classes:
            raise RecipeError(f"recipe {recipe.name}: pretrain.classifier=keep needs the same classes; "
                              f"{pre_map.name} and {label_map.name} differ (use reset)")
    n_classes = int(recipe.model.kwargs.get("num_classes", len(label_map.classes)))
    if n_classes != len(label_map.classes):
        raise RecipeError(f"recipe {recipe.name}: model.kwargs.num_classes={n_classes} but label map {name} has "
                          f"{len(label_map.classes)} classes")
    config = feature_config(recipe, len(label_map.classes))
    if recipe.select_grid:
        from .grid import parse_select_grid

        try:
            parse_select_grid(recipe.select_grid)
        except MertkError as exc:
            detail = str(exc).removeprefix("--select-grid ").removeprefix("--grid ")
            raise RecipeError(f"recipe {recipe.name}: select_grid: {detail}") from None
    if MODELS.entry(recipe.model.name).meta["kind"] == "classical":
        if (train_settings(recipe) or recipe.pretrain.dataset is not None or recipe.augment != type(recipe.augment)()
                or recipe.ensemble.seeds or recipe.select_grid):
            raise RecipeError(f"recipe {recipe.name}: model {recipe.model.name} is fitted, not trained: it takes no "
                              "train, pretrain, augment, ensemble or select_grid settings (its hyper-parameters: "
                              "model.kwargs.search)")
        if recipe.final_model or recipe.inference != "none":
            raise RecipeError(f"recipe {recipe.name}: model {recipe.model.name} needs final_model: false and "
                              "inference: none (model.pt checkpoints hold torch weights)")
    if recipe.protocol == "leave_one_dataset_out" and entry.meta.get("kind") != "composite":
        raise RecipeError(f"recipe {recipe.name}: protocol leave_one_dataset_out needs a composite dataset, "
                          f"not {recipe.data.dataset!r}")
    options = {"lovo": {"test_fraction"}}.get(recipe.protocol, set())
    unknown = sorted(set(recipe.protocol_options) - options - {"test_fraction"})
    if unknown:
        raise RecipeError(f"recipe {recipe.name}: unknown key protocol_options.{unknown[0]!r}; valid keys: test_fraction")
    aug = recipe.augment
    family = config.family
    if aug.flip and not family.flip:
        raise RecipeError(f"recipe {recipe.name}: augment.flip applies to {_families('flip')} features, "
                          f"not {config.feature}")
    if aug.flip and family.flip_from_flow and entry.meta.get("kind") == "images":
        raise RecipeError(f"recipe {recipe.name}: augment.flip on {config.feature} mirrors the raw flow, and "
                          f"{recipe.data.dataset} holds precomputed maps without one")
    if aug.rotate and not family.rotate:
        raise RecipeError(f"recipe {recipe.name}: augment.rotate applies to {_families('rotate')} features, "
                          f"not {config.feature}" + (" (rotating a flow field would need its vectors rotated "
                                                     "too; flow features take augment.flip only)" if family.uses_flow else ""))
    if aug.frame_select and not family.frame_select:
        raise RecipeError(f"recipe {recipe.name}: augment.frame_select applies to clip features ({_families('frame_select')}), "
                          f"not {config.feature}")
    if aug.magnify and not family.magnify:
        raise RecipeError(f"recipe {recipe.name}: augment.magnify needs clips, not still images")
    if any(not 0 < s <= 1 for s in aug.frame_select):
        raise RecipeError(f"recipe {recipe.name}: augment.frame_select shares must lie in (0, 1]")
    if "frame_select" in recipe.features:
        raise RecipeError(f"recipe {recipe.name}: frame selection is a training augmentation: use augment.frame_select, "
                          "not features.frame_select")
    try:
        prepare_config(recipe, config)
    except MertkError as exc:
        raise RecipeError(f"recipe {recipe.name}: augment.frame_select: {exc}") from None
    if recipe.train.jitter and not family.uses_flow:
        raise RecipeError(f"recipe {recipe.name}: train.jitter scales optical-flow features; {config.feature} "
                          "holds no flow")
    if recipe.inference == "vote" and not family.per_frame:
        raise RecipeError(f"recipe {recipe.name}: inference=vote needs per-frame features ({_families('per_frame')}), "
                          f"not {config.feature}")
    if recipe.inference == "ten_crop" and not family.ten_crop:
        raise RecipeError(f"recipe {recipe.name}: inference=ten_crop needs {_families('ten_crop')} features, "
                          f"not {config.feature}")
    return {"model": recipe.model.name, "kind": MODELS.entry(recipe.model.name).meta["kind"], "feature": config.feature,
            "label_map": name, "classes": list(label_map.classes)}


def _register_shipped() -> None:
    for path in sorted(RECIPE_DIR.glob("*.yaml")):
        if path.stem not in RECIPES:
            RECIPES.add(path.stem, path, kind="shipped")


_register_shipped()
