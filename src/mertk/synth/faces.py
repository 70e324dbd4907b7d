"""Synthetic subjects built from the face photos that ship inside installed packages.

Base photos: scikit-image's ``astronaut`` (Eileen Collins) and Matplotlib's ``grace_hopper.jpg``,
both public domain, each also mirrored. Their 68 landmarks are detected once per process with
:mod:`mertk.preprocess.face`. A subject is a base photo under its own similarity transform (scale,
position, roll), a landmark-driven thin-plate-spline warp of face shape (face width, eye spacing,
brow height, nose and chin length, mouth width), a skin-tone and lighting transform and its own
background. The same transforms move the landmarks, so every subject has known landmarks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import cv2
import numpy as np
from scipy.interpolate import RBFInterpolator

from ..preprocess.face import face_landmarks
from .actions import FaceFrame

# iBUG-68 index of each point's mirror image (jaw, brows, nose, eyes, mouth)
MIRROR_68 = np.array(
    list(range(16, -1, -1)) + list(range(26, 16, -1)) + [27, 28, 29, 30] + list(range(35, 30, -1))
    + [45, 44, 43, 42, 47, 46] + [39, 38, 37, 36, 41, 40]
    + list(range(54, 47, -1)) + list(range(59, 54, -1)) + list(range(64, 59, -1)) + list(range(67, 64, -1))
)


@dataclass(frozen=True)
class BaseFace:
    """A face photo (RGB float32, 0..255) with its 68 landmarks."""

    name: str
    image: np.ndarray = field(repr=False)
    landmarks: np.ndarray = field(repr=False)


@lru_cache(maxsize=1)
def base_faces() -> tuple[BaseFace, ...]:
    """The base photos and their mirror images, landmarks detected once per process."""
    import matplotlib.image as mpimg
    from matplotlib import cbook
    from skimage import data

    photos = {
        "astronaut": data.astronaut(),
        "grace_hopper": np.asarray(mpimg.imread(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))),
    }
    faces = []
    for name, image in photos.items():
        image = np.ascontiguousarray(image[:, :, :3])
        _, pts = face_landmarks(image, source=name)
        faces.append(BaseFace(name, image.astype(np.float32), pts.astype(np.float64)))
        mirrored = pts[MIRROR_68].copy()
        mirrored[:, 0] = image.shape[1] - 1 - mirrored[:, 0]
        faces.append(BaseFace(f"{name}_mirrored", np.ascontiguousarray(image[:, ::-1]).astype(np.float32), mirrored))
    return tuple(faces)


@dataclass(frozen=True)
class Subject:
    """One synthetic person at one frame size: neutral face (H, W, 3) float32 RGB and its landmarks."""

    id: str
    base: str
    neutral: np.ndarray = field(repr=False)
    landmarks: np.ndarray = field(repr=False)
    params: dict = field(default_factory=dict, compare=False)

    @property
    def face(self) -> FaceFrame:
        return FaceFrame.from_landmarks(self.landmarks)


def _similarity(src_eyes: np.ndarray, dst_eyes: np.ndarray) -> np.ndarray:
    """2x3 similarity matrix taking the two source eye centres onto the two target eye centres."""
    s0, s1 = src_eyes
    d0, d1 = dst_eyes
    a = complex(*(d1 - d0)) / complex(*(s1 - s0))
    t = complex(*d0) - a * complex(*s0)
    return np.array([[a.real, -a.imag, t.real], [a.imag, a.real, t.imag]])


def _shape_targets(pts: np.ndarray, face: FaceFrame, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """Landmarks moved by a random face-shape change, and the parameters drawn."""
    p = {
        "face_width": float(rng.uniform(0.9, 1.1)),
        "eye_spacing": float(rng.uniform(-0.06, 0.06)),
        "brow_height": float(rng.uniform(-0.07, 0.07)),
        "nose_length": float(rng.uniform(-0.06, 0.06)),
        "chin_length": float(rng.uniform(-0.08, 0.1)),
        "mouth_width": float(rng.uniform(0.88, 1.12)),
    }
    centre = (pts[39] + pts[42]) / 2
    rel = pts - centre
    x, y = rel @ face.right, -(rel @ face.up)  # face frame: x towards the subject's left, y down
    x, y = x.copy(), y.copy()
    iod = face.iod
    x[0:17] *= p["face_width"]
    sign = np.sign(x)
    x[36:48] += sign[36:48] * p["eye_spacing"] * iod
    x[17:27] += sign[17:27] * p["eye_spacing"] * iod
    y[17:27] -= p["brow_height"] * iod
    y[31:36] += p["nose_length"] * iod
    mouth_x = x[48:68].mean()
    x[48:68] = mouth_x + (x[48:68] - mouth_x) * p["mouth_width"]
    y[48:68] += 0.5 * p["nose_length"] * iod
    chin = np.exp(-((np.arange(17) - 8) ** 2) / 18.0)
    y[0:17] += chin * p["chin_length"] * iod
    y[48:68] += 0.3 * p["chin_length"] * iod
    moved = centre + np.outer(x, face.right) - np.outer(y, face.up)
    return moved, p


def _tps_map(src: np.ndarray, dst: np.ndarray, height: int, width: int) -> np.ndarray:
    """Backward map (H, W, 2): for each output pixel, where to sample so that ``src`` lands on ``dst``.

    Thin-plate spline through the landmark pairs plus a ring of fixed points on the frame border,
    fitted on a coarse grid and upsampled (the field is smooth).
    """
    border = np.array([(x, y) for x in np.linspace(-0.25 * width, 1.25 * width, 7)
                       for y in (-0.25 * height, 1.25 * height)]
                      + [(x, y) for y in np.linspace(-0.25 * height, 1.25 * height, 7)[1:-1]
                         for x in (-0.25 * width, 1.25 * width)])
    ctrl = np.vstack([dst, border])
    disp = np.vstack([src - dst, np.zeros_like(border)])
    rbf = RBFInterpolator(ctrl, disp, kernel="thin_plate_spline", smoothing=1.0)
    step = 4
    gy, gx = np.mgrid[0:height + step:step, 0:width + step:step].astype(np.float64)
    coarse = rbf(np.column_stack([gx.ravel(), gy.ravel()])).reshape(gx.shape + (2,)).astype(np.float32)
    # coarse node (j, i) sits at pixel (j * step, i * step): bilinear lookup at (x / step, y / step)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    disp_fine = cv2.remap(coarse, xs / step, ys / step, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return np.stack([xs, ys], axis=-1) + disp_fine


def make_subject(subject_id: str, index: int, frame: tuple[int, int], rng: np.random.Generator,
                 *, face_width: float = 0.88, eye_row: float = 0.42) -> Subject:
    """Draw one subject for frames of size ``frame`` = (H, W).

    ``index`` picks the base photo (cycling over the four); ``face_width`` is the jaw width as a
    share of the frame width and ``eye_row`` the eye line's height as a share of the frame height.
    """
    height, width = frame
    base = base_faces()[index % len(base_faces())]
    src_face = FaceFrame.from_landmarks(base.landmarks)
    jaw_width = float(np.hypot(*(base.landmarks[16] - base.landmarks[0])))
    scale = float(rng.uniform(0.9, 1.05))
    iod = src_face.iod / jaw_width * face_width * width * scale
    roll = float(np.deg2rad(rng.uniform(-4.0, 4.0)))
    centre = np.array([width / 2 + rng.uniform(-0.04, 0.04) * width, eye_row * height + rng.uniform(-0.03, 0.03) * height])
    axis = np.array([np.cos(roll), np.sin(roll)]) * iod / 2
    src_eyes = np.stack([base.landmarks[36:42].mean(0), base.landmarks[42:48].mean(0)])
    affine = _similarity(src_eyes, np.stack([centre - axis, centre + axis]))
    canon = base.landmarks @ affine[:, :2].T + affine[:, 2]
    target, shape = _shape_targets(canon, FaceFrame.from_landmarks(canon), rng)
    canon_map = _tps_map(canon, target, height, width)  # output pixel -> canonical position
    inv = cv2.invertAffineTransform(affine)
    src_x = inv[0, 0] * canon_map[..., 0] + inv[0, 1] * canon_map[..., 1] + inv[0, 2]
    src_y = inv[1, 0] * canon_map[..., 0] + inv[1, 1] * canon_map[..., 1] + inv[1, 2]
    image = cv2.remap(base.image, src_x.astype(np.float32), src_y.astype(np.float32), cv2.INTER_CUBIC,
                      borderMode=cv2.BORDER_REFLECT)
    image, look = _restyle(image, target, rng)
    params = {"base_photo": base.name, "scale": scale, "roll_deg": float(np.rad2deg(roll)), "iod_px": iod,
              **shape, **look}
    return Subject(subject_id, base.name, np.clip(image, 0, 255).astype(np.float32), target.astype(np.float32), params)


def _restyle(image: np.ndarray, pts: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """Skin tone, gamma, lighting gradient and a new background outside the head."""
    height, width = image.shape[:2]
    gains = np.exp(rng.normal(0.0, 0.09, 3)) * rng.uniform(0.75, 1.15)
    gamma = float(rng.uniform(0.8, 1.25))
    out = 255.0 * (np.clip(image, 0, 255) / 255.0) ** gamma * gains
    angle = rng.uniform(0, 2 * np.pi)
    strength = float(rng.uniform(0.0, 0.3))
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    ramp = (np.cos(angle) * (xs / width - 0.5) + np.sin(angle) * (ys / height - 0.5)) * strength
    out = out * (1.0 + ramp)[..., None]
    # head mask: the jaw line closed by the brows lifted by a forehead, feathered
    face = FaceFrame.from_landmarks(pts)
    brow = pts[17:27][::-1] + face.up * face.iod * 0.7
    hull = cv2.convexHull(np.vstack([pts[0:17], brow]).astype(np.float32)).astype(np.int32)
    mask = np.zeros((height, width), np.float32)
    cv2.fillConvexPoly(mask, hull, 1.0)
    mask = cv2.dilate(mask, np.ones((5, 5), np.uint8))
    mask = cv2.GaussianBlur(mask, (0, 0), max(2.0, 0.08 * face.iod))[..., None]
    colour_a, colour_b = rng.uniform(20, 235, 3), rng.uniform(20, 235, 3)
    t = (np.cos(angle + 1.0) * xs / width + np.sin(angle + 1.0) * ys / height)[..., None]
    t = (t - t.min()) / max(float(np.ptp(t)), 1e-6)
    texture = cv2.GaussianBlur(rng.normal(0, 18, (height, width)).astype(np.float32), (0, 0), 6)[..., None]
    background = colour_a * (1 - t) + colour_b * t + texture
    keep = float(rng.uniform(0.0, 0.35))  # how much of the photo's own background shows through
    out = mask * out + (1 - mask) * (keep * out + (1 - keep) * background)
    look = {"skin_gains": [float(g) for g in gains], "gamma": gamma, "light_gradient": strength,
            "background": [float(c) for c in colour_a] + [float(c) for c in colour_b]}
    return out.astype(np.float32), look
