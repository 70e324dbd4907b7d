"""``mertk predict``: run a trained checkpoint on one's own video, frame folder or camera.

::

    decode (PyAV / OpenCV / images) -> face: dlib on the first frame(s) -> per frame: track, crop, grey,
    resize (:func:`stream_frames`) -> events: the given onset/apex, or spotted in the face crops
    (:func:`mertk.realtime.spotting.spot_events`) -> per event: the training pipeline
    (:func:`~mertk.preprocess.pipeline.prepare_frames` with the checkpoint's own configuration) and
    the model (:func:`~mertk.engine.checkpoint.classify`) -> a JSON-able timeline

Each classified clip is prepared exactly as in training: the frames onset..offset of the decoded
video, the annotated (or spotted) apex, and the onset frame's landmarks found as the pipeline finds
them (dlib on the whole onset frame), so a frame folder of a training clip gets the probabilities
that clip got. Frame numbers are 0-based indices into the decoded video.
"""

from __future__ import annotations

import argparse
import io
import json
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..errors import DataError, MertkError, ModelError, PreprocessError, frame_size
from ..fileio import atomic_path
from ..preprocess.crop import Box
from ..preprocess.face import NoFaceError, detect_faces, face_landmarks
from ..preprocess.face import landmarks as fit_landmarks
from ..progress import ProgressBar
from .track import FaceTracker, TrackState
from .video import Video, open_source

__all__ = ["SPOT_SIZE", "StreamFrame", "add_predict_parser", "cmd_predict", "format_timeline", "measure_stream_fps",
           "predict", "spot_size", "stream_frames", "write_annotated"]

SPOT_SIZE = (128, 128)  # (H, W) of the grey face crops of stream_frames' callers that name no size
MAX_SPOT_SIDE = 192  # predict keeps the face crop's own resolution for the spotter, up to this side
FULL_FRAME_DETECT = 640 * 480  # onset frames up to this area are searched whole, as the pipeline does
FIRST_FACE_TRIES = 8  # frames of the first second searched for a face before giving up


@dataclass(frozen=True)
class StreamFrame:
    """One frame after the streaming front end: its grey face crop and the tracker's state."""

    index: int
    crop: np.ndarray
    state: TrackState


def face_crop(frame: np.ndarray, box: Box, size: tuple[int, int] = SPOT_SIZE) -> np.ndarray:
    """The grey ``size`` crop of ``box`` in an RGB (or grey) frame, area-averaged when shrinking."""
    region = frame[box.top : box.bottom, box.left : box.right]
    grey = cv2.cvtColor(region, cv2.COLOR_RGB2GRAY) if region.ndim == 3 else region
    shrink = size[0] * size[1] < grey.shape[0] * grey.shape[1]
    return cv2.resize(grey, (size[1], size[0]), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def stream_frames(frames: Iterable[np.ndarray], tracker: FaceTracker, *,
                  size: tuple[int, int] = SPOT_SIZE) -> Iterator[StreamFrame]:
    """The per-frame loop after the first detection: track, crop, grey, resize.

    ``tracker`` must have been started on the first of ``frames`` (:meth:`FaceTracker.start` or
    :meth:`FaceTracker.from_landmarks`); that frame is yielded with the start state, every later
    frame goes through :meth:`FaceTracker.update`. Works on any iterable, so a live source streams.
    """
    for i, frame in enumerate(frames):
        state = tracker.state(detected=True) if i == 0 else tracker.update(frame)
        yield StreamFrame(i, face_crop(frame, state.crop_box, size), state)


def measure_stream_fps(frames: Sequence[np.ndarray] | np.ndarray, landmarks: np.ndarray, *,
                       size: tuple[int, int] = SPOT_SIZE, **tracker_params: Any) -> float:
    """Sustained frames per second of :func:`stream_frames` on ``frames`` (re-detections included).

    ``landmarks`` are the first frame's 68 points (frame coordinates); the tracker starts from them,
    so the one-off first detection is not timed.
    """
    if len(frames) < 2:
        raise PreprocessError(f"measure_stream_fps: needs at least 2 frames, got {len(frames)}")
    tracker = FaceTracker.from_landmarks(frames[0], landmarks, **tracker_params)
    start = time.perf_counter()
    n = sum(1 for _ in stream_frames(frames, tracker, size=size))
    return n / (time.perf_counter() - start)


# ---------------------------------------------------------------------------------------------
# pieces of predict
# ---------------------------------------------------------------------------------------------


def _clip_model(checkpoint: Any, path: str) -> None:
    from ..preprocess.features import FEATURES

    feature = checkpoint.features.get("feature")
    if feature not in FEATURES or not FEATURES.get(feature).clips:
        raise ModelError(f"{path}: predict needs a clip model, but {checkpoint.model} takes still images "
                         f"(feature {feature}); train a micro-expression recipe")


def _first_face(video: Video, tracker: FaceTracker) -> int:
    """Start the tracker on the first frame showing a face (searched in the first second)."""
    n = len(video.frames)
    tries = sorted({min(n - 1, round(k * video.fps / FIRST_FACE_TRIES)) for k in range(FIRST_FACE_TRIES)})
    for index in tries:
        try:
            tracker.start(video.frames[index])
            return index
        except NoFaceError:
            continue
    raise NoFaceError(video.source, f"no face found in frames {', '.join(map(str, tries))} (the first second)")


def _onset_landmarks(frame: np.ndarray, state: TrackState, upsample: int) -> tuple[np.ndarray, str]:
    """The onset frame's landmarks as the pipeline finds them (dlib on the whole frame).

    Frames larger than :data:`FULL_FRAME_DETECT` are searched in a window around the tracked box
    instead (the whole-frame search would cost a second per event on full-HD); a frame where dlib
    finds no face keeps the tracked box and fits the landmarks in it.
    """
    h, w = frame.shape[:2]
    try:
        if h * w <= FULL_FRAME_DETECT:
            return face_landmarks(frame, upsample=upsample)[1], "detected"
        box = state.box
        x0, y0 = max(box.left - box.width, 0), max(box.top - box.height, 0)
        x1, y1 = min(box.right + box.width, w), min(box.bottom + box.height, h)
        found = detect_faces(frame[y0:y1, x0:x1], upsample=upsample)
        if found:
            return fit_landmarks(frame[y0:y1, x0:x1], found[0]) + np.array([x0, y0], dtype=np.float32), "detected"
    except NoFaceError:
        pass
    return fit_landmarks(frame, state.box), "tracked"


def _check_indices(n: int, onset: int, apex: int, offset: int | None, source: str) -> int:
    """Validate 0-based onset <= apex <= offset < n; returns the offset (apex + (apex - onset) if none)."""
    if offset is None:
        offset = min(n - 1, apex + max(apex - onset, 1))
    if not 0 <= onset < apex <= offset < n:
        raise DataError(source, f"frames onset {onset}, apex {apex}, offset {offset} must satisfy "
                                f"0 <= onset < apex <= offset < {n} (0-based indices into the {n} decoded frames)")
    return offset


class _Classifier:
    """A checkpoint's model and pipeline, applied to clips of one video; times its two stages."""

    def __init__(self, checkpoint: Any, video: Video):
        self.ckpt, self.video = checkpoint, video
        self.config = checkpoint.prepare_config()
        self.model = checkpoint.build_model()
        self.preprocess_s = self.model_s = 0.0

    def __call__(self, onset: int, apex: int, offset: int, state: TrackState) -> dict[str, Any]:
        from ..engine.checkpoint import classify

        start = time.perf_counter()
        frames = self.video.frames[onset : offset + 1]
        points, how = _onset_landmarks(frames[0], state, self.config.upsample)
        arrays = self.prepare(frames, apex - onset, points, f"{self.video.source} frames {onset}-{offset}")
        middle = time.perf_counter()
        probs, index = classify(self.ckpt, self.model, arrays)
        self.preprocess_s += middle - start
        self.model_s += time.perf_counter() - middle
        return {"label": self.ckpt.classes[index],
                "probabilities": {c: float(p) for c, p in zip(self.ckpt.classes, probs)},
                "landmarks": how}

    def prepare(self, frames: np.ndarray, apex_index: int, points: np.ndarray, source: str) -> dict[str, np.ndarray]:
        from ..preprocess.pipeline import prepare_frames

        return prepare_frames(frames, self.config, apex_index=apex_index, landmarks=points, source=source)


def spot_size(box: Box) -> tuple[int, int]:
    """Crop size for the spotter: the first crop box's own, shrunk to :data:`MAX_SPOT_SIDE` at most.

    The spotter's block size and noise level are in pixels of the crop, tuned on faces of about
    150 px, so the face is not rescaled unless it is large (later crop boxes are resized to this).
    """
    factor = min(1.0, MAX_SPOT_SIDE / max(box.height, box.width))
    return max(round(box.height * factor), 8), max(round(box.width * factor), 8)


def _spot(crops: np.ndarray, states: list[TrackState], fps: float, method: str, source: str) -> list[Any]:
    from .spotting import spot_events

    first = states[0]
    box = first.crop_box
    size = crops.shape[1:3]
    scale = np.array([size[1] / box.width, size[0] / box.height], dtype=np.float32)
    points = (first.landmarks - np.array([box.left, box.top], dtype=np.float32)) * scale
    try:
        return spot_events(crops, fps=fps, landmarks=points, method=method)
    except MertkError as exc:
        raise DataError(source, f"spotting failed: {exc}") from None


def _event_row(number: int, kind: str, onset: int, apex: int, offset: int, fps: float, score: float | None) -> dict[str, Any]:
    return {"event": number, "kind": kind, "onset": int(onset), "apex": int(apex), "offset": int(offset),
            "onset_s": round(onset / fps, 4), "apex_s": round(apex / fps, 4), "offset_s": round(offset / fps, 4),
            "spot_score": None if score is None else float(score), "label": None, "probabilities": None}


# ---------------------------------------------------------------------------------------------
# predict
# ---------------------------------------------------------------------------------------------


def predict(source: str | Path | Video | None, checkpoint: Any, *, onset: int | None = None, apex: int | None = None,
            offset: int | None = None, fps: float | None = None, spotter: str = "feature",
            annotate: str | Path | None = None, progress: bool = False, camera: int | None = None,
            seconds: float | None = None) -> dict[str, Any]:
    """Find and classify the micro-expressions of a video, a frame folder or a camera recording.

    Args:
        source: a video file, a folder of frame images, or an already decoded :class:`Video`
            (``None`` with ``camera``).
        checkpoint: a ``model.pt``, a run directory holding one, or a loaded
            :class:`~mertk.engine.checkpoint.Checkpoint`; its model must take clips.
        onset, apex, offset: classify this one clip (0-based frame indices into the decoded video);
            without ``offset`` the clip ends at ``apex + (apex - onset)``. Without ``onset``/``apex``
            events are spotted with ``spotter``.
        fps: frame rate overriding the container's (a folder defaults to 200 fps, with a note).
        spotter: method of :func:`mertk.realtime.spotting.spot_events`.
        annotate: write the video with the face box and each event's label here (``.mp4``).
        progress: show a progress bar over the tracking loop.
        camera, seconds: record ``seconds`` from camera ``camera`` instead of reading ``source``.

    Returns:
        A JSON-able timeline: ``source, decoder, fps, fps_source, frames, frame_size, face,
        checkpoint, events, timings, notes`` (see ``docs`` / the CLI's ``--json``).

    Raises:
        DataError: unreadable source, no face, indices outside the video, a video too short to spot in.
        ModelError: a still-image checkpoint.
    """
    from ..engine.checkpoint import Checkpoint, load_checkpoint

    total = time.perf_counter()
    if (onset is None) != (apex is None):
        raise MertkError("give both onset and apex (0-based frame indices), or neither to spot events")
    if offset is not None and onset is None:
        raise MertkError("offset needs onset and apex")
    ckpt_path = "checkpoint" if isinstance(checkpoint, Checkpoint) else str(checkpoint)
    ckpt = checkpoint if isinstance(checkpoint, Checkpoint) else load_checkpoint(checkpoint)
    _clip_model(ckpt, ckpt_path)

    video = source if isinstance(source, Video) else open_source(source, fps=fps, camera=camera, seconds=seconds)
    frames, n = video.frames, len(video.frames)
    notes = list(video.notes)
    if n < 2:
        raise DataError(video.source, f"{n} frame: a video needs at least 2 frames")
    if onset is not None:
        offset = _check_indices(n, int(onset), int(apex), offset, video.source)

    start = time.perf_counter()
    tracker = FaceTracker(upsample=int(ckpt.features.get("upsample", 1)), source=video.source)
    first = _first_face(video, tracker)
    face_s = time.perf_counter() - start
    first_state = tracker.state(detected=True)
    if first:
        notes.append(f"no face in frames 0-{first - 1}: they use the face box of frame {first}")

    start = time.perf_counter()
    size = spot_size(first_state.crop_box)
    crops = np.empty((n, *size), dtype=np.uint8)
    states: list[TrackState] = [first_state] * first
    with ProgressBar(progress, n - first, "track") as advance:
        for item in stream_frames(frames[first:], tracker, size=size):
            crops[first + item.index] = item.crop
            states.append(item.state)
            advance()
    crops[:first] = crops[first]
    track_s = time.perf_counter() - start
    if tracker.misses:
        notes.append(f"the face was not re-detected {tracker.misses} time(s); the last box was kept there")
    if tracker.crop_moves:
        notes.append(f"the face moved: the crop box was placed again at frame(s) {', '.join(map(str, tracker.crop_moves))}")

    classifier = _Classifier(ckpt, video)
    spot_s = 0.0
    events: list[dict[str, Any]] = []
    if onset is not None:
        row = _event_row(1, "given", onset, apex, offset, video.fps, None)
        row.update(classifier(onset, apex, offset, states[onset]))
        events.append(row)
    else:
        start = time.perf_counter()
        spotted = _spot(crops, states, video.fps, spotter, video.source)
        spot_s = time.perf_counter() - start
        for number, ev in enumerate(spotted, 1):
            row = _event_row(number, ev.kind, ev.onset, ev.apex, ev.offset, video.fps, ev.score)
            try:  # a one-frame event, or no face at its onset, is reported unclassified with the reason
                row.update(classifier(ev.onset, ev.apex, ev.offset, states[ev.onset]))
            except MertkError as exc:
                row["error"] = str(exc)
                notes.append(f"event {number} (frames {ev.onset}-{ev.offset}) not classified: {exc}")
            events.append(row)
        if not spotted:
            notes.append("no event was spotted")

    annotate_s = 0.0
    if annotate is not None:
        start = time.perf_counter()
        write_annotated(annotate, frames, states, events, video.fps)
        annotate_s = time.perf_counter() - start

    box = first_state.box
    crop = first_state.crop_box
    return {
        "source": video.source,
        "decoder": video.decoder,
        "fps": video.fps,
        "fps_source": video.fps_source,
        "frames": n,
        "frame_size": [int(frames.shape[1]), int(frames.shape[2])],
        "face": {"frame": first, "box": {"left": box.left, "top": box.top, "right": box.right, "bottom": box.bottom},
                 "crop_box": {"left": crop.left, "top": crop.top, "right": crop.right, "bottom": crop.bottom},
                 "detections": tracker.detections, "misses": tracker.misses, "crop_moves": list(tracker.crop_moves)},
        "checkpoint": {"path": ckpt_path, "model": ckpt.model, "recipe": ckpt.meta.get("recipe"),
                       "feature": ckpt.features.get("feature"), "classes": list(ckpt.classes)},
        "spotter": None if onset is not None else spotter,
        "events": events,
        "annotated": None if annotate is None else str(annotate),
        "timings": {k: round(v, 4) for k, v in {
            "decode": video.seconds, "face": face_s, "track": track_s, "track_fps": (n - first) / track_s if track_s else 0.0,
            "spot": spot_s, "preprocess": classifier.preprocess_s, "model": classifier.model_s,
            "annotate": annotate_s, "total": time.perf_counter() - total + (video.seconds if isinstance(source, Video) else 0.0),
        }.items()},
        "notes": notes,
    }


# ---------------------------------------------------------------------------------------------
# annotated video
# ---------------------------------------------------------------------------------------------


def write_annotated(path: str | Path, frames: np.ndarray, states: Sequence[TrackState], events: Sequence[dict[str, Any]],
                    fps: float) -> Path:
    """Write ``frames`` with the tracked face box and the label of the event under way (MPEG-4).

    Written to a temporary file beside ``path`` and renamed, so an error leaves nothing half-written.
    """
    path = Path(path)
    if path.suffix.lower() not in (".mp4", ".m4v", ".mov"):
        raise DataError(path, "the annotated video must be an .mp4, .m4v or .mov file")
    if not path.parent.is_dir():
        raise DataError(path, "output folder does not exist")
    label_at: dict[int, str] = {}
    for ev in events:
        text = f"{ev['kind']} {ev['event']}: {ev['label'] or '?'}"
        if ev.get("probabilities"):
            text += f" {max(ev['probabilities'].values()):.2f}"
        for i in range(ev["onset"], ev["offset"] + 1):
            label_at[i] = text
    with atomic_path(path, keep_suffix=True) as tmp:
        _write_annotated(tmp, path, frames, states, label_at, fps)
    return path


def _write_annotated(tmp: Path, path: Path, frames: np.ndarray, states: Sequence[TrackState],
                     label_at: dict[int, str], fps: float) -> None:
    h, w = frames.shape[1:3]
    writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), float(fps), (w, h))
    try:
        if not writer.isOpened():
            raise DataError(path, "OpenCV cannot write an MPEG-4 video here")
        scale = max(h, w) / 640
        for i, (frame, state) in enumerate(zip(frames, states)):
            image = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)
            b = state.box
            text = label_at.get(i)
            colour = (0, 0, 255) if text else (0, 200, 0)
            cv2.rectangle(image, (b.left, b.top), (b.right - 1, b.bottom - 1), colour, max(1, round(2 * scale)))
            if text:
                cv2.putText(image, text, (max(b.left, 2), max(b.top - 6, 14)), cv2.FONT_HERSHEY_SIMPLEX,
                            0.45 * max(scale, 0.8), colour, max(1, round(scale)), cv2.LINE_AA)
            writer.write(image)
    finally:
        writer.release()


# ---------------------------------------------------------------------------------------------
# command line
# ---------------------------------------------------------------------------------------------


def format_timeline(result: dict[str, Any]) -> str:
    """The timeline as a readable table (rich), with the face, timings and notes."""
    from rich.console import Console
    from rich.table import Table

    console = Console(record=True, width=120, file=io.StringIO())
    ck = result["checkpoint"]
    console.print(f"{result['source']}: {result['frames']} frames {frame_size(*result['frame_size'])} "
                  f"at {result['fps']:g} fps ({result['fps_source']}); model {ck['model']}"
                  + (f" ({ck['recipe']})" if ck["recipe"] else ""), highlight=False)
    table = Table(show_edge=False)
    for column in ("#", "kind", "onset", "apex", "offset", "onset s", "offset s", "spot", "label", "p"):
        table.add_column(column, justify="left" if column in ("kind", "label") else "right")
    for ev in result["events"]:
        p = max(ev["probabilities"].values()) if ev["probabilities"] else None
        table.add_row(str(ev["event"]), ev["kind"], str(ev["onset"]), str(ev["apex"]), str(ev["offset"]),
                      f"{ev['onset_s']:.2f}", f"{ev['offset_s']:.2f}",
                      "" if ev["spot_score"] is None else f"{ev['spot_score']:.3g}",
                      ev["label"] or "(not classified)", "" if p is None else f"{p:.3f}")
    console.print(table)
    t = result["timings"]
    console.print("timings (s): " + ", ".join(f"{k} {v:g}" for k, v in t.items() if k != "track_fps")
                  + f"; tracking {t['track_fps']:.0f} frames/s", highlight=False)
    if result["annotated"]:
        console.print(f"annotated video: {result['annotated']}", highlight=False)
    for note in result["notes"]:
        console.print(f"note: {note}", highlight=False)
    return console.export_text().rstrip("\n")


PREDICT_HELP = "run a trained checkpoint on your own video, frame folder or camera: face, spotting, recognition"


def add_predict_parser(sub: Any) -> argparse.ArgumentParser:
    """Add ``mertk predict`` to argparse's sub-parsers ``sub``."""
    p = sub.add_parser("predict", help=PREDICT_HELP, description=PREDICT_HELP + ". Frame numbers (--onset, --apex, "
                       "--offset, and those printed) are 0-based indices into the decoded video.")
    p.add_argument("source", nargs="?", type=Path, default=None,
                   help="a video file (any format FFmpeg reads) or a folder of frames (jpg/png/bmp, natural order)")
    p.add_argument("--checkpoint", type=Path, required=True, help="a model.pt or a run directory holding one")
    p.add_argument("--onset", type=int, default=None, help="classify this clip: onset frame (0-based index)")
    p.add_argument("--apex", type=int, default=None, help="apex frame (0-based index), with --onset")
    p.add_argument("--offset", type=int, default=None,
                   help="offset frame (0-based index; default apex + (apex - onset))")
    p.add_argument("--fps", type=float, default=None,
                   help="frame rate (default: the video's; 200 for a frame folder, with a note)")
    p.add_argument("--spotter", default="feature", choices=("feature", "flow"),
                   help="spotting method when no --onset/--apex is given (default feature)")
    p.add_argument("--annotate", type=Path, default=None, metavar="OUT.mp4",
                   help="write the video with the face box and each event's label")
    p.add_argument("--camera", type=int, default=None, metavar="N", help="record from camera N instead of a file")
    p.add_argument("--seconds", type=float, default=None, help="seconds to record with --camera")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the timeline as one JSON object")
    return p


def cmd_predict(args: argparse.Namespace) -> int:
    """``mertk predict``: print the timeline (JSON or a table)."""
    result = predict(args.source, args.checkpoint, onset=args.onset, apex=args.apex, offset=args.offset, fps=args.fps,
                     spotter=args.spotter, annotate=args.annotate, progress=not (args.json or args.quiet),
                     camera=args.camera, seconds=args.seconds)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(format_timeline(result))
    return 0
