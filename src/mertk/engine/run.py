"""Run a recipe end to end into a resumable run directory.

:func:`run_recipe` resolves the recipe, prepares the features through the cache, builds the samples,
splits them by the recipe's protocol, optionally pretrains, trains every fold and writes::

    <out>/<recipe>-<hash>/
        config.yaml           the resolved configuration (recipe, pipeline, trainer, classes, paths)
        folds/<fold>.npz      one file per finished fold (probabilities, test indices, history)
        predictions.csv       dataset, subject, clip, fold, y_true, y_pred, p_<class>...
        results.json          metrics, per-dataset breakdown, timings, seed, versions, skips
        confusion.png, training_curves.png

The directory name holds a hash of the resolved configuration, so the same command finds the same
directory: a run killed at any point (even by SIGKILL) and started again skips the folds whose files
exist. Fold files are written atomically (temporary file + rename). When the trainer batches folds
(several small models trained together), the folds of one batch finish together, so a kill loses the
batch in progress.

Samples and clips: a clip (or image) may give several samples. SHCNN classifies every flow image of a
clip and votes; ten-crop evaluation sums the scores of ten crops; augmentations (apex+1 flow, flips,
rotations, magnification, frame selection) add training-only samples. Magnification and frame
selection multiply (STRCN): every factor of ``augment.magnify`` (besides the clip's own
``features.magnify``) and the clip's own factor each give one copy from all frames and one per share of
``augment.frame_select``, i.e. ``len(factors) x (1 + len(shares))`` training samples per clip. Folds are built over clips by
the protocol and then expanded to samples, so no sample of a test clip ever trains.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ..errors import DataError, MertkError
from ..records import ClipRecord, ImageRecord, Skip
from .recipe import Recipe, RecipeError, load_recipe
from .rundir import SavedFold, load_folds, save_fold, write_clips, write_text as _write_text

Record = ClipRecord | ImageRecord

# Usual folder names of each dataset under a --data folder (composites use --data itself).
DATA_FOLDERS: dict[str, tuple[str, ...]] = {
    "casme2": ("CASME2", "CASME_II", "CASME II", "CASMEII", "casme2"),
    "samm": ("SAMM", "samm"),
    "smic": ("SMIC", "SMIC-HS", "SMIC_HS", "smic"),
    "casme": ("CASME", "casme"),
    "ckplus": ("CK+", "CKPlus", "ckplus", "CK"),
    "fer2013": ("FER2013", "fer2013"),
    "ferplus": ("FERPlus", "FER2013", "ferplus"),
    "megc2019-features": ("megc2019-features", "STSTNet", "features"),
}
TEN_CROP_CORNERS = ("top-left", "top-right", "bottom-left", "bottom-right", "centre")


def default_cache_dir() -> Path:
    """The feature cache: ``$MERTK_CACHE``, else ``~/.cache/mertk/features`` (shared with ``mertk prepare``)."""
    return Path(os.environ.get("MERTK_CACHE", Path.home() / ".cache" / "mertk" / "features"))


def default_data_dir() -> Path:
    """``$MERTK_DATA``, else the current directory."""
    return Path(os.environ.get("MERTK_DATA", "."))


# ---------------------------------------------------------------------------------------------
# resolving a recipe
# ---------------------------------------------------------------------------------------------


def resolve_root(dataset: str, root: str | None, data: Path) -> Path:
    """The folder of ``dataset``: ``root`` relative to ``data``; else its usual folder under ``data``
    (``CASME2``, ``SAMM``...), else ``data`` itself (composites always use ``data``)."""
    from .. import data as _data  # noqa: F401  (registers the datasets)
    from ..registry import DATASETS

    if root is not None:
        path = Path(root).expanduser()
        return path if path.is_absolute() else data / path
    if DATASETS.entry(dataset).meta.get("kind") == "composite":
        return data
    for name in DATA_FOLDERS.get(dataset, ()):
        if (data / name).is_dir():
            return data / name
    return data


def model_input_spec(name: str, kwargs: dict[str, Any]):
    """The input spec of model ``name`` built with ``kwargs`` (on the meta device: no weights)."""
    import torch

    from ..models import create_model

    with torch.device("meta"):
        return create_model(name, **kwargs).input_spec


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
    derived: dict[str, Any] = {}
    if spec.feature == "clip_rgb":
        derived = {"size": tuple(spec.shape[-2:]), "frames": spec.shape[1]}
    elif spec.feature != "strcn_pixels":
        derived = {"size": tuple(spec.shape[-2:])}
    overrides = {**derived, **{k: tuple(v) if isinstance(v, list) else v for k, v in recipe.features.items()}}
    try:
        config = config_for_model(recipe.model.name, **overrides)
    except PreprocessError as exc:
        raise RecipeError(f"recipe {recipe.name}: features: {exc}") from None
    if config.feature != spec.feature:
        raise RecipeError(f"recipe {recipe.name}: features.feature={config.feature!r} but model "
                          f"{recipe.model.name} takes {spec.feature!r}")
    return config


def train_config(recipe: Recipe, overrides: dict[str, Any] | None = None):
    """The recipe's :class:`~mertk.engine.train.TrainConfig` (``seed`` defaults to the recipe's)."""
    from .train import TrainConfig

    fields = [f.name for f in dataclasses.fields(TrainConfig)]
    values = {"seed": recipe.seed, **recipe.train, **(overrides or {})}
    unknown = [k for k in values if k not in fields]
    if unknown:
        raise RecipeError(f"recipe {recipe.name}: unknown key train.{unknown[0]!r}; valid keys: {', '.join(fields)}")
    try:
        return TrainConfig(**values)
    except (TypeError, ValueError) as exc:
        raise RecipeError(f"recipe {recipe.name}: train: {exc}") from None


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
    train_config(recipe)
    if MODELS.entry(recipe.model.name).meta["kind"] == "classical":
        if recipe.train or recipe.pretrain.dataset is not None or recipe.augment != type(recipe.augment)():
            raise RecipeError(f"recipe {recipe.name}: model {recipe.model.name} is fitted, not trained: it takes no "
                              "train, pretrain or augment settings (its hyper-parameters: model.kwargs.search)")
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
    image_like = config.feature in ("clip_rgb", "gray_face")
    if (aug.flip or aug.rotate) and not image_like:
        raise RecipeError(f"recipe {recipe.name}: augment.flip/rotate apply to clip_rgb and gray_face features, "
                          f"not {config.feature} (flipping a flow field needs its sign changed)")
    if aug.frame_select and config.feature not in ("strcn_pixels", "clip_rgb"):
        raise RecipeError(f"recipe {recipe.name}: augment.frame_select applies to clip features (strcn_pixels, "
                          f"clip_rgb), not {config.feature}")
    if aug.magnify and config.feature == "gray_face":
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
    if recipe.inference == "vote" and config.feature != "hsi_flow":
        raise RecipeError(f"recipe {recipe.name}: inference=vote needs per-frame features (hsi_flow), not {config.feature}")
    if recipe.inference == "ten_crop" and config.feature != "gray_face":
        raise RecipeError(f"recipe {recipe.name}: inference=ten_crop needs gray_face features, not {config.feature}")
    return {"model": recipe.model.name, "kind": MODELS.entry(recipe.model.name).meta["kind"], "feature": config.feature,
            "label_map": name, "classes": list(label_map.classes)}


# ---------------------------------------------------------------------------------------------
# data -> samples
# ---------------------------------------------------------------------------------------------


@dataclass
class Clips:
    """The usable records of the run (one per predictions row) with their class indices."""

    records: list[Record]
    classes: tuple[str, ...]
    y: np.ndarray
    loader_skipped: list[Skip]
    excluded: dict[str, int]
    soft: np.ndarray | None = None

    @property
    def subjects(self) -> list[str]:
        return [r.subject or "" for r in self.records]


def _record_id(record: Record) -> str:
    return record.key if isinstance(record, ClipRecord) else f"{record.dataset}/{record.item}"


def load_clips(dataset: str, root: Path, label_map: str | None, loader: dict[str, Any]) -> tuple[Any, Clips]:
    """Open a dataset, relabel its usable records by ``label_map`` (composites are relabelled already)."""
    from ..data import get_label_map, open_dataset

    ds = open_dataset(dataset, root, **loader)
    usable = list(ds.usable())
    excluded: dict[str, int] = {}
    if hasattr(ds, "classes") and hasattr(ds, "parts"):  # a composite: labels are its classes
        classes = tuple(ds.classes)
        kept = usable
        for (component, native), count in sorted(ds.excluded.items()):
            excluded[f"{component}:{native}"] = count
    else:
        lm = get_label_map(label_map)
        classes = tuple(lm.classes)
        kept = []
        for record in usable:
            cls = lm.map(record)
            if cls is None:
                key = f"{record.dataset}:{record.label}"
                excluded[key] = excluded.get(key, 0) + 1
            else:
                kept.append(record.with_label(cls))
    kept.sort(key=_record_id)
    y = np.array([classes.index(r.label) for r in kept], dtype=np.int64)
    soft = None
    if kept and all(isinstance(r, ImageRecord) and r.soft_label is not None for r in kept):
        soft = np.zeros((len(kept), len(classes)), dtype=np.float32)
        for i, r in enumerate(kept):
            for name, p in zip(r.soft_classes or (), r.soft_label or ()):
                if name in classes:
                    soft[i, classes.index(name)] = p
        soft /= np.maximum(soft.sum(axis=1, keepdims=True), 1e-12)
    return ds, Clips(kept, classes, y, list(ds.skipped), excluded, soft)


@dataclass
class Samples:
    """Model inputs: ``x[j]`` belongs to clip ``owner[j]``; ``train_only`` samples never test;
    ``apex`` marks the apex frame's sample of a clip (SHCNN's tie-break)."""

    x: np.ndarray
    owner: np.ndarray
    train_only: np.ndarray
    apex: np.ndarray

    def __len__(self) -> int:
        return len(self.owner)


def _as_float(x: np.ndarray) -> np.ndarray:
    return x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else x.astype(np.float32)


def ten_crops(image: np.ndarray, size: int) -> list[np.ndarray]:
    """The ten crops of a ``(C, H, W)`` image: four corners and the centre, each also mirrored."""
    _, h, w = image.shape
    top, left = (h - size) // 2, (w - size) // 2
    corners = [(0, 0), (0, w - size), (h - size, 0), (h - size, w - size), (top, left)]
    crops = [image[:, r:r + size, c:c + size] for r, c in corners]
    return crops + [c[:, :, ::-1] for c in crops]


def _rotate(image_hwc: np.ndarray, angle: float) -> np.ndarray:
    import cv2

    h, w = image_hwc.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), angle, 1.0)
    out = cv2.warpAffine(np.ascontiguousarray(image_hwc), m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    return out.reshape(image_hwc.shape)


def _geometric_copies(x: np.ndarray, feature: str, flip: bool, rotate: Sequence[float]) -> list[np.ndarray]:
    """Flipped and rotated copies of one clip ``(T, H, W, 3)`` or grey image ``(1, H, W)``; with both,
    the rotations apply to the original and the mirrored image (the 3D-CNN paper's x10)."""
    bases = [x]
    if flip:
        bases.append(x[..., ::-1, :] if feature == "clip_rgb" else x[..., ::-1])
    out = bases[1:]
    for base in bases:
        for angle in rotate:
            if feature == "clip_rgb":
                out.append(np.stack([_rotate(f, angle) for f in base]))
            else:
                out.append(_rotate(base[0], angle)[None])
    return [np.ascontiguousarray(o) for o in out]


def prepare_config(recipe: Recipe, config: Any) -> Any:
    """The configuration the run prepares its clips with: ``config`` plus the frame-selection copies
    of ``augment.frame_select`` (shares below 1; the share 1 is the clip itself)."""
    shares = tuple(dict.fromkeys(float(s) for s in recipe.augment.frame_select if s < 1))
    return config.replace(frame_select=shares) if shares else config


def magnify_levels(recipe: Recipe, config: Any) -> list[float]:
    """The extra magnification factors of a run: ``augment.magnify`` without the clips' own factor."""
    return [a for a in dict.fromkeys(float(a) for a in recipe.augment.magnify) if a != config.magnify]


def _model_view(x: np.ndarray, feature: str) -> np.ndarray:
    """One sample as the model takes it (clips to channels-first, bytes to [0, 1] floats)."""
    if feature == "clip_rgb":
        return _as_float(x).transpose(3, 0, 1, 2)
    if feature == "strcn_pixels":
        return x  # masked per fold, see strcn_inputs
    return _as_float(x)


def build_samples(features: list[Any], extra: dict[float, dict[str, Any]], feature: str, recipe: Recipe,
                  crop: int | None) -> Samples:
    """Samples of every clip (see the module docstring); ``extra`` maps a magnification factor to
    the features prepared with it (by record id)."""
    aug = recipe.augment
    xs: list[np.ndarray] = []
    owner: list[int] = []
    train_only: list[bool] = []
    apex: list[bool] = []

    def add(x: np.ndarray, i: int, only_train: bool, is_apex: bool = False) -> None:
        xs.append(_model_view(x, feature))
        owner.append(i)
        train_only.append(only_train)
        apex.append(is_apex)

    for i, feat in enumerate(features):
        arrays = feat.arrays
        x = np.asarray(arrays["x"])
        rid = _record_id(feat.record)
        if feature == "hsi_flow":
            apex_index = int(arrays.get("apex_index", len(x) - 1))
            for t in range(len(x)):
                add(x[t], i, False, t == apex_index)
            for alpha in sorted(extra):
                for t, frame in enumerate(np.asarray(extra[alpha][rid].arrays["x"])):
                    add(frame, i, True)
            continue
        if recipe.inference == "ten_crop":
            for c in ten_crops(x, crop or x.shape[-1]):
                add(c, i, False)
            continue
        add(x, i, False, True)
        if aug.apex_plus_one and "x_aug" in arrays:
            add(np.asarray(arrays["x_aug"]), i, True)
        for copy in _geometric_copies(x, feature, aug.flip, aug.rotate) if (aug.flip or aug.rotate) else ():
            add(copy, i, True)
        for copy in np.asarray(arrays.get("x_select", ())):
            add(copy, i, True)
        for alpha in sorted(extra):
            if rid in extra[alpha]:
                more = extra[alpha][rid].arrays
                add(np.asarray(more["x"]), i, True)
                for copy in np.asarray(more.get("x_select", ())):
                    add(copy, i, True)
    if not xs:
        raise MertkError("no samples: every clip was skipped")
    return Samples(np.stack(xs), np.array(owner), np.array(train_only), np.array(apex))


def sample_folds(clip_folds: Sequence[Any], samples: Samples) -> list[Any]:
    """Expand folds over clips to folds over samples (test and validation: the clips' non-augmented
    samples; train: every sample of the training clips)."""
    from .protocols import Fold

    out = []
    for fold in clip_folds:
        parts = {}
        for part in ("train", "test", "val"):
            clips = np.zeros(samples.owner.max() + 1, dtype=bool)
            clips[list(getattr(fold, part))] = True
            chosen = clips[samples.owner] if part == "train" else clips[samples.owner] & ~samples.train_only
            parts[part] = tuple(np.flatnonzero(chosen))
        out.append(Fold(fold.name, parts["train"], parts["test"], parts["val"]))
    return out


def strcn_inputs(samples: Samples, train_clip_samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """STRCN-A inputs of one fold: the mask fitted on the fold's training clips only, then applied
    to every sample. Returns ``(x, mask)``: ``(N, 3, n_pixels, T)`` floats in [0, 1] and the mask."""
    from ..preprocess.eyemask import apply_strcn_mask, fit_strcn_mask

    mask = fit_strcn_mask((samples.x[j] for j in train_clip_samples), percentile=30)
    return np.stack([_as_float(apply_strcn_mask(x, mask)).transpose(2, 0, 1) for x in samples.x]), mask


# ---------------------------------------------------------------------------------------------
# predictions
# ---------------------------------------------------------------------------------------------


def aggregate(probs: np.ndarray, rule: str, apex: np.ndarray) -> tuple[np.ndarray, int]:
    """One clip's probabilities and predicted class from its test samples' probabilities.

    ``vote``: majority of the per-sample classes, a tie going to the apex sample's class when it is
    among the tied classes (else the tied class of highest mean probability); probabilities are the
    mean. Otherwise (one sample, or ten crops) the mean probabilities decide (the sum of the scores).
    """
    mean = probs.mean(axis=0)
    if rule != "vote" or len(probs) == 1:
        return mean, int(np.argmax(mean))
    votes = np.bincount(probs.argmax(axis=1), minlength=probs.shape[1])
    tied = np.flatnonzero(votes == votes.max())
    if len(tied) == 1:
        return mean, int(tied[0])
    if apex.any():
        apex_class = int(probs[np.flatnonzero(apex)[0]].argmax())
        if apex_class in tied:
            return mean, apex_class
    return mean, int(tied[np.argmax(mean[tied])])


# ---------------------------------------------------------------------------------------------
# pretraining
# ---------------------------------------------------------------------------------------------


def pretrain_config(recipe: Recipe, config: Any) -> Any:
    """The pipeline configuration of the pretraining dataset: the recipe's, with ``pretrain.eye_mask``."""
    return config.replace(eye_mask=recipe.pretrain.eye_mask)


def pretrain(recipe: Recipe, data: Path, config: Any, label_map: str, cache_dir: Path | None, progress: bool, workers: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """Train the model on the pretraining dataset; returns (state_dict for the folds, report)."""
    import torch

    from ..models import create_model
    from ..preprocess.pipeline import prepare
    from .train import make_optimizer, make_scheduler, train_one_epoch

    spec = recipe.pretrain
    label_map = spec.label_map or label_map
    root = resolve_root(spec.dataset, spec.root, data)
    ds, clips = load_clips(spec.dataset, root, label_map, {})
    config = pretrain_config(recipe, config)
    result = prepare(ds, config, cache_dir=cache_dir, workers=workers, progress=progress, records=clips.records)
    by_id = {_record_id(f.record): f for f in result.features}
    keep = [i for i, r in enumerate(clips.records) if _record_id(r) in by_id]
    if not keep:
        raise MertkError(f"pretraining on {spec.dataset} at {root}: no usable clip")
    x = torch.from_numpy(np.stack([_model_view(np.asarray(by_id[_record_id(clips.records[i])].arrays["x"]),
                                               config.feature) for i in keep]))
    y = torch.from_numpy(clips.y[keep])
    kwargs = {**recipe.model.kwargs, "num_classes": len(clips.classes)}
    cfg = train_config(recipe, {"epochs": spec.epochs, "lr": spec.lr, "batch_size": spec.batch_size})
    torch.manual_seed(recipe.seed)
    model = create_model(recipe.model.name, **kwargs)
    optimizer = make_optimizer(model, cfg)
    scheduler = make_scheduler(optimizer, cfg)
    generator = torch.Generator().manual_seed(recipe.seed)
    start = time.perf_counter()
    losses = []
    for _ in range(spec.epochs):
        losses.append(float(train_one_epoch(model, x, y, optimizer, cfg, generator, scheduler=scheduler)))
    # reset: without classifier weights every fold initialises its own classifier (train_folds)
    state = {k: v.detach().clone() for k, v in model.state_dict().items()
             if not (spec.classifier == "reset" and k.startswith("classifier."))}
    report = {"dataset": spec.dataset, "root": str(root), "label_map": label_map, "clips": len(keep),
              "epochs": spec.epochs, "final_loss": losses[-1] if losses else None, "classifier": spec.classifier,
              "eye_mask": config.eye_mask,
              "seconds": round(time.perf_counter() - start, 2),
              "prepare_skipped": [s.as_dict() for s in result.skipped],
              "loader_skipped": [s.as_dict() for s in clips.loader_skipped], "excluded": clips.excluded}
    return state, report


# ---------------------------------------------------------------------------------------------
# the run
# ---------------------------------------------------------------------------------------------


def _file_digest(path: Path) -> str:
    """SHA-256 of a file (an official list enters the run's identity by content); DataError if absent."""
    if not Path(path).is_file():
        raise DataError(path, "official clip list not found")
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def composite_summary(ds: Any) -> dict[str, Any] | None:
    """How a composite was defined and its per-component table (``None`` for a single dataset)."""
    from ..data.composite import Composite

    if not isinstance(ds, Composite):
        return None
    return {
        "definition": f"the official list {ds.official}" if ds.official is not None
        else "built from the sheets, not the official list",
        "components": ds.component_table(),
        "official_check": ds.official_check,
    }


def _versions() -> dict[str, str]:
    import cv2
    import torch

    from .. import __version__

    return {"mertk": __version__, "torch": torch.__version__, "numpy": np.__version__, "opencv": cv2.__version__,
            "python": platform.python_version()}


def _folds_for(recipe: Recipe, clips: Clips) -> list[Any]:
    from . import protocols

    n = len(clips.records)
    if recipe.protocol == "loso":
        missing = [r for r in clips.records if not r.subject]
        if missing:
            raise MertkError(f"LOSO needs subjects, but {_record_id(missing[0])} has none ({missing[0].source})")
        return protocols.loso(clips.subjects)
    if recipe.protocol == "lovo":
        return protocols.lovo(n, test_fraction=float(recipe.protocol_options.get("test_fraction", 0.05)),
                              seed=recipe.seed, labels=[r.label for r in clips.records])
    if recipe.protocol == "leave_one_video_out":
        return protocols.leave_one_video_out(n)
    if recipe.protocol == "leave_one_dataset_out":
        return protocols.leave_one_dataset_out([r.dataset for r in clips.records])
    return protocols.official_splits([getattr(r, "split", None) for r in clips.records])


def save_final_model(path: Path, recipe: Recipe, kwargs: dict[str, Any], config: Any, samples: Samples,
                     y_samples: Any, tconfig: Any, init_state: dict | None, classes: Sequence[str], label_map: str,
                     clips: int, progress: bool) -> Path:
    """Train the recipe's model on every sample of the run and save it as a checkpoint."""
    import torch

    from .checkpoint import Checkpoint, save_checkpoint
    from .train import train_final

    arrays: dict[str, Any] = {}
    if config.feature == "strcn_pixels":
        x, mask = strcn_inputs(samples, np.flatnonzero(~samples.train_only))
        x = torch.from_numpy(x)
        kwargs = {**kwargs, "input_size": tuple(x.shape[-2:])}
        arrays["strcn_mask"] = mask.astype(np.uint8)
    else:
        x = torch.from_numpy(samples.x)
    model, history = train_final(recipe.model.name, kwargs, x, y_samples, tconfig, init_state=init_state,
                                 progress=progress)
    checkpoint = Checkpoint(
        model=recipe.model.name, model_kwargs=kwargs, classes=tuple(classes), label_map=label_map,
        features=config.as_dict(), inference=recipe.inference,
        state_dict={k: v.detach().cpu().clone() for k, v in model.state_dict().items()}, arrays=arrays,
        meta={"recipe": recipe.name, "paper": recipe.paper, "run_dir": str(path.parent), "clips": clips,
              "samples": len(samples), "seed": recipe.seed, "epochs": tconfig.epochs,
              "final_loss": history[-1]["loss"] if history else None, "versions": _versions()},
    )
    return save_checkpoint(path, checkpoint)


def run_dir_for(recipe: Recipe, resolved: dict[str, Any], out: Path) -> Path:
    digest = hashlib.sha1(json.dumps(resolved, sort_keys=True, default=str).encode()).hexdigest()[:10]
    return out / f"{recipe.name}-{digest}"


def run_recipe(
    recipe: Recipe | str,
    *,
    data: Path | None = None,
    out: Path | None = None,
    overrides: Sequence[str] = (),
    progress: bool = True,
    cache_dir: Path | None = None,
    workers: int = 0,
    log: Callable[[str], None] | None = None,
    train_workers: int = 1,
    ray_address: str | None = None,
    select_grid: Sequence[str] = (),
) -> Path:
    """Run a recipe (a :class:`Recipe`, a shipped name or a YAML path) and return its run directory.

    Args:
        recipe: what to run; ``overrides`` (``section.key=value``) apply on top.
        data: the folder holding the datasets (``$MERTK_DATA`` or the current folder by default).
        out: where run directories go (default ``runs``).
        progress: progress bars for preparation and training.
        cache_dir: feature cache (default :func:`default_cache_dir`).
        workers: preprocessing processes (0: automatic).
        log: called with one line per stage (default: nothing).
        train_workers, ray_address: train the folds as Ray tasks on this many local workers, or on
            the Ray cluster at ``ray_address`` (:mod:`mertk.engine.parallel`); 1 and no address: serially.
        select_grid: ``train.KEY=V1,V2`` grids chosen inside every outer fold (:mod:`mertk.engine.select`).

    A run directory that already holds fold files for the same resolved configuration is resumed.
    """
    import torch

    from ..preprocess.cache import PIPELINE_VERSION
    from ..preprocess.pipeline import prepare
    from .classical import chosen_hyperparameters
    from .metrics import metrics_report, read_predictions
    from .protocols import classes_missing_from_train
    from .train import train_folds

    say = log or (lambda _line: None)
    if isinstance(recipe, Recipe):
        if overrides:
            from .recipe import apply_set, recipe_from_dict

            recipe = recipe_from_dict(apply_set(recipe.to_dict(), overrides), source=f"recipe {recipe.name}")
    else:
        recipe = load_recipe(recipe, overrides)
    summary = validate_recipe(recipe)
    data = Path(data if data is not None else default_data_dir()).expanduser().resolve()
    out = Path(out if out is not None else "runs").expanduser()
    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    classes = tuple(summary["classes"])
    config = feature_config(recipe, len(classes))
    tconfig = train_config(recipe)
    root = resolve_root(recipe.data.dataset, recipe.data.root, data)
    loader = dict(recipe.data.loader)
    if recipe.data.official is not None:
        official = Path(recipe.data.official).expanduser()
        loader["official"] = official if official.is_absolute() else data / official
    resolved = {
        "recipe": recipe.to_dict(),
        "data_root": str(root),
        **({"official_list": str(loader["official"]), "official_sha256": _file_digest(loader["official"])}
           if "official" in loader else {}),
        "features": config.as_dict(),
        "train": _plain_config(tconfig),
        "classes": list(classes),
        "label_map": summary["label_map"],
        "pipeline_version": PIPELINE_VERSION,  # features made by another pipeline version never resume a run
        **({"select_grid": list(select_grid)} if select_grid else {}),
    }
    run_dir = run_dir_for(recipe, resolved, out)
    t0 = time.perf_counter()
    ds, clips = load_clips(recipe.data.dataset, root, summary["label_map"], loader)  # before the run dir
    say(f"{recipe.data.dataset} at {root}: {len(clips.records)} clips in {len(classes)} classes")
    run_dir.mkdir(parents=True, exist_ok=True)
    folds_dir = run_dir / "folds"
    import yaml

    _write_text(run_dir / "config.yaml", yaml.safe_dump({**resolved, "cache_dir": str(cache), "run_dir": str(run_dir)},
                                                        sort_keys=False))
    timings: dict[str, float] = {}
    start_all = time.perf_counter()

    prepared = prepare_config(recipe, config)
    result = prepare(ds, prepared, cache_dir=cache, workers=workers, progress=progress, records=clips.records)
    extra: dict[float, dict[str, Any]] = {}
    for alpha in magnify_levels(recipe, config):
        magnified = prepare(ds, prepared.replace(magnify=alpha), cache_dir=cache, workers=workers,
                            progress=progress, records=clips.records)
        extra[alpha] = {_record_id(f.record): f for f in magnified.features}
    timings["prepare_s"] = round(time.perf_counter() - t0, 2)
    by_id = {_record_id(f.record): f for f in result.features}
    keep = [i for i, r in enumerate(clips.records) if _record_id(r) in by_id]
    records = [clips.records[i] for i in keep]
    y = clips.y[keep]
    if len(records) < 2:
        raise MertkError(f"recipe {recipe.name}: {len(records)} usable clip(s) after preprocessing; "
                         f"first skip: {result.skipped[0].reason if result.skipped else 'none'}")
    emptied = sorted({r.subject or "" for r in clips.records} - {r.subject or "" for r in records})
    used = Clips(records, classes, y, clips.loader_skipped, clips.excluded,
                 None if clips.soft is None else clips.soft[keep])
    features = [by_id[_record_id(r)] for r in records]
    write_clips(run_dir / "clips.csv", features, y, classes)
    classical = summary["kind"] == "classical"
    if classical:  # one sample per clip, kept as the pipeline's bytes: the model computes its descriptor
        n = len(features)
        samples = Samples(np.stack([np.asarray(f.arrays["x"]) for f in features]), np.arange(n),
                          np.zeros(n, dtype=bool), np.ones(n, dtype=bool))
    else:
        crop = model_input_spec(recipe.model.name, {**recipe.model.kwargs, "num_classes": len(classes)}).shape[-1]
        samples = build_samples(features, extra, config.feature, recipe, crop)
    clip_folds = _folds_for(recipe, used)
    if tconfig.select != "last":
        from .protocols import inner_validation

        subjects = [r.subject or "" for r in records]
        clip_folds = [inner_validation(f, subjects, fraction=tconfig.val_fraction, seed=recipe.seed) for f in clip_folds]
    folds = sample_folds(clip_folds, samples)
    labels = [r.label for r in records]
    missing = {f.name: classes_missing_from_train(f, labels, classes) for f in clip_folds}
    say(f"{len(folds)} folds ({recipe.protocol}), {len(samples)} samples")

    if tconfig.loss == "soft":
        if used.soft is None:
            raise MertkError(f"recipe {recipe.name}: loss=soft needs soft labels, which {recipe.data.dataset} lacks")
        y_samples = torch.from_numpy(used.soft[samples.owner])
    else:
        y_samples = torch.from_numpy(y[samples.owner])

    init_state = None
    pre_report = None
    if recipe.pretrain.dataset is not None:
        say(f"pretraining on {recipe.pretrain.dataset} ({recipe.pretrain.epochs} epochs)")
        t0 = time.perf_counter()
        init_state, pre_report = pretrain(recipe, data, config, summary["label_map"], cache, progress, workers)
        timings["pretrain_s"] = round(time.perf_counter() - t0, 2)

    done = load_folds(folds_dir)
    resumed = sorted(f.name for f in folds if f.name in done)
    if resumed:
        say(f"resuming: {len(resumed)} of {len(folds)} folds already done")
    kwargs = {**recipe.model.kwargs, "num_classes": len(classes)}

    def on_done(fold_result: Any) -> None:
        save_fold(folds_dir, fold_result)

    t0 = time.perf_counter()
    todo = [f for f in folds if f.name not in done]
    if todo:
        if classical:
            from .classical import fit_folds

            fit_folds(recipe.model.name, kwargs, samples.x, y, [r.subject or "" for r in records], folds,
                      seed=recipe.seed, progress=progress, on_fold_done=on_done, skip_folds=set(done))
        elif config.feature == "strcn_pixels":
            if select_grid:
                raise MertkError(f"recipe {recipe.name}: --select-grid does not support strcn_pixels features yet")
            if train_workers > 1 or ray_address:
                say("strcn_pixels folds are masked per fold: training them one after another, not on Ray")
            for fold in todo:  # the pixel mask is fitted on each fold's training clips
                train_originals = np.array([j for j in fold.train if not samples.train_only[j]])
                x = torch.from_numpy(strcn_inputs(samples, train_originals)[0])
                kw = {**kwargs, "input_size": tuple(x.shape[-2:])}
                train_folds(recipe.model.name, kw, x, y_samples, [fold], tconfig, init_state=init_state,
                            batched=False, progress=progress, on_fold_done=on_done)
        else:
            x = torch.from_numpy(samples.x)
            batched = None if recipe.fold_batching == "auto" else bool(recipe.fold_batching)
            from . import parallel

            if select_grid:
                if tconfig.select != "last":
                    raise MertkError(f"recipe {recipe.name}: --select-grid chooses on its own inner validation "
                                     f"subjects; it cannot be combined with train.select={tconfig.select}")
                from .select import train_selected

                train_selected(recipe.model.name, kwargs, x, y_samples, clip_folds, folds, todo, samples,
                               [r.subject or "" for r in records], y, classes, tconfig, select_grid,
                               recipe.inference, recipe.seed, run_dir, init_state, progress)
            elif parallel.wanted(train_workers, ray_address, say):
                parallel.train_folds_ray(recipe.model.name, kwargs, x, y_samples, todo, tconfig, folds_dir,
                                         workers=train_workers, address=ray_address, init_state=init_state,
                                         progress=progress)
            else:
                train_folds(recipe.model.name, kwargs, x, y_samples, folds, tconfig, init_state=init_state,
                            batched=batched, progress=progress, on_fold_done=on_done, skip_folds=set(done))
    timings["train_s"] = round(time.perf_counter() - t0, 2)
    if recipe.final_model and not (run_dir / "model.pt").is_file():
        say("training the final model on every clip (saved as model.pt)")
        t0 = time.perf_counter()
        final_config = tconfig
        if tconfig.select != "last":  # no validation subjects left: train for the folds' median chosen epoch
            chosen = [f.selected_epoch for f in load_folds(folds_dir).values() if f.selected_epoch]
            final_config = dataclasses.replace(tconfig, epochs=int(np.median(chosen)) if chosen else tconfig.epochs)
        save_final_model(run_dir / "model.pt", recipe, kwargs, config, samples, y_samples, final_config, init_state,
                         classes, summary["label_map"], len(records), progress)
        timings["final_model_s"] = round(time.perf_counter() - t0, 2)
    done = load_folds(folds_dir)
    absent = [f.name for f in folds if f.name not in done]
    if absent:
        raise MertkError(f"{run_dir}: folds {', '.join(absent[:3])} finished without a fold file")

    rows = []
    histories = {}
    fold_info = []
    for fold in folds:
        saved = done[fold.name]
        histories[fold.name] = saved.history
        index = np.asarray(saved.test_index)
        owners = samples.owner[index]
        for clip in dict.fromkeys(owners.tolist()):
            sel = owners == clip
            probs, pred = aggregate(saved.probs[sel], recipe.inference, samples.apex[index[sel]])
            r = records[clip]
            source = dict(r.extra).get("source_dataset") if r.dataset == "megc2019-features" else None
            rows.append({"dataset": source or r.dataset, "subject": r.subject or "", "clip": r.clip if isinstance(r, ClipRecord) else r.item,
                         "fold": fold.name, "y_true": classes[y[clip]], "y_pred": classes[pred],
                         **{f"p_{c}": float(p) for c, p in zip(classes, probs)}})
        fold_info.append({"fold": fold.name, "train_samples": len(fold.train), "val_samples": len(fold.val),
                          "test_samples": len(fold.test), "selected_epoch": saved.selected_epoch or None,
                          "test_clips": len(set(owners.tolist())), "seconds": round(saved.seconds, 2),
                          "missing_classes": missing.get(fold.name, []), "resumed": fold.name in resumed,
                          **({"hyperparameters": chosen_hyperparameters(saved.history)} if classical else {})})
    import pandas as pd

    frame = pd.DataFrame(rows)
    _write_text(run_dir / "predictions.csv", frame.to_csv(index=False, float_format="%.6f"))
    report = metrics_report(read_predictions(run_dir / "predictions.csv"), list(classes))
    inflated = best_test_epoch_figure(folds, done, samples, records, y, classes, recipe.inference)
    timings["total_s"] = round(time.perf_counter() - start_all, 2)
    results = {
        "recipe": recipe.name,
        "paper": recipe.paper,
        "run_dir": str(run_dir),
        "model": recipe.model.name,
        "protocol": recipe.protocol,
        "classes": list(classes),
        "seed": recipe.seed,
        "metrics": {k: report[k] for k in ("accuracy", "uf1", "uar", "macro_f1", "n") if k in report},
        "report": report,
        "selection": "inner subject-wise folds (hyperparameters per fold)" if classical else tconfig.select,
        **({"selected_hyperparameters": json.loads((run_dir / "selection.json").read_text())}
           if select_grid else {}),
        "best_test_epoch_inflated": inflated,
        "clips_used": len(records),
        "clips_tested": len(frame),
        "samples": len(samples),
        "folds": fold_info,
        "classes_missing_from_training": {k: v for k, v in missing.items() if v},
        "empty_folds": [{"subject": s, "reason": "every clip of this subject was skipped"} for s in emptied],
        "warnings": [w.as_dict() for w in getattr(ds, "warnings", [])],
        "composite": composite_summary(ds),
        "skipped": {
            "loader": [s.as_dict() for s in clips.loader_skipped],
            "prepare": [s.as_dict() for s in result.skipped],
            "excluded_by_label_map": clips.excluded,
        },
        "pretrain": pre_report,
        "checkpoint": str(run_dir / "model.pt") if (run_dir / "model.pt").is_file() else None,
        "timings": timings,
        "versions": _versions(),
        "torch_threads": torch.get_num_threads(),
    }
    _write_text(run_dir / "results.json", json.dumps(results, indent=2, default=_json_default))
    plot_confusion(report, run_dir / "confusion.png", title=recipe.name)
    plot_curves(histories, run_dir / "training_curves.png", title=recipe.name)
    return run_dir


def best_test_epoch_figure(folds: Sequence[Any], done: dict[str, SavedFold], samples: Samples, records: Sequence[Any],
                           y: np.ndarray, classes: Sequence[str], inference: str) -> dict[str, Any] | None:
    """The inflated figure papers print: each fold's epoch of highest TEST accuracy (needs
    ``train.test_curve``). It is reported apart from the honest metrics and never selects anything."""
    from .metrics import megc_metrics

    if not folds or any(done[f.name].test_curve is None for f in folds):
        return None
    y_true, y_pred, epochs = [], [], []
    for fold in folds:
        saved = done[fold.name]
        index = np.asarray(saved.test_index)
        owners = samples.owner[index]
        clips = list(dict.fromkeys(owners.tolist()))
        best, best_acc, best_pred = 1, -1.0, []
        for e, probs in enumerate(saved.test_curve):
            pred = [aggregate(probs[owners == c], inference, samples.apex[index[owners == c]])[1] for c in clips]
            acc = float(np.mean([p == y[c] for p, c in zip(pred, clips)]))
            if acc > best_acc:
                best, best_acc, best_pred = e + 1, acc, pred
        epochs.append(best)
        y_true += [classes[y[c]] for c in clips]
        y_pred += [classes[p] for p in best_pred]
    m = megc_metrics(y_true, y_pred, list(classes))
    return {"label": "best test epoch per fold (inflated, for comparison with papers only)",
            "accuracy": m["accuracy"], "uf1": m["uf1"], "uar": m["uar"], "epochs": epochs}


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def _plain_config(config: Any) -> dict[str, Any]:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(config).items()}


# ---------------------------------------------------------------------------------------------
# plots
# ---------------------------------------------------------------------------------------------


def plot_confusion(report: dict[str, Any], path: Path, *, title: str = "") -> None:
    """Confusion matrix (rows true, columns predicted; counts and row shares) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    matrix = np.asarray(report["confusion"], dtype=float)
    classes = report["classes"]
    shares = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(1.2 + 0.9 * len(classes), 1.0 + 0.8 * len(classes)))
    ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(classes)):
        for j in range(len(classes)):
            ax.text(j, i, f"{int(matrix[i, j])}", ha="center", va="center",
                    color="white" if shares[i, j] > 0.5 else "black")
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    uf1, uar = report.get("uf1"), report.get("uar")
    ax.set_title(f"{title}\nUF1 {uf1:.3f}  UAR {uar:.3f}" if uf1 is not None and uar is not None else title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_curves(histories: dict[str, list[dict]], path: Path, *, title: str = "") -> None:
    """Training loss and accuracy per epoch: one thin line per fold and their mean."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    for ax, key in zip(axes, ("loss", "train_acc")):
        curves = [[float(h[key]) for h in hist if key in h] for hist in histories.values()]
        curves = [c for c in curves if c]
        for c in curves:
            ax.plot(range(1, len(c) + 1), c, color="0.75", lw=0.6)
        if curves:
            n = min(len(c) for c in curves)
            ax.plot(range(1, n + 1), np.mean([c[:n] for c in curves], axis=0), color="C0", lw=1.8, label="mean over folds")
            ax.legend(fontsize=8)
        ax.set_xlabel("epoch")
        ax.set_ylabel(key)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
