"""The preprocessing pipeline on the synthetic benchmark: every feature family, every model's input,
the cache, and the named skips for bad clips."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from mertk.cli import main
from mertk.data import open_dataset
from mertk.synth.fake import write_fake_tree
from mertk.models import create_model, list_models
from mertk.preprocess.eyemask import eye_mask
from mertk.preprocess.pipeline import (
    PrepareConfig,
    apply_overrides,
    config_for_feature,
    config_for_model,
    prepare,
)
from mertk.errors import PreprocessError
from mertk.registry import FEATURES, MODELS

CLIP_FEATURES = [e.name for e in FEATURES if e.obj.clips]


@pytest.fixture(scope="module")
def casme2(synth_root):
    return open_dataset("casme2", synth_root / "CASME2")


@pytest.mark.parametrize("feature", CLIP_FEATURES)
def test_every_clip_feature_family(feature, casme2):
    config = config_for_feature(feature)
    records = casme2.usable()[:2]
    result = prepare(casme2, config, records=records, workers=1, progress=False)
    assert not result.skipped and len(result.features) == 2
    for f in result.features:
        x = f.x
        h, w = config.size
        if feature == "hsi_flow":
            assert x.dtype == np.uint8 and x.shape == (len(f.record.frames) - 1, 3, h, w)
            assert x.max() > 0  # motion is visible, never a black placeholder
        elif feature in ("clip_rgb", "strcn_pixels"):
            n = config.frames or len(f.record.frames)
            assert x.dtype == np.uint8 and x.shape == (n, h, w, 3)
        else:
            assert x.dtype == np.float32 and x.shape[1:] == (h, w) and np.isfinite(x).all()
            assert np.abs(x).max() > 0
        if config.apex_plus_one:
            assert f.arrays["x_aug"].shape == x.shape
        assert str(f.arrays["apex_source"]) == "annotation"
        assert f.arrays["landmarks"].shape == (68, 2)


def test_each_models_input_is_built_from_its_name(casme2):
    record = casme2.usable()[0]
    by_feature = {}
    for name in list_models():
        spec = MODELS.entry(name).meta["input_spec"]
        if spec.feature in ("gray_face", "strcn_pixels", "clip_rgb"):
            continue  # static faces come from image datasets; clip inputs are sampled at training time
        config = config_for_model(name)
        if config not in by_feature:
            by_feature[config] = prepare(casme2, config, records=[record], workers=1, progress=False).features[0].x
        x = by_feature[config]
        if spec.feature == "hsi_flow":
            x = x[-1]  # SHCNN classifies every flow image of a clip and votes
        x = torch.from_numpy(x.astype(np.float32))[None]
        assert tuple(x.shape[1:]) == tuple(spec.shape), name
        model = create_model(name).eval()
        with torch.no_grad():
            assert model(x).shape == (1, model.num_classes)


def test_cache_hits_and_parameter_changes(casme2, tmp_path):
    records = casme2.usable()[:3]
    config = config_for_model("laenet")
    first = prepare(casme2, config, records=records, cache_dir=tmp_path, workers=1, progress=False)
    second = prepare(casme2, config, records=records, cache_dir=tmp_path, workers=1, progress=False)
    assert (first.misses, first.hits) == (3, 0) and (second.misses, second.hits) == (0, 3)
    for a, b in zip(first.features, second.features):
        np.testing.assert_array_equal(a.x, b.x)
    third = prepare(casme2, config.replace(eye_dilate=2), records=records, cache_dir=tmp_path, workers=1, progress=False)
    assert third.misses == 3


def test_parallel_equals_serial(casme2):
    records = casme2.usable()[:4]
    config = config_for_model("laenet")
    serial = prepare(casme2, config, records=records, workers=1, progress=False)
    parallel = prepare(casme2, config, records=records, workers=2, progress=False)
    for a, b in zip(serial.features, parallel.features):
        assert a.record == b.record
        np.testing.assert_allclose(a.x, b.x, atol=1e-5)


def test_eye_mask_zeroes_the_eyes(casme2):
    record = casme2.usable()[0]
    config = config_for_model("laenet", uvs_normalise="none", size=(112, 112))
    f = prepare(casme2, config, records=[record], workers=1, progress=False).features[0]
    crop_h = int(f.arrays["box"][2] - f.arrays["box"][0])
    crop_w = int(f.arrays["box"][3] - f.arrays["box"][1])
    mask = eye_mask((112, 112), f.arrays["landmarks"], from_shape=(crop_h, crop_w))
    inner = cv2.erode(mask.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    assert inner.sum() > 10
    assert np.abs(f.x[:, inner]).max() < 1e-6
    unmasked = prepare(casme2, config.replace(eye_mask=False), records=[record], workers=1, progress=False).features[0]
    assert np.abs(unmasked.x[:, inner]).max() > 0


def test_smic_clips_get_a_spotted_apex(synth_root):
    smic = open_dataset("smic", synth_root / "SMIC")
    record = smic.usable()[0]
    assert record.apex is None
    f = prepare(smic, config_for_model("laenet"), records=[record], workers=1, progress=False).features[0]
    assert str(f.arrays["apex_source"]) == "spotted:dc_rois_lbp"
    assert 1 <= int(f.arrays["apex_index"]) < len(record.frames)


def copy_clip(record, folder):
    """The record with its frames copied into ``folder`` (so a test can damage them)."""
    folder.mkdir(parents=True)
    return replace(record, frames=tuple(Path(shutil.copy(p, folder / p.name)) for p in record.frames))


def test_bad_clips_are_named_skips_never_zero_images(casme2, tmp_path):
    good = casme2.usable()
    corrupt = copy_clip(good[0], tmp_path / "corrupt")
    corrupt.frames[1].write_bytes(b"not a jpeg")
    resized = copy_clip(good[1], tmp_path / "resized")
    image = cv2.imread(str(resized.frames[2]))
    cv2.imwrite(str(resized.frames[2]), cv2.resize(image, (image.shape[1] + 4, image.shape[0])))
    blank = copy_clip(good[2], tmp_path / "blank")
    for path in blank.frames:
        cv2.imwrite(str(path), np.full((120, 100, 3), 128, np.uint8))
    short = replace(good[3], frames=good[3].frames[:1], frame_numbers=good[3].frame_numbers[:1])
    result = prepare(casme2, config_for_model("laenet"), records=[corrupt, resized, blank, short, good[4]],
                     workers=1, progress=False)
    assert [f.record.key for f in result.features] == [good[4].key]
    reasons = {s.item: s.reason for s in result.skipped}
    assert reasons[corrupt.key] == f"{corrupt.frames[1]}: unreadable image"
    assert str(resized.frames[2]) in reasons[resized.key] and "differs from the clip's first frame" in reasons[resized.key]
    assert str(blank.frames[0]) in reasons[blank.key] and "no face" in reasons[blank.key]
    assert "a clip of 1 frame(s)" in reasons[short.key]


def test_still_image_datasets(tmp_path):
    write_fake_tree("fer2013", tmp_path / "fer")
    fer = open_dataset("fer2013", tmp_path / "fer")
    result = prepare(fer, config_for_model("shcnn"), progress=False)
    assert len(result.features) == len(fer.usable())
    np.testing.assert_array_equal(result.features[0].x[0], fer.load_image(fer.records[0]))
    write_fake_tree("megc2019-features", tmp_path / "feat")
    feat = open_dataset("megc2019-features", tmp_path / "feat")
    result = prepare(feat, config_for_model("laenet"), progress=False)
    x = result.features[0].x
    assert x.shape == (3, 28, 28) and 0 <= x.min() and x.max() <= 1
    with pytest.raises(PreprocessError, match="built from clips"):
        prepare(fer, config_for_feature("flow_uv"), progress=False)


def test_overrides_parse_values_and_reject_unknown_keys():
    config = apply_overrides(config_for_feature("uvs"), ["eye_mask=true", "size=[32, 30]", "flow=tvl1_opencv",
                                                        "flow_params={iterations: 20}"])
    assert config.eye_mask is True and config.size == (32, 30) and config.flow == "tvl1_opencv"
    assert dict(config.flow_params) == {"iterations": 20}
    with pytest.raises(PreprocessError, match="KEY one of: align, allow_frame_gaps, apex"):
        apply_overrides(config, ["colour=red"])
    with pytest.raises(Exception, match="unknown apex spotter 'peak'; choose from"):
        apply_overrides(config, ["apex=peak"])
    with pytest.raises(PreprocessError, match="unknown feature"):
        PrepareConfig(feature="optical")


def test_prepare_cli_json_and_errors(synth_root, tmp_path, capsys):
    code = main(["prepare", "samm", str(synth_root / "SAMM"), "--model", "off_apexnet", "--cache", str(tmp_path),
                 "--workers", "1", "--json"])
    out = json.loads(capsys.readouterr().out)
    samm = open_dataset("samm", synth_root / "SAMM")
    assert code == 0 and out["prepared"] == len(samm.usable()) and out["cache_misses"] == out["prepared"]
    assert out["config"]["feature"] == "flow_uv" and out["config"]["size"] == [28, 28]
    code = main(["prepare", "samm", str(synth_root / "SAMM"), "--features", "optical"])
    err = capsys.readouterr().err
    assert code == 2 and "unknown feature 'optical'" in err and err.count("\n") == 1


def test_flow_cli_recovers_a_shift(tmp_path, capsys):
    from skimage import data

    image = cv2.resize(data.astronaut(), (160, 160))
    shifted = cv2.warpAffine(image, np.float32([[1, 0, 1.5], [0, 1, -0.5]]), (160, 160), borderMode=cv2.BORDER_REFLECT)
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    cv2.imwrite(str(a), image)
    cv2.imwrite(str(b), shifted)
    code = main(["flow", str(a), str(b), "--method", "tvl1", "--out", str(tmp_path / "f.npy"), "--json"])
    summary = json.loads(capsys.readouterr().out)
    flow = np.load(tmp_path / "f.npy")
    inner = flow[20:-20, 20:-20]
    assert code == 0 and flow.shape == (160, 160, 2)
    assert abs(np.median(inner[..., 0]) - 1.5) < 0.1 and abs(np.median(inner[..., 1]) + 0.5) < 0.1
    assert summary["method"] == "tvl1"
    code = main(["flow", str(a), str(tmp_path / "missing.png")])
    assert code == 2 and "missing.png: image not found" in capsys.readouterr().err


def test_alignment_removes_a_head_shift_and_magnification_runs(casme2, tmp_path):
    moved = copy_clip(casme2.usable()[0], tmp_path / "moved")
    for path in moved.frames[1:]:  # a 3 px, 2 px head shift after the onset frame
        image = cv2.imread(str(path))
        cv2.imwrite(str(path), cv2.warpAffine(image, np.float32([[1, 0, 3], [0, 1, 2]]), image.shape[1::-1],
                                              borderMode=cv2.BORDER_REPLICATE), [cv2.IMWRITE_JPEG_QUALITY, 98])
    raw = config_for_model("laenet", uvs_normalise="none", eye_mask=False)
    prepared = {align: prepare(casme2, raw.replace(align=align), records=[moved], workers=1, progress=False).features[0]
                for align in ("none", "similarity")}
    top, left, bottom, right = prepared["none"].arrays["box"]
    to_source = np.float32([(right - left) / raw.size[1], (bottom - top) / raw.size[0]])[:, None, None]
    flows = {align: f.x[:2] * to_source for align, f in prepared.items()}  # 28x28-map pixels -> source pixels
    shift = np.median(np.hypot(flows["none"][0], flows["none"][1]))
    residual = np.median(np.hypot(flows["similarity"][0], flows["similarity"][1]))
    assert shift > 2.5  # the head shift dominates the unaligned flow
    assert residual < 0.25 * shift
    magnified = prepare(casme2, raw.replace(magnify=8.0), records=casme2.usable()[:1], workers=1, progress=False)
    assert not magnified.skipped and np.isfinite(magnified.features[0].x).all()


def _ramp_clip(t: int = 20) -> np.ndarray:
    rng = np.random.default_rng(0)
    base = rng.integers(40, 200, size=(40, 32, 3))
    return np.stack([np.clip(base + 4 * i, 0, 255) for i in range(t)]).astype(np.uint8)


def test_strcn_frame_select_picks_raw_frames_before_temporal_normalisation():
    from mertk.preprocess.features import select_frames
    from mertk.preprocess.pipeline import prepare_frames

    frames = _ramp_clip()
    points = np.full((68, 2), 10.0, dtype=np.float32)
    idx = select_frames(frames, 0.6, 8.0)
    assert idx[0] == 0 and len(idx) == 12 and (np.diff(idx) > 0).all()
    np.testing.assert_array_equal(idx, select_frames(frames, 0.6, 8.0))  # deterministic
    assert not np.array_equal(idx, select_frames(frames, 0.6, 9.0))  # each factor draws its own subset
    config = config_for_feature("strcn_pixels", crop="none", size=(16, 12), frames=10, frame_select=(0.9, 0.6))
    out = prepare_frames(frames, config, apex_index=5, landmarks=points)
    assert out["x"].shape == (10, 16, 12, 3) and out["x_select"].shape == (2, 10, 16, 12, 3)
    plain = config.replace(frame_select=())
    for k, share in enumerate(config.frame_select):
        subset = frames[select_frames(frames, share, 0.0)]
        # the selected raw frames, then TIM to 10 frames (not a selection of the 10 normalised frames)
        expected = prepare_frames(subset, plain, apex_index=1, landmarks=points)["x"]
        np.testing.assert_array_equal(out["x_select"][k], expected)
    np.testing.assert_array_equal(out["x"], prepare_frames(frames, plain, apex_index=5, landmarks=points)["x"])
    with pytest.raises(PreprocessError, match="frame-sequence features"):
        config_for_feature("uvs", frame_select=(0.8,))


def test_strcn_g_spots_its_apex_on_the_magnified_frames(monkeypatch):
    import mertk.preprocess.magnify as magnify
    import mertk.preprocess.pipeline as pipeline
    from mertk.engine.recipe import load_recipe
    from mertk.engine.recipe import feature_config

    recipe = load_recipe("strcn-g-casme2", ["features.align=none", "features.crop=none"])
    config = feature_config(recipe, 4)
    assert config.magnify == 8.0 and config.apex == "std_diff"
    seen = {}
    real_magnify, real_spot = magnify.magnify_clip, pipeline._spot_apex

    def magnify_clip(frames, alpha):
        seen["alpha"], seen["magnified"] = alpha, real_magnify(frames, alpha=alpha)
        return seen["magnified"]

    def spot(frames, points, spotter, cfg):
        seen["spotted"] = (spotter, frames.copy())
        return real_spot(frames, points, spotter, cfg)

    monkeypatch.setattr(magnify, "magnify_clip", magnify_clip)
    monkeypatch.setattr(pipeline, "_spot_apex", spot)
    out = pipeline.prepare_frames(_ramp_clip(), config, landmarks=np.full((68, 2), 10.0, dtype=np.float32))
    assert seen["alpha"] == 8.0 and seen["spotted"][0] == "std_diff"
    np.testing.assert_array_equal(seen["spotted"][1], seen["magnified"])
    assert str(out["apex_source"]) == "spotted:std_diff"
