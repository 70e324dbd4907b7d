"""Decode a user's video, frame folder or camera into RGB frames.

Video files are decoded with PyAV (FFmpeg) first and OpenCV only when PyAV cannot open the file; a
frame folder is read in natural order (``img2`` before ``img10``) with OpenCV exactly as the dataset
loaders read frames, so a folder gives the same pixels as training did. A truncated or unreadable
file, an empty folder or frames of different sizes raise :class:`~mertk.errors.DataError` naming
the file; nothing is skipped silently.

Frames are held in memory (``T x H x W x 3`` uint8); :data:`MAX_BYTES` bounds that and a longer
video is refused with the figure, so a user cuts it rather than the machine swapping.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from ..data.base import frame_files as _frame_files
from ..data.base import natural_key
from ..errors import DataError, MertkError, frame_size
from ..imagefiles import IMAGE_SUFFIXES
from ..preprocess.imageio import read_image

__all__ = [
    "FOLDER_FPS",
    "FRAME_SUFFIXES",
    "MAX_BYTES",
    "CameraError",
    "Video",
    "capture_camera",
    "natural_key",
    "open_source",
    "read_frame_folder",
    "read_video",
]

FRAME_SUFFIXES = IMAGE_SUFFIXES
FOLDER_FPS = 200.0  # the micro-expression datasets' usual rate (CASME II, SAMM)
MAX_BYTES = 8 * 1024**3


class CameraError(MertkError):
    """A camera index that does not open or gives no frame."""


@dataclass(frozen=True)
class Video:
    """Decoded frames and where they came from.

    Attributes:
        frames: ``T x H x W x 3`` uint8 RGB.
        fps: frames per second.
        source: the file, folder or ``camera N``.
        fps_source: ``container`` (read from the file), ``given`` (``--fps``), ``default`` (a folder
            without ``--fps``) or ``measured`` (a camera).
        decoder: ``pyav``, ``opencv`` or ``images``.
        seconds: wall time of the decode.
        notes: what the user should know (an assumed frame rate, a fallback decoder).
    """

    frames: np.ndarray = field(repr=False)
    fps: float
    source: str
    fps_source: str
    decoder: str
    seconds: float = 0.0
    notes: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.frames)


def _check_fps(fps: float | None, source: str) -> float | None:
    if fps is not None and not (np.isfinite(fps) and fps > 0):
        raise DataError(source, f"frame rate must be a positive number, got {fps}")
    return None if fps is None else float(fps)


class _Stack:
    """Collect equally sized frames, refusing a size change or more than :data:`MAX_BYTES`."""

    def __init__(self, source: str):
        self.source, self.frames = source, []

    def add(self, frame: np.ndarray, name: str | Path | None = None) -> None:
        if self.frames and frame.shape != self.frames[0].shape:
            first = self.frames[0].shape
            raise DataError(name or self.source, f"frame {len(self.frames)} is {frame_size(*frame.shape[:2])}, "
                                                 f"the first frame {frame_size(*first[:2])}: frames of one video must share a size")
        if (len(self.frames) + 1) * frame.nbytes > MAX_BYTES:
            raise DataError(self.source, f"more than {MAX_BYTES / 1024**3:.0f} GiB of decoded frames after {len(self.frames)} "
                                         f"frames of {frame_size(*frame.shape[:2])}; cut the video into shorter parts")
        self.frames.append(frame)

    def array(self) -> np.ndarray:
        return np.stack(self.frames)


def _decode_pyav(path: Path) -> tuple[np.ndarray, float | None]:
    """Frames and container frame rate by PyAV; raises ``av.error.FFmpegError`` when it cannot open the file."""
    import av

    stack = _Stack(str(path))
    with av.open(str(path)) as container:
        if not container.streams.video:
            raise DataError(path, "no video stream in the file")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        rate = stream.average_rate or stream.guessed_rate
        declared = int(stream.frames or 0)
        try:
            for frame in container.decode(stream):
                stack.add(frame.to_ndarray(format="rgb24"))
        except av.error.FFmpegError as exc:
            raise DataError(path, f"damaged video: decoding stopped after {len(stack.frames)} frames ({exc})") from None
    if not stack.frames:
        raise DataError(path, "the video holds no decodable frame")
    if declared and len(stack.frames) < declared:
        raise DataError(path, f"truncated video: {len(stack.frames)} of the {declared} frames it declares could be decoded")
    return stack.array(), (float(rate) if rate else None)


def _decode_opencv(path: Path, pyav_problem: str) -> tuple[np.ndarray, float | None]:
    with _quiet_opencv():
        capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            raise DataError(path, f"unreadable video (PyAV: {pyav_problem}; OpenCV cannot open it either)")
        declared = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        rate = float(capture.get(cv2.CAP_PROP_FPS) or 0.0)
        stack = _Stack(str(path))
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            stack.add(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    finally:
        capture.release()
    if not stack.frames:
        raise DataError(path, "the video holds no decodable frame")
    if declared > 0 and len(stack.frames) < declared:
        raise DataError(path, f"truncated video: {len(stack.frames)} of the {declared} frames it declares could be decoded")
    return stack.array(), (rate if rate > 0 else None)


def read_video(path: str | Path, fps: float | None = None) -> Video:
    """Decode a video file (any container and codec FFmpeg reads) into RGB frames.

    Args:
        path: the video file.
        fps: frame rate to use instead of the container's (needed when the container has none).

    Raises:
        DataError: missing, unreadable or truncated file; no frame rate anywhere.
    """
    path = Path(path)
    fps = _check_fps(fps, str(path))
    if not path.is_file():
        raise DataError(path, "video not found" if not path.exists() else "not a file")
    start = time.perf_counter()
    notes: list[str] = []
    try:
        import av

        cannot_open: tuple[type[Exception], ...] = (av.error.FFmpegError,)
    except ImportError:  # PyAV is a dependency, but OpenCV alone still reads most files
        av, cannot_open = None, ()
    decoder = "pyav"
    try:
        if av is None:
            raise ImportError("PyAV is not installed")
        frames, rate = _decode_pyav(path)
    except (ImportError, *cannot_open) as exc:  # PyAV missing, or it cannot open the file
        why = (getattr(exc, "strerror", None) or str(exc)).splitlines()[0][:120]
        frames, rate = _decode_opencv(path, why)
        decoder = "opencv"
        notes.append(f"decoded with OpenCV (PyAV could not open the file: {why})")
    if fps is not None:
        use, fps_source = fps, "given"
    elif rate is not None:
        use, fps_source = rate, "container"
    else:
        raise DataError(path, "the video does not state its frame rate; give it with --fps")
    return Video(frames, use, str(path), fps_source, decoder, time.perf_counter() - start, tuple(notes))


def frame_files(folder: str | Path) -> list[Path]:
    """The frame images of ``folder`` (any suffix of :data:`~mertk.imagefiles.IMAGE_SUFFIXES`, any case) in natural order."""
    return _frame_files(folder, FRAME_SUFFIXES)


def read_frame_folder(path: str | Path, fps: float | None = None) -> Video:
    """Read a folder of frame images (natural order) as a video.

    Each image is read as OpenCV reads dataset frames (``IMREAD_COLOR``, then RGB), so grey images
    become three equal channels, as in training. Without ``fps`` the rate is assumed to be
    :data:`FOLDER_FPS` and a note says so.

    Raises:
        DataError: missing or empty folder, an unreadable image, images of different sizes.
    """
    path = Path(path)
    fps = _check_fps(fps, str(path))
    if not path.is_dir():
        raise DataError(path, "frame folder not found")
    start = time.perf_counter()
    files = frame_files(path)
    if not files:
        raise DataError(path, f"no frame images ({', '.join(s[1:] for s in FRAME_SUFFIXES)}) in the folder")
    stack = _Stack(str(path))
    for file in files:
        image = read_image(file, cv2.IMREAD_COLOR)
        stack.add(cv2.cvtColor(image, cv2.COLOR_BGR2RGB), file)
    notes = []
    if fps is None:
        notes.append(f"frame rate not given (--fps): assumed {FOLDER_FPS:g} fps, so times in seconds are only as right as that")
    return Video(stack.array(), fps or FOLDER_FPS, str(path), "given" if fps else "default", "images",
                 time.perf_counter() - start, tuple(notes))


@contextmanager
def _quiet_opencv() -> Iterator[None]:
    """Silence OpenCV's and its FFmpeg's log lines while opening a source: errors are raised as one line."""
    logging = cv2.utils.logging
    level = logging.getLogLevel()
    previous = os.environ.get("OPENCV_FFMPEG_LOGLEVEL")
    logging.setLogLevel(logging.LOG_LEVEL_SILENT)
    os.environ["OPENCV_FFMPEG_LOGLEVEL"] = "-8"  # AV_LOG_QUIET, read when a capture opens
    try:
        yield
    finally:
        logging.setLogLevel(level)
        if previous is None:
            os.environ.pop("OPENCV_FFMPEG_LOGLEVEL", None)
        else:
            os.environ["OPENCV_FFMPEG_LOGLEVEL"] = previous


def capture_camera(index: int, seconds: float, fps: float | None = None) -> Video:
    """Record ``seconds`` of RGB frames from camera ``index`` (``cv2.VideoCapture(index)``).

    The frame rate is the one measured over the recording unless ``fps`` is given.

    Raises:
        CameraError: ``no camera N`` when the camera does not open or gives no frame.
    """
    if not seconds > 0:
        raise CameraError(f"camera {index}: --seconds must be positive, got {seconds}")
    fps = _check_fps(fps, f"camera {index}")
    with _quiet_opencv():
        capture = cv2.VideoCapture(int(index))
    source = f"camera {index}"
    stack = _Stack(source)
    try:
        if not capture.isOpened():
            raise CameraError(f"no camera {index} (cv2.VideoCapture({index}) did not open)")
        start = time.perf_counter()
        while time.perf_counter() - start < seconds:
            ok, frame = capture.read()
            if not ok:
                break
            stack.add(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
        elapsed = time.perf_counter() - start
    finally:
        capture.release()
    if not stack.frames:
        raise CameraError(f"no camera {index} (it opened but gave no frame)")
    measured = len(stack.frames) / elapsed if elapsed > 0 else 0.0
    return Video(stack.array(), fps or measured, source, "given" if fps else "measured", "opencv", elapsed,
                 () if fps else (f"frame rate measured while recording: {measured:.1f} fps",))


def open_source(source: str | Path | None = None, *, fps: float | None = None, camera: int | None = None,
                seconds: float | None = None) -> Video:
    """A video file, a frame folder or (``camera=N``) ``seconds`` from a camera, decoded."""
    if camera is not None:
        if source is not None:
            raise MertkError("give a video or frame folder, or --camera, not both")
        if seconds is None:
            raise CameraError(f"camera {camera}: give --seconds to record")
        return capture_camera(camera, seconds, fps)
    if source is None:
        raise MertkError("give a video file, a frame folder or --camera N")
    path = Path(source)
    if path.is_dir():
        return read_frame_folder(path, fps)
    return read_video(path, fps)
