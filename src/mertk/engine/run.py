"""Run a recipe end to end into a resumable run directory.

:func:`run_recipe` is a sequence of named steps: resolve the recipe into a
:class:`~mertk.engine.runconfig.RunConfig`, load the clips, prepare their features through the cache,
build the samples (:mod:`mertk.engine.samples`), split them by the recipe's protocol, optionally
pretrain, train the folds (serially, on Ray, or with nested selection), aggregate the predictions into
metrics, train the final model and write::

    <out>/<recipe>-<hash>/
        config.yaml           the resolved configuration (recipe, pipeline, trainer, classes, paths)
        folds/<fold>.npz      one file per finished fold (probabilities, test indices, history)
        predictions.csv       dataset, subject, clip, fold, y_true, y_pred, p_<class>...
        results.json          metrics, per-dataset breakdown, timings, seed, versions, skips
        confusion.png, training_curves.png

A seed ensemble (``ensemble.seeds``, :mod:`mertk.engine.ensemble`) trains every fold once per seed
into ``members/seed-<S>/folds/`` (each member's ``predictions.csv`` beside them); the run's
``predictions.csv`` and metrics are the ensemble's.

The directory name holds a hash of the resolved configuration, so the same command finds the same
directory: a run killed at any point (even by SIGKILL) and started again skips the folds whose files
exist. Fold files are written atomically (temporary file + rename). When the trainer batches folds
(several small models trained together), the folds of one batch finish together, so a kill loses the
batch in progress.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ..errors import DataError, MertkError
from ..fileio import atomic_write
from ..figures import confusion_png, curves_png
from ..records import ClipRecord, ImageRecord, Skip
from .inputs import aggregate, model_input_spec, model_view
from .recipe import (Recipe, apply_set, default_cache_dir, default_data_dir, feature_config, load_recipe,
                     prepare_config, pretrain_config, recipe_from_dict, resolve_root, train_config,
                     validate_recipe)
from .rundir import SavedFold, load_choices, load_folds, run_dir_for, save_fold, write_clips
from .runconfig import CONFIG_FILE, RunConfig
from .ensemble import average_folds, member_dir, member_summary
from .samples import Samples, build_samples, classical_samples, magnify_levels, record_id, sample_folds, masked_inputs

Record = ClipRecord | ImageRecord


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


def load_clips(dataset: str, root: Path, label_map: str | None, loader: dict[str, Any]) -> tuple[Any, Clips]:
    """Open a dataset, relabel its usable records by ``label_map`` (composites are relabelled already)."""
    from ..data import get_label_map, open_dataset

    ds = open_dataset(dataset, root, **loader)
    usable = list(ds.usable())
    excluded: dict[str, int] = {}
    if ds.kind == "composite":  # labels are its classes
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
    kept.sort(key=record_id)
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


def pretrain(recipe: Recipe, data: Path, config: Any, label_map: str, cache_dir: Path | None, progress: bool, workers: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """Train the model on the pretraining dataset; returns (state_dict for the folds, report).

    It trains with the recipe's trainer settings (loss, class weights, sampler, mixup, jitter, threads)
    but ``pretrain.epochs``, ``lr`` and ``batch_size``, once, with the recipe's ``seed``; values that
    ``select_grid`` chooses per fold do not reach it."""
    import torch

    from ..models import create_model
    from ..preprocess.pipeline import prepare
    from .train import make_optimizer, make_scheduler, torch_threads, train_one_epoch

    spec = recipe.pretrain
    label_map = spec.label_map or label_map
    root = resolve_root(spec.dataset, spec.root, data)
    ds, clips = load_clips(spec.dataset, root, label_map, {})
    config = pretrain_config(recipe, config)
    result = prepare(ds, config, cache_dir=cache_dir, workers=workers, progress=progress, records=clips.records)
    by_id = {record_id(f.record): f for f in result.features}
    keep = [i for i, r in enumerate(clips.records) if record_id(r) in by_id]
    if not keep:
        raise MertkError(f"pretraining on {spec.dataset} at {root}: no usable clip")
    x = torch.from_numpy(np.stack([model_view(np.asarray(by_id[record_id(clips.records[i])].arrays["x"]),
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
    with torch_threads(cfg.threads):
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
            raise MertkError(f"LOSO needs subjects, but {record_id(missing[0])} has none ({missing[0].source})")
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
    if config.family.pixel_mask:
        x, mask = masked_inputs(samples, np.flatnonzero(~samples.train_only), config.feature)
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


# ---------------------------------------------------------------------------------------------
# the steps of a run
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunContext:
    """What every step of one run shares: the recipe, its resolved configuration and where it runs."""

    recipe: Recipe
    config: RunConfig
    kind: str
    data: Path
    run_dir: Path
    cache: Path
    loader: dict[str, Any]
    progress: bool
    workers: int
    say: Callable[[str], None]
    member: int | None = None

    @property
    def member_dir(self) -> Path:
        """The folder of this trainer's fold files: the run's, or a seed ensemble member's."""
        return self.run_dir if self.member is None else member_dir(self.run_dir, self.member)

    @property
    def folds_dir(self) -> Path:
        return self.member_dir / "folds"

    @property
    def model_kwargs(self) -> dict[str, Any]:
        return {**self.recipe.model.kwargs, "num_classes": len(self.config.classes)}


@dataclass(frozen=True)
class Prepared:
    """The run's clips after preprocessing: the ones with features (``used``) and what was dropped."""

    ds: Any
    loaded: Clips
    result: Any
    used: Clips
    features: list[Any]
    extra: dict[float, dict[str, Any]]
    emptied: list[str]


@dataclass(frozen=True)
class FoldPlan:
    """Folds over clips and over samples, the classes each fold's training lacks, and the targets."""

    clip_folds: list[Any]
    folds: list[Any]
    missing: dict[str, list[str]]
    y_samples: Any


def _as_recipe(recipe: Recipe | str, overrides: Sequence[str]) -> Recipe:
    if not isinstance(recipe, Recipe):
        return load_recipe(recipe, overrides)
    if overrides:
        return recipe_from_dict(apply_set(recipe.to_dict(), overrides), source=f"recipe {recipe.name}")
    return recipe


def resolve_run(recipe: Recipe, data: Path) -> tuple[RunConfig, dict[str, Any], dict[str, Any]]:
    """The :class:`RunConfig` of a validated recipe, its validation summary and the loader's arguments."""
    from ..preprocess.cache import PIPELINE_VERSION

    summary = validate_recipe(recipe)
    classes = tuple(summary["classes"])
    root = resolve_root(recipe.data.dataset, recipe.data.root, data)
    loader = dict(recipe.data.loader)
    if recipe.data.official is not None:
        official = Path(recipe.data.official).expanduser()
        loader["official"] = official if official.is_absolute() else data / official
    config = RunConfig(
        recipe=recipe, data_root=str(root), features=feature_config(recipe, len(classes)), train=train_config(recipe),
        classes=classes, label_map=summary["label_map"], pipeline_version=PIPELINE_VERSION,
        official_list=str(loader["official"]) if "official" in loader else None,
        official_sha256=_file_digest(loader["official"]) if "official" in loader else None)
    return config, summary, loader


def write_config(ctx: RunContext) -> None:
    """``config.yaml``: the resolved configuration plus where the run ran."""
    import yaml

    ctx.run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write(ctx.run_dir / CONFIG_FILE, yaml.safe_dump(
        {**ctx.config.to_dict(), "cache_dir": str(ctx.cache), "run_dir": str(ctx.run_dir)}, sort_keys=False))


def prepare_clips(ctx: RunContext, ds: Any, clips: Clips) -> Prepared:
    """Features of every clip (and of every extra magnification factor) through the cache."""
    from ..preprocess.pipeline import prepare

    recipe, config = ctx.recipe, ctx.config.features
    prepared = prepare_config(recipe, config)
    opts = {"cache_dir": ctx.cache, "workers": ctx.workers, "progress": ctx.progress, "records": clips.records}
    result = prepare(ds, prepared, **opts)
    extra: dict[float, dict[str, Any]] = {}
    for alpha in magnify_levels(recipe, config):
        extra[alpha] = {record_id(f.record): f for f in prepare(ds, prepared.replace(magnify=alpha), **opts).features}
    by_id = {record_id(f.record): f for f in result.features}
    keep = [i for i, r in enumerate(clips.records) if record_id(r) in by_id]
    records = [clips.records[i] for i in keep]
    if len(records) < 2:
        raise MertkError(f"recipe {recipe.name}: {len(records)} usable clip(s) after preprocessing; "
                         f"first skip: {result.skipped[0].reason if result.skipped else 'none'}")
    emptied = sorted({r.subject or "" for r in clips.records} - {r.subject or "" for r in records})
    used = Clips(records, clips.classes, clips.y[keep], clips.loader_skipped, clips.excluded,
                 None if clips.soft is None else clips.soft[keep])
    features = [by_id[record_id(r)] for r in records]
    write_clips(ctx.run_dir / "clips.csv", features, used.y, clips.classes)
    return Prepared(ds, clips, result, used, features, extra, emptied)


def make_samples(ctx: RunContext, prep: Prepared) -> Samples:
    """The model samples of the used clips (one per clip for a classical model)."""
    if ctx.kind == "classical":
        return classical_samples(prep.features)
    recipe = ctx.recipe
    crop = model_input_spec(recipe.model.name, ctx.model_kwargs).shape[-1]
    return build_samples(prep.features, prep.extra, ctx.config.features.feature, recipe, crop)


def plan_folds(ctx: RunContext, used: Clips, samples: Samples) -> FoldPlan:
    """The protocol's folds (with inner validation subjects when the trainer selects an epoch) and targets."""
    import torch

    from .protocols import classes_missing_from_train, inner_validation

    recipe, tconfig, classes = ctx.recipe, ctx.config.train, ctx.config.classes
    clip_folds = _folds_for(recipe, used)
    if tconfig.select != "last":
        clip_folds = [inner_validation(f, used.subjects, fraction=tconfig.val_fraction, seed=recipe.seed)
                      for f in clip_folds]
    folds = sample_folds(clip_folds, samples)
    labels = [r.label for r in used.records]
    missing = {f.name: classes_missing_from_train(f, labels, classes) for f in clip_folds}
    if tconfig.loss == "soft":
        if used.soft is None:
            raise MertkError(f"recipe {recipe.name}: loss=soft needs soft labels, which {recipe.data.dataset} lacks")
        y_samples = torch.from_numpy(used.soft[samples.owner])
    else:
        y_samples = torch.from_numpy(used.y[samples.owner])
    return FoldPlan(clip_folds, folds, missing, y_samples)


def _train_strcn(ctx: RunContext, samples: Samples, plan: FoldPlan, todo: list[Any], init_state: dict | None,
                 parallel_wanted: bool) -> None:
    import torch

    from .train import train_folds

    if ctx.recipe.select_grid:
        raise MertkError(f"recipe {ctx.recipe.name}: select_grid does not support strcn_pixels features yet")
    if parallel_wanted:
        ctx.say("strcn_pixels folds are masked per fold: training them one after another, not on Ray")
    for fold in todo:  # the pixel mask is fitted on each fold's training clips
        train_originals = np.array([j for j in fold.train if not samples.train_only[j]])
        x = torch.from_numpy(masked_inputs(samples, train_originals, ctx.config.features.feature)[0])
        kw = {**ctx.model_kwargs, "input_size": tuple(x.shape[-2:])}
        train_folds(ctx.recipe.model.name, kw, x, plan.y_samples, [fold], ctx.config.train, init_state=init_state,
                    batched=False, progress=ctx.progress, on_fold_done=lambda r: save_fold(ctx.folds_dir, r))


def _train_tensors(ctx: RunContext, samples: Samples, used: Clips, plan: FoldPlan, todo: list[Any], done: dict,
                   init_state: dict | None, train_workers: int, ray_address: str | None) -> None:
    import torch

    from . import parallel
    from .train import train_folds

    recipe, tconfig, kwargs = ctx.recipe, ctx.config.train, ctx.model_kwargs
    x = torch.from_numpy(samples.x)
    selection = None
    if recipe.select_grid:
        if tconfig.select != "last":
            raise MertkError(f"recipe {recipe.name}: select_grid chooses on its own inner validation "
                             f"subjects; it cannot be combined with train.select={tconfig.select}")
        from .grid import parse_select_grid
        from .select import Selection

        selection = Selection({f.name: f for f in plan.clip_folds}, samples, used.subjects, used.y,
                              ctx.config.classes, parse_select_grid(recipe.select_grid), recipe.inference,
                              recipe.seed, ctx.member_dir)
    if parallel.wanted(train_workers, ray_address, ctx.say):
        parallel.train_folds_ray(recipe.model.name, kwargs, x, plan.y_samples, todo, tconfig, ctx.folds_dir,
                                 workers=train_workers, address=ray_address, init_state=init_state,
                                 progress=ctx.progress, selection=selection)
    elif selection is not None:
        from .select import train_selected

        train_selected(recipe.model.name, kwargs, x, plan.y_samples, todo, tconfig, selection, init_state,
                       ctx.progress)
    else:
        batched = None if recipe.fold_batching == "auto" else bool(recipe.fold_batching)
        train_folds(recipe.model.name, kwargs, x, plan.y_samples, plan.folds, tconfig, init_state=init_state,
                    batched=batched, progress=ctx.progress, on_fold_done=lambda r: save_fold(ctx.folds_dir, r),
                    skip_folds=set(done))


def train_run_folds(ctx: RunContext, samples: Samples, used: Clips, plan: FoldPlan, done: dict,
                    init_state: dict | None, train_workers: int, ray_address: str | None) -> None:
    """Train (or fit) every fold without a fold file: classical fits, STRCN's per-fold masks, or the
    tensor trainer (nested selection, Ray, or serially)."""
    todo = [f for f in plan.folds if f.name not in done]
    if not todo:
        return
    if ctx.kind == "classical":
        from .classical import fit_folds

        fit_folds(ctx.recipe.model.name, ctx.model_kwargs, samples.x, used.y, used.subjects, plan.folds,
                  seed=ctx.recipe.seed, progress=ctx.progress, on_fold_done=lambda r: save_fold(ctx.folds_dir, r),
                  skip_folds=set(done))
    elif ctx.config.features.family.pixel_mask:
        _train_strcn(ctx, samples, plan, todo, init_state, train_workers > 1 or bool(ray_address))
    else:
        _train_tensors(ctx, samples, used, plan, todo, done, init_state, train_workers, ray_address)


def final_model(ctx: RunContext, samples: Samples, plan: FoldPlan, done: dict[str, SavedFold],
                init_state: dict | None, clips: int) -> None:
    """Train ``model.pt`` on every sample (with the recipe's seed, also for a seed ensemble); after
    epoch selection, for the folds' median chosen epoch."""
    tconfig = ctx.config.train
    if tconfig.select != "last":  # no validation subjects left: train for the folds' median chosen epoch
        chosen = [f.selected_epoch for f in done.values() if f.selected_epoch]
        tconfig = dataclasses.replace(tconfig, epochs=int(np.median(chosen)) if chosen else tconfig.epochs)
    save_final_model(ctx.run_dir / "model.pt", ctx.recipe, ctx.model_kwargs, ctx.config.features, samples,
                     plan.y_samples, tconfig, init_state, ctx.config.classes, ctx.config.label_map, clips,
                     ctx.progress)


def collect_predictions(ctx: RunContext, plan: FoldPlan, done: dict[str, SavedFold], samples: Samples, used: Clips,
                        resumed: Sequence[str]) -> tuple[list[dict], dict[str, list[dict]], list[dict]]:
    """One predictions row per tested clip (its samples aggregated), the fold histories and per-fold facts."""
    from .classical import chosen_hyperparameters

    classes, records, y = ctx.config.classes, used.records, used.y
    rows, histories, fold_info = [], {}, []
    for fold in plan.folds:
        saved = done[fold.name]
        histories[fold.name] = saved.history
        index = np.asarray(saved.test_index)
        owners = samples.owner[index]
        for clip in dict.fromkeys(owners.tolist()):
            sel = owners == clip
            probs, pred = aggregate(saved.probs[sel], ctx.recipe.inference, samples.apex[index[sel]])
            r = records[clip]
            source = dict(r.extra).get("source_dataset") if r.dataset == "megc2019-features" else None
            rows.append({"dataset": source or r.dataset, "subject": r.subject or "", "clip": r.clip if isinstance(r, ClipRecord) else r.item,
                         "fold": fold.name, "y_true": classes[y[clip]], "y_pred": classes[pred],
                         **{f"p_{c}": float(p) for c, p in zip(classes, probs)}})
        fold_info.append({"fold": fold.name, "train_samples": len(fold.train), "val_samples": len(fold.val),
                          "test_samples": len(fold.test), "selected_epoch": saved.selected_epoch or None,
                          "test_clips": len(set(owners.tolist())), "seconds": round(saved.seconds, 2),
                          "missing_classes": plan.missing.get(fold.name, []), "resumed": fold.name in resumed,
                          **({"hyperparameters": chosen_hyperparameters(saved.history)} if ctx.kind == "classical" else {})})
    return rows, histories, fold_info


def _selections(members: Sequence[RunContext], plan: FoldPlan) -> dict[str, Any]:
    """The nested selection's choice per fold (a seed ensemble's per member and fold), in fold order."""
    out: dict[str, Any] = {}
    for m in members:
        chosen = load_choices(m.member_dir)
        out.update({fold.name if m.member is None else f"{fold.name} (seed {m.member})": chosen.get(fold.name)
                    for fold in plan.folds})
    return out


def ensemble_results(members: Sequence[RunContext], member_folds: Sequence[dict[str, SavedFold]], plan: FoldPlan,
                     samples: Samples, used: Clips, resumed: Sequence[str]) -> dict[str, Any]:
    """Every member's ``predictions.csv`` (in its folder) and ``results.json``'s ``ensemble`` entry."""
    import pandas as pd

    from .metrics import metrics_report, read_predictions

    reports = []
    for m, done in zip(members, member_folds):
        rows, _, _ = collect_predictions(m, plan, done, samples, used, resumed)
        path = m.member_dir / "predictions.csv"
        atomic_write(path, pd.DataFrame(rows).to_csv(index=False, float_format="%.6f"))
        reports.append(metrics_report(read_predictions(path), list(m.config.classes)))
    return member_summary([m.member for m in members], reports)


def write_results(ctx: RunContext, prep: Prepared, samples: Samples, plan: FoldPlan, done: dict[str, SavedFold],
                  resumed: Sequence[str], pre_report: dict | None, timings: dict[str, float], start_all: float,
                  members: Sequence[RunContext], member_folds: Sequence[dict[str, SavedFold]]) -> None:
    """``predictions.csv``, ``results.json`` and the two figures (``done``: the run's folds, a seed
    ensemble's averaged over ``member_folds``)."""
    import pandas as pd
    import torch

    from .metrics import metrics_report, read_predictions

    recipe, run_dir, classes, used = ctx.recipe, ctx.run_dir, ctx.config.classes, prep.used
    rows, histories, fold_info = collect_predictions(ctx, plan, done, samples, used, resumed)
    frame = pd.DataFrame(rows)
    atomic_write(run_dir / "predictions.csv", frame.to_csv(index=False, float_format="%.6f"))
    report = metrics_report(read_predictions(run_dir / "predictions.csv"), list(classes))
    inflated = best_test_epoch_figure(plan.folds, done, samples, used.records, used.y, classes, recipe.inference)
    timings["total_s"] = round(time.perf_counter() - start_all, 2)
    classical = ctx.kind == "classical"
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
        "selection": "inner subject-wise folds (hyperparameters per fold)" if classical else ctx.config.train.select,
        **({"selected_hyperparameters": _selections(members, plan)} if recipe.select_grid else {}),
        "best_test_epoch_inflated": inflated,
        "clips_used": len(used.records),
        "clips_tested": len(frame),
        "samples": len(samples),
        "folds": fold_info,
        "classes_missing_from_training": {k: v for k, v in plan.missing.items() if v},
        "empty_folds": [{"subject": s, "reason": "every clip of this subject was skipped"} for s in prep.emptied],
        "warnings": [w.as_dict() for w in getattr(prep.ds, "warnings", [])],
        "composite": composite_summary(prep.ds),
        "skipped": {
            "loader": [s.as_dict() for s in prep.loaded.loader_skipped],
            "prepare": [s.as_dict() for s in prep.result.skipped],
            "excluded_by_label_map": prep.loaded.excluded,
        },
        "ensemble": ensemble_results(members, member_folds, plan, samples, used, resumed)
        if recipe.ensemble.seeds else None,
        "pretrain": pre_report,
        "checkpoint": str(run_dir / "model.pt") if (run_dir / "model.pt").is_file() else None,
        "timings": timings,
        "versions": _versions(),
        "torch_threads": torch.get_num_threads(),
    }
    atomic_write(run_dir / "results.json", json.dumps(results, indent=2, default=_json_default))
    atomic_write(run_dir / "confusion.png", confusion_png(report, title=recipe.name))
    atomic_write(run_dir / "training_curves.png", curves_png(histories, title=recipe.name))


def pretrain_step(ctx: RunContext, timings: dict[str, float]) -> tuple[dict | None, dict | None]:
    """The pretrained weights and the pretraining report (both ``None`` without ``pretrain.dataset``)."""
    spec = ctx.recipe.pretrain
    if spec.dataset is None:
        return None, None
    ctx.say(f"pretraining on {spec.dataset} ({spec.epochs} epochs)")
    return _timed(timings, "pretrain_s", lambda: pretrain(ctx.recipe, ctx.data, ctx.config.features,
                                                          ctx.config.label_map, ctx.cache, ctx.progress, ctx.workers))


def member_contexts(ctx: RunContext) -> list[RunContext]:
    """The trainers of the run: ``ctx`` itself, or one per seed of ``ensemble.seeds`` (its trainer's seed
    replaced, its fold files in its own folder)."""
    seeds = ctx.recipe.ensemble.seeds
    if not seeds:
        return [ctx]
    return [dataclasses.replace(ctx, member=s, config=dataclasses.replace(
        ctx.config, train=dataclasses.replace(ctx.config.train, seed=s))) for s in seeds]


def train_members(members: Sequence[RunContext], samples: Samples, used: Clips, plan: FoldPlan,
                  init_state: dict | None, train_workers: int,
                  ray_address: str | None) -> tuple[list[dict[str, SavedFold]], list[str]]:
    """Train every member's folds that have no fold file yet; returns every member's finished folds and
    the folds that were already done in all of them (resumed). The members of a seed ensemble whose
    folds go to Ray share one Ray instance."""
    from . import parallel

    ctx = members[0]
    on_ray = (len(members) > 1 and ctx.kind != "classical" and not ctx.config.features.family.pixel_mask
              and parallel.wanted(train_workers, ray_address))
    resumed: list[set[str]] = []
    with parallel.ray_session(train_workers, ray_address) if on_ray else contextlib.nullcontext():
        for m in members:
            done = load_folds(m.folds_dir)
            resumed.append({f.name for f in plan.folds if f.name in done})
            who = "" if m.member is None else f"ensemble member seed {m.member}: "
            if resumed[-1]:
                m.say(f"{who}resuming: {len(resumed[-1])} of {len(plan.folds)} folds already done")
            elif who:
                m.say(who + f"{len(plan.folds)} folds")
            train_run_folds(m, samples, used, plan, done, init_state, train_workers, ray_address)
    return [finished_folds(m, plan) for m in members], sorted(set.intersection(*resumed))


def finished_folds(ctx: RunContext, plan: FoldPlan) -> dict[str, SavedFold]:
    """Every fold's saved file (a fold that finished without one is an error naming the run)."""
    done = load_folds(ctx.folds_dir)
    absent = [f.name for f in plan.folds if f.name not in done]
    if absent:
        raise MertkError(f"{ctx.member_dir}: folds {', '.join(absent[:3])} finished without a fold file")
    return done


def _timed(timings: dict[str, float], key: str, step: Callable[[], Any]) -> Any:
    t0 = time.perf_counter()
    out = step()
    timings[key] = round(time.perf_counter() - t0, 2)
    return out


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
        cache_dir: feature cache (default :func:`~mertk.engine.recipe.default_cache_dir`).
        workers: preprocessing processes (0: automatic).
        log: called with one line per stage (default: nothing).
        train_workers, ray_address: train the folds as Ray tasks on this many local workers, or on
            the Ray cluster at ``ray_address`` (:mod:`mertk.engine.parallel`); 1 and no address: serially.
        select_grid: ``train.KEY=V1,V2`` grids chosen inside every outer fold (:mod:`mertk.engine.select`),
            merged into the recipe's ``select_grid``.

    A run directory that already holds fold files for the same resolved configuration is resumed.
    """
    say = log or (lambda _line: None)
    from .grid import with_select_grid

    recipe = with_select_grid(_as_recipe(recipe, overrides), select_grid)
    data = Path(data if data is not None else default_data_dir()).expanduser().resolve()
    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    config, summary, loader = resolve_run(recipe, data)
    run_dir = run_dir_for(config, Path(out if out is not None else "runs").expanduser())
    ctx = RunContext(recipe, config, summary["kind"], data, run_dir, cache, loader, progress, workers, say)
    t0 = time.perf_counter()
    ds, clips = load_clips(recipe.data.dataset, Path(config.data_root), config.label_map, loader)  # before the run dir
    say(f"{recipe.data.dataset} at {config.data_root}: {len(clips.records)} clips in {len(config.classes)} classes")
    write_config(ctx)
    timings: dict[str, float] = {}
    start_all = time.perf_counter()
    prep = prepare_clips(ctx, ds, clips)
    timings["prepare_s"] = round(time.perf_counter() - t0, 2)
    samples = make_samples(ctx, prep)
    plan = plan_folds(ctx, prep.used, samples)
    say(f"{len(plan.folds)} folds ({recipe.protocol}), {len(samples)} samples")
    init_state, pre_report = pretrain_step(ctx, timings)
    members = member_contexts(ctx)
    member_folds, resumed = _timed(timings, "train_s", lambda: train_members(
        members, samples, prep.used, plan, init_state, train_workers, ray_address))
    done = member_folds[0] if len(members) == 1 else average_folds(member_folds)
    if recipe.final_model and not (run_dir / "model.pt").is_file():
        say("training the final model on every clip (saved as model.pt)")
        _timed(timings, "final_model_s", lambda: final_model(ctx, samples, plan, done, init_state,
                                                             len(prep.used.records)))
    write_results(ctx, prep, samples, plan, done, resumed, pre_report, timings, start_all, members, member_folds)
    return run_dir
