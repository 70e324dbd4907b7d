"""Known-answer tests for every registered optical-flow method, and the flow interface's validation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import cv2
import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from mertk.errors import MertkError, UnknownNameError
from mertk.preprocess.flow import (
    FlowError,
    FlowMethod,
    TVL1,
    compute_flow,
    compute_flow_batch,
    get_flow_method,
    to_grey,
)
from mertk.registry import FLOWS

METHODS = ["dis", "farneback", "horn_schunck", "tvl1", "tvl1_opencv"]
SIZE = 96
M = 12  # interior margin excluded from error statistics (border effects)
# median EPE bound in the interior for the sub-pixel translation: the TV-L1s must be < 0.1 px
SUBPIXEL_TOL = {"tvl1": 0.1, "tvl1_opencv": 0.1, "farneback": 0.15, "dis": 0.15, "horn_schunck": 0.15}
# single-scale Horn-Schunck cannot follow a 2 px shift; its coarse-to-fine variant is tested instead
INTEGER_PARAMS = {"horn_schunck": {"n_scales": 3}}

_YY, _XX = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)


def _texture(seed: int = 0, size: int = SIZE) -> np.ndarray:
    """Smooth random texture (Gaussian-filtered noise, sigma 2 px) as float32 on 0..255."""
    t = gaussian_filter(np.random.default_rng(seed).standard_normal((size, size)), 2.0)
    return ((t - t.min()) / (t.max() - t.min()) * 255).astype(np.float32)


def _move(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """``next`` with ``next(x + flow(x)) = image(x)`` (field inverted by fixed-point iteration)."""
    back = flow.copy()
    for _ in range(20):
        back = cv2.remap(flow, _XX - back[..., 0], _YY - back[..., 1], cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REPLICATE)
    return cv2.remap(image, _XX - back[..., 0], _YY - back[..., 1], cv2.INTER_CUBIC,
                     borderMode=cv2.BORDER_REFLECT)


def _translation(dx: float, dy: float) -> np.ndarray:
    return np.broadcast_to(np.float32([dx, dy]), (SIZE, SIZE, 2)).copy()


def _epe(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.hypot(a[..., 0] - b[..., 0], a[..., 1] - b[..., 1])


def test_all_methods_registered_with_metadata():
    assert set(METHODS) <= set(FLOWS.names())
    for name in METHODS:
        meta = FLOWS.entry(name).meta
        assert meta["description"] and meta["reference"]
        assert FLOWS.get(name).name == name


@pytest.mark.parametrize("method", METHODS)
def test_subpixel_translation(method):
    prev = _texture()
    nxt = _move(prev, _translation(0.7, -0.4))
    flow = compute_flow(prev / 255, nxt / 255, method)
    assert flow.shape == (SIZE, SIZE, 2) and flow.dtype == np.float32
    err = _epe(flow, _translation(0.7, -0.4))[M:-M, M:-M]
    assert np.median(err) < SUBPIXEL_TOL[method]


@pytest.mark.parametrize("method", METHODS)
def test_integer_translation(method):
    prev = _texture(1)
    nxt = np.clip(np.rint(_move(prev, _translation(2, 1))), 0, 255).astype(np.uint8)
    flow = compute_flow(prev.astype(np.uint8), nxt, method, **INTEGER_PARAMS.get(method, {}))
    assert np.median(_epe(flow, _translation(2, 1))[M:-M, M:-M]) < 0.1


@pytest.mark.parametrize("method", METHODS)
def test_smooth_nonrigid_bump(method):
    bump = np.exp(-((_XX - 48) ** 2 + (_YY - 48) ** 2) / (2 * 12.0**2)).astype(np.float32)
    truth = np.dstack((0.8 * bump, 0.6 * bump))  # 1 px peak
    prev = _texture(2)
    flow = compute_flow(prev / 255, _move(prev, truth) / 255, method)
    region = bump > 0.1
    zero_epe = np.hypot(truth[..., 0], truth[..., 1])[region].mean()
    assert _epe(flow, truth)[region].mean() < 0.3 * zero_epe


@pytest.mark.parametrize("method", METHODS)
def test_identical_frames_give_zero_flow(method):
    frame = _texture(3).astype(np.uint8)
    flow = compute_flow(frame, frame, method)
    assert np.abs(flow[M:-M, M:-M]).max() < 0.01


@pytest.mark.parametrize("method", METHODS)
def test_mismatched_sizes_raise(method):
    with pytest.raises(FlowError, match=r"frame sizes differ: prev is 96x96 \(WxH\), next is 90x96 \(WxH\)"):
        compute_flow(_texture(), _texture()[:, :90], method)


@pytest.mark.parametrize("method", ["tvl1", "farneback"])  # vectorised batch / default per-pair loop
def test_batch_equals_per_pair(method):
    prevs = [_texture(s).astype(np.uint8) for s in (4, 5, 6)]
    nexts = [
        np.clip(np.rint(_move(p.astype(np.float32), _translation(dx, dy))), 0, 255).astype(np.uint8)
        for p, (dx, dy) in zip(prevs, [(0.3, 0.2), (-0.8, 0.5), (1.2, -0.6)])
    ]
    batch = compute_flow_batch(prevs, nexts, method)
    assert batch.shape == (3, SIZE, SIZE, 2)
    for i in range(3):
        np.testing.assert_allclose(batch[i], compute_flow(prevs[i], nexts[i], method), atol=1e-4)


def test_batch_validation():
    a = _texture()
    with pytest.raises(FlowError, match="2 prev frames but 1 next frames"):
        compute_flow_batch([a, a], [a], "tvl1")
    with pytest.raises(FlowError, match="pair 1 is 90x90 \\(WxH\\) but pair 0 is 96x96 \\(WxH\\)"):
        compute_flow_batch([a, a[:90, :90]], [a, a[:90, :90]], "tvl1")


def test_input_types_are_converted_consistently():
    prev = _texture(7)
    nxt = _move(prev, _translation(0.5, 0.25))
    p8, n8 = (np.clip(np.rint(x), 0, 255).astype(np.uint8) for x in (prev, nxt))
    ref = compute_flow(p8, n8, "tvl1")
    np.testing.assert_allclose(compute_flow(p8 / 255.0, n8 / 255.0, "tvl1"), ref, atol=1e-3)
    rgb = [np.repeat(x[..., None], 3, axis=2) for x in (p8, n8)]
    np.testing.assert_allclose(compute_flow(*rgb, "tvl1"), ref, atol=1e-3)
    assert to_grey(p8[..., None]).dtype == np.float32
    np.testing.assert_array_equal(to_grey(p8[..., None]), p8.astype(np.float32))


@pytest.mark.parametrize(
    "image, message",
    [
        (np.zeros((8, 8, 4), np.uint8), "expected a grey HxW or RGB HxWx3 image"),
        (np.zeros((8, 8), np.uint16), "unsupported dtype uint16"),
        (np.full((8, 8), np.nan, np.float32), "NaN or inf"),
    ],
)
def test_bad_frames_raise(image, message):
    with pytest.raises(FlowError, match=message):
        compute_flow(image, image, "farneback")


def test_non_finite_result_raises():
    @dataclass(frozen=True)
    class Broken(FlowMethod):
        name: ClassVar[str] = "broken"

        def _flow(self, prev, next):
            out = np.zeros((*prev.shape, 2), np.float32)
            out[0, 0, 1] = np.nan
            return out

    with pytest.raises(FlowError, match="'broken': result has 1 NaN/inf values for a 96x96 \\(WxH\\) pair"):
        Broken()(_texture(), _texture())


def test_unknown_method_and_parameters():
    with pytest.raises(UnknownNameError, match="choose from: dis, farneback"):
        compute_flow(_texture(), _texture(), "classic_nl")
    with pytest.raises(FlowError, match="unknown parameter\\(s\\) alpha; valid: .*lambda_"):
        get_flow_method("tvl1", alpha=3.0)
    with pytest.raises(FlowError, match="tau=0.5"):
        TVL1(tau=0.5)
    with pytest.raises(FlowError, match="unknown preset 'slow'"):
        get_flow_method("dis", preset="slow")
    assert issubclass(FlowError, MertkError)


def test_tvl1_threads_setting_is_restored():
    import torch

    before = torch.get_num_threads()
    compute_flow(_texture(), _texture(), "tvl1", threads=1)
    assert torch.get_num_threads() == before
