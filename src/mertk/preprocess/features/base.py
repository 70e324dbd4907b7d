"""What a feature family is: the :class:`FeatureFamily` base, its registration, shared encode helpers.

A feature family turns a cropped clip (or a still image) into a model input. One object per
registered name (``mertk.registry.FEATURES``) owns everything the rest of mertk asks about it:

- what it is: ``description``; whether it is built from ``clips`` and/or still ``images``;
- its defaults: ``defaults`` (``PrepareConfig`` fields such as crop, flow, frames) and ``size``;
- its encode step: :meth:`FeatureFamily.needed_frames`, :meth:`FeatureFamily.encode`,
  :meth:`FeatureFamily.encode_image`, with the declared :meth:`FeatureFamily.shape` and ``dtype``;
- its model view: :meth:`FeatureFamily.model_view`;
- what it supports, as flags the engine tests instead of names: ``flip`` (with
  :meth:`FeatureFamily.mirror`, or ``flip_from_flow``: built at prepare time from the mirrored
  flow, :func:`mirror_flow`), ``rotate`` (:meth:`FeatureFamily.rotated`),
  ``per_frame`` (one sample per flow frame, ``inference=vote``), ``ten_crop``, ``frame_select``,
  ``magnify``, ``pixel_mask`` (an input mask fitted on training folds), ``uses_flow``;
- its report panels: ``panels``, ``panels_rgb``, :meth:`FeatureFamily.panel_stack`,
  :meth:`FeatureFamily.panels_note`.

A new family is one module with a subclass and a :func:`register_family` call, imported by
``mertk.preprocess.features``.
"""

from __future__ import annotations

import zlib
from contextlib import nullcontext
from types import MappingProxyType
from typing import Any, Callable, ContextManager, Mapping, Sequence

import cv2
import numpy as np

from ...errors import MertkError, PreprocessError
from ...registry import FEATURES
from ..crop import resize
from ..eyemask import eye_mask

#: A per-stage timer: ``timer("flow")`` is a context manager around the flow stage.
Timer = Callable[[str], ContextManager[Any]]


def no_timer(stage: str) -> ContextManager[Any]:
    """The timer that times nothing."""
    return nullcontext()


def as_float(x: np.ndarray) -> np.ndarray:
    """uint8 bytes as float32 on [0, 1]; other arrays as float32 unchanged."""
    return x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else x.astype(np.float32)


def flow_grey(frames: np.ndarray) -> np.ndarray:
    """RGB uint8 frames as the flow methods take them: float32 grey on 0..1 (``flow.base.to_grey``)."""
    weights = np.array([0.299, 0.587, 0.114], dtype=np.float32)
    return (frames.astype(np.float32) @ weights).astype(np.float32) / np.float32(255.0)


def rotate_hwc(image: np.ndarray, angle: float) -> np.ndarray:
    """``image`` (H x W or H x W x C) rotated by ``angle`` degrees about its centre, borders reflected."""
    h, w = image.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), angle, 1.0)
    out = cv2.warpAffine(np.ascontiguousarray(image), m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    return out.reshape(image.shape)


def mirror_flow(flow: np.ndarray) -> np.ndarray:
    """The flow of the left-right mirrored frames: ``flow[:, ::-1]`` with u negated, v unchanged (float32).

    The optical strain of this field is the mirrored strain of ``flow`` (u_x and v_y keep their sign,
    u_y + v_x changes sign and is squared)."""
    out = np.array(flow[:, ::-1], dtype=np.float32)
    out[..., 0] *= -1
    return out


def select_frames(frames: np.ndarray, share: float, alpha: float) -> np.ndarray:
    """Positions of STRCN's frame selection in a clip: the onset and a random ordered ``share`` of the
    other frames (at least 2 frames in all), seeded by the onset's content, ``alpha`` and ``share``."""
    t = len(frames)
    keep = min(t, max(2, int(round(share * t))))
    rng = np.random.default_rng([zlib.crc32(np.ascontiguousarray(frames[0]).tobytes()), round(alpha * 1000),
                                 round(share * 1000)])
    return np.concatenate([[0], np.sort(rng.choice(np.arange(1, t), size=keep - 1, replace=False))])


class FeatureFamily:
    """One feature family (see the module docstring); subclasses set the attributes and the encode step.

    Attributes:
        name: the registered name (``PrepareConfig.feature``, ``InputSpec.feature``).
        description: one line for humans.
        clips: built from clips (:meth:`encode`).
        images: built from still images (:meth:`encode_image`).
        defaults: ``PrepareConfig`` fields the papers use for this family.
        size: output (height, width) when no model is named.
        dtype: dtype of ``x``.
        uses_flow: computes optical flow (``flow_size`` resizes the face first; bench times a flow stage).
        flip, rotate: ``augment.flip`` / ``augment.rotate`` apply (:meth:`mirror`, :meth:`rotated`).
        flip_from_flow: the mirrored copy is not :meth:`mirror` of ``x`` but built at prepare time
            (``PrepareConfig.flip``) from the mirrored raw flow (:func:`mirror_flow`) and the mirrored eye
            mask, as ``x_flip`` (and ``x_aug_flip`` beside ``x_aug``): a normalised flow map cannot be
            mirrored after encoding.
        per_frame: ``x`` holds one model input per flow frame; ``inference=vote`` combines them.
        ten_crop: ``inference=ten_crop`` applies (one grey image).
        frame_select: STRCN's frame selection (``frame_select``) applies.
        magnify: Eulerian magnification applies (the input is a clip).
        pixel_mask: the model input is a pixel mask of ``x`` fitted on training folds (STRCN-A).
        panels: names of the report's mean-map panels; ``panels_rgb``: one RGB panel.
    """

    name: str = ""
    description: str = ""
    clips: bool = True
    images: bool = False
    defaults: Mapping[str, Any] = MappingProxyType({})
    size: tuple[int, int] = (28, 28)
    dtype: Any = np.float32
    uses_flow: bool = True
    flip: bool = False
    flip_from_flow: bool = False
    rotate: bool = False
    per_frame: bool = False
    ten_crop: bool = False
    frame_select: bool = False
    magnify: bool = True
    pixel_mask: bool = False
    panels: tuple[str, ...] = ()
    panels_rgb: bool = False

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"

    # defaults -------------------------------------------------------------------------------

    def input_size(self, shape: Sequence[int]) -> tuple[int, int]:
        """Output (height, width) for a model whose input shape (no batch) is ``shape``."""
        return (int(shape[-2]), int(shape[-1]))

    def spec_config(self, shape: Sequence[int]) -> dict[str, Any]:
        """``PrepareConfig`` fields a model's input shape fixes (a recipe's and bench's derived fields)."""
        return {"size": self.input_size(shape)}

    # encode ---------------------------------------------------------------------------------

    def needed_frames(self, n_frames: int, apex: int, config: Any) -> list[int] | None:
        """Positions of the frames :meth:`encode` reads once the apex is known (``None``: all)."""
        return None

    def flow_pairs(self, n_frames: int, config: Any) -> int:
        """How many flows :meth:`encode` computes (at most) on a clip of ``n_frames`` frames."""
        return 0

    def shape(self, config: Any, n_frames: int) -> tuple[int, ...]:
        """The shape of ``x`` built with ``config`` from a clip of ``n_frames`` frames."""
        raise NotImplementedError(f"{type(self).__name__} must implement shape")

    def encode(self, frames: np.ndarray, grey: np.ndarray | None, points: np.ndarray, apex: int, config: Any,
               timer: Timer = no_timer) -> dict[str, np.ndarray]:
        """The arrays of a cropped clip: ``x`` (and ``x_aug``, ``x_select``, ``apex_index`` where the family
        makes them).

        Args:
            frames: the cropped uint8 frames chosen by :meth:`needed_frames`, onset first.
            grey: :func:`flow_grey` of ``frames`` (``None`` when the family uses no flow).
            points: the 68 landmarks in ``frames`` coordinates.
            apex: the apex position in ``frames``.
            config: the ``PrepareConfig``.
            timer: the per-stage timer (stages ``flow``, ``strain``, ``encode``).
        """
        raise PreprocessError(f"feature {self.name!r} is built from still images, not clips")

    def encode_image(self, image: np.ndarray, config: Any, source: Any) -> dict[str, np.ndarray]:
        """The arrays of a still image (``source`` names it in errors)."""
        raise PreprocessError(f"feature {self.name!r} is built from clips, but {source} is a still image")

    # model view and augmentation ------------------------------------------------------------

    def model_view(self, x: np.ndarray) -> np.ndarray:
        """One sample (or, for ``per_frame``, a stack of samples) as the model takes it."""
        return as_float(x)

    def mirror(self, x: np.ndarray) -> np.ndarray:
        """``x`` mirrored left-right (``flip`` families that are not ``flip_from_flow``)."""
        how = "; its mirrored copy is built from the mirrored flow (x_flip)" if self.flip_from_flow else ""
        raise MertkError(f"feature {self.name!r} has no horizontal flip of its encoded map{how}")

    def rotated(self, x: np.ndarray, angle: float) -> np.ndarray:
        """``x`` rotated by ``angle`` degrees (``rotate`` families)."""
        raise MertkError(f"feature {self.name!r} has no rotation")

    def fit_mask(self, train_x: Any) -> np.ndarray:
        """The input mask fitted on a fold's training samples (``pixel_mask`` families)."""
        raise MertkError(f"feature {self.name!r} has no pixel mask")

    def masked_view(self, x: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """One sample through a fitted :meth:`fit_mask` mask, as the model takes it (``pixel_mask`` families)."""
        raise MertkError(f"feature {self.name!r} has no pixel mask")

    # report ---------------------------------------------------------------------------------

    def panel_stack(self, arrays: Mapping[str, np.ndarray]) -> np.ndarray:
        """One clip's report panels ``(P, H, W)`` (or ``(1, 3, H, W)`` when ``panels_rgb``), float."""
        raise MertkError(f"no mean map is defined for feature family {self.name!r}")

    def panels_note(self) -> str:
        """What the report's mean-map panels average."""
        return "mean of each class's model input, channel by channel"


def register_family(family: FeatureFamily) -> FeatureFamily:
    """Register ``family`` under ``family.name`` in :data:`mertk.registry.FEATURES`."""
    FEATURES.add(family.name, family, description=family.description)
    return family


class ApexFlowFamily(FeatureFamily):
    """A ``C x H x W`` float map of the onset->apex flow (and onset->apex+1 as ``x_aug`` with
    ``apex_plus_one``; with ``flip``, their mirrors as ``x_flip`` and ``x_aug_flip``); subclasses define
    :meth:`channels`. Only onset, apex (and apex+1) are read."""

    flip = flip_from_flow = True

    def needed_frames(self, n_frames: int, apex: int, config: Any) -> list[int] | None:
        return [0, apex] + ([apex + 1] if config.apex_plus_one and apex + 1 < n_frames else [])

    def flow_pairs(self, n_frames: int, config: Any) -> int:
        return 2 if config.apex_plus_one else 1

    def shape(self, config: Any, n_frames: int) -> tuple[int, ...]:
        return (len(self.panels), *config.size)

    def flow_map(self, flow: np.ndarray, points: np.ndarray, config: Any, timer: Timer = no_timer,
                 mirror: bool = False) -> np.ndarray:
        """The ``C x H x W`` map of one flow (crop resolution); ``points`` are the crop's landmarks.
        ``mirror``: the map of the mirrored field (:func:`mirror_flow`) under the mirrored eye mask."""
        with timer("encode"):
            mask = eye_mask(flow.shape[:2], points, dilate=config.eye_dilate) if config.eye_mask else None
            if mirror:
                flow, mask = mirror_flow(flow), None if mask is None else mask[:, ::-1]
        return self.channels(flow, mask, config, timer)

    def channels(self, flow: np.ndarray, mask: np.ndarray | None, config: Any, timer: Timer = no_timer) -> np.ndarray:
        """The ``C x H x W`` map of one flow; ``mask`` (``None``: no eye mask) is zeroed in it."""
        raise NotImplementedError(f"{type(self).__name__} must implement channels")

    def encode(self, frames: np.ndarray, grey: np.ndarray | None, points: np.ndarray, apex: int, config: Any,
               timer: Timer = no_timer) -> dict[str, np.ndarray]:
        from ..flow import get_flow_method

        method = get_flow_method(config.flow, **dict(config.flow_params))
        targets = [apex] + ([apex + 1] if config.apex_plus_one and apex + 1 < len(grey) else [])
        with timer("flow"):
            flows = method.batch([grey[0]] * len(targets), [grey[t] for t in targets])
        out = {}
        for key, flow in zip(("x", "x_aug"), flows):
            out[key] = self.flow_map(flow, points, config, timer).astype(np.float32)
            if config.flip:
                out[f"{key}_flip"] = self.flow_map(flow, points, config, timer, mirror=True).astype(np.float32)
        return out

    def panel_stack(self, arrays: Mapping[str, np.ndarray]) -> np.ndarray:
        return np.asarray(arrays["x"], dtype=np.float32)


class FrameSequenceFamily(FeatureFamily):
    """The cropped clip resized to ``size`` (and time-normalised to ``frames`` when set),
    ``T x H x W x 3`` uint8; ``frame_select`` adds STRCN's frame-selection copies as ``x_select``."""

    dtype = np.uint8
    uses_flow = False
    frame_select = True
    panels = ("first frame", "mean |I_t - I_0|")

    def shape(self, config: Any, n_frames: int) -> tuple[int, ...]:
        return (config.frames or n_frames, *config.size, 3)

    def sequence(self, frames: np.ndarray, config: Any) -> np.ndarray:
        """``frames`` resized to ``config.size`` and normalised to ``config.frames`` frames."""
        clip = np.stack([resize(f, config.size) for f in frames])
        if config.frames:
            from ..temporal import TEMPORAL

            clip = np.clip(np.rint(TEMPORAL[config.temporal](clip.astype(np.float32), config.frames)), 0, 255)
        return clip.astype(np.uint8)

    def encode(self, frames: np.ndarray, grey: np.ndarray | None, points: np.ndarray, apex: int, config: Any,
               timer: Timer = no_timer) -> dict[str, np.ndarray]:
        with timer("encode"):
            out = {"x": self.sequence(frames, config)}
            if config.frame_select:
                out["x_select"] = np.stack([self.sequence(frames[select_frames(frames, s, config.magnify)], config)
                                            for s in config.frame_select])
        return out

    def panel_stack(self, arrays: Mapping[str, np.ndarray]) -> np.ndarray:
        grey = np.asarray(arrays["x"], dtype=np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32) / 255.0
        return np.stack([grey[0], np.abs(grey[1:] - grey[0]).mean(axis=0)])

    def panels_note(self) -> str:
        return (f"{self.name} inputs are frame clips, not flow maps: each class's mean first frame and mean "
                "absolute difference to the first frame over the clip (where the face moves)")
