"""Known-answer tests of the landmark-driven and temporal preprocessing stages."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from mertk.errors import MertkError
from mertk.preprocess.align import AlignError, align_clip, lwm_transform, similarity_transform, warp_lwm, warp_similarity
from mertk.preprocess.apex import ApexError, dc_rois_lbp, divide_and_conquer_peak, flow_peak, lbp_rois, std_diff
from mertk.preprocess.crop import (
    Box,
    CropError,
    PreprocessError,
    crop,
    crop_clip,
    get_box,
    laenet_box,
    resize,
    square_box,
    strcn_eye_box,
)
from mertk.preprocess.eyemask import MaskError, apply_eye_mask, apply_strcn_mask, eye_mask, fit_strcn_mask
from mertk.preprocess.magnify import MagnifyError, iir_bandpass, level_alphas, magnify_clip
from mertk.preprocess.temporal import interpolate_linear, tim
from mertk.registry import SPOTTERS

H, W = 170, 140  # a CASME II-sized face crop


def _ellipse(cx: float, cy: float, rx: float, ry: float, n: int, start: float) -> list[tuple[float, float]]:
    return [(cx + rx * math.cos(start + 2 * math.pi * k / n), cy + ry * math.sin(start + 2 * math.pi * k / n)) for k in range(n)]


def face_landmarks() -> np.ndarray:
    """A hand-made 68-point iBUG layout (0-based order) of a frontal face in a 170x140 image."""
    jaw = [(20 + 100 * k / 16, 60 + 100 * math.sin(math.pi * k / 16)) for k in range(17)]
    brows = [(35 + 6.75 * k, 50 - 3 * math.sin(math.pi * k / 4)) for k in range(5)]
    brows += [(78 + 6.75 * k, 50 - 3 * math.sin(math.pi * k / 4)) for k in range(5)]
    nose = [(70, 60 + 10 * k) for k in range(4)] + [(60 + 5 * k, 95) for k in range(5)]
    right_eye = [(38, 65), (44, 61), (52, 61), (58, 65), (52, 69), (44, 69)]
    left_eye = [(82, 65), (88, 61), (96, 61), (102, 65), (96, 69), (88, 69)]
    mouth = _ellipse(70, 125, 20, 8, 12, math.pi) + _ellipse(70, 125, 12, 3, 8, math.pi)
    pts = np.array(jaw + brows + nose + right_eye + left_eye + mouth, dtype=np.float64)
    assert pts.shape == (68, 2)
    return pts


def textured(shape: tuple[int, int], seed: int, blur: float = 1.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = cv2.GaussianBlur(rng.uniform(0, 255, shape), (0, 0), blur)
    img = (img - img.min()) / (img.max() - img.min())
    return np.rint(30 + 190 * img).astype(np.uint8)


# ---------------------------------------------------------------------------------------------- crop


def test_laenet_box_margins_exact():
    pts = face_landmarks()
    box = laenet_box(pts, (H, W))
    # extent: x 20..120 (jaw), y 47 (brow top) .. 160 (chin)
    assert (pts[:, 0].min(), pts[:, 0].max(), pts[:, 1].min(), pts[:, 1].max()) == (20, 120, 47, 160)
    assert box == Box(top=47 - 25, left=20 - 5, bottom=160 + 1, right=120 + 5 + 1, clipped=False)
    wide = laenet_box(pts + 0.6, (H, W), top=3, bottom=2, left=1, right=4)
    assert wide == Box(top=47 - 3, left=20 - 1, bottom=160 + 1 + 2, right=120 + 1 + 4)


def test_box_partly_outside_is_clipped_and_fully_outside_raises():
    pts = face_landmarks() - np.array([0.0, 40.0])  # brows at y ~ 7: the 25 px top margin leaves the image
    box = laenet_box(pts, (H, W))
    assert box.top == 0 and box.clipped
    assert crop(np.zeros((H, W)), box).shape == (box.bottom, box.right - box.left)
    with pytest.raises(CropError, match="outside the 170x140 image"):
        laenet_box(face_landmarks() + 1000, (H, W))
    with pytest.raises(CropError, match="not inside"):
        crop(np.zeros((10, 10)), Box(0, 0, 20, 5))


def test_strcn_box_symmetric_about_eye_centre():
    pts = face_landmarks()
    box = strcn_eye_box(pts, (400, 400))
    d, cx, cy = 44.0, 70.0, 65.0  # eye centres (48, 65) and (92, 65)
    assert cx - box.left == box.right - cx == 40  # 0.9 d = 39.6, rounded outwards
    assert box.top == math.floor(cy - 0.6 * d)
    assert box.height == math.ceil(cy - 0.6 * d + 2.2 * d) - box.top
    assert abs(box.height / box.width - 2.2 / 1.8) < 0.02
    assert not box.clipped


def test_square_box_and_get_box():
    pts = face_landmarks()
    box = square_box(pts, (400, 400), margin=0.0)
    assert box.width == box.height == 113  # extent 113 px (y 47..160), centred
    assert get_box("laenet", pts, (H, W)) == laenet_box(pts, (H, W))
    with pytest.raises(CropError, match="choose from: laenet, square, strcn"):
        get_box("dlib", pts, (H, W))


def test_crop_clip_one_box_and_resize():
    clip = np.arange(3 * 20 * 30, dtype=np.uint8).reshape(3, 20, 30)
    out = crop_clip(clip, Box(2, 3, 12, 13))
    assert out.shape == (3, 10, 10) and (out == clip[:, 2:12, 3:13]).all()
    assert resize(np.zeros((170, 140, 3), np.uint8), (64, 48)).shape == (64, 48, 3)


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(PreprocessError, match="needs at least 1 frame"):
        crop_clip([], Box(0, 0, 1, 1))
    with pytest.raises(PreprocessError, match="frames differ in size"):
        std_diff([np.zeros((4, 4)), np.zeros((4, 5))])
    with pytest.raises(PreprocessError, match=r"expected a \(68, 2\) array"):
        laenet_box(np.zeros((5, 2)), (H, W))
    with pytest.raises(MagnifyError, match=r"float frames must lie in \[0, 1\]"):
        magnify_clip(np.full((3, 32, 32), 2.0))
    assert issubclass(PreprocessError, MertkError)


# ---------------------------------------------------------------------------------------------- align


def _smooth_deform(pts: np.ndarray) -> np.ndarray:
    x, y = pts[:, 0], pts[:, 1]
    return np.stack([1.05 * x + 0.03 * y + 4 + 1.5 * np.sin(y / 25), -0.02 * x + 0.97 * y - 3 + 1.0 * np.cos(x / 30)], 1)


def test_lwm_maps_landmarks_and_is_identity_for_equal_sets():
    src = face_landmarks()
    dst = _smooth_deform(src)
    tf = lwm_transform(src, dst)
    assert np.abs(tf(src) - dst).max() < 0.5
    ident = lwm_transform(src, src)
    grid = np.stack(np.meshgrid(np.arange(0, W, 7.0), np.arange(0, H, 7.0)), -1).reshape(-1, 2)
    assert np.abs(ident(grid) - grid).max() < 1e-6  # far from the landmarks too (similarity fallback)
    map_x, map_y = tf.dense((H, W))
    at = tf(np.array([[0.0, 0.0], [70.0, 95.0], [139.0, 169.0]]))
    assert np.allclose([map_x[0, 0], map_x[95, 70], map_x[169, 139]], at[:, 0], atol=1e-3)
    assert np.allclose([map_y[0, 0], map_y[95, 70], map_y[169, 139]], at[:, 1], atol=1e-3)


def test_warp_lwm_moves_a_landmark_feature_onto_its_destination():
    src = face_landmarks()
    dst = _smooth_deform(src)
    ys, xs = np.mgrid[0:H, 0:W]
    blob = np.exp(-((xs - src[30, 0]) ** 2 + (ys - src[30, 1]) ** 2) / (2 * 2.0**2))
    out = warp_lwm(blob, src, dst)
    centroid = np.array([(out * xs).sum(), (out * ys).sum()]) / out.sum()
    assert np.abs(centroid - dst[30]).max() < 0.5


def test_similarity_recovers_rotation_scale_shift():
    src = face_landmarks()
    s, th, t = 1.1, math.radians(7), np.array([5.0, -3.0])
    m = np.array([[s * math.cos(th), -s * math.sin(th), t[0]], [s * math.sin(th), s * math.cos(th), t[1]]])
    dst = src @ m[:, :2].T + m[:, 2]
    assert np.allclose(similarity_transform(src, dst), m, atol=1e-9)
    ys, xs = np.mgrid[0:H, 0:W]
    blob = np.exp(-((xs - src[30, 0]) ** 2 + (ys - src[30, 1]) ** 2) / (2 * 2.0**2))
    out = warp_similarity(blob, src, dst)
    assert np.abs(np.array([(out * xs).sum(), (out * ys).sum()]) / out.sum() - dst[30]).max() < 0.1
    with pytest.raises(AlignError, match="differ in shape"):
        similarity_transform(src, dst[:10])


def test_align_clip_undoes_head_motion():
    base = cv2.GaussianBlur(textured((H, W), 3, blur=4).astype(np.float64), (0, 0), 2)
    src = face_landmarks()
    frames, marks = [base], [src]
    for angle, shift in [(2.0, (1.5, -1.0)), (-3.0, (-2.0, 2.5))]:
        m = cv2.getRotationMatrix2D((70, 85), angle, 1.0)
        m[:, 2] += shift
        frames.append(cv2.warpAffine(base, m, (W, H), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE))
        marks.append(src @ m[:, :2].T + m[:, 2])
    inner = (slice(40, 130), slice(30, 110))
    before = np.abs(frames[2] - base)[inner].mean()
    for method in ("similarity", "lwm"):
        aligned = align_clip(np.stack(frames), np.stack(marks), method=method)
        assert aligned.shape == (3, H, W) and np.allclose(aligned[0], base, atol=1e-3)
        assert np.abs(aligned[2] - base)[inner].mean() < 0.1 * before
    with pytest.raises(AlignError, match="need a reference shape"):
        align_clip(np.stack(frames), src)
    same = align_clip(np.stack(frames), src, method="similarity", reference=src)
    assert np.allclose(same, np.stack(frames))


# ---------------------------------------------------------------------------------------------- magnify

MH, MW, MT = 64, 512, 80


def _moving_grating(displacement: np.ndarray, wavelength: float) -> np.ndarray:
    x = np.arange(MW)
    k = 2 * np.pi / wavelength
    return np.stack([np.tile(0.5 + 0.25 * np.sin(k * (x - d)), (MH, 1)) for d in displacement])


def _displacement(frames: np.ndarray, wavelength: float) -> np.ndarray:
    k = 2 * np.pi / wavelength
    xs = np.arange(120, 360)  # a whole number of periods, away from the borders
    rows = frames[:, MH // 2, 120:360]
    phase = np.arctan2((rows * np.cos(k * xs)).sum(1), (rows * np.sin(k * xs)).sum(1))
    return -(phase - phase[0]) / k


def test_level_alphas_follow_evm_bound():
    # 64x512: lambda = sqrt(64^2 + 512^2) / 3 = 172 at the residual, halving towards the finest level
    alphas = level_alphas((64, 512), 5, alpha=8.0, lambda_c=16.0)
    assert alphas == [0.0, 8.0, 8.0, 8.0, 0.0]
    lam1 = math.hypot(64, 512) / 3 / 8  # level 1 of 5
    small = level_alphas((64, 512), 5, alpha=8.0, lambda_c=40.0)
    assert small[1] == pytest.approx(lam1 / 40.0 * 9.0 - 1.0)


def test_magnification_amplifies_in_band_motion_by_one_plus_alpha_times_band_gain():
    t = np.arange(MT)
    d = 0.05 * np.sin(2 * np.pi * t / 40)  # period 40 frames: the band-pass gain peaks near here
    measured = _displacement(magnify_clip(_moving_grating(d, 24.0), alpha=8.0), 24.0)
    expected = d + 8.0 * iir_bandpass(d)  # EVM: delta(t) + alpha * bandpass(delta)(t)
    gain = np.abs(expected[40:]).max() / 0.05
    assert 7.0 < gain < 8.0  # 1 + alpha * |B| with |B| = 0.82 at the band centre
    assert np.abs(measured - expected).max() < 0.1 * np.abs(expected).max()
    assert np.abs(measured[40:]).max() / 0.05 > 6.5


def test_magnification_leaves_out_of_band_motion_alone():
    t = np.arange(MT)
    d = 0.05 * np.sin(2 * np.pi * t / 40)
    fine = _displacement(magnify_clip(_moving_grating(d, 3.0)), 3.0)  # wavelength 3 px << lambda_c
    assert np.abs(fine - d).max() < 0.1 * 0.05
    step = np.r_[0.0, np.full(199, 0.2)]  # a constant shift: DC, out of the temporal band
    steady = _displacement(magnify_clip(_moving_grating(step, 24.0)), 24.0)
    assert abs(steady[-1] - 0.2) < 0.01
    static = _moving_grating(np.zeros(5), 24.0)
    assert np.allclose(magnify_clip(static), static, atol=1e-6)


def test_magnify_keeps_dtype_shape_and_first_frame():
    rng = np.random.default_rng(0)
    clip = rng.integers(0, 256, (6, 40, 36, 3), dtype=np.uint8)
    out = magnify_clip(clip, alpha=10.0)
    assert out.dtype == np.uint8 and out.shape == clip.shape
    assert np.abs(out[0].astype(int) - clip[0]).max() <= 1  # YIQ round trip only
    with pytest.raises(MagnifyError, match="too small for a pyramid"):
        magnify_clip(clip[:, :4, :4])
    with pytest.raises(MagnifyError, match="0 < r2 < r1"):
        magnify_clip(clip, r1=0.05, r2=0.4)


# ---------------------------------------------------------------------------------------------- temporal


def test_tim_same_length_reproduces_and_follows_its_curve():
    rng = np.random.default_rng(1)
    clip = rng.uniform(0, 1, (9, 12, 10))
    assert np.allclose(tim(clip, 9), clip, atol=1e-10)
    # frames on the first TIM eigen-curve are interpolated exactly along it
    a, b = rng.uniform(0, 1, (2, 12, 10))
    curve = lambda u: a + b * np.cos(np.pi * (u - 0.5) / 9)  # noqa: E731
    frames = np.stack([curve(i) for i in range(1, 10)])
    pos = np.linspace(1, 9, 30)
    assert np.allclose(tim(frames, 30), np.stack([curve(u) for u in pos]), atol=1e-10)
    out = tim(clip.astype(np.float32) * 255, 30)
    assert out.shape == (30, 12, 10) and out.dtype == np.float32
    assert np.allclose(out[[0, -1]], clip[[0, -1]] * 255, atol=1e-3)


def test_linear_interpolation_of_a_ramp_is_exact():
    ramp = np.stack([np.full((4, 5), 10.0 * t) for t in range(7)])
    out = interpolate_linear(ramp, 25)
    assert np.allclose(out[:, 0, 0], np.linspace(0, 60, 25))
    u8 = interpolate_linear(ramp.astype(np.uint8), 13)
    assert u8.dtype == np.uint8 and (u8[:, 0, 0] == np.arange(0, 61, 5)).all()


def test_temporal_rejects_short_clips_and_bad_lengths():
    with pytest.raises(PreprocessError, match="needs at least 2 frame"):
        tim(np.zeros((1, 4, 4)), 10)
    with pytest.raises(PreprocessError, match="positive integer"):
        interpolate_linear(np.zeros((3, 4, 4)), 0)
    two = np.stack([np.zeros((2, 2)), np.ones((2, 2))])
    assert np.allclose(tim(two, 3)[1], 0.5)


# ---------------------------------------------------------------------------------------------- apex


def test_std_diff_spots_a_synthetic_peak():
    base = textured((60, 50), 5).astype(np.float64)
    ys, xs = np.mgrid[0:60, 0:50]
    bump = np.exp(-((xs - 30) ** 2 + (ys - 20) ** 2) / 40.0)
    frames = [base + 20 * math.exp(-((t - 11) ** 2) / 8.0) * bump for t in range(25)]
    assert std_diff(frames) == 11


def test_divide_and_conquer_peak_search():
    curve = np.array([0, 0.1, 0.05, 0.2, 0.6, 1.0, 0.7, 0.3, 0.35, 0.1, 0.0])
    assert divide_and_conquer_peak(curve) == 5
    assert divide_and_conquer_peak(np.arange(6.0)) == 5  # no interior peak: the arg-max
    # many noise peaks on the floor do not outweigh one real peak
    noisy = np.array([0, 0.15, 0.12, 0.17, 0.13, 0.16, 0.12, 0.18, 0.13, 0.14, 0.2, 0.5, 0.2, 0.15, 0.14, 0.15])
    assert divide_and_conquer_peak(noisy) == 11
    # two strong peaks in one half outweigh a taller lone peak in the other (unlike an arg-max)
    twin = np.array([0, 0.1, 0.6, 0.1, 0.55, 0.1, 0.1, 0.1, 0.9, 0.1, 0.1])
    assert divide_and_conquer_peak(twin) == 2


def test_dc_rois_lbp_spots_a_change_in_the_mouth_roi():
    pts = face_landmarks()
    base = textured((H, W), 7)
    other = np.tile(np.rint(128 + 90 * np.sin(2 * np.pi * np.arange(H) / 6))[:, None], (1, W))  # stripes: new LBP codes
    mouth = lbp_rois(pts, (H, W))["mouth"]
    region = np.zeros((H, W), bool)
    region[mouth.top : mouth.bottom, mouth.left : mouth.right] = True
    rng = np.random.default_rng(9)
    frames = []
    for t in range(31):
        a = 0.5 * math.exp(-((t - 19) ** 2) / 18.0)
        f = base.astype(np.float64)
        f[region] = (1 - a) * base[region] + a * other[region]
        frames.append(np.clip(np.rint(f + rng.normal(0, 1.0, f.shape)), 0, 255).astype(np.uint8))
    assert abs(dc_rois_lbp(frames, landmarks=pts) - 19) <= 1
    with pytest.raises(ApexError, match="needs the first frame's 68 landmarks"):
        dc_rois_lbp(frames)


def _drift_and_bump(local: tuple[float, ...], drift: tuple[float, ...]):
    """Frames carrying their index; a fake flow with a uniform drift plus a local 3x3 bump."""
    frames = [np.full((16, 16), t, np.float64) for t in range(len(local))]

    def fake_flow(a, b):
        t = int(b[0, 0])
        flow = np.full((16, 16, 2), drift[t], np.float64)
        flow[6:9, 6:9] += local[t]
        return flow

    return frames, fake_flow


def test_flow_peak_finds_local_motion_and_ignores_drift():
    # the drift grows through the clip (as a head drifts) while the local motion peaks at frame 2
    frames, fake_flow = _drift_and_bump(local=(0, 1, 4, 2, 1), drift=(0, 1, 2, 3, 5))
    assert flow_peak(frames, flow_fn=fake_flow) == 2
    plain_mean = [np.hypot(*fake_flow(frames[0], f).transpose(2, 0, 1)).mean() for f in frames]
    assert int(np.argmax(plain_mean)) == 4  # a mean-magnitude score would follow the drift
    inside = np.zeros((16, 16), bool)
    inside[:, 8:] = True  # a mask that keeps only part of the bump still finds it
    assert flow_peak(frames, flow_fn=fake_flow, mask=inside) == 2
    with pytest.raises(ApexError, match="needs flow_fn"):
        flow_peak(frames)
    with pytest.raises(ApexError, match="percentile"):
        flow_peak(frames, flow_fn=fake_flow, percentile=0)


def test_spotters_are_registered():
    assert {"std_diff", "dc_rois_lbp", "flow_peak"} <= set(SPOTTERS.names())
    assert SPOTTERS.get("std_diff") is std_diff and SPOTTERS.entry("dc_rois_lbp").meta["needs_landmarks"]


# ---------------------------------------------------------------------------------------------- masks


def test_eye_mask_covers_eye_polygons_and_not_the_mouth():
    pts = face_landmarks()
    mask = eye_mask((H, W), pts)
    assert mask.dtype == bool and mask.shape == (H, W)
    assert mask[65, 48] and mask[65, 92] and mask[63, 44] and mask[67, 96]
    assert not mask[125, 70] and not mask[95, 70] and not mask[50, 40]
    area = sum(cv2.contourArea(pts[i : i + 6].astype(np.float32)) for i in (36, 42))
    assert abs(mask.sum() - area) < 0.35 * area  # rasterised polygons (boundary pixels included)
    grown = eye_mask((H, W), pts, dilate=2)
    assert grown.sum() > mask.sum() and grown[mask].all()
    small = eye_mask((28, 28), pts, from_shape=(H, W))
    assert small[round(65 * 28 / H), round(48 * 28 / W)] and not small[round(125 * 28 / H), 14]
    flow = np.ones((H, W, 2))
    masked = apply_eye_mask(flow, mask)
    assert (masked[mask] == 0).all() and (masked[~mask] == 1).all() and (flow == 1).all()
    with pytest.raises(MaskError, match="does not match"):
        apply_eye_mask(np.ones((10, 10)), mask)


@pytest.mark.parametrize("masked", [False, True])
def test_uniform_translation_gives_zero_strain_with_or_without_the_eye_mask(masked):
    """The strain comes from the unmasked flow; the mask then zeroes u, v and strain (no ring at its border)."""
    from mertk.preprocess.pipeline import config_for_model, flow_features

    flow = np.broadcast_to(np.float32([1.0, -0.5]), (H, W, 2)).copy()
    config = config_for_model("laenet", eye_mask=masked, uvs_normalise="none", size=(H, W))
    u, v, strain = flow_features(flow, face_landmarks(), config)
    np.testing.assert_array_equal(strain, 0.0)
    mask = eye_mask((H, W), face_landmarks())
    assert mask.sum() > 50
    np.testing.assert_array_equal(u[~mask], 1.0)
    np.testing.assert_array_equal(v[~mask], -0.5)
    np.testing.assert_array_equal(u[mask], 0.0 if masked else 1.0)


def test_strcn_mask_fit_uses_only_given_clips_and_selects_the_percentile():
    rng = np.random.default_rng(2)

    def clip_moving(rows: slice) -> np.ndarray:
        frames = np.repeat(rng.uniform(0, 1, (1, 20, 20, 3)), 6, axis=0)
        frames[1:, rows] += rng.uniform(0.1, 0.2, (5, rows.stop - rows.start, 20, 3))
        return frames

    train = [clip_moving(slice(0, 5)), clip_moving(slice(0, 5))]  # motion in the top 100 pixels
    mask = fit_strcn_mask(train, percentile=30)
    assert mask.sum() == 120 and mask[:5].all()
    test_clip = clip_moving(slice(15, 20))  # never given to fit: must not pull the mask down there
    assert not mask[15:].any()
    assert fit_strcn_mask(train + [test_clip] * 3, percentile=30)[15:].any()
    x = apply_strcn_mask(test_clip, mask)
    assert x.shape == (120, 6, 3) and np.array_equal(x[:, 2], test_clip[2][mask])
    with pytest.raises(MaskError, match="no training clips"):
        fit_strcn_mask([])
    with pytest.raises(MaskError, match="training clip 1 has frames"):
        fit_strcn_mask([np.zeros((2, 4, 4)), np.zeros((2, 5, 5))])
