"""What a run report computes from a run directory.

- :func:`load_run` reads ``config.yaml``, ``results.json`` and ``predictions.csv``;
- :func:`run_features` reads the run's clips (``clips.csv``) and their arrays from the feature cache by key;
- :func:`class_mean_maps` averages each class's model inputs (the per-class mean flow maps of
  cost-effective-cnn-belaiche-2020, Fig. 6);
- :func:`penultimate_features` and :func:`cosine_similarity_matrix`: the mean cosine similarity of
  the features just before the classifier, within and between classes (ibid., eq. 5, Tables 5-7);
- :func:`recipe_overrides` and :func:`reproduce_command`: the ``mertk train`` command that rebuilds
  the run (the shipped recipe plus every ``--set`` that differs from it).
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ..errors import DataError, MertkError

@dataclass(frozen=True)
class RunData:
    """The files of a run directory, parsed.

    Attributes:
        run_dir: the directory.
        config: ``config.yaml`` as a :class:`~mertk.engine.runconfig.RunConfig` (None when the file is missing).
        results: ``results.json``.
        predictions: ``predictions.csv`` as a DataFrame (None when the file is missing).
        cache_dir: the feature cache the run used (written beside the configuration), if any.
    """

    run_dir: Path
    config: Any
    results: dict[str, Any]
    predictions: Any
    cache_dir: Path | None = None

    @property
    def classes(self) -> list[str]:
        return list(self.results.get("classes") or (self.config.classes if self.config is not None else ()))


def load_run(run_dir: str | Path) -> RunData:
    """Read a run directory; a folder without ``results.json`` (or with unreadable files) is a DataError."""
    from ..engine.runconfig import CONFIG_FILE, read_run_files

    run_dir = Path(run_dir).expanduser()
    if not run_dir.is_dir():
        raise DataError(run_dir, "not a run directory (folder not found)")
    results_path = run_dir / "results.json"
    if not results_path.is_file():
        raise DataError(run_dir, "not a run directory (no results.json; `mertk train` writes one when a run finishes)")
    try:
        results = json.loads(results_path.read_text())
    except (OSError, ValueError) as exc:
        raise DataError(results_path, f"unreadable results ({exc})") from None
    if not isinstance(results, dict) or "metrics" not in results:
        raise DataError(results_path, "not a mertk results file (no 'metrics')")
    _check_scores(results, results_path)
    config, location = None, {}
    if (run_dir / CONFIG_FILE).is_file():
        config, location = read_run_files(run_dir)
    predictions = None
    if (run_dir / "predictions.csv").is_file():
        from ..engine.metrics import read_predictions

        predictions = read_predictions(run_dir / "predictions.csv")
    return RunData(run_dir, config, results, predictions,
                   Path(location["cache_dir"]) if "cache_dir" in location else None)


SCORES = ("accuracy", "uf1", "uar", "macro_f1", "n")


def _check_scores(results: dict[str, Any], path: Path) -> None:
    """Refuse a results.json whose overall or per-dataset scores are not numbers (an edited file)."""
    if not isinstance(results["metrics"], dict):
        raise DataError(path, f"metrics must be a mapping, got {results['metrics']!r}")
    groups = {"metrics": results["metrics"]}
    per_dataset = (results.get("report") or {}).get("per_dataset") if isinstance(results.get("report"), dict) else None
    for name, scores in (per_dataset or {}).items():
        if not isinstance(scores, dict):
            raise DataError(path, f"report.per_dataset.{name} must be a mapping, got {scores!r}")
        groups[f"report.per_dataset.{name}"] = scores
    for where, scores in groups.items():
        for key in SCORES:
            value = scores.get(key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
                raise DataError(path, f"{where}.{key} must be a number, got {value!r}")


# ---------------------------------------------------------------------------------------------
# the run's features
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunClip:
    """One row of the run's ``clips.csv``: a clip the run used and its entry in the feature cache."""

    record_id: str
    dataset: str
    subject: str
    clip: str
    label: str
    class_index: int
    cache_key: str


@dataclass(frozen=True)
class RunFeatures:
    """The run's clips (``clips.csv`` order) and their prepared arrays, read from the feature cache.

    Attributes:
        feature: the feature family (``uvs``, ``hsi_flow``, ``clip_rgb``...).
        records: the clips (:class:`RunClip`).
        arrays: the cached ``prepare`` output per clip (``x`` is the model input before :func:`model_inputs`).
        y: class index per clip.
        classes: class names.
    """

    feature: str
    records: list[RunClip]
    arrays: list[Mapping[str, np.ndarray]]
    y: np.ndarray
    classes: tuple[str, ...]


CLIP_COLUMNS = ("record_id", "dataset", "subject", "clip", "label", "class_index", "cache_key")


def read_clips(run: RunData) -> list[RunClip]:
    """The rows of the run's ``clips.csv`` (written by ``mertk train``); a missing or malformed file is a DataError."""
    import csv

    path = run.run_dir / "clips.csv"
    if not path.is_file():
        raise DataError(path, "missing: the run predates clips.csv, so the report cannot read its clips' arrays")
    try:
        with open(path, newline="") as fh:
            reader = csv.DictReader(fh)
            absent = [c for c in CLIP_COLUMNS if c not in (reader.fieldnames or ())]
            if absent:
                raise DataError(path, f"no column(s) {', '.join(absent)}")
            return [RunClip(**{c: row[c] for c in CLIP_COLUMNS if c != "class_index"},
                            class_index=int(row["class_index"])) for row in reader]
    except (OSError, ValueError, csv.Error) as exc:
        raise DataError(path, f"unreadable ({exc})") from None


def run_features(run: RunData) -> RunFeatures:
    """The run's clips (``clips.csv``) and their arrays, read from the feature cache by key.

    Neither the dataset nor the pipeline is touched. Raises a DataError when ``clips.csv`` is missing
    (a run that predates it) and a MertkError naming how many clips have no cache entry (the cache
    was deleted, or the run used ``--no-cache``).
    """
    from ..preprocess.cache import FeatureCache

    if run.config is None:
        raise DataError(run.run_dir / "config.yaml", "missing: the feature family of the run is unknown")
    clips = read_clips(run)
    cache_dir = run.cache_dir
    cache = FeatureCache(cache_dir) if cache_dir else None
    arrays = [cache.get(c.cache_key) if cache is not None and c.cache_key else None for c in clips]
    missing = sum(a is None for a in arrays)
    if missing:
        raise MertkError(f"{missing} of {len(clips)} clips have no entry in the feature cache at {cache_dir} "
                         "(deleted, or a --no-cache run)")
    y = np.asarray([c.class_index for c in clips], dtype=np.int64)
    return RunFeatures(run.config.features.feature, clips, arrays, y, tuple(run.classes))


def record_clip_name(record: Any) -> tuple[str, str]:
    """(subject, clip) as ``predictions.csv`` writes them."""
    clip = getattr(record, "clip", None) or getattr(record, "item", "")
    return record.subject or "", str(clip)


# ---------------------------------------------------------------------------------------------
# per-class mean maps
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MeanMaps:
    """Per-class means of the model inputs: ``maps[k, c]`` is class ``k``'s mean of panel ``c``.

    ``panels`` names the columns; ``counts[k]`` clips went into class ``k`` (a class without clips
    has NaN maps). ``signed`` tells whether a panel holds signed values (flow components).
    ``note`` says what was averaged.
    """

    maps: np.ndarray
    panels: tuple[str, ...]
    counts: np.ndarray
    signed: tuple[bool, ...]
    note: str
    rgb: bool = False


def class_mean_maps(features: RunFeatures) -> MeanMaps:
    """Average every class's model inputs, panel by panel (see :class:`MeanMaps`).

    Flow-map families (``uvs``, ``flow_*``) average each channel. ``hsi_flow`` averages the
    HSI-coded flow image of the apex frame (an RGB image). Clip families (``clip_rgb``,
    ``strcn_pixels``) have no flow map: they show the mean first frame and the mean absolute
    difference to it over the clip (where the face moves). ``gray_face`` shows the mean face.
    """
    from ..preprocess.features import feature_family

    family = feature_family(features.feature)
    k = len(features.classes)
    panels, rgb, note = family.panels, family.panels_rgb, family.panels_note()
    stack = [family.panel_stack(a) for a in features.arrays]
    if not stack:
        raise MertkError("no prepared clip to average")
    data = np.stack(stack)
    maps = np.full((k,) + data.shape[1:], np.nan, dtype=np.float32)
    counts = np.bincount(features.y, minlength=k)
    for c in range(k):
        if counts[c]:
            maps[c] = data[features.y == c].mean(axis=0)
    signed = tuple(bool(np.nanmin(data[:, p]) < 0) for p in range(data.shape[1])) if not rgb else (False,)
    return MeanMaps(maps, tuple(panels), counts, signed, note, rgb)


# ---------------------------------------------------------------------------------------------
# penultimate features and cosine similarity
# ---------------------------------------------------------------------------------------------


def penultimate_features(checkpoint: Any, model: Any, arrays: Sequence[Mapping[str, np.ndarray]]) -> np.ndarray:
    """The input of ``model.classifier`` (the vector the last linear layer classifies) for every clip.

    A clip with several samples (SHCNN's per-frame flow images, ten crops) gets the mean of its
    samples' vectors, as its probabilities are combined from its samples. Returns ``(N, D)``.
    """
    import torch

    from ..engine.checkpoint import model_inputs

    captured: list[torch.Tensor] = []
    hook = model.classifier.register_forward_hook(lambda _m, inputs, _o: captured.append(inputs[0].detach()))
    out = []
    try:
        model.eval()
        with torch.no_grad():
            for a in arrays:
                x, _apex = model_inputs(checkpoint, a)
                captured.clear()
                model(x)
                out.append(captured[-1].flatten(1).mean(dim=0).double().numpy())
    finally:
        hook.remove()
    return np.stack(out)


def cosine_similarity_matrix(features: np.ndarray, y: np.ndarray, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean cosine similarity ``a.b / (|a| |b|)`` between the vectors of classes ``i`` and ``j``.

    Off-diagonal cells average over every pair (one vector of each class); diagonal cells over
    every pair of distinct clips of the class (a vector with itself is left out). Cells with no
    pair are NaN. Returns ``(matrix, counts)``; a zero vector counts as similarity 0.
    """
    f = np.asarray(features, dtype=np.float64)
    norms = np.linalg.norm(f, axis=1, keepdims=True)
    unit = np.divide(f, norms, out=np.zeros_like(f), where=norms > 0)
    sim = unit @ unit.T
    counts = np.bincount(y, minlength=num_classes)
    matrix = np.full((num_classes, num_classes), np.nan)
    for i in range(num_classes):
        for j in range(num_classes):
            block = sim[np.ix_(y == i, y == j)]
            if i == j:
                n = counts[i]
                if n >= 2:
                    matrix[i, j] = (block.sum() - np.trace(block)) / (n * (n - 1))
            elif block.size:
                matrix[i, j] = block.mean()
    return matrix, counts


# ---------------------------------------------------------------------------------------------
# reproducing the run
# ---------------------------------------------------------------------------------------------

_NESTED = {("data", "loader"), ("model", "kwargs")}
_SECTIONS = ("data", "model", "pretrain", "augment")


def _flatten(recipe: Mapping[str, Any]) -> dict[str, Any]:
    """Dotted ``section.key`` paths to the values ``--set`` takes."""
    out: dict[str, Any] = {}
    for key, value in recipe.items():
        if key in _SECTIONS and isinstance(value, Mapping):
            for sub, v in value.items():
                if (key, sub) in _NESTED and isinstance(v, Mapping):
                    for leaf, w in v.items():
                        out[f"{key}.{sub}.{leaf}"] = w
                else:
                    out[f"{key}.{sub}"] = v
        elif key in ("features", "train", "protocol_options") and isinstance(value, Mapping):
            for sub, v in value.items():
                out[f"{key}.{sub}"] = v
        else:
            out[key] = value
    return out


def _yaml_value(value: Any) -> str:
    import yaml

    text = yaml.safe_dump(value, default_flow_style=True, width=10_000).strip()
    return text[:-4].strip() if text.endswith("\n...") else text


def recipe_overrides(recipe: Mapping[str, Any]) -> tuple[str | None, list[str]]:
    """The shipped recipe a resolved recipe comes from and the ``--set`` strings that rebuild it.

    Returns ``(name, sets)``; ``name`` is None when no shipped recipe has the recipe's name.
    """
    from ..engine.recipe import load_recipe, recipe_from_dict
    from ..registry import RECIPES

    name = recipe.get("name")
    if name not in RECIPES:
        return None, []
    base = _flatten(load_recipe(name).to_dict())
    mine = _flatten(recipe)
    sets = [f"{k}={_yaml_value(v)}" for k, v in mine.items() if k not in base or base[k] != v]
    # a train setting the shipped recipe makes and this one leaves at TrainConfig's default
    train = recipe_from_dict(recipe).train
    sets += [f"{k}={_yaml_value(getattr(train, k.removeprefix('train.')))}" for k in base
             if k.startswith("train.") and k not in mine]
    return name, sets


def data_folder(run: RunData) -> Path | None:
    """The ``--data`` folder that resolves to the run's ``data_root`` (and pretraining root)."""
    from ..engine.recipe import resolve_root

    if run.config is None:
        return None
    recipe = run.config.recipe
    root = Path(run.config.data_root)
    pre_root = (run.results.get("pretrain") or {}).get("root")
    for candidate in (root, root.parent):
        if resolve_root(recipe.data.dataset, recipe.data.root, candidate) != root:
            continue
        if pre_root and recipe.pretrain.dataset and \
                resolve_root(recipe.pretrain.dataset, recipe.pretrain.root, candidate) != Path(pre_root):
            continue
        return candidate
    return None


def reproduce_command(run: RunData, *, recipe_file: Path | None = None) -> dict[str, Any]:
    """The ``mertk train`` command that rebuilds the run directory.

    Returns ``{"command", "recipe", "sets", "data", "out", "cache", "note"}``. A recipe that is not
    shipped is given as ``recipe_file`` (the caller writes the resolved recipe there).
    """
    if run.config is None:
        raise DataError(run.run_dir / "config.yaml", "missing: the run cannot be reproduced")
    name, sets = recipe_overrides(run.config.recipe.to_dict())
    note = ""
    if name is None:
        if recipe_file is None:
            raise MertkError(f"recipe {run.config.recipe.name!r} is not shipped; give recipe_file")
        name, note = str(recipe_file), "the recipe is not a shipped one: its resolved copy is in " + str(recipe_file)
    data = data_folder(run)
    parts = ["mertk", "train", name]
    for s in sets:
        parts += ["--set", s]
    if data is not None:
        parts += ["--data", str(data)]
    else:
        note = (note + "; " if note else "") + f"no --data folder resolves to {run.config.data_root}"
    out = run.run_dir.parent
    parts += ["--out", str(out)]
    if run.cache_dir:
        parts += ["--cache", str(run.cache_dir)]
    return {"command": shlex.join(parts), "recipe": name, "sets": sets, "data": None if data is None else str(data),
            "out": str(out), "cache": None if run.cache_dir is None else str(run.cache_dir), "note": note}
