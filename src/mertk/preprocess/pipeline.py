"""The preprocessing pipeline: from a dataset's records to the arrays a model takes, cached.

One :class:`PrepareConfig` holds every parameter of every stage; :func:`config_for_model` derives it
from a registered model's declared input (feature family and shape). :func:`prepare_clip` runs the
stages on one clip::

    frames -> face + 68 landmarks (onset frame; one box per clip) -> [alignment] -> crop
           -> [motion magnification] -> apex (annotation or a spotter) -> feature family

and :func:`prepare` runs it over a dataset in parallel, through the content-addressed cache, with a
progress bar. A clip that cannot be prepared (unreadable frame, no face, too short, NaN flow) becomes
a :class:`~mertk.records.Skip` with its reason; nothing is replaced by a zero image.

The last stage is the feature family's (the ``feature`` of a model's :class:`~mertk.models.InputSpec`):
one registered :class:`~mertk.preprocess.features.FeatureFamily` per name in
:mod:`mertk.preprocess.features` (``uvs``, ``hsi_flow``, ``flow_uv``, the Belaiche ``flow_vx`` ...
``flow_vxvym``, ``clip_rgb``, ``strcn_pixels``, ``gray_face``) owns its defaults, its encode step
and what it supports; this module tests no family by name.
"""

from __future__ import annotations

import dataclasses
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import cv2
import numpy as np

from ..config_types import check_fields
from ..errors import DataError, MertkError, PreprocessError, frame_size
from ..progress import ProgressBar
from ..records import ClipRecord, ImageRecord, Skip, format_runs, frame_runs
from ..registry import FEATURES, SPOTTERS
from . import apex as _apex  # noqa: F401  (registers the apex spotters)
from .cache import PIPELINE_VERSION, FeatureCache, cache_key
from .crop import Box, crop_clip, get_box, resize
from .encode import HSI_NORMALISATIONS
from .features import FeatureFamily, Timer, feature_family, no_timer
from .features.base import ApexFlowFamily, flow_grey
from .flow import get_flow_method
from .imageio import read_image

CROPS = ("laenet", "strcn", "square", "none")
ALIGNMENTS = ("none", "similarity", "lwm")


@dataclass(frozen=True)
class PrepareConfig:
    """Every parameter of the preprocessing stages (all of them enter the cache key).

    Attributes:
        feature: feature family to build (a name registered in :data:`mertk.registry.FEATURES`).
        size: output height and width of maps or frames.
        crop: face box (``laenet`` margins, ``strcn`` eye box, ``square``, or ``none`` for pre-cropped
            frames).
        flow: registered flow method (``tvl1`` is ours; ``tvl1_opencv`` the reference).
        flow_params: keyword parameters of the flow method, as sorted ``(name, value)`` pairs.
        apex: ``annotation`` (the annotated apex; clips without one are spotted with
            ``apex_fallback``) or a registered spotter used for every clip.
        apex_fallback: spotter for clips whose annotation has no apex.
        eye_mask: zero the eye regions (landmarks 37-42, 43-48) of flow features (LAENet).
        eye_dilate: grow the eye mask by this many pixels of the crop.
        magnify: Eulerian magnification factor alpha (0 = off), with STRCN's r1 = 0.4, r2 = 0.05.
        align: align every frame to the first (``similarity`` or ``lwm``) using per-frame landmarks.
        frames: temporal normalisation length for clip features (0 keeps the clip's frames).
        temporal: ``tim`` or ``linear`` (for ``frames``).
        uvs_normalise: normalisation of ``uvs`` maps (``minmax`` per channel, ``fixed``, ``none``).
        hsi_normalise: intensity scale of ``hsi_flow`` images: ``clip`` (the clip's largest flow
            magnitude, so near-onset frames stay dim) or ``frame`` (each image's own maximum).
        apex_plus_one: also build the onset->apex+1 flow feature (``x_aug``), an augmentation.
        upsample: dlib detector upsampling for small faces.
        flow_size: resize the cropped face to ``flow_size x flow_size`` before magnification, apex
            spotting and flow (0 keeps the crop's resolution). A smaller face makes the flow faster;
            the model input is resized to ``size`` either way.
        allow_frame_gaps: interpolate runs of up to this many frames missing inside a clip's
            onset..offset (0: a clip with a missing frame is skipped, naming the frames).
        frame_select: also build copies of a frame-sequence feature (``clip_rgb``, ``strcn_pixels``)
            from these shares of the clip's frames (``x_select``, one per share; STRCN's frame
            selection, an augmentation): the onset and a random ordered subset of the other frames,
            taken after magnification and before temporal normalisation to ``frames``. The subset is
            drawn from a seed of the onset frame's content, ``magnify`` and the share, so it is the same
            on every run.
        flip: also build the mirrored copy of a flow feature (``uvs``, ``flow_*``, ``hsi_flow``) from
            the left-right mirrored raw flow with u negated and the mirrored eye mask (``x_flip``, and
            ``x_aug_flip`` beside ``x_aug``), encoded and normalised as ``x`` is (``augment.flip``, an
            augmentation). It enters the cache key only when true.
    """

    feature: str = "uvs"
    size: tuple[int, int] = field(default=(28, 28), metadata={"range": (1, None)})
    crop: str = "laenet"
    flow: str = "tvl1"
    flow_params: tuple[tuple[str, Any], ...] = ()
    apex: str = "annotation"
    apex_fallback: str = "dc_rois_lbp"
    eye_mask: bool = False
    eye_dilate: int = field(default=0, metadata={"range": (0, None)})
    magnify: float = field(default=0.0, metadata={"range": (0, None)})
    align: str = "none"
    frames: int = field(default=0, metadata={"range": (0, None)})
    temporal: str = "tim"
    uvs_normalise: str = "minmax"
    hsi_normalise: str = "clip"
    apex_plus_one: bool = False
    upsample: int = field(default=1, metadata={"range": (0, None)})
    flow_size: int = 0
    allow_frame_gaps: int = 0
    frame_select: tuple[float, ...] = ()
    flip: bool = False

    def __post_init__(self) -> None:
        check_fields(self, error=PreprocessError)
        if self.feature not in FEATURES:
            raise PreprocessError(f"unknown feature {self.feature!r}; choose from: {', '.join(FEATURES.names())}")
        if self.crop not in CROPS:
            raise PreprocessError(f"unknown crop {self.crop!r}; choose from: {', '.join(CROPS)}")
        if self.align not in ALIGNMENTS:
            raise PreprocessError(f"unknown alignment {self.align!r}; choose from: {', '.join(ALIGNMENTS)}")
        if self.hsi_normalise not in HSI_NORMALISATIONS:
            raise PreprocessError(f"unknown hsi_normalise {self.hsi_normalise!r}; choose from: {', '.join(HSI_NORMALISATIONS)}")
        if self.temporal not in ("tim", "linear"):
            raise PreprocessError(f"unknown temporal normalisation {self.temporal!r}; choose from: tim, linear")
        for name in {self.apex, self.apex_fallback} - {"annotation"}:
            SPOTTERS.get(name)  # unknown spotters list the valid names
        if self.allow_frame_gaps < 0:
            raise PreprocessError(f"allow_frame_gaps must be >= 0, got {self.allow_frame_gaps}")
        if self.flow_size < 0:
            raise PreprocessError(f"flow_size must be >= 0 (0 keeps the crop's resolution), got {self.flow_size}")
        if len(self.size) != 2 or min(self.size) < 1:
            raise PreprocessError(f"size must be (height, width) > 0, got {self.size}")
        object.__setattr__(self, "size", tuple(int(s) for s in self.size))
        object.__setattr__(self, "flow_params", tuple(sorted(dict(self.flow_params).items())))
        object.__setattr__(self, "frame_select", tuple(float(s) for s in self.frame_select))
        if self.frame_select:
            if not self.family.frame_select or not self.frames:
                names = ", ".join(e.name for e in FEATURES if e.obj.frame_select)
                raise PreprocessError(f"frame_select builds frame-sequence features ({names}) with a "
                                      f"fixed length (frames > 0), not {self.feature} with frames={self.frames}")
            if any(not 0 < s <= 1 for s in self.frame_select):
                raise PreprocessError(f"frame_select shares must lie in (0, 1], got {list(self.frame_select)}")
        if self.flip and not self.family.flip_from_flow:
            names = ", ".join(e.name for e in FEATURES if e.obj.flip_from_flow)
            raise PreprocessError(f"flip builds mirrored flow features ({names}), not {self.feature}")

    @property
    def family(self) -> FeatureFamily:
        """The registered feature family of ``feature``."""
        return feature_family(self.feature)

    def replace(self, **changes: Any) -> "PrepareConfig":
        if "flow_params" in changes and isinstance(changes["flow_params"], Mapping):
            changes["flow_params"] = tuple(changes["flow_params"].items())
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> dict[str, Any]:
        """Plain values (the cache key's parameters); ``flip`` only when true, so the keys of
        configurations without it are those of earlier versions."""
        out = dataclasses.asdict(self)
        out["size"] = list(self.size)
        out["flow_params"] = dict(self.flow_params)
        out["frame_select"] = list(self.frame_select)
        if not self.flip:
            del out["flip"]
        return out


def config_for_model(model: str, input_spec: Any = None, **overrides: Any) -> PrepareConfig:
    """The pipeline configuration a registered model needs: its feature family's defaults, the size of
    its declared input spec, the model's own ``default_cfg`` (its registration), then ``overrides``.

    ``input_spec`` is the spec of the model as built with a recipe's kwargs (e.g. a shallow net built
    with ``feature="flow_vx"``); the registered spec when omitted.

    Raises:
        PreprocessError: the model declares a feature that is not a registered family (the message
            lists the registered ones).
    """
    from .. import models  # noqa: F401  (registers the models)
    from ..registry import MODELS

    entry = MODELS.entry(model)
    spec = input_spec or entry.meta["input_spec"]
    if spec.feature not in FEATURES:
        raise PreprocessError(f"model {model} takes feature {spec.feature!r}, which is not a registered feature "
                              f"family; choose from: {', '.join(FEATURES.names())}")
    family = feature_family(spec.feature)
    params: dict[str, Any] = {"feature": family.name, "size": family.input_size(spec.shape)}
    params.update(family.defaults)
    params.update(entry.meta.get("default_cfg", {}))
    params.update(overrides)
    return PrepareConfig(**params)


def config_for_feature(feature: str, **overrides: Any) -> PrepareConfig:
    """The pipeline configuration of a feature family with the papers' defaults."""
    if feature not in FEATURES:
        raise PreprocessError(f"unknown feature {feature!r}; choose from: {', '.join(FEATURES.names())}")
    family = feature_family(feature)
    params: dict[str, Any] = {"feature": feature, "size": family.size}
    params.update(family.defaults)
    params.update(overrides)
    return PrepareConfig(**params)


def apply_overrides(config: PrepareConfig, assignments: Sequence[str]) -> PrepareConfig:
    """Apply ``key=value`` strings (values parsed as YAML: ``eye_mask=false``, ``size=[32,32]``)."""
    import yaml

    fields = {f.name for f in dataclasses.fields(PrepareConfig)}
    changes: dict[str, Any] = {}
    for item in assignments:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or key not in fields:
            raise PreprocessError(f"--set {item!r}: expected KEY=VALUE with KEY one of: {', '.join(sorted(fields))}")
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise PreprocessError(f"--set {item!r}: cannot parse the value ({exc.problem})") from None
        changes[key] = tuple(value) if isinstance(value, list) else value
    try:
        return config.replace(**changes)
    except TypeError as exc:
        raise PreprocessError(f"--set: {exc}") from None


# ---------------------------------------------------------------------------------------------
# stages on one clip
# ---------------------------------------------------------------------------------------------


def read_frames(paths: Sequence[Path]) -> np.ndarray:
    """Read a clip's frames as ``T x H x W x 3`` uint8 RGB; a bad or mismatched frame is a DataError."""
    frames = []
    for path in paths:
        image = read_image(path, cv2.IMREAD_COLOR)
        if frames and image.shape != frames[0].shape:
            raise DataError(path, f"frame size {frame_size(*image.shape[:2])} differs from the clip's first frame "
                                  f"{frame_size(*frames[0].shape[:2])}")
        frames.append(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
    if not frames:
        raise PreprocessError("clip has no frames")
    return np.stack(frames)


@dataclass(frozen=True)
class Features:
    """Prepared arrays of one record and how they were made.

    ``arrays["x"]`` is the model input (see the module docstring); ``arrays`` may also hold
    ``x_aug`` (an augmented copy), ``x_select`` (frame-selection copies, ``frame_select``), ``x_flip`` and
    ``x_aug_flip`` (mirrored flow copies, ``flip``), ``landmarks`` (68 x 2, crop coordinates), ``box`` (top, left,
    bottom, right in the source frame), ``apex_index`` (position in the clip) and ``apex_source``.
    """

    record: ClipRecord | ImageRecord
    arrays: Mapping[str, np.ndarray] = field(compare=False)
    key: str = ""
    cached: bool = False

    @property
    def x(self) -> np.ndarray:
        return self.arrays["x"]


def _face_box(frames: np.ndarray, config: PrepareConfig, source: str) -> tuple[Box, np.ndarray]:
    """One box per clip, from the onset frame's 68 landmarks (so crops do not jitter)."""
    from .face import face_landmarks

    onset = frames[0]
    _, points = face_landmarks(onset, source=source, upsample=config.upsample)
    if config.crop == "none":
        box = Box(0, 0, onset.shape[0], onset.shape[1])
    else:
        box = get_box(config.crop, points, onset.shape)
    return box, points.astype(np.float32)


def _align(frames: np.ndarray, config: PrepareConfig, source: str) -> np.ndarray:
    """Align every frame to the first with per-frame landmarks (``config.align``: similarity or LWM).

    The face is detected again on every frame: dlib's shape predictor regresses relative to its box,
    so landmarks found inside the onset frame's box under-report a head that moved (by about 1 px of a
    3 px shift on the synthetic faces). A frame without a detection keeps the previous frame's box.
    """
    from .align import align_clip
    from .face import detect_faces, landmarks

    boxes = []
    for frame in frames:
        found = detect_faces(frame, upsample=config.upsample)
        if found:
            boxes.append(found[0])
        elif boxes:
            boxes.append(boxes[-1])
        else:
            from .face import NoFaceError

            raise NoFaceError(source)
    per_frame = np.stack([landmarks(f, b) for f, b in zip(frames, boxes)])
    return align_clip(frames, per_frame, method=config.align)


def _spot_apex(frames: np.ndarray, points: np.ndarray, spotter: str, config: PrepareConfig) -> int:
    """Apex position in the (cropped, uint8) clip by a registered spotter."""
    fn = SPOTTERS.get(spotter)
    if spotter == "flow_peak":
        method = get_flow_method(config.flow, **dict(config.flow_params))
        return int(fn(frames, landmarks=points, flow_fn=method))
    return int(fn(frames, landmarks=points))


def flow_features(flow: np.ndarray, points: np.ndarray, config: PrepareConfig) -> np.ndarray:
    """The ``C x H x W`` map of one flow (crop resolution) for ``config.feature``, a family whose input
    is one flow map (``uvs``, ``flow_*``); ``points`` are the crop's landmarks."""
    family = config.family
    if not isinstance(family, ApexFlowFamily):
        raise PreprocessError(f"feature {config.feature!r} is not a single flow map")
    return family.flow_map(flow, points, config)


def prepare_clip(record: ClipRecord, config: PrepareConfig) -> dict[str, np.ndarray]:
    """Run the pipeline on one clip and return its arrays (see :class:`Features`).

    Raises a :class:`~mertk.errors.MertkError` subclass naming the clip's problem.
    """
    if len(record.frames) < 2:
        raise PreprocessError(f"{record.key}: a clip of {len(record.frames)} frame(s); at least 2 are needed")
    missing = record.missing_frames
    longest = max((b - a + 1 for a, b in frame_runs(missing)), default=0)
    if longest > config.allow_frame_gaps:
        raise PreprocessError(f"{record.key}: frames {format_runs(missing)} missing inside "
                              f"{record.frame_numbers[0]}..{record.frame_numbers[-1]} (--set allow_frame_gaps={longest} "
                              "interpolates them)")
    frames = fill_frame_gaps(read_frames(record.frames), record.frame_numbers)
    apex_index = None
    if config.apex == "annotation" and record.apex is not None:
        apex_index = record.apex - record.frame_numbers[0]
    return prepare_frames(frames, config, apex_index=apex_index, source=str(record.frames[0]))


def fill_frame_gaps(frames: np.ndarray, numbers: Sequence[int]) -> np.ndarray:
    """``frames`` (numbered ``numbers``) with every missing number in between linearly interpolated
    from its two present neighbours; consecutive numbers come back unchanged."""
    full = np.arange(numbers[0], numbers[-1] + 1)
    if len(full) == len(numbers):
        return frames
    at = np.searchsorted(numbers, full)
    out = np.empty((len(full),) + frames.shape[1:], dtype=frames.dtype)
    for i, (n, j) in enumerate(zip(full, at)):
        if numbers[j] == n:
            out[i] = frames[j]
        else:
            w = (n - numbers[j - 1]) / (numbers[j] - numbers[j - 1])
            out[i] = np.rint((1 - w) * frames[j - 1].astype(np.float32) + w * frames[j].astype(np.float32))
    return out


def prepare_frames(frames: np.ndarray, config: PrepareConfig, *, apex_index: int | None = None,
                   landmarks: np.ndarray | None = None, source: str = "",
                   timer: Timer | None = None) -> dict[str, np.ndarray]:
    """Run the pipeline on in-memory frames (``T x H x W x 3`` uint8 RGB, onset first).

    This is :func:`prepare_clip` without the dataset: ``mertk predict`` and ``mertk bench`` call it on
    decoded video so that inference preprocesses exactly as training did. With the apex given and
    neither alignment nor magnification, only the frames the family reads are cropped (onset and apex
    for the apex-flow families); the arrays are the same as from every frame.

    Args:
        frames: the clip, onset first.
        config: the pipeline parameters (a checkpoint's ``prepare_config()``).
        apex_index: the apex position in ``frames``; ``None`` spots it with ``config.apex`` (or
            ``config.apex_fallback`` when that is ``annotation``).
        landmarks: the onset frame's 68 landmarks (frame coordinates) from a face tracker; ``None``
            detects them.
        source: names the clip in errors.
        timer: per-stage timer: ``timer(stage)`` is a context manager around each stage that runs
            (``face``, ``align``, ``crop``, ``magnify``, ``apex``, then the family's ``flow``,
            ``strain``, ``encode``), e.g. ``mertk bench``'s ``StageClock``.
    """
    clock = timer or no_timer
    family = config.family
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or len(frames) < 2:
        raise PreprocessError(f"{source or 'clip'}: expected at least 2 frames of H x W x 3, got shape {frames.shape}")
    if frames.dtype != np.uint8:
        raise PreprocessError(f"{source or 'clip'}: expected uint8 frames, got {frames.dtype}")
    if not family.clips:
        raise PreprocessError(f"{source or 'clip'}: feature {config.feature!r} is built from still images, not clips")
    if apex_index is not None and not 0 <= apex_index < len(frames):
        raise PreprocessError(f"{source or 'clip'}: apex index {apex_index} outside the clip's {len(frames)} frames")
    if landmarks is None:
        with clock("face"):
            box, points = _face_box(frames, config, source)
    else:
        points = np.asarray(landmarks, dtype=np.float32)
        if points.shape != (68, 2):
            raise PreprocessError(f"{source or 'clip'}: landmarks must be 68 x 2, got {points.shape}")
        box = None
    shape = frames[0].shape
    if config.align != "none":
        with clock("align"):
            frames = _align(frames, config, source)
    keep = None
    if apex_index is not None:
        apex_index = max(apex_index, 1)  # the flow onset->onset carries no motion
        if config.align == "none" and config.magnify == 0:
            keep = family.needed_frames(len(frames), apex_index, config)
    with clock("crop"):
        if box is None:
            box = Box(0, 0, shape[0], shape[1]) if config.crop == "none" else get_box(config.crop, points, shape)
        frames = np.ascontiguousarray(crop_clip(frames if keep is None else frames[keep], box))
        points = points - np.array([box.left, box.top], dtype=np.float32)
        if config.flow_size and family.uses_flow:
            h, w = frames.shape[1:3]
            frames = np.stack([resize(f, (config.flow_size, config.flow_size)) for f in frames])
            points = points * np.array([config.flow_size / w, config.flow_size / h], dtype=np.float32)
        grey = flow_grey(frames) if family.uses_flow and config.magnify == 0 else None
    if config.magnify > 0:
        from .magnify import magnify_clip

        with clock("magnify"):
            frames = magnify_clip(frames, alpha=config.magnify)
            grey = flow_grey(frames) if family.uses_flow else None

    if apex_index is not None:
        apex_source = "annotation"
    else:
        spotter = config.apex if config.apex != "annotation" else config.apex_fallback
        with clock("apex"):
            apex_index = max(_spot_apex(frames, points, spotter, config), 1)
        apex_source = f"spotted:{spotter}"

    out: dict[str, np.ndarray] = {
        "box": np.array([box.top, box.left, box.bottom, box.right], dtype=np.int32),
        "landmarks": points,
        "apex_index": np.array(apex_index, dtype=np.int32),
        "apex_source": np.array(apex_source),
    }
    out.update(family.encode(frames, grey, points, apex_index if keep is None else keep.index(apex_index), config,
                             clock))
    return out


def prepare_image(dataset: Any, record: ImageRecord, config: PrepareConfig,
                  image: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Arrays of a still image by its feature family (a grey face, a precomputed ``uvs`` map);
    ``image``: its pixels when already loaded."""
    family = config.family
    if not family.images:
        raise PreprocessError(f"feature {config.feature!r} is built from clips, but {record.dataset} holds still images")
    return family.encode_image(np.asarray(dataset.load_image(record)) if image is None else image, config, record.path)


def _prepare_image_cached(dataset: Any, record: ImageRecord, config: PrepareConfig,
                          cache: FeatureCache | None) -> Features:
    """:func:`prepare_image` through the cache, keyed by the image's pixels (FER2013's live in a table,
    not a file) and the config, so a report can read a still-image run's arrays as it reads a clip's."""
    if cache is None:
        return Features(record, prepare_image(dataset, record, config))
    image = np.asarray(dataset.load_image(record))
    key = cache_key(params={"config": config.as_dict(), "image": image}, version=PIPELINE_VERSION)
    found = cache.get(key)
    if found is not None:
        return Features(record, found, key, True)
    arrays = prepare_image(dataset, record, config, image)
    cache.put(key, arrays)
    return Features(record, arrays, key, False)


# ---------------------------------------------------------------------------------------------
# a whole dataset
# ---------------------------------------------------------------------------------------------


@dataclass
class PrepareResult:
    """What :func:`prepare` built: features per usable record, skips with reasons, cache figures."""

    config: PrepareConfig
    features: list[Features]
    skipped: list[Skip]
    hits: int = 0
    misses: int = 0
    seconds: float = 0.0

    def summary(self) -> dict[str, Any]:
        return {
            "feature": self.config.feature,
            "prepared": len(self.features),
            "skipped": [s.as_dict() for s in self.skipped],
            "cache_hits": self.hits,
            "cache_misses": self.misses,
            "seconds": round(self.seconds, 2),
            "config": self.config.as_dict(),
        }


def clip_cache_key(record: ClipRecord, config: PrepareConfig) -> str:
    return cache_key(
        inputs=record.frames,
        params={"config": config.as_dict(), "onset": record.onset, "apex": record.apex, "offset": record.offset,
                "frame_numbers": list(record.frame_numbers)},
        version=PIPELINE_VERSION,
    )


def _exit_with_parent() -> None:
    """End this worker process when the process that started it dies (even by kill -9).

    Linux: the kernel sends SIGKILL on the parent's death (``prctl(PR_SET_PDEATHSIG)``). Everywhere: a
    daemon thread polls the parent id and exits once the worker has been re-parented. Without this a
    worker blocked on the pool's pipe outlives a killed ``mertk prepare``.
    """
    import signal
    import threading

    parent = os.getppid()
    if hasattr(os, "sched_getaffinity"):  # Linux
        try:
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL))  # 1 = PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    if os.getppid() != parent:
        os._exit(1)
    threading.Thread(target=watch, name="mertk-parent-watch", daemon=True).start()


def _worker_init() -> None:
    _exit_with_parent()
    import torch

    torch.set_num_threads(1)
    cv2.setNumThreads(1)


def _run_one(record: ClipRecord, config: PrepareConfig, cache_root: str | None) -> tuple[str, dict[str, np.ndarray] | None, str | None, bool]:
    key = clip_cache_key(record, config)
    cache = FeatureCache(cache_root) if cache_root else None
    try:
        if cache is not None:
            found = cache.get(key)
            if found is not None:
                return key, found, None, True
        arrays = prepare_clip(record, config)
        for name, value in arrays.items():
            if value.dtype.kind == "f" and not np.isfinite(value).all():
                raise PreprocessError(f"{record.key}: {name} holds NaN or inf values")
        if cache is not None:
            cache.put(key, arrays)
        return key, arrays, None, False
    except MertkError as exc:
        return key, None, str(exc), False


def prepare(
    dataset: Any,
    config: PrepareConfig,
    *,
    cache_dir: str | Path | None = None,
    workers: int = 0,
    progress: bool = True,
    records: Iterable[ClipRecord | ImageRecord] | None = None,
) -> PrepareResult:
    """Build ``config.feature`` for every usable record of ``dataset`` (or the given ``records``).

    Clips run in ``workers`` processes (0: one per CPU core, at most 4; 1: in this process) through
    the cache at ``cache_dir`` (none: no cache). Records without frames are skipped by the loader
    already and are not retried here; every clip that fails is returned as a skip with its reason.
    """
    start = time.perf_counter()
    chosen = list(dataset.usable() if records is None else records)
    skipped: list[Skip] = []
    features: list[Features] = []
    hits = misses = 0
    images = [r for r in chosen if isinstance(r, ImageRecord)]
    clips = [r for r in chosen if isinstance(r, ClipRecord)]
    if images and not config.family.images:
        raise PreprocessError(f"feature {config.feature!r} is built from clips, but the dataset holds still images; "
                              f"choose from: {', '.join(e.name for e in FEATURES if e.obj.images)}")
    if clips and not config.family.clips:
        raise PreprocessError(f"feature {config.feature!r} is built from still images; "
                              f"choose from: {', '.join(e.name for e in FEATURES if e.obj.clips)}")
    cache_root = str(cache_dir) if cache_dir is not None else None
    image_cache = FeatureCache(cache_root) if cache_root is not None and images else None
    for record in images:
        try:
            feature = _prepare_image_cached(dataset, record, config, image_cache)
        except MertkError as exc:
            skipped.append(Skip(record.source, record.item, str(exc)))
            continue
        features.append(feature)
        hits += feature.cached
        misses += not feature.cached and image_cache is not None
    results: dict[int, tuple[str, dict | None, str | None, bool]] = {}
    if cache_root is not None:  # cache hits are read here: no worker process starts for a warm cache
        cache = FeatureCache(cache_root)
        for i, record in enumerate(clips):
            key = clip_cache_key(record, config)
            found = cache.get(key) if key in cache else None
            if found is not None:
                results[i] = (key, found, None, True)
    todo = [i for i in range(len(clips)) if i not in results]
    n_workers = min(os.cpu_count() or 1, 4) if workers <= 0 else workers
    if workers <= 0 and len(todo) < 8:
        n_workers = 1  # starting worker processes costs more than a handful of clips
    n_workers = max(1, min(n_workers, len(todo)))
    with ProgressBar(progress, len(todo), f"prepare {config.feature}") as advance:
        if n_workers == 1:
            for i in todo:
                results[i] = _run_one(clips[i], config, cache_root)
                advance()
        else:
            # spawn, not fork: a forked child deadlocks in OpenMP once the parent has run torch ops.
            try:
                with ProcessPoolExecutor(n_workers, mp_context=get_context("spawn"), initializer=_worker_init) as pool:
                    futures = {i: pool.submit(_run_one, clips[i], config, cache_root) for i in todo}
                    for i, future in futures.items():
                        results[i] = future.result()
                        advance()
            except BrokenProcessPool:
                raise PreprocessError(
                    "prepare: the worker processes failed to start; a script that calls prepare() with workers > 1 "
                    "must do so under `if __name__ == \"__main__\":` (or pass workers=1)"
                ) from None
    for i, record in enumerate(clips):
        key, arrays, error, cached = results[i]
        if arrays is None:
            skipped.append(Skip(record.source, record.key, error or "failed"))
            continue
        hits += cached
        misses += not cached and cache_root is not None
        features.append(Features(record, arrays, key, cached))
    return PrepareResult(config, features, skipped, hits, misses, time.perf_counter() - start)
