"""Recipes: every shipped recipe loads and validates; --set overrides and their errors; sample helpers."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from mertk.engine.inputs import aggregate, ten_crops
from mertk.engine.protocols import Fold
from mertk.engine.recipe import (RecipeError, feature_config, list_recipes, load_recipe, prepare_config, train_config,
                                validate_recipe)
from mertk.engine.samples import Samples, build_samples, magnify_levels, sample_folds, masked_inputs
from mertk.errors import MertkError, UnknownNameError
from mertk.registry import MODELS, RECIPES

EXPECTED = {
    "laenet-megc2019", "ststnet-megc2019", "shcnn-casme", "shcnn-casme2", "shcnn-samm", "shcnn-fer2013",
    "shcnn-ferplus", "c3d-casme", "c3d-casme2", "resnet-megc2018", "shallow-megc2018",
    "strcn-a-smic", "strcn-a-casme2", "strcn-a-samm", "strcn-g-smic", "strcn-g-casme2", "strcn-g-samm",
    "lbptop-megc2019", "lbptop-casme2",
    "ststnet-cd6me", "ststnet-cd6me-lodo", "laenet-cd6me", "laenet-cd6me-lodo", "megc2019-generalise",
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
    assert (laenet.train.optimizer, laenet.train.lr, laenet.train.batch_size) == ("adam", 5e-5, 256)
    fer = load_recipe("shcnn-ferplus")
    assert (fer.train.loss, fer.train.l2, fer.train.batch_size, fer.inference) == ("soft", 3e-4, 100, "ten_crop")
    strcn = load_recipe("strcn-a-casme2")
    assert (strcn.train.loss, strcn.train.lr_decay, strcn.train.batch_size) == ("balanced", 0.8, 20)
    assert validate_recipe(strcn)["classes"] == ["positive", "negative", "surprise", "other"]
    assert load_recipe("c3d-casme").augment.rotate == (-10.0, -5.0, 5.0, 10.0)
    assert validate_recipe(load_recipe("shcnn-samm"))["classes"] == ["positive", "negative", "surprise"]


def test_pretraining_config_takes_pretrain_eye_mask(synth_root, monkeypatch):
    """LAENet masks the micro-expression features only (section 2.2.4); pretrain.eye_mask decides for CK+."""
    import mertk.preprocess.pipeline as pipeline
    from mertk.engine import run

    class Prepared(Exception):
        pass

    seen = []

    def fake_prepare(dataset, config, **kwargs):
        seen.append(config)
        raise Prepared

    monkeypatch.setattr(pipeline, "prepare", fake_prepare)
    assert load_recipe("laenet-megc2019").pretrain.eye_mask is False
    for value in ("false", "true"):
        recipe = load_recipe("laenet-megc2019", [f"pretrain.eye_mask={value}"])
        config = feature_config(recipe, 3)
        assert config.eye_mask is True
        with pytest.raises(Prepared):
            run.pretrain(recipe, synth_root, config, "megc2019", None, False, 1)
    assert [c.eye_mask for c in seen] == [False, True]
    assert seen[0] == config.replace(eye_mask=False)  # nothing else of the recipe's features changes
    with pytest.raises(RecipeError, match="pretrain.eye_mask must be true or false"):
        load_recipe("laenet-megc2019", ["pretrain.eye_mask=maybe"])


def test_set_overrides_parse_yaml_values():
    recipe = load_recipe("laenet-megc2019", ["train.epochs=5", "features.eye_mask=false", "pretrain=null",
                                              "augment.rotate=[5, -5]", "protocol=lovo", "seed=3"])
    assert recipe.train.epochs == 5 and recipe.features["eye_mask"] is False
    assert recipe.pretrain.dataset is None and recipe.augment.rotate == (5.0, -5.0)
    assert recipe.protocol == "lovo" and recipe.seed == 3
    deeper = load_recipe("resnet-megc2018", ["model.name=resnet18_reduced_7", "model.kwargs.input_size=64"])
    assert deeper.model.name == "resnet18_reduced_7" and feature_config(deeper, 5).size == (64, 64)
    on_features = load_recipe("ststnet-megc2019", ["data.dataset=megc2019-features"])
    assert validate_recipe(on_features)["classes"] == ["negative", "positive", "surprise"]


@pytest.mark.parametrize("feature", ["flow_vx", "flow_mag", "flow_vy"])
def test_one_model_key_switches_the_shallow_input(feature):
    recipe = load_recipe("shallow-megc2018", [f"model.kwargs.feature={feature}"])
    assert feature_config(recipe, 5).feature == feature
    clash = load_recipe("shallow-megc2018", ["model.kwargs.feature=flow_vx", "features.feature=flow_mag"])
    with pytest.raises(RecipeError, match="features.feature='flow_mag' but model shallow_1conv_single takes 'flow_vx'"):
        feature_config(clash, 5)


@pytest.mark.parametrize("item, message", [
    ("trian.epochs=5", "unknown key 'trian'; valid keys: name, data, model"),
    ("data.datset=casme2", "unknown key data.'datset'; valid keys: dataset, root, label_map, loader"),
    ("augment.zoom=2", "unknown key augment.'zoom'; valid keys: apex_plus_one, flip"),
    ("train.epochs", "expected KEY=VALUE"),
    ("protocol=kfold", "unknown protocol 'kfold'; choose from: loso, lovo, leave_one_video_out, official"),
    ("data.dataset.x=1", "data.dataset takes a value, not sub-keys"),
    ("train.epoch=5", "unknown key train.'epoch'; valid keys: epochs, batch_size, optimizer"),
    ("train.lr=fast", "ststnet-megc2019.yaml: train.lr must be a number, got 'fast'"),
    ("train.loss=hinge", "train.loss 'hinge' is unknown; choose from: ce, soft, balanced, focal"),
])
def test_set_errors_name_the_valid_keys(item, message):
    with pytest.raises(RecipeError) as info:
        load_recipe("ststnet-megc2019", [item])
    assert message in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("item, message", [
    ("features.eyemask=true", "unknown key features.'eyemask'; valid keys:"),
    ("features.feature=hsi_flow", "features.feature='hsi_flow' but model ststnet takes 'uvs'"),
    ("augment.rotate=[5]", "augment.rotate applies to clip_rgb and gray_face features, not uvs (rotating a flow field"),
])
def test_validation_errors(item, message):
    recipe = load_recipe("ststnet-megc2019", [item])
    with pytest.raises(MertkError) as info:
        validate_recipe(recipe)
    assert message in str(info.value)


@pytest.mark.parametrize("item, message", [
    ("train.epochs=5", "model lbptop is fitted, not trained"),
    ("augment.flip=true", "model lbptop is fitted, not trained"),
    ("final_model=true", "needs final_model: false"),
])
def test_classical_recipe_rejects_training_settings(item, message):
    assert validate_recipe(load_recipe("lbptop-casme2"))["kind"] == "classical"
    with pytest.raises(MertkError, match=message):
        validate_recipe(load_recipe("lbptop-casme2", [item]))


def test_train_settings_round_trip_through_to_dict_and_set():
    """to_dict writes only the train settings the recipe makes; the trainer's seed follows ``seed`` unless set."""
    from mertk.engine.recipe import apply_set, recipe_from_dict, train_settings

    recipe = load_recipe("strcn-a-casme2", ["train.epochs=7"])
    assert recipe.train.seed == recipe.seed == 0
    written = recipe.to_dict()["train"]
    assert written == train_settings(recipe) and written["epochs"] == 7 and "seed" not in written
    assert "momentum" not in written  # TrainConfig's default, whether or not the YAML spells it out
    assert recipe_from_dict(recipe.to_dict()) == recipe
    moved = recipe_from_dict(apply_set(recipe.to_dict(), ["seed=3"]))
    assert moved.seed == moved.train.seed == 3 and moved.train.epochs == 7
    pinned = load_recipe("strcn-a-casme2", ["seed=3", "train.seed=0"])
    assert (pinned.seed, pinned.train.seed) == (3, 0) and pinned.to_dict()["train"]["seed"] == 0
    again = recipe_from_dict(pinned.to_dict())
    assert again == pinned and train_config(again).seed == 0
    assert recipe_from_dict(apply_set(pinned.to_dict(), ["seed=5"])).train.seed == 0
    assert train_config(pinned, {"epochs": 2}).epochs == 2 and pinned.train.epochs != 2
    with pytest.raises(RecipeError, match=r"recipe strcn-a-casme2: unknown key train.'epoch'; valid keys: epochs"):
        train_config(pinned, {"epoch": 2})


def test_lbptop_recipes_search_on_inner_folds():
    for name in ("lbptop-casme2", "lbptop-megc2019"):
        recipe = load_recipe(name)
        assert recipe.protocol == "loso" and not recipe.final_model
        assert set(recipe.model.kwargs["search"]) == {"grid", "radii", "C"}


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


STRCN = sorted(n for n in EXPECTED if n.startswith("strcn-"))
PAPER_FACTORS = tuple(float(a) for a in range(5, 15))


@pytest.mark.parametrize("name", STRCN)
def test_strcn_recipes_magnify_every_clip_at_8_align_lwm_and_augment_x50(name):
    recipe = load_recipe(name)
    config = feature_config(recipe, len(validate_recipe(recipe)["classes"]))
    assert config.magnify == 8.0 and config.align == "lwm"  # test clips too (paper: alpha = 8 at test time)
    assert recipe.augment.magnify == PAPER_FACTORS
    assert magnify_levels(recipe, config) == [a for a in PAPER_FACTORS if a != 8.0]
    if name.startswith("strcn-a"):
        assert recipe.augment.frame_select == (0.9, 0.8, 0.7, 0.6)
        assert prepare_config(recipe, config).frame_select == (0.9, 0.8, 0.7, 0.6)
    cheaper = load_recipe(name, ["augment.magnify=[5,8,11,14]"])
    assert magnify_levels(cheaper, config) == [5.0, 11.0, 14.0]


def test_c3d_recipes_halve_the_lr_every_20000_iterations():
    for name in ("c3d-casme", "c3d-casme2"):
        cfg = train_config(load_recipe(name))
        assert (cfg.lr, cfg.lr_step_iters, cfg.lr_step_factor) == (1e-4, 20000, 0.5)


def test_frame_selection_is_an_augmentation_of_fixed_length_clips():
    with pytest.raises(MertkError, match="use augment.frame_select"):
        validate_recipe(load_recipe("strcn-a-smic", ["features.frame_select=[0.5]"]))
    with pytest.raises(MertkError, match="frames > 0"):
        validate_recipe(load_recipe("c3d-casme", ["features.frames=0", "augment.frame_select=[0.5]"]))


class _Feat:
    def __init__(self, record, arrays):
        self.record, self.arrays = record, arrays


def test_strcn_samples_multiply_magnification_by_frame_selection():
    """Every magnification level (the clips' own alpha 8 and the 9 other factors) gives one copy from
    all frames and one per frame-selection share: 10 x 5 = 50 training samples per clip, 1 test sample."""
    from mertk.records import ClipRecord

    recipe = load_recipe("strcn-a-smic")
    config = feature_config(recipe, 3)
    levels, shares = magnify_levels(recipe, config), prepare_config(recipe, config).frame_select
    records = [ClipRecord(dataset="smic", subject=f"s{i}", clip=f"c{i}", label="positive", frames=()) for i in range(3)]

    def clip(i, alpha, k):  # colour channels tag the clip, the factor and the share
        x = np.zeros((4, 8, 6, 3), dtype=np.uint8)
        x[..., 0], x[..., 1], x[..., 2] = i, alpha, k
        return x

    def arrays(i, alpha):
        return {"x": clip(i, alpha, 0), "x_select": np.stack([clip(i, alpha, k + 1) for k in range(len(shares))])}

    features = [_Feat(r, arrays(i, 8)) for i, r in enumerate(records)]
    extra = {a: {r.key: _Feat(r, arrays(i, a)) for i, r in enumerate(records)} for a in levels}
    samples = build_samples(features, extra, "strcn_pixels", recipe, None)
    assert len(levels) + 1 == 10 and len(shares) + 1 == 5
    for i in range(3):
        mine = samples.owner == i
        assert mine.sum() == 50 and (mine & ~samples.train_only).sum() == 1
        (test,) = np.flatnonzero(mine & ~samples.train_only)
        np.testing.assert_array_equal(samples.x[test], features[i].arrays["x"])  # the alpha-8 clip, all frames
        assert len({samples.x[j].tobytes() for j in np.flatnonzero(mine)}) == 50
    small = load_recipe("strcn-a-smic", ["augment.magnify=[5]", "augment.frame_select=[0.8]"])
    levels = magnify_levels(small, config)
    features = [_Feat(r, {"x": arrays(i, 8)["x"], "x_select": arrays(i, 8)["x_select"][:1]}) for i, r in enumerate(records)]
    extra = {5.0: {r.key: _Feat(r, {"x": arrays(i, 5)["x"], "x_select": arrays(i, 5)["x_select"][:1]})
                   for i, r in enumerate(records)}}
    assert levels == [5.0] and len(build_samples(features, extra, "strcn_pixels", small, None)) == 3 * 2 * 2


def test_strcn_mask_is_fitted_on_the_training_clips_only():
    x = np.zeros((4, 3, 8, 6, 3), dtype=np.uint8)
    x[0, 1:, 0:2, :] = 200  # training clip: motion in the top rows
    x[1, 1:, 6:8, :] = 250  # its augmented copy: motion in the bottom rows
    x[2, 1:, 3:5, :] = 255  # test clip: motion in the middle rows
    x[3, 1:, :, :] = 255
    samples = Samples(x, np.array([0, 0, 1, 1]), np.array([False, True, False, True]), np.zeros(4, bool))
    (fold,) = sample_folds([Fold("f", (0,), (1,))], samples)
    train_originals = np.array([j for j in fold.train if not samples.train_only[j]])
    inputs, mask = masked_inputs(samples, train_originals, "strcn_pixels")
    assert train_originals.tolist() == [0]
    assert mask.sum() == round(0.3 * 48) and mask[0:2].all() and not mask[3:].any()
    assert inputs.shape == (4, 3, mask.sum(), 3)


def test_exponent_without_a_dot_is_a_number_everywhere():
    """PyYAML (YAML 1.1) reads ``5e-5`` as text; every float field of a recipe takes it as the number."""
    from mertk.engine.recipe import train_config

    recipe = load_recipe("laenet-megc2019", ["pretrain.lr=5e-5", "train.lr=2E-4"])
    assert recipe.pretrain.lr == 5e-5 and isinstance(recipe.pretrain.lr, float)
    assert train_config(recipe).lr == 2e-4
    with pytest.raises(RecipeError, match=r"pretrain\.lr must be a number, got 'fast'"):
        load_recipe("laenet-megc2019", ["pretrain.lr=fast"])


def test_jitter_is_for_flow_features_only():
    assert validate_recipe(load_recipe("ststnet-megc2019", ["train.jitter=0.1"]))["feature"] == "uvs"
    with pytest.raises(RecipeError, match="train.jitter scales optical-flow features; clip_rgb holds no flow"):
        validate_recipe(load_recipe("c3d-casme", ["train.jitter=0.1"]))
