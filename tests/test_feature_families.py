"""Every registered feature family, driven by the registry: defaults, encode shape and dtype, model view,
mirror; every registered model takes a registered family."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mertk.errors import PreprocessError, UnknownNameError
from mertk.models import create_model
from mertk.preprocess.features import FEATURES, FeatureFamily, feature_family
from mertk.preprocess.pipeline import PrepareConfig, config_for_feature, config_for_model, prepare_frames
from mertk.registry import MODELS, Entry

FAMILIES = FEATURES.names()
T = 6


def _clip() -> np.ndarray:
    """A textured face-sized clip whose content drifts right by one pixel per frame."""
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (72, 96, 3)).astype(np.float32)
    base = (base + np.roll(base, 1, 0) + np.roll(base, 1, 1)) / 3
    return np.stack([np.roll(base, t, axis=1) for t in range(T)]).astype(np.uint8)


def _points() -> np.ndarray:
    rng = np.random.default_rng(1)
    return np.column_stack([rng.uniform(20, 76, 68), rng.uniform(15, 60, 68)]).astype(np.float32)


def _small(family: FeatureFamily) -> PrepareConfig:
    changes = {"flow": "farneback"} if family.uses_flow else {}
    changes["crop"] = "none"
    return config_for_feature(family.name, size=(24, 20), **changes)


def _model_of(name: str) -> str | None:
    return next((e.name for e in MODELS if e.meta["input_spec"].feature == name and e.meta["kind"] == "torch"), None)


@pytest.mark.parametrize("name", FAMILIES)
def test_family_defaults_encode_and_views(name: str) -> None:
    family = feature_family(name)
    assert family.name == name and family.description and (family.clips or family.images)
    config = config_for_feature(name)
    assert config.size == tuple(family.size) and config.family is family
    assert all(getattr(config, k) == v for k, v in family.defaults.items())
    config = _small(family)
    if family.clips:
        arrays = prepare_frames(_clip(), config, apex_index=3, landmarks=_points())
    else:
        arrays = family.encode_image(_clip()[0], config, "face.png")
        with pytest.raises(PreprocessError, match="built from still images"):
            prepare_frames(_clip(), config, apex_index=3, landmarks=_points())
    x = arrays["x"]
    assert x.shape == family.shape(config, T) and x.dtype == family.dtype
    assert np.isfinite(x.astype(np.float32)).all() and np.abs(x.astype(np.float32)).max() > 0
    view = family.model_view(x)
    assert view.dtype == (x.dtype if family.pixel_mask else np.float32)
    model = _model_of(name)
    if model is not None and not family.pixel_mask:
        spec = MODELS.entry(model).meta["input_spec"]
        sample = view[0] if family.per_frame else view
        assert sample.ndim == len(spec.shape) and sample.shape[0] == spec.shape[0]
        full = config_for_model(model, **family.spec_config(spec.shape))
        want = family.shape(full, spec.shape[1] if len(spec.shape) == 4 else T)
        got = family.model_view(np.zeros(want, dtype=family.dtype))
        with torch.no_grad():
            out = create_model(model)(torch.from_numpy(np.ascontiguousarray(got[:1] if family.per_frame else got[None])))
        assert out.shape[0] == 1
    panels = family.panel_stack(arrays)
    assert (panels.shape[1] == 3) if family.panels_rgb else (len(panels) == len(family.panels))


@pytest.mark.parametrize("name", FAMILIES)
def test_family_mirror_where_supported(name: str) -> None:
    family = feature_family(name)
    if not family.flip or family.flip_from_flow:
        with pytest.raises(Exception, match="no horizontal flip"):
            family.mirror(np.zeros((1, 4, 4), dtype=np.uint8))
        return
    config = _small(family)
    x = prepare_frames(_clip(), config, apex_index=3, landmarks=_points())["x"] if family.clips else \
        family.encode_image(_clip()[0], config, "face.png")["x"]
    mirrored = family.mirror(x)
    assert mirrored.shape == x.shape
    np.testing.assert_array_equal(mirrored, np.flip(x, axis=2))  # width: T x H x W x 3 clips, 1 x H x W faces
    np.testing.assert_array_equal(family.mirror(mirrored), x)
    assert family.rotated(x, 0.0).shape == x.shape


def test_apex_families_read_onset_and_apex_only() -> None:
    for name in FAMILIES:
        family = feature_family(name)
        config = _small(family)
        needed = family.needed_frames(T, 3, config)
        if family.uses_flow and not family.per_frame:
            assert needed == [0, 3] + ([4] if config.apex_plus_one else [])
        else:
            assert needed is None


def test_every_registered_model_takes_a_registered_family() -> None:
    for entry in MODELS:
        feature = entry.meta["input_spec"].feature
        assert feature in FEATURES, f"model {entry.name} takes unregistered feature {feature!r}"
        assert config_for_model(entry.name).feature == feature


def test_unknown_family_lists_the_registered_ones(monkeypatch) -> None:
    with pytest.raises(UnknownNameError, match="unknown feature 'rgb'; choose from: clip_rgb, .*uvs"):
        feature_family("rgb")
    spec = MODELS.entry("laenet").meta["input_spec"]
    fake = Entry("rgbnet", MODELS.get("laenet"), {**MODELS.entry("laenet").meta,
                                                   "input_spec": type(spec)("rgb", (3, 28, 28), "x")})
    monkeypatch.setitem(MODELS._entries, "rgbnet", fake)
    with pytest.raises(PreprocessError, match="model rgbnet takes feature 'rgb'.*choose from: clip_rgb, .*uvs"):
        config_for_model("rgbnet")


def test_model_default_cfg_lives_in_the_registration() -> None:
    assert MODELS.entry("laenet").meta["default_cfg"] == {"eye_mask": True}
    assert config_for_model("laenet").eye_mask and not config_for_model("ststnet").eye_mask
    g = config_for_model("strcn_g")
    assert (g.crop, g.apex, g.size) == ("strcn", "std_diff", (300, 245))
    assert config_for_model("strcn_a").size == (64, 48)
