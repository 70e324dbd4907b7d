"""Nested selection: values chosen per outer fold on inner validation subjects, never on the test subject."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from mertk.engine import train as train_module
from mertk.engine.protocols import loso
from mertk.engine.metrics import read_predictions
from mertk.engine.run import run_recipe
from mertk.engine.grid import parse_select_grid
from mertk.engine.rundir import load_choices, load_folds
from mertk.engine.samples import Samples
from mertk.engine.select import select_for_fold
from mertk.engine.trainconfig import TrainConfig
from mertk.errors import MertkError

CLASSES = ("negative", "positive", "surprise")


def _setup(seed=0):
    rng = np.random.default_rng(seed)
    subjects = [f"s{i % 6}" for i in range(60)]
    y = rng.integers(0, 3, 60)
    x = rng.random((60, 3, 28, 28), dtype=np.float32)
    samples = Samples(x, np.arange(60), np.zeros(60, bool), np.ones(60, bool))
    return samples, subjects, y, loso(subjects)


def _select(samples, y, subjects, fold):
    config = TrainConfig(epochs=2, batch_size=16, lr=1e-3, val_fraction=0.4)
    grid = parse_select_grid(["train.lr=1e-2,1e-4", "train.epochs=1,2"])
    return select_for_fold("ststnet", {"num_classes": 3}, torch.from_numpy(samples.x), torch.from_numpy(y), fold,
                           samples, subjects, y, CLASSES, config, grid, "mean", 0)


def test_outer_test_subject_never_reaches_the_selection(monkeypatch):
    samples, subjects, y, folds = _setup()
    fold = folds[2]
    seen = []
    real = train_module.train_folds

    def spy(model, kwargs, x, ys, fs, config, **kw):
        seen.extend(fs)
        return real(model, kwargs, x, ys, fs, config, **kw)

    monkeypatch.setattr(train_module, "train_folds", spy)
    choice = _select(samples, y, subjects, fold)
    assert len(seen) == 4 and len(choice["inner_uf1"]) == 4
    test = set(fold.test)
    for f in seen:  # neither trained nor scored on an outer test sample
        assert not test & set(f.train) and not test & set(f.test) and not test & set(f.val)
        assert set(f.train) | set(f.test) <= set(fold.train)
    assert subjects[fold.test[0]] not in choice["val_subjects"]
    assert choice["chosen"] == parse_select_grid(["train.lr=1e-2,1e-4", "train.epochs=1,2"])[
        int(np.argmax(choice["inner_uf1"]))]
    # whatever the test subject's inputs and labels are, the selection is the same
    noisy = Samples(samples.x.copy(), samples.owner, samples.train_only, samples.apex)
    noisy.x[list(fold.test)] = np.random.default_rng(5).random((len(fold.test), 3, 28, 28), dtype=np.float32)
    y2 = y.copy()
    y2[list(fold.test)] = (y2[list(fold.test)] + 1) % 3
    assert _select(noisy, y2, subjects, fold) == choice


def test_select_grid_takes_trainer_keys_only():
    assert parse_select_grid(["train.lr=1e-3,5e-5"]) == [{"lr": 1e-3}, {"lr": 5e-5}]
    for bad in (["features.eye_mask=true,false"], ["train.seed=0,1"], ["train.bogus=1,2"]):
        with pytest.raises(MertkError):
            parse_select_grid(bad)


def test_run_records_the_chosen_values_per_fold(synth_root, tmp_path):
    run_dir = run_recipe("ststnet-megc2019", data=synth_root, out=tmp_path, progress=False, cache_dir=tmp_path / "c",
                         overrides=["train.epochs=1", "train.val_fraction=0.3"], select_grid=["train.lr=1e-2,1e-4"])
    results = json.loads((run_dir / "results.json").read_text())
    chosen = results["selected_hyperparameters"]
    assert len(chosen) == len(results["folds"]) == 12
    frame = read_predictions(run_dir / "predictions.csv")
    for name, choice in chosen.items():
        assert choice["chosen"]["lr"] in (1e-2, 1e-4) and len(choice["inner_uf1"]) == 2
        assert not set(frame.loc[frame["fold"] == name, "subject"]) & set(choice["val_subjects"])

    for name, saved in load_folds(run_dir / "folds").items():  # each fold trained with its chosen rate
        assert saved.history[0]["lr"] == pytest.approx(chosen[name]["chosen"]["lr"])


def test_recipe_select_grid_merges_with_the_command_line(tmp_path):
    from mertk.engine.recipe import RecipeError, load_recipe, validate_recipe
    from mertk.engine.grid import with_select_grid

    recipe = load_recipe("megc2019-generalise")
    assert recipe.select_grid == ("train.class_weights=none,balanced", "train.mixup=0,0.2")
    assert len(parse_select_grid(recipe.select_grid)) == 4
    merged = with_select_grid(recipe, ["train.mixup=0,0.4", "train.lr=1e-3,5e-5"])
    assert merged.select_grid == ("train.class_weights=none,balanced", "train.mixup=0,0.4", "train.lr=1e-3,5e-5")
    assert with_select_grid(recipe, []) is recipe
    path = tmp_path / "mine.yaml"
    path.write_text("name: mine\ndata: megc2019\nmodel: ststnet\nselect_grid: ['train.lr=1e-3,5e-5']\n")
    assert parse_select_grid(load_recipe(path).select_grid) == [{"lr": 1e-3}, {"lr": 5e-5}]
    path.write_text("name: mine\ndata: megc2019\nmodel: ststnet\nselect_grid: ['features.eye_mask=true,false']\n")
    with pytest.raises(RecipeError, match="recipe mine: select_grid: features.eye_mask: only trainer keys"):
        validate_recipe(load_recipe(path))


def test_ensemble_members_choose_their_own_values(synth_root, tmp_path):
    run_dir = run_recipe("ststnet-megc2019", data=synth_root, out=tmp_path, progress=False, cache_dir=tmp_path / "c",
                         overrides=["train.epochs=1", "train.val_fraction=0.3", "ensemble.seeds=[0, 1]",
                                    "final_model=false"], select_grid=["train.lr=1e-2,1e-4"])
    results = json.loads((run_dir / "results.json").read_text())
    chosen = results["selected_hyperparameters"]
    assert len(chosen) == 2 * len(results["folds"]) == 24
    for seed in (0, 1):
        saved = load_choices(run_dir / "members" / f"seed-{seed}")
        assert {f"{fold} (seed {seed})": c for fold, c in saved.items()} == {k: v for k, v in chosen.items()
                                                                           if k.endswith(f"(seed {seed})")}
        for name, fold in load_folds(run_dir / "members" / f"seed-{seed}" / "folds").items():
            assert fold.history[0]["lr"] == pytest.approx(saved[name]["chosen"]["lr"])
