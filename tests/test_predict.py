"""`mertk predict`: decoding, face tracking, training-time parity of the clip path, errors, spotting."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from mertk.engine.checkpoint import (
    Checkpoint,
    classify,
    load_checkpoint,
    save_checkpoint,
)
from mertk.engine.run import load_clips, run_recipe
from mertk.errors import DataError, MertkError, ModelError
from mertk.preprocess.face import face_landmarks
from mertk.preprocess.pipeline import config_for_model, prepare_clip
from mertk.realtime.predict import (
    SPOT_SIZE,
    add_predict_parser,
    cmd_predict,
    format_timeline,
    measure_stream_fps,
    predict,
    stream_frames,
)
from mertk.realtime.track import FaceTracker
from mertk.realtime.video import natural_key, read_frame_folder, read_video


def _write_mp4(path: Path, frames: np.ndarray, fps: float) -> Path:
    h, w = frames.shape[1:3]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    assert writer.isOpened()
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


@pytest.fixture(scope="module")
def trained(synth_root, tmp_path_factory):
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("predict_run")
    run_dir = run_recipe("laenet-megc2019", data=synth_root, out=out, overrides=("train.epochs=3", "pretrain.epochs=2"),
                         progress=False, cache_dir=out / "cache")
    return run_dir


@pytest.fixture(scope="module")
def clip(synth_root, tmp_path_factory):
    """A CASME II synthetic clip: its record, frame folder, decoded frames and an mp4 of them."""
    _, clips = load_clips("casme2", synth_root / "CASME2", "megc2019", {})
    record = clips.records[0]
    folder = record.frames[0].parent
    frames = read_frame_folder(folder).frames
    mp4 = _write_mp4(tmp_path_factory.mktemp("video") / "clip.mp4", frames, 200.0)
    return record, folder, frames, mp4


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mertk")
    add_predict_parser(parser.add_subparsers(dest="command"))
    return parser


# -- decoding ------------------------------------------------------------------------------------


def test_decoding_video_and_folder_agree(clip):
    record, folder, frames, mp4 = clip
    video = read_video(mp4)
    assert video.decoder == "pyav" and video.fps == 200.0 and video.fps_source == "container"
    assert video.frames.shape == frames.shape == (len(record.frames), *frames.shape[1:])
    assert video.frames.dtype == np.uint8
    assert np.abs(video.frames.astype(int) - frames).mean() < 6  # MPEG-4 part 2 is lossy, but it is the same clip
    assert read_video(mp4, fps=50).fps == 50.0
    found = read_frame_folder(folder)
    assert found.fps == 200.0 and found.fps_source == "default" and "assumed 200 fps" in found.notes[0]
    assert read_frame_folder(folder, fps=100).fps_source == "given" and not read_frame_folder(folder, fps=100).notes


def test_frame_folder_natural_order(tmp_path):
    for value, name in [(10, "img10.png"), (2, "img2.PNG"), (1, "img1.bmp"), (3, "IMG3.jpg")]:
        cv2.imwrite(str(tmp_path / name), np.full((8, 6, 3), value * 20, np.uint8))
    (tmp_path / "notes.txt").write_text("not a frame")
    video = read_frame_folder(tmp_path, fps=30)
    assert [round(v) for v in video.frames[:, 0, 0, 0]] == [20, 40, 60, 200]
    assert sorted(["img10", "img2", "img1"], key=natural_key) == ["img1", "img2", "img10"]


# -- training-time parity ------------------------------------------------------------------------


def test_predict_given_clip_matches_training(trained, clip):
    record, folder, frames, mp4 = clip
    ckpt = load_checkpoint(trained)
    expected, index = classify(ckpt, ckpt.build_model(), prepare_clip(record, ckpt.prepare_config()))
    apex = record.index_of(record.apex)
    result = predict(folder, trained, onset=0, apex=apex, offset=len(frames) - 1)
    (event,) = result["events"]
    got = np.array([event["probabilities"][c] for c in ckpt.classes])
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-7)
    assert event["label"] == ckpt.classes[index] and event["landmarks"] == "detected"
    assert (event["onset"], event["apex"], event["offset"]) == (0, apex, len(frames) - 1)
    assert result["frames"] == len(frames) and result["checkpoint"]["model"] == "laenet"
    assert result["checkpoint"]["classes"] == ["negative", "positive", "surprise"]
    assert set(result["timings"]) >= {"decode", "face", "track", "spot", "preprocess", "model", "total"}

    # the encoded video: same pipeline, the codec's loss is the only difference
    from_video = predict(mp4, ckpt, onset=0, apex=apex)
    probs = from_video["events"][0]["probabilities"]
    assert from_video["fps"] == 200.0 and from_video["events"][0]["offset"] == min(len(frames) - 1, 2 * apex)
    assert sum(probs.values()) == pytest.approx(1.0, abs=1e-5) and max(probs.values()) > 0
    assert "given" == from_video["events"][0]["kind"] and from_video["spotter"] is None


def test_cli_json_and_annotate(trained, clip, tmp_path, capsys):
    _, _, frames, mp4 = clip
    out = tmp_path / "annotated.mp4"
    args = _parser().parse_args(["predict", str(mp4), "--checkpoint", str(trained / "model.pt"), "--onset", "0",
                                 "--apex", "5", "--json", "--annotate", str(out)])
    assert cmd_predict(args) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["events"][0]["apex"] == 5 and result["annotated"] == str(out)
    assert read_video(out).frames.shape == frames.shape
    assert [p.name for p in tmp_path.iterdir()] == ["annotated.mp4"]  # no temporary file left
    text = format_timeline(result)
    assert "laenet" in text and result["events"][0]["label"] in text


def test_annotate_failure_leaves_nothing(trained, clip, tmp_path):
    _, folder, _, _ = clip
    with pytest.raises(DataError, match="annotated video must be"):
        predict(folder, trained, onset=0, apex=3, annotate=tmp_path / "out.avi")
    with pytest.raises(DataError, match="output folder does not exist"):
        predict(folder, trained, onset=0, apex=3, annotate=tmp_path / "missing" / "out.mp4")
    assert list(tmp_path.iterdir()) == []


# -- tracking and the streaming front end --------------------------------------------------------


def test_stream_frames_tracks_a_still_face(clip):
    _, _, frames, _ = clip
    tracker = FaceTracker(redetect_every=5, source="clip")
    tracker.start(frames[0])
    items = list(stream_frames(frames, tracker))
    assert [i.index for i in items] == list(range(len(frames)))
    assert all(i.crop.shape == SPOT_SIZE and i.crop.dtype == np.uint8 for i in items)
    assert tracker.detections >= 1 + (len(frames) - 1) // 5 and tracker.misses == 0
    assert tracker.crop_moves == []  # the synthetic head drifts by about a pixel: the crop box stays
    _, points = face_landmarks(frames[0])
    assert measure_stream_fps(frames, points) > 0


# -- errors --------------------------------------------------------------------------------------


def test_truncated_and_unreadable_videos(tmp_path, clip, trained):
    _, _, _, mp4 = clip
    data = mp4.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"cut\.mp4: unreadable video"):
        read_video(cut)
    with pytest.raises(DataError, match=r"missing\.mp4: video not found"):
        predict(tmp_path / "missing.mp4", trained)


def test_tif_frame_folder_reads_as_the_loaders_read_it(tmp_path):
    from mertk.data.base import numbered_frames

    folder = tmp_path / "tif"
    folder.mkdir()
    for n in (1, 2, 10):
        image = np.full((12, 10, 3), 20 * n, np.uint8)
        image[0, 0] = (255, 0, 0)  # BGR blue on disk
        assert cv2.imwrite(str(folder / f"img{n}.TIF"), image)
    video = read_frame_folder(folder, fps=30.0)
    assert video.frames.shape == (3, 12, 10, 3)
    assert [int(f[5, 5, 0]) for f in video.frames] == [20, 40, 200]
    assert tuple(video.frames[0, 0, 0]) == (0, 0, 255)  # RGB
    paths, numbers = numbered_frames(folder)
    assert numbers == (1, 2, 10) and [p.name for p in paths] == ["img1.TIF", "img2.TIF", "img10.TIF"]


def test_folder_errors(tmp_path, trained):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match=r"empty: no frame images"):
        predict(empty, trained)
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    cv2.imwrite(str(mixed / "f1.png"), np.zeros((10, 8, 3), np.uint8))
    cv2.imwrite(str(mixed / "f2.png"), np.zeros((12, 8, 3), np.uint8))
    with pytest.raises(DataError, match=r"f2\.png: frame 1 is 8x12 \(WxH\), the first frame 8x10 \(WxH\)"):
        read_frame_folder(mixed)


def test_no_face(tmp_path, trained):
    rng = np.random.default_rng(0)
    noise = _write_mp4(tmp_path / "noise.mp4", rng.integers(0, 256, (12, 96, 96, 3), dtype=np.uint8), 25.0)
    with pytest.raises(DataError, match=r"noise\.mp4: no face found"):
        predict(noise, trained, onset=0, apex=2)


def test_camera_missing(trained, capsys):
    from mertk.cli import EXIT_USAGE  # noqa: F401  (the lead wires cmd_predict; its errors become exit 2)

    args = _parser().parse_args(["predict", "--camera", "7", "--seconds", "1", "--checkpoint", str(trained)])
    with pytest.raises(MertkError, match=r"^no camera 7 "):
        cmd_predict(args)


def test_bad_checkpoints(tmp_path, trained, clip):
    _, folder, _, _ = clip
    config = config_for_model("shcnn")
    model = __import__("mertk.models", fromlist=["create_model"]).create_model("shcnn", num_classes=7)
    still = save_checkpoint(tmp_path / "still.pt", Checkpoint(
        model="shcnn", model_kwargs={"num_classes": 7}, classes=tuple("abcdefg"), label_map="fer2013",
        features=config.as_dict(), inference="ten_crop", state_dict=model.state_dict()))
    with pytest.raises(ModelError, match=r"still\.pt: predict needs a clip model.*gray_face"):
        predict(folder, still, onset=0, apex=3)

    tampered = tmp_path / "tampered.pt"
    data = (trained / "model.pt").read_bytes()
    assert data.count(b"surprise") >= 1
    tampered.write_bytes(data.replace(b"surprise", b"surprize"))  # a class name edited in place
    with pytest.raises(DataError, match=r"tampered\.pt: "):
        predict(folder, tampered, onset=0, apex=3)


def test_bad_indices_and_short_video(trained, clip):
    _, folder, frames, _ = clip
    n = len(frames)
    with pytest.raises(DataError, match=rf"0 <= onset < apex <= offset < {n}"):
        predict(folder, trained, onset=3, apex=n + 4)
    with pytest.raises(MertkError, match="give both onset and apex"):
        predict(folder, trained, onset=3)
    # at 200 fps the spotter's shorter window is 2 x 0.1 s + 1 frame = 41 frames: more than the clip holds
    with pytest.raises(DataError, match=rf"{folder.name}: spotting failed: .*{n} frames is fewer than one window"):
        predict(folder, trained)


# -- spotting in a long video (H2's synthetic long recordings and spotter) -----------------------


def test_predict_spots_and_labels_a_long_video(trained, tmp_path):
    from mertk.synth.long import write_long_videos
    from mertk.realtime.spotting import spotting_metrics

    summary = write_long_videos(tmp_path, subjects=1, seed=6)
    truth = json.loads(Path(summary["ground_truth"]).read_text())["videos"][0]
    result = predict(Path(summary["root"]) / truth["mp4"], trained)
    assert result["fps"] == truth["fps"] and result["frames"] == truth["frames"] and result["spotter"] == "feature"
    spotted = [(e["onset"], e["offset"]) for e in result["events"]]
    true = [(e["onset"] - 1, e["offset"] - 1) for e in truth["events"]]  # the annotation is 1-based
    micro_apexes = [e["apex"] - 1 for e in truth["events"] if e["type"] == "micro"]
    found = sum(any(a <= apex <= b for a, b in spotted) for apex in micro_apexes)
    # measured (seed 6, feature spotter): recall 1/3 at IoU 0.5 (1 tp, 1 fp), both micro apexes inside an event
    assert found >= 1
    assert spotting_metrics(spotted, true)["recall"] >= 1 / 3
    for event in result["events"]:
        assert event["kind"] in ("micro", "macro") and event["label"] in ("negative", "positive", "surprise")
        assert sum(event["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
        assert event["onset_s"] == pytest.approx(event["onset"] / truth["fps"])
