"""Sign-aware horizontal mirroring of flow features (``augment.flip`` on uvs, flow_*, hsi_flow): the mirrored
copy is built at prepare time from the mirrored flow with u negated, and trains only."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import yaml

from mertk.engine.recipe import RECIPES, feature_config, load_recipe, prepare_config, validate_recipe
from mertk.engine.run import run_recipe
from mertk.engine.samples import build_samples, sample_folds
from mertk.errors import DataError, MertkError, PreprocessError
from mertk.preprocess.encode import hsi_clip, shallow_channels, uvs_image
from mertk.preprocess.eyemask import apply_eye_mask, eye_mask
from mertk.preprocess.features import FEATURES, feature_family
from mertk.preprocess.features.base import flow_grey, mirror_flow
from mertk.preprocess.flow import get_flow_method
from mertk.preprocess.pipeline import Features, PrepareConfig, clip_cache_key, config_for_feature, prepare_frames
from mertk.preprocess.strain import optical_strain
from mertk.records import ClipRecord

FLOW_FAMILIES = [e.name for e in FEATURES if e.obj.flip_from_flow]
H, W, DX = 64, 80, 2


def _texture(seed: int = 0) -> np.ndarray:
    """A smooth random RGB texture, wider than the frames so that shifted windows need no wrap-around."""
    rng = np.random.default_rng(seed)
    base = cv2.GaussianBlur(rng.uniform(0, 255, (H, W + 16, 3)).astype(np.float32), (0, 0), 2.0)
    return np.clip((base - base.mean()) * 3 + 128, 0, 255)


def _pair(dx: int) -> np.ndarray:
    """Two frames: the second is the first with its content moved ``dx`` pixels to the right."""
    tex = _texture()
    return np.stack([tex[:, 8:8 + W], tex[:, 8 - dx:8 - dx + W]]).astype(np.uint8)


def _points() -> np.ndarray:
    """68 landmarks whose eye polygons (36-47) sit left of centre, so a mirrored mask differs from the mask."""
    rng = np.random.default_rng(1)
    pts = np.column_stack([rng.uniform(10, 70, 68), rng.uniform(10, 54, 68)]).astype(np.float32)
    ring = np.stack([np.cos(np.linspace(0, 2 * np.pi, 6, endpoint=False)),
                     np.sin(np.linspace(0, 2 * np.pi, 6, endpoint=False))], axis=1)
    pts[36:42] = np.array([18.0, 20.0]) + 5 * ring * [1.5, 1.0]
    pts[42:48] = np.array([36.0, 22.0]) + 5 * ring * [1.5, 1.0]
    return pts


def _config(name: str, **changes) -> PrepareConfig:
    return config_for_feature(name, **{"crop": "none", "flow": "farneback", "size": (H, W), "flip": True, **changes})


def test_mirror_flow_negates_u_and_keeps_the_strain_mirrored():
    rng = np.random.default_rng(3)
    flow = rng.normal(size=(12, 15, 2)).astype(np.float32)
    m = mirror_flow(flow)
    np.testing.assert_array_equal(m[..., 0], -flow[:, ::-1, 0])
    np.testing.assert_array_equal(m[..., 1], flow[:, ::-1, 1])
    np.testing.assert_allclose(optical_strain(m), optical_strain(flow)[:, ::-1], rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(mirror_flow(m), flow)


def test_mirrored_copy_is_the_flow_of_the_mirrored_pair():
    """A translation by +DX: the mirrored copy's u is the flow of the mirrored frames (a translation by
    -DX) within the flow method's tolerance, and its v is the mirrored v."""
    frames = _pair(DX)
    config = _config("flow_uv")
    arrays = prepare_frames(frames, config, apex_index=1, landmarks=_points())
    mirrored = prepare_frames(np.ascontiguousarray(frames[:, :, ::-1]), config.replace(flip=False), apex_index=1,
                              landmarks=_points())
    inner = (slice(8, -8), slice(8, -8))
    u, v = arrays["x"][0][inner], arrays["x"][1][inner]
    u_flip, v_flip = arrays["x_flip"][0][inner], arrays["x_flip"][1][inner]
    assert np.median(u) == pytest.approx(DX, abs=0.2) and np.median(u_flip) == pytest.approx(-DX, abs=0.2)
    assert np.abs(u_flip - mirrored["x"][0][inner]).mean() < 0.1
    assert np.abs(v_flip - mirrored["x"][1][inner]).mean() < 0.1
    np.testing.assert_array_equal(arrays["x_flip"][1], arrays["x"][1][:, ::-1])  # v unchanged, mirrored
    np.testing.assert_array_equal(arrays["x_flip"][0], -arrays["x"][0][:, ::-1])


def _flow_by_hand(frames: np.ndarray, config: PrepareConfig) -> np.ndarray:
    grey = flow_grey(frames)
    return get_flow_method(config.flow, **dict(config.flow_params)).batch([grey[0]], [grey[1]])[0]


@pytest.mark.parametrize("normalise", ["minmax", "fixed", "none"])
@pytest.mark.parametrize("masked", [False, True])
def test_uvs_flip_is_the_encoding_of_the_mirrored_flow(normalise, masked):
    frames, points = _pair(DX), _points()
    config = _config("uvs", uvs_normalise=normalise, eye_mask=masked, eye_dilate=1, size=(32, 40))
    arrays = prepare_frames(frames, config, apex_index=1, landmarks=points)
    flow = _flow_by_hand(frames, config)
    m = flow[:, ::-1].copy()
    m[..., 0] = -m[..., 0]
    strain = optical_strain(m)
    if masked:
        mask = eye_mask(flow.shape[:2], points, dilate=1)[:, ::-1]
        assert mask.any() and not np.array_equal(mask, mask[:, ::-1])
        m, strain = apply_eye_mask(m, mask), apply_eye_mask(strain, mask)
    want = uvs_image(m, strain, normalise=normalise, size=(32, 40)).transpose(2, 0, 1)
    np.testing.assert_array_equal(arrays["x_flip"], want)
    assert arrays["x_flip"].dtype == np.float32 and arrays["x_flip"].shape == arrays["x"].shape
    assert not np.allclose(arrays["x_flip"], arrays["x"][..., ::-1])  # not the pixels of x mirrored


@pytest.mark.parametrize("name", [n for n in FLOW_FAMILIES if n not in ("uvs", "hsi_flow")])
def test_shallow_flip_is_the_channels_of_the_mirrored_flow(name):
    frames, points = _pair(DX), _points()
    family = feature_family(name)
    config = _config(name, eye_mask=True, size=(32, 40))
    arrays = prepare_frames(frames, config, apex_index=1, landmarks=points)
    m = apply_eye_mask(mirror_flow(_flow_by_hand(frames, config)), eye_mask((H, W), points)[:, ::-1])
    want = shallow_channels(m, getattr(family, "kind", "vxvy"), size=(32, 40))
    if getattr(family, "with_magnitude", False):
        want = np.concatenate([want, np.hypot(want[0], want[1])[None]])
    np.testing.assert_array_equal(arrays["x_flip"], want)


def test_hsi_flip_codes_the_mirrored_flows():
    tex = _texture()
    frames = np.stack([tex[:, 8 - t:8 - t + W] for t in range(4)]).astype(np.uint8)
    config = _config("hsi_flow", size=(32, 40))
    arrays = prepare_frames(frames, config, apex_index=3, landmarks=_points())
    grey = flow_grey(frames)
    flows = get_flow_method("farneback").batch([grey[0]] * 3, list(grey[1:]))
    want = hsi_clip([mirror_flow(f) for f in flows], (32, 40), normalise=config.hsi_normalise)
    np.testing.assert_array_equal(arrays["x_flip"], want)
    assert arrays["x_flip"].shape == arrays["x"].shape and arrays["x_flip"].dtype == np.uint8
    assert not np.array_equal(arrays["x_flip"], arrays["x"][..., ::-1])  # hue codes direction: not a pixel mirror


def test_apex_plus_one_gets_a_mirrored_copy_too():
    tex = _texture()
    frames = np.stack([tex[:, 8 - t:8 - t + W] for t in range(3)]).astype(np.uint8)
    config = _config("flow_vxvy", apex_plus_one=True, size=(32, 40))
    arrays = prepare_frames(frames, config, apex_index=1, landmarks=_points())
    np.testing.assert_allclose(arrays["x_aug_flip"][0], -arrays["x_aug"][0][:, ::-1], atol=1e-6)  # resize: to rounding
    np.testing.assert_allclose(arrays["x_aug_flip"][1], arrays["x_aug"][1][:, ::-1], atol=1e-6)
    assert np.abs(arrays["x_aug"][0]).max() > 0.5
    assert "x_flip" not in prepare_frames(frames, config.replace(flip=False), apex_index=1, landmarks=_points())


def test_flip_enters_the_cache_key_only_when_true(tmp_path):
    config = config_for_feature("uvs")
    assert "flip" not in config.as_dict() and config.replace(flip=True).as_dict()["flip"] is True
    frame = tmp_path / "1.jpg"
    frame.write_bytes(b"x")
    record = ClipRecord("casme2", "s01", "c1", "happiness", (frame, frame), (1, 2), 1, 2, 2)
    assert clip_cache_key(record, config) != clip_cache_key(record, config.replace(flip=True))


def test_flip_config_rejects_families_without_a_flow_mirror():
    with pytest.raises(PreprocessError, match="flip builds mirrored flow features .*hsi_flow.*, not clip_rgb"):
        config_for_feature("clip_rgb", flip=True)
    with pytest.raises(DataError, match="precomputed"):
        feature_family("uvs").encode_image(np.zeros((8, 8, 3), np.uint8), config_for_feature("uvs", flip=True), "m.png")


def _features(n: int, feature: str, per_frame: int = 0) -> list[Features]:
    rng = np.random.default_rng(0)
    shape = (per_frame, 3, 4, 5) if per_frame else (3, 4, 5)
    dtype = np.uint8 if per_frame else np.float32
    out = []
    for i in range(n):
        rec = ClipRecord("casme2", f"casme2/s{i % 2}", f"c{i}", "happiness", (), (), 0, 1, 2)
        arrays = {"x": rng.integers(0, 9, shape).astype(dtype), "x_flip": rng.integers(0, 9, shape).astype(dtype)}
        if per_frame:
            arrays["apex_index"] = np.array(per_frame - 1)
        out.append(Features(rec, arrays))
    return out


@pytest.mark.parametrize("feature, per_frame", [("uvs", 0), ("hsi_flow", 3)])
def test_mirrored_samples_train_only(feature, per_frame):
    from mertk.engine.protocols import Fold

    features = _features(4, feature, per_frame)
    recipe = load_recipe("ststnet-megc2019", ["augment.flip=true"])
    plain = build_samples(features, {}, feature, load_recipe("ststnet-megc2019"), None)
    samples = build_samples(features, {}, feature, recipe, None)
    assert len(samples) == 2 * len(plain) and samples.train_only.sum() == len(plain)
    flipped = samples.x[samples.train_only]
    want = np.concatenate([np.asarray(f.arrays["x_flip"]).reshape(-1, 3, 4, 5) for f in features]).astype(np.float32)
    np.testing.assert_array_equal(flipped, want / (255.0 if per_frame else 1.0))
    folds = sample_folds([Fold("f0", (0, 1), (2, 3)), Fold("f1", (2, 3), (0, 1))], samples)
    for fold in folds:
        assert not samples.train_only[list(fold.test)].any()
        assert samples.train_only[list(fold.train)].sum() == len(fold.train) // 2
    del features[1].arrays["x_flip"]
    with pytest.raises(MertkError, match="casme2/s1/c1.*x_flip"):
        build_samples(features, {}, feature, recipe, None)


def test_validation_accepts_flip_for_every_flow_family_and_keeps_rotate_out():
    recipe = load_recipe("ststnet-megc2019", ["augment.flip=true"])
    validate_recipe(recipe)
    assert prepare_config(recipe, feature_config(recipe)).flip
    assert not prepare_config(load_recipe("ststnet-megc2019"), feature_config(recipe)).flip
    assert not feature_config(recipe).flip  # the run's recorded features (and a checkpoint's) stay as they were
    clip = load_recipe("c3d-casme", ["augment.flip=true"])
    assert not prepare_config(clip, feature_config(clip)).flip  # image and clip families mirror at sample time
    for name in ("laenet-megc2019", "shallow-megc2018", "resnet-megc2018", "shcnn-casme2", "strcn-g-smic"):
        flipped = load_recipe(name, ["augment.flip=true"])
        validate_recipe(flipped)
        assert prepare_config(flipped, feature_config(flipped)).flip
    validate_recipe(load_recipe("ststnet-megc2019", ["data.dataset=megc2019-features"]))
    with pytest.raises(MertkError, match="augment.flip on uvs mirrors the raw flow, and megc2019-features holds "
                                         "precomputed maps"):
        validate_recipe(load_recipe("ststnet-megc2019", ["data.dataset=megc2019-features", "augment.flip=true"]))
    with pytest.raises(MertkError, match="augment.rotate applies to clip_rgb and gray_face features, not uvs "
                                         r"\(rotating a flow field"):
        validate_recipe(load_recipe("ststnet-megc2019", ["augment.rotate=[5]"]))


def _run(synth_root, cache, out, name, overrides):
    run_dir = run_recipe(name, data=synth_root, out=out, overrides=["train.epochs=1", *overrides], progress=False,
                         cache_dir=cache)
    return json.loads((run_dir / "results.json").read_text())


def test_flip_run_from_set_and_yaml_doubles_the_training_samples(synth_root, tmp_path):
    cache = tmp_path / "cache"
    plain = _run(synth_root, cache, tmp_path / "a", "ststnet-megc2019", [])
    flipped = _run(synth_root, cache, tmp_path / "b", "ststnet-megc2019", ["augment.flip=true"])
    raw = yaml.safe_load(RECIPES.get("ststnet-megc2019").read_text())
    raw["name"] = "ststnet-flip"
    raw["augment"] = {"flip": True}
    path = tmp_path / "ststnet-flip.yaml"
    path.write_text(yaml.safe_dump(raw))
    from_yaml = _run(synth_root, cache, tmp_path / "c", str(path), [])
    assert plain["clips_used"] == flipped["clips_used"] == from_yaml["clips_used"]
    for results in (flipped, from_yaml):
        assert results["samples"] == 2 * plain["samples"] == 2 * plain["clips_used"]
        assert len(results["folds"]) == len(plain["folds"])
        for fold, base in zip(results["folds"], plain["folds"]):
            assert fold["fold"] == base["fold"]
            assert fold["train_samples"] == 2 * base["train_samples"]
            assert fold["test_samples"] == base["test_samples"] == fold["test_clips"]  # no mirrored sample tests
        assert results["clips_tested"] == plain["clips_tested"]
