"""Known-answer tests for optical strain (LAENet eq. 6) and the flow encodings (HSI, [u, v, strain], shallow)."""

from __future__ import annotations

import numpy as np
import pytest

from mertk.errors import MertkError
from mertk.preprocess.encode import (
    EncodeError,
    hsi_clip,
    hsi_image,
    hsi_to_rgb,
    resize_flow,
    rgb_to_hsi,
    shallow_channels,
    uvs_image,
)
from mertk.preprocess.flow import FlowError
from mertk.preprocess.strain import optical_strain, strain_components

H, W = 40, 50
YY, XX = np.mgrid[0:H, 0:W].astype(np.float64)


def _linear_flow(a: float, b: float, c: float, d: float) -> np.ndarray:
    """u = a x + c y, v = d x + b y."""
    return np.dstack((a * XX + c * YY, d * XX + b * YY)).astype(np.float32)


def _smooth_flow(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    f = np.zeros((H, W, 2))
    for _ in range(3):
        cx, cy, s = rng.uniform(0, W), rng.uniform(0, H), rng.uniform(6, 15)
        bump = np.exp(-((XX - cx) ** 2 + (YY - cy) ** 2) / (2 * s * s))
        f += bump[..., None] * rng.uniform(-1.5, 1.5, size=2)
    return f.astype(np.float32)


def _circular_diff(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.abs((a - b + 180.0) % 360.0 - 180.0)


# --- optical strain ---------------------------------------------------------------------------------

def test_strain_of_rigid_shift_is_zero():
    flow = np.broadcast_to(np.float32([1.3, -0.7]), (H, W, 2))
    np.testing.assert_array_equal(optical_strain(flow), 0.0)


@pytest.mark.parametrize(
    "a, b, c, d",
    [(0.02, -0.03, 0.0, 0.0), (0.0, 0.0, 0.04, 0.01), (0.01, 0.02, -0.03, 0.05)],
)
def test_strain_of_linear_field_matches_eq6(a, b, c, d):
    strain = optical_strain(_linear_flow(a, b, c, d))
    # eq. 6: sqrt((du/dx)^2 + (dv/dy)^2 + 1/2 (du/dy + dv/dx)^2), exact for linear fields everywhere
    expected = np.sqrt(a**2 + b**2 + 0.5 * (c + d) ** 2)
    assert strain.shape == (H, W) and strain.dtype == np.float32
    np.testing.assert_allclose(strain, expected, rtol=1e-5, atol=1e-7)
    exx, eyy, exy = strain_components(_linear_flow(a, b, c, d))
    np.testing.assert_allclose([exx.mean(), eyy.mean(), exy.mean()], [a, b, 0.5 * (c + d)], atol=1e-6)


def test_strain_rejects_bad_flow():
    with pytest.raises(FlowError, match=r"expected an HxWx2 flow"):
        optical_strain(np.zeros((H, W, 3), np.float32))
    bad = np.zeros((H, W, 2), np.float32)
    bad[3, 4, 0] = np.inf
    with pytest.raises(FlowError, match="NaN or inf"):
        optical_strain(bad)


# --- HSI ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "direction, hue, rgb",
    [
        ((1.0, 0.0), 0.0, (255, 0, 0)),  # right: red
        ((0.0, 1.0), 90.0, (85, 170, 0)),  # down (y grows downwards): R = I, G = 2I (sector formulas)
        ((-1.0, 0.0), 180.0, (0, 128, 128)),  # left: cyan
        ((0.0, -1.0), 270.0, (85, 0, 170)),  # up: B = 2I, R = I
    ],
)
def test_hsi_image_direction_colours(direction, hue, rgb):
    flow = np.broadcast_to(np.float32(direction), (4, 4, 2))
    img = hsi_image(flow)
    assert img.shape == (4, 4, 3) and img.dtype == np.uint8
    np.testing.assert_array_equal(img[0, 0], rgb)
    h, s, i = rgb_to_hsi(img)[0, 0]
    assert _circular_diff(np.float32(h), hue) < 0.5 and s == pytest.approx(1.0, abs=0.01)
    assert i == pytest.approx(1 / 3, abs=0.01)


def test_hsi_round_trip_recovers_angle_and_magnitude():
    flow = _smooth_flow(1)
    mag = np.hypot(flow[..., 0], flow[..., 1])
    hsi = rgb_to_hsi(hsi_image(flow))
    strong = mag > 0.3 * mag.max()
    assert strong.sum() > 100
    angle = np.degrees(np.arctan2(flow[..., 1], flow[..., 0])) % 360.0
    assert _circular_diff(hsi[..., 0], angle)[strong].max() < 2.0
    np.testing.assert_allclose(hsi[..., 1][strong], 1.0, atol=1e-6)
    np.testing.assert_allclose(3 * hsi[..., 2], mag / mag.max(), atol=2.0 / 255)


def test_hsi_float_round_trip_is_exact_inside_the_gamut():
    rng = np.random.default_rng(0)
    hsi = np.stack(
        (rng.uniform(0, 360, 500), rng.uniform(0.05, 1, 500), rng.uniform(0.05, 1 / 3, 500)), axis=-1
    )
    back = rgb_to_hsi(hsi_to_rgb(hsi[:, 0], hsi[:, 1], hsi[:, 2]))
    assert _circular_diff(back[:, 0], hsi[:, 0]).max() < 1e-2
    np.testing.assert_allclose(back[:, 1:], hsi[:, 1:], atol=1e-5)


def test_hsi_normalisation_and_clipping():
    flow = np.zeros((2, 3, 2), np.float32)
    flow[0, 0] = (1.0, 0.0)
    flow[0, 1] = (2.0, 0.0)
    flow[0, 2] = (4.0, 0.0)
    fixed = rgb_to_hsi(hsi_image(flow, max_magnitude=2.0))[..., 2] * 3
    np.testing.assert_allclose(fixed[0], [0.5, 1.0, 1.0], atol=2 / 255)  # clipped above max_magnitude
    np.testing.assert_array_equal(fixed[1], 0.0)
    own = rgb_to_hsi(hsi_image(flow))[..., 2] * 3  # default: this flow's own peak (4 px)
    np.testing.assert_allclose(own[0], [0.25, 0.5, 1.0], atol=2 / 255)
    np.testing.assert_array_equal(hsi_image(np.zeros((3, 3, 2), np.float32)), 0)
    np.testing.assert_array_equal(hsi_image(flow, gamut="clip")[0, 2], (255, 0, 0))
    assert hsi_image(_smooth_flow(), size=(28, 32)).shape == (28, 32, 3)
    with pytest.raises(EncodeError, match="unknown gamut 'hsv'"):
        hsi_image(flow, gamut="hsv")


# --- [u, v, strain] --------------------------------------------------------------------------------------

def test_uvs_minmax_ranges_and_default_strain():
    flow = _smooth_flow(2)
    out = uvs_image(flow)
    assert out.shape == (H, W, 3) and out.dtype == np.float32
    np.testing.assert_allclose(out.min(axis=(0, 1)), 0.0, atol=1e-7)
    np.testing.assert_allclose(out.max(axis=(0, 1)), 1.0, atol=1e-6)
    strain = optical_strain(flow)
    expected_s = (strain - strain.min()) / (strain.max() - strain.min())
    np.testing.assert_allclose(out[..., 2], expected_s, atol=1e-6)
    small = uvs_image(flow, strain, size=(28, 28))
    assert small.shape == (28, 28, 3)
    np.testing.assert_allclose(small.min(axis=(0, 1)), 0.0, atol=1e-7)
    np.testing.assert_allclose(small.max(axis=(0, 1)), 1.0, atol=1e-6)


def test_uvs_constant_channel_fixed_and_none():
    flow = np.broadcast_to(np.float32([0.5, -1.0]), (H, W, 2))
    np.testing.assert_array_equal(uvs_image(flow), 0.0)  # every channel constant
    fixed = uvs_image(flow, normalise="fixed", scale=2.0)
    np.testing.assert_allclose(fixed[0, 0], [0.25, -0.5, 0.0])
    raw = uvs_image(_linear_flow(0.02, 0.0, 0.0, 0.0), normalise="none")
    np.testing.assert_allclose(raw[..., 2], 0.02, rtol=1e-5)
    with pytest.raises(EncodeError, match="strain has shape"):
        uvs_image(flow, np.zeros((3, 3), np.float32))
    with pytest.raises(EncodeError, match="unknown normalise 'zscore'"):
        uvs_image(flow, normalise="zscore")


# --- shallow channels and resizing ----------------------------------------------------------------------

def test_shallow_channels_shapes_and_values():
    flow = _smooth_flow(3)
    vx, vy, mag, vxvy = (shallow_channels(flow, k) for k in ("vx", "vy", "mag", "vxvy"))
    assert vx.shape == vy.shape == mag.shape == (1, H, W) and vxvy.shape == (2, H, W)
    np.testing.assert_array_equal(vx[0], flow[..., 0])
    np.testing.assert_array_equal(vy[0], flow[..., 1])
    np.testing.assert_allclose(mag[0], np.hypot(flow[..., 0], flow[..., 1]), rtol=1e-6)
    np.testing.assert_array_equal(vxvy, np.stack((vx[0], vy[0])))
    assert shallow_channels(flow, "vxvy", size=(28, 28)).shape == (2, 28, 28)
    with pytest.raises(EncodeError, match="unknown kind 'm'"):
        shallow_channels(flow, "m")  # type: ignore[arg-type]
    assert issubclass(EncodeError, MertkError)


def test_resize_flow_scales_vectors_by_the_resize_ratios():
    flow = np.broadcast_to(np.float32([2.0, 1.0]), (100, 80, 2))  # (u, v) = (2, 1) px at 100x80 (H x W)
    np.testing.assert_allclose(resize_flow(flow, (50, 40)), np.broadcast_to([1.0, 0.5], (50, 40, 2)), rtol=1e-6)
    np.testing.assert_allclose(resize_flow(flow, (200, 40)), np.broadcast_to([1.0, 2.0], (200, 40, 2)), rtol=1e-6)
    np.testing.assert_array_equal(resize_flow(flow, (100, 80)), flow)
    up = resize_flow(_smooth_flow(), (80, 100))
    assert up.shape == (80, 100, 2) and up.dtype == np.float32
    with pytest.raises(EncodeError, match="expected an HxWx2 flow"):
        resize_flow(np.zeros((4, 4)), (2, 2))


def test_every_encoding_rescales_a_resized_flow():
    """Vectors, magnitudes and HSI hues are in output pixels; the dimensionless strain is unchanged."""
    flow = np.broadcast_to(np.float32([2.0, 1.0]), (100, 80, 2))
    np.testing.assert_allclose(shallow_channels(flow, "vxvy", size=(50, 40))[:, 0, 0], [1.0, 0.5], rtol=1e-6)
    np.testing.assert_allclose(shallow_channels(flow, "mag", size=(50, 40))[0, 0, 0], np.hypot(1.0, 0.5), rtol=1e-6)
    np.testing.assert_allclose(uvs_image(flow, normalise="none", size=(50, 40))[0, 0], [1.0, 0.5, 0.0], rtol=1e-6)
    # (2, 1) at 100x80 squeezed to 50x80: (2, 0.5), hue atan2(0.5, 2) = 14.0 degrees, not atan2(1, 2) = 26.6
    hue = rgb_to_hsi(hsi_image(flow, size=(50, 80)))[..., 0]
    np.testing.assert_allclose(hue, np.degrees(np.arctan2(0.5, 2.0)), atol=0.5)
    linear = _linear_flow(0.02, 0.0, 0.0, 0.0)  # strain 0.02 at any scale
    np.testing.assert_allclose(uvs_image(linear, normalise="none", size=(20, 25))[..., 2], 0.02, rtol=1e-4)


def test_hsi_clip_keeps_relative_magnitudes_across_frames():
    """With the clip's peak, an early frame with tiny motion is dimmer than the apex frame; per frame it is not."""
    early = np.broadcast_to(np.float32([0.05, 0.0]), (H, W, 2))
    apex = np.broadcast_to(np.float32([1.0, 0.0]), (H, W, 2))
    clip = hsi_clip(np.stack([early, apex]), (28, 28))
    assert clip.shape == (2, 3, 28, 28) and clip.dtype == np.uint8
    intensity = rgb_to_hsi(clip.transpose(0, 2, 3, 1))[..., 2].mean(axis=(1, 2))
    np.testing.assert_allclose(intensity, [0.05 / 3, 1 / 3], atol=2 / 255)
    per_frame = rgb_to_hsi(hsi_clip(np.stack([early, apex]), (28, 28), normalise="frame").transpose(0, 2, 3, 1))
    np.testing.assert_allclose(per_frame[..., 2].mean(axis=(1, 2)), [1 / 3, 1 / 3], atol=2 / 255)
    np.testing.assert_array_equal(hsi_clip(np.zeros((2, 4, 4, 2), np.float32)), 0)
    with pytest.raises(EncodeError, match="unknown normalise 'max'"):
        hsi_clip(np.stack([early]), normalise="max")  # type: ignore[arg-type]
