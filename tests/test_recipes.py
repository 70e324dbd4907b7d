"""Recipes: every shipped recipe loads and validates; --set overrides and their errors; sample helpers."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from mertk.engine.protocols import Fold
from mertk.engine.recipe import RecipeError, list_recipes, load_recipe
from mertk.engine.run import Samples, aggregate, feature_config, sample_folds, ten_crops, validate_recipe
from mertk.errors import MertkError, UnknownNameError
from mertk.registry import MODELS, RECIPES

EXPECTED = {
    "laenet-megc2019", "ststnet-megc2019", "shcnn-casme", "shcnn-casme2", "shcnn-samm", "shcnn-fer2013",
    "shcnn-ferplus", "c3d-casme", "c3d-casme2", "resnet-megc2018", "shallow-megc2018",
    "strcn-a-smic", "strcn-a-casme2", "strcn-a-samm", "strcn-g-smic", "strcn-g-casme2", "strcn-g-samm",
    "ststnet-cd6me", "ststnet-cd6me-lodo", "laenet-cd6me", "laenet-cd6me-lodo",
}


def test_shipped_recipes_are_the_paper_experiments():
    assert set(list_recipes()) == EXPECTED
    assert set(RECIPES.names()) == EXPECTED


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_recipe_loads_and_validates(name):
    recipe = load_recipe(name)
    assert recipe.name == name
    summary = validate_recipe(recipe)
    # the features the pipeline builds are the family the model declares
    assert summary["feature"] == MODELS.entry(recipe.model.name).meta["input_spec"].feature
    assert feature_config(recipe, len(summary["classes"])).feature == summary["feature"]
    assert recipe.paper and recipe.description


def test_recipe_details_follow_the_papers():
    laenet = load_recipe("laenet-megc2019")
    assert laenet.pretrain.dataset == "ckplus" and laenet.features["eye_mask"] is True
    assert (laenet.train["optimizer"], laenet.train["lr"], laenet.train["batch_size"]) == ("adam", 5e-5, 256)
    fer = load_recipe("shcnn-ferplus")
    assert (fer.train["loss"], fer.train["l2"], fer.train["batch_size"], fer.inference) == ("soft", 3e-4, 100, "ten_crop")
    strcn = load_recipe("strcn-a-casme2")
    assert (strcn.train["loss"], strcn.train["lr_decay"], strcn.train["batch_size"]) == ("balanced", 0.8, 20)
    assert validate_recipe(strcn)["classes"] == ["positive", "negative", "surprise", "other"]
    assert load_recipe("c3d-casme").augment.rotate == (-10.0, -5.0, 5.0, 10.0)
    assert validate_recipe(load_recipe("shcnn-samm"))["classes"] == ["positive", "negative", "surprise"]


def test_set_overrides_parse_yaml_values():
    recipe = load_recipe("laenet-megc2019", ["train.epochs=5", "features.eye_mask=false", "pretrain=null",
                                              "augment.rotate=[5, -5]", "protocol=lovo", "seed=3"])
    assert recipe.train["epochs"] == 5 and recipe.features["eye_mask"] is False
    assert recipe.pretrain.dataset is None and recipe.augment.rotate == (5.0, -5.0)
    assert recipe.protocol == "lovo" and recipe.seed == 3
    deeper = load_recipe("resnet-megc2018", ["model.name=resnet18_reduced_7", "model.kwargs.input_size=64"])
    assert deeper.model.name == "resnet18_reduced_7" and feature_config(deeper, 5).size == (64, 64)
    on_features = load_recipe("ststnet-megc2019", ["data.dataset=megc2019-features"])
    assert validate_recipe(on_features)["classes"] == ["negative", "positive", "surprise"]


@pytest.mark.parametrize("item, message", [
    ("trian.epochs=5", "unknown key 'trian'; valid keys: name, data, model"),
    ("data.datset=casme2", "unknown key data.'datset'; valid keys: dataset, root, label_map, loader"),
    ("augment.zoom=2", "unknown key augment.'zoom'; valid keys: apex_plus_one, flip"),
    ("train.epochs", "expected KEY=VALUE"),
    ("protocol=kfold", "unknown protocol 'kfold'; choose from: loso, lovo, leave_one_video_out, official"),
    ("data.dataset.x=1", "data.dataset takes a value, not sub-keys"),
])
def test_set_errors_name_the_valid_keys(item, message):
    with pytest.raises(RecipeError) as info:
        load_recipe("ststnet-megc2019", [item])
    assert message in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("item, message", [
    ("train.epoch=5", "unknown key train.'epoch'; valid keys: epochs, batch_size, optimizer"),
    ("features.eyemask=true", "unknown key features.'eyemask'; valid keys:"),
    ("features.feature=hsi_flow", "features.feature='hsi_flow' but model ststnet takes 'uvs'"),
    ("augment.flip=true", "augment.flip/rotate apply to clip_rgb and gray_face"),
])
def test_validation_errors(item, message):
    recipe = load_recipe("ststnet-megc2019", [item])
    with pytest.raises(MertkError) as info:
        validate_recipe(recipe)
    assert message in str(info.value)


def test_unknown_recipe_lists_valid_ones():
    with pytest.raises(UnknownNameError) as info:
        load_recipe("laenet")
    assert "unknown recipe 'laenet'; choose from: c3d-casme" in str(info.value)


def test_cli_train_errors_are_one_line_exit_2(tmp_path):
    for args, text in ((["nosuch"], "unknown recipe 'nosuch'"), (["ststnet-megc2019", "--set", "train.epoch=1"],
                                                                  "unknown key train.'epoch'")):
        proc = subprocess.run([sys.executable, "-m", "mertk.cli", "train", *args, "--data", str(tmp_path),
                               "--out", str(tmp_path / "runs"), "--quiet"], capture_output=True, text=True)
        assert proc.returncode == 2
        assert text in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_vote_majority_and_apex_tie_break():
    p = np.array([[0.8, 0.1, 0.1], [0.7, 0.2, 0.1], [0.1, 0.8, 0.1]])
    assert aggregate(p, "vote", np.array([False, False, True]))[1] == 0  # 2 votes beat the apex
    tie = np.array([[0.6, 0.3, 0.1], [0.1, 0.5, 0.4]])
    assert aggregate(tie, "vote", np.array([False, True]))[1] == 1  # tie: the apex frame's class
    assert aggregate(tie, "vote", np.array([True, False]))[1] == 0
    probs, pred = aggregate(tie, "none", np.array([True, False]))
    np.testing.assert_allclose(probs, [0.35, 0.4, 0.25])
    assert pred == 1


def test_ten_crops_positions():
    image = np.arange(48 * 48).reshape(1, 48, 48)
    crops = ten_crops(image, 42)
    assert len(crops) == 10 and all(c.shape == (1, 42, 42) for c in crops)
    assert crops[0][0, 0, 0] == 0 and crops[3][0, -1, -1] == 48 * 48 - 1
    assert crops[4][0, 0, 0] == 3 * 48 + 3
    np.testing.assert_array_equal(crops[5], crops[0][:, :, ::-1])


def test_sample_folds_never_test_augmented_samples_nor_train_test_clips():
    owner = np.array([0, 0, 1, 1, 2, 2, 2])
    train_only = np.array([False, True, False, True, False, False, True])
    samples = Samples(np.zeros((7, 1)), owner, train_only, np.zeros(7, bool))
    (fold,) = sample_folds([Fold("f", (0, 2), (1,))], samples)
    assert fold.train == (0, 1, 4, 5, 6) and fold.test == (2,)
