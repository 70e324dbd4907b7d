"""Render a clip: a subject's neutral face warped by an action-unit field over time, plus distractors.

Frame ``t`` shows skin point ``p`` of the neutral face at ``p + d(t) + e(t) F(p)``: ``F`` is the
clip's forward field at the apex, ``e`` a raised-cosine envelope (0 at onset, 1 at apex, back to 0 at
offset for micro clips; rising to the last frame for CK+-style macro clips) and ``d`` a slow head
drift. Pixels are pulled from the neutral face by inverting that map with a fixed-point iteration
(exact to well below 0.01 px for these smooth, small fields). Eye blinks (lids closing over the
eye polygons), lighting flicker and sensor noise are added per frame; JPEG happens when the frame
is written. ``noiseless=True`` skips blinks, flicker and noise (for tests of the geometry).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator, Sequence

import cv2
import numpy as np

from .actions import FaceFrame, Field
from .faces import Subject


@dataclass(frozen=True)
class Timeline:
    """Frame count and the positions (0-based) of onset, apex and offset in the clip."""

    n_frames: int
    onset: int
    apex: int
    offset: int
    macro: bool = False

    def envelope(self) -> np.ndarray:
        """Expression intensity per frame in [0, 1] (raised cosine rise and fall)."""
        t = np.arange(self.n_frames, dtype=np.float64)
        e = np.zeros(self.n_frames)
        rise = (t >= self.onset) & (t <= self.apex)
        e[rise] = 0.5 - 0.5 * np.cos(np.pi * (t[rise] - self.onset) / max(self.apex - self.onset, 1))
        if not self.macro:
            fall = (t > self.apex) & (t <= self.offset)
            e[fall] = 0.5 + 0.5 * np.cos(np.pi * (t[fall] - self.apex) / max(self.offset - self.apex, 1))
        else:
            e[t > self.apex] = 1.0
        return e


@dataclass(frozen=True)
class Distractors:
    """Per-clip nuisance parameters, drawn once and recorded in the ground truth."""

    drift: np.ndarray  # (n_frames, 2) head translation in px relative to frame 0
    blink: np.ndarray  # (n_frames,) lid closure in [0, 1]
    flicker: np.ndarray  # (n_frames,) multiplicative lighting gain
    noise_sigma: float
    noise_seed: int

    @property
    def blink_frames(self) -> list[int]:
        return [int(i) for i in np.flatnonzero(self.blink > 0.05)]


def draw_distractors(tl: Timeline, fps: float, rng: np.random.Generator, *, blink_share: float) -> Distractors:
    """Head drift (sub-pixel, slow), a blink in ``blink_share`` of clips (avoiding onset and apex),
    lighting flicker (mains-like ripple plus a slow wander) and a noise level."""
    n = tl.n_frames
    t = np.arange(n) / fps
    direction = rng.uniform(0, 2 * np.pi)
    total = rng.uniform(0.1, 0.6)
    ramp = t / max(t[-1], 1e-9)
    wobble = 0.08 * np.sin(2 * np.pi * rng.uniform(0.3, 1.0) * t + rng.uniform(0, 2 * np.pi))
    drift = np.stack([np.cos(direction) * total * ramp + wobble, np.sin(direction) * total * ramp], axis=1)
    blink = np.zeros(n)
    if rng.random() < blink_share:
        length = max(3, int(round(rng.uniform(0.1, 0.15) * fps)))
        # the lids must be open at onset and apex so that the apex flow is defined everywhere
        starts = [s for s in range(n) if not (s <= tl.onset < s + length or s <= tl.apex < s + length)]
        if starts:
            s = int(starts[int(rng.integers(len(starts)))])
            k = np.arange(n) - s
            inside = (k >= 0) & (k < length)
            blink[inside] = np.sin(np.pi * (k[inside] + 0.5) / length) ** 2
    flicker = (1.0 + rng.uniform(0.002, 0.012) * np.sin(2 * np.pi * rng.uniform(8, 25) * t + rng.uniform(0, 6.3))
               + np.cumsum(rng.normal(0, 0.0015, n)))
    return Distractors(drift, blink, flicker, float(rng.uniform(0.8, 2.2)), int(rng.integers(2**31)))


def _close_lids(neutral: np.ndarray, face: FaceFrame, closure: float) -> np.ndarray:
    """The neutral face with both upper lids lowered by ``closure`` (0 open, 1 shut).

    Inside each eye polygon (slightly dilated) pixels above the moving lid edge are replaced by lid
    skin sampled just above the eye; a dark lash line follows the edge.
    """
    out = neutral.copy()
    pts = face.landmarks
    height, width = neutral.shape[:2]
    for idx in (range(36, 42), range(42, 48)):
        eye = pts[list(idx)]
        x0, x1 = int(np.floor(eye[:, 0].min())) - 2, int(np.ceil(eye[:, 0].max())) + 3
        top, bottom = float(eye[[1, 2], 1].mean()), float(eye[[4, 5], 1].mean())
        y0, y1 = int(np.floor(top)) - 3, int(np.ceil(bottom)) + 3
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
        if x1 <= x0 or y1 <= y0:
            continue
        mask = np.zeros((height, width), np.float32)
        cv2.fillConvexPoly(mask, cv2.convexHull(eye.astype(np.float32)).astype(np.int32), 1.0)
        mask = cv2.GaussianBlur(cv2.dilate(mask, np.ones((3, 3), np.uint8)), (0, 0), 1.0)
        edge = top - 1.5 + closure * (bottom - top + 3.0)
        ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float32)
        lid_src_y = top - 2.5 - np.clip(edge - ys, 0, None) * 0.4
        lid = cv2.remap(neutral, xs, lid_src_y.astype(np.float32), cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        covered = np.clip(edge - ys + 0.5, 0.0, 1.0) * mask[y0:y1, x0:x1]
        lash = 1.0 - 0.35 * closure * np.exp(-((ys - edge) ** 2) / 2.0) * mask[y0:y1, x0:x1]
        region = out[y0:y1, x0:x1]
        out[y0:y1, x0:x1] = (covered[..., None] * lid + (1 - covered[..., None]) * region) * lash[..., None]
    return out


@dataclass
class RenderedClip:
    """Frames (uint8, RGB or grey) and the exact onset -> apex flow of the rendered geometry."""

    frames: list[np.ndarray]
    flow_apex: np.ndarray  # (H, W, 2) float32 total displacement onset -> apex (expression + drift)
    flow_apex_expression: np.ndarray  # (H, W, 2) float32 expression part only
    landmarks_onset: np.ndarray  # (68, 2) float32
    amplitude: float  # max |expression flow| in px
    extra: dict = field(default_factory=dict)


def render_clip(subject: Subject, apex_field: Field, tl: Timeline, dist: Distractors, *, grey: bool,
                noiseless: bool = False) -> RenderedClip:
    """Render every frame of a clip and the ground-truth flow between its onset and apex frames."""
    height, width = subject.neutral.shape[:2]
    env = tl.envelope()
    frames = list(render_frames(subject, [apex_field], env[None], dist, grey=grey, noiseless=noiseless))
    d_on, d_ap = dist.drift[tl.onset], dist.drift[tl.apex]
    e_on, e_ap = env[tl.onset], env[tl.apex]
    # skin at x in the onset frame came from p = x - d_on (e_on = 0); at the apex it sits at p + d_ap + F(p)
    assert e_on == 0.0 and e_ap == 1.0
    expr = apex_field.grid(height, width, shift=(float(d_on[0]), float(d_on[1])))
    flow = expr + (d_ap - d_on).astype(np.float32)
    return RenderedClip(
        frames=frames,
        flow_apex=flow.astype(np.float32),
        flow_apex_expression=expr.astype(np.float32),
        landmarks_onset=(subject.landmarks + d_on).astype(np.float32),
        amplitude=float(np.linalg.norm(expr, axis=-1).max()),
    )


def render_frames(subject: Subject, fields: Sequence[Field], envelopes: np.ndarray, dist: Distractors, *,
                  grey: bool, noiseless: bool = False) -> Iterator[np.ndarray]:
    """Yield the frames of a recording holding several expressions, one after another.

    ``envelopes`` is ``(len(fields), n_frames)``: the intensity of each field per frame. At most one
    envelope may be non-zero in any frame (events do not overlap); frame ``t`` then shows skin point
    ``p`` at ``p + d(t) + e_k(t) F_k(p)`` for the active event ``k`` (see :func:`render_clip`).
    """
    envelopes = np.asarray(envelopes, np.float64)
    if envelopes.ndim != 2 or len(envelopes) != len(fields) or envelopes.shape[1] != len(dist.blink):
        raise ValueError(f"envelopes must be (fields={len(fields)}, frames={len(dist.blink)}), got {envelopes.shape}")
    active = envelopes > 0
    if (active.sum(0) > 1).any():
        raise ValueError(f"expression events overlap at frame {int(np.argmax(active.sum(0) > 1))}")
    neutral = subject.neutral
    height, width = neutral.shape[:2]
    face = subject.face
    grids = [f.grid(height, width) for f in fields]
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    noise_rng = np.random.default_rng(dist.noise_seed)
    for i in range(envelopes.shape[1]):
        dx, dy = np.float32(dist.drift[i][0]), np.float32(dist.drift[i][1])
        px, py = xs - dx, ys - dy
        on = np.flatnonzero(active[:, i])
        if len(on):
            f_grid, e = grids[on[0]], np.float32(envelopes[on[0], i])
            for _ in range(4):  # fixed point of p = q - d - e F(p)
                fp = cv2.remap(f_grid, px, py, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
                px = xs - dx - e * fp[..., 0]
                py = ys - dy - e * fp[..., 1]
        source = neutral
        if not noiseless and dist.blink[i] > 0.05:
            source = _close_lids(neutral, face, float(dist.blink[i]))
        img = cv2.remap(source, px, py, cv2.INTER_CUBIC,
                        borderMode=cv2.BORDER_REFLECT)
        if grey:
            img = cv2.cvtColor(np.clip(img, 0, 255), cv2.COLOR_RGB2GRAY)
        if not noiseless:
            img = img * dist.flicker[i] + noise_rng.normal(0.0, dist.noise_sigma, img.shape)
        yield np.clip(np.rint(img), 0, 255).astype(np.uint8)


def render_still(subject: Subject, field_: Field, *, grey: bool) -> np.ndarray:
    """The subject at full expression (no drift or distractors), float32."""
    height, width = subject.neutral.shape[:2]
    f_grid = field_.grid(height, width)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    px, py = xs.copy(), ys.copy()
    for _ in range(4):
        fp = cv2.remap(f_grid, px, py, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        px, py = xs - fp[..., 0], ys - fp[..., 1]
    img = cv2.remap(subject.neutral, px, py, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
    if grey:
        img = cv2.cvtColor(np.clip(img, 0, 255), cv2.COLOR_RGB2GRAY)
    return img.astype(np.float32)
