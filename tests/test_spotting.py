"""Spotting micro-expressions in long face sequences, and the MEGC spotting metrics."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from mertk.synth.layouts import _subject
from mertk.synth.long import FACE_WIDTH, FRAME_SIZE, LONG_ROOT, _distractors, write_long_videos
from mertk.synth.render import render_frames
from mertk.errors import MertkError
from mertk.preprocess.crop import crop_clip, get_box
from mertk.realtime.spotting import SpottedEvent, SpottingError, interval_iou, spot_events, spotting_metrics


def test_metrics_hand_made() -> None:
    truth = [(10, 29), (100, 119), (200, 209)]
    pred = [(12, 30), (100, 109), (300, 310), (11, 28)]
    r = spotting_metrics(pred, truth)
    # (12,30) matches (10,29); (100,109) has IoU 10/20 = 0.5 (counts); (300,310) nothing;
    # (11,28) overlaps (10,29) but that one is already matched: a false positive
    assert (r["tp"], r["fp"], r["fn"]) == (2, 2, 1)
    assert r["precision"] == pytest.approx(0.5) and r["recall"] == pytest.approx(2 / 3)
    assert r["f1"] == pytest.approx(2 * 0.5 * (2 / 3) / (0.5 + 2 / 3))
    assert interval_iou((0, 9), (0, 19)) == 0.5 and interval_iou((0, 8), (0, 19)) == pytest.approx(0.45)
    assert spotting_metrics([(0, 8)], [(0, 19)])["tp"] == 0
    assert spotting_metrics([(0, 8)], [(0, 19)], iou=0.45)["tp"] == 1
    assert spotting_metrics([], []) == {"tp": 0, "fp": 0, "fn": 0, "precision": 0.0, "recall": 0.0, "f1": 0.0}
    with pytest.raises(SpottingError, match="onset <= offset"):
        spotting_metrics([(5, 2)], [(0, 3)])


@pytest.fixture(scope="module")
def long_video(tmp_path_factory) -> tuple[np.ndarray, np.ndarray, dict]:
    """One synthetic long video (seed 7, not a tuning seed), cropped with the LAENet box placed from
    its ground-truth first-frame landmarks."""
    out = tmp_path_factory.mktemp("spot")
    write_long_videos(out, subjects=1, seed=7)
    root = out / LONG_ROOT
    entry = json.loads((root / "ground_truth.json").read_text())["videos"][0]
    frames = np.stack([cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p in sorted((root / entry["frame_dir"]).glob("*.jpg"))])
    pts = np.asarray(entry["landmarks_first"])
    box = get_box("laenet", pts, frames.shape[1:])
    return crop_clip(frames, box), pts - np.array([box.left, box.top]), entry


@pytest.mark.parametrize("method", ["feature", "flow"])
def test_spotter_finds_synthetic_events(long_video, method: str) -> None:
    crop, pts, entry = long_video
    events = spot_events(crop, fps=entry["fps"], landmarks=pts, method=method)
    assert all(isinstance(e, SpottedEvent) and 0 <= e.onset <= e.apex <= e.offset < len(crop) for e in events)
    assert [e.onset for e in events] == sorted(e.onset for e in events)
    truth = [(e["onset"] - 1, e["offset"] - 1) for e in entry["events"]]
    r = spotting_metrics([(e.onset, e.offset) for e in events], truth)
    assert r["recall"] >= FLOORS[method][0] and r["precision"] >= FLOORS[method][1], r


# (recall, precision) floors; measured on this video (seed 7, 4 events): feature 0.50 / 0.67, flow 0.75 / 1.00
FLOORS = {"feature": (0.25, 0.5), "flow": (0.5, 0.66)}


def test_static_video_yields_no_events() -> None:
    """Noise, flicker, head drift and blinks but no expression: nothing to spot."""
    n = 400
    subject = _subject("000", 5, 0, FRAME_SIZE, 99, face_width=FACE_WIDTH)
    dist = _distractors([], n, 100.0, np.random.default_rng(3))
    assert dist.blink.max() > 0.5  # the blinks are there to be ignored
    frames = np.stack(list(render_frames(subject, [], np.zeros((0, n)), dist, grey=True)))
    box = get_box("laenet", subject.landmarks, frames.shape[1:])
    crop = crop_clip(frames, box)
    pts = subject.landmarks - np.array([box.left, box.top])
    for method in ("feature", "flow"):
        assert spot_events(crop, fps=100.0, landmarks=pts, method=method) == []


def test_bad_input_raises() -> None:
    frames = np.zeros((20, 64, 64), np.uint8)
    with pytest.raises(SpottingError, match="fewer than one window of 31 frames"):
        spot_events(frames, fps=100.0)
    with pytest.raises(MertkError, match=r"expected frames of shape \(T, H, W\)"):
        spot_events(np.zeros((40, 64), np.uint8), fps=100.0)
    with pytest.raises(SpottingError, match="unknown method 'lbp'"):
        spot_events(np.zeros((40, 64, 64), np.uint8), fps=100.0, method="lbp")
    with pytest.raises(SpottingError, match="unknown parameter"):
        spot_events(np.zeros((40, 64, 64), np.uint8), fps=100.0, window=3)
    with pytest.raises(SpottingError, match="landmarks must be a finite"):
        spot_events(np.zeros((40, 64, 64), np.uint8), fps=100.0, landmarks=np.zeros((5, 2)))
    assert spot_events(np.full((40, 64, 64), 128, np.uint8), fps=100.0, method="feature") == []
