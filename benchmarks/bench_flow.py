"""Optical-flow benchmark on facial micro-motion with known ground truth.

Two sources of pairs (``--source``):

- ``synth`` (default): the onset and apex frames of the micro clips of the synthetic benchmark
  (``mertk synth``; CASME II and SAMM copies by default: 200 fps, 0.35-1.9 px expressions plus a
  sub-pixel head drift, sensor noise and JPEG) with their exact ground-truth flow ``flow_apex``.
  ``--synth DIR`` reads an existing benchmark; without it a small one (4 subjects, ``--seed``) is
  written to a temporary folder. Each clip's face is cropped with the LAENet box (from the
  ground-truth landmarks, or from dlib's with ``--landmarks dlib``); the crop and the ground-truth
  flow are resized to each benchmark size, the flow's u and v scaled by the resize factors. The EPE
  region is the convex hull of the 68 ground-truth landmarks.
- ``pairs``: the face of ``skimage.data.astronaut`` (grey, cropped, the crop jittered per pair)
  warped by a smooth field of 2-4 Gaussian bumps with a 0.3-2 px peak, independent Gaussian noise
  added to both frames; the EPE region is a central ellipse.

At 128x128 and 170x140 (height x width) every registered flow method gets the mean end-point error
(EPE) inside the face, the EPE where the true motion exceeds 0.1 px, and the time per pair of one
batched call, side by side with OpenCV's DualTVL1 defaults (``tvl1_opencv``) in the same run; then
the pairs/s ratio of our ``tvl1`` to it and whether the issue's target (at least 10x the pairs/s
with an EPE no worse) is met. Timings are the best of ``--repeats`` runs; ``--threads N`` gives torch
and OpenCV the same thread count.

Usage: ``python benchmarks/bench_flow.py [--source synth|pairs] [--synth DIR] [--datasets A,B]
[--landmarks gt|dlib] [--pairs N] [--seed S] [--methods a,b] [--param tvl1:NAME=VALUE,...] [--repeats R]
[--threads T] [--json]``
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import cv2
import numpy as np
import torch
from skimage.data import astronaut

from mertk.data.base import numbered_frames
from mertk.errors import DataError, MertkError
from mertk.preprocess.crop import Box, crop_clip, laenet_box, resize
from mertk.preprocess.encode import resize_flow  # scales u by W / w and v by H / h
from mertk.preprocess.flow import compute_flow_batch, get_flow_method
from mertk.registry import FLOWS

SIZES = ((128, 128), (170, 140))  # (height, width)
FACE_BOX = (40, 180, 160, 295)  # y0, y1, x0, x1 of the face in astronaut()
REFERENCE = "tvl1_opencv"
OURS = "tvl1"
TARGET_SPEEDUP = 10.0
MOVING_PX = 0.1  # "moving" pixels: true motion above this (px)
SYNTH_DATASETS = ("CASME2", "SAMM")
MICRO_DATASETS = ("CASME2", "SAMM", "SMIC")
GT_FORMAT = "mertk-synth-ground-truth/1"

Pairs = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # prevs, nexts, true flows, EPE masks


# ------------------------------------------------------------------------------------------------
# the synthetic benchmark's micro clips (shared with bench_preprocess.py)
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SynthClip:
    """One synthetic micro clip with its ground truth; the frames run from onset (0) to offset.

    Coordinates are those of ``frames`` (the full frame, or a crop after :meth:`cropped`).
    """

    name: str  # DATASET/subject/clip
    frames: np.ndarray  # (T, H, W) uint8 grey
    apex: int  # position of the apex frame in ``frames``
    blink: tuple[int, ...]  # positions of the frames with the lids more than 5 % closed
    flow_apex: np.ndarray  # (H, W, 2) float32 exact onset -> apex flow (expression + head drift)
    drift: np.ndarray  # (2,) head drift (dx, dy) onset -> apex
    landmarks: np.ndarray  # (68, 2) onset-frame landmarks

    @property
    def expression(self) -> np.ndarray:
        """The expression's own onset -> apex flow (``flow_apex`` without the head drift)."""
        return self.flow_apex - self.drift.astype(np.float32)

    def envelope(self) -> np.ndarray:
        """Expression intensity per frame (0 at onset, 1 at apex, 0 at offset), as rendered."""
        from mertk.synth.render import Timeline

        n = len(self.frames)
        return Timeline(n, 0, self.apex, n - 1).envelope()

    def cropped(self, box: Box) -> "SynthClip":
        """The clip and its ground truth cut to ``box``."""
        return replace(
            self,
            frames=np.ascontiguousarray(crop_clip(self.frames, box)),
            flow_apex=np.ascontiguousarray(self.flow_apex[box.top : box.bottom, box.left : box.right]),
            landmarks=self.landmarks - np.array([box.left, box.top], dtype=np.float32),
        )


def load_synth_clips(root: str | Path, datasets: Sequence[str] = SYNTH_DATASETS, *, limit: int | None = None) -> list[SynthClip]:
    """The micro clips of ``datasets`` in a synthetic benchmark written by ``mertk synth``, in file order.

    Frames are read as grey uint8. ``limit`` keeps the first clips only.

    Raises:
        DataError: ``ground_truth.json`` is missing or not the synthetic format, or a clip's frame
            folder does not hold exactly its frames.
        MertkError: a dataset name that is not a synthetic micro dataset.
    """
    root = Path(root)
    bad = sorted(set(datasets) - set(MICRO_DATASETS))
    if bad:
        raise MertkError(f"unknown micro dataset(s) {', '.join(bad)}; choose from: {', '.join(MICRO_DATASETS)}")
    gt_path = root / "ground_truth.json"
    if not gt_path.is_file():
        raise DataError(gt_path, "missing; is this a synthetic benchmark written by `mertk synth`?")
    try:
        truth = json.loads(gt_path.read_text())
    except json.JSONDecodeError as e:
        raise DataError(gt_path, f"not valid JSON ({e.msg}, line {e.lineno})") from None
    if truth.get("format") != GT_FORMAT:
        raise DataError(gt_path, f"format is {truth.get('format')!r}, expected {GT_FORMAT!r}")
    clips = []
    for i, entry in enumerate(truth["clips"]):
        if entry["dataset"] not in datasets:
            continue
        if limit is not None and len(clips) >= limit:
            break
        folder = root / entry["frame_dir"]
        paths, numbers = numbered_frames(folder)
        first, last = entry["frames"]
        if list(numbers) != list(range(first, last + 1)):
            raise DataError(folder, f"expected frames {first}..{last}, found {len(numbers)} numbered "
                                    f"{numbers[0] if numbers else '-'}..{numbers[-1] if numbers else '-'}")
        frames = []
        for path in paths:
            image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
            if image is None:
                raise DataError(path, "unreadable image")
            frames.append(image)
        with np.load(root / entry["ground_truth"]) as npz:
            flow, points, blink = npz["flow_apex"], npz["landmarks"], npz["blink"]
        clips.append(SynthClip(
            name=f"{entry['dataset']}/{entry['subject']}/{entry['clip']}",
            frames=np.stack(frames),
            apex=int(entry["apex"]) - first,
            blink=tuple(int(b) for b in blink),
            flow_apex=flow.astype(np.float32),
            drift=np.asarray(entry["drift_px"], dtype=np.float64),
            landmarks=points.astype(np.float32),
        ))
    if not clips:
        raise DataError(gt_path, f"no micro clips of {', '.join(datasets)}")
    return clips


@contextlib.contextmanager
def synth_root(path: str | Path | None, *, subjects: int = 4, seed: int = 0) -> Iterator[Path]:
    """``path`` itself, or (when ``None``) a fresh synthetic benchmark in a temporary folder."""
    if path is not None:
        yield Path(path)
        return
    from mertk.synth import synthesize

    with tempfile.TemporaryDirectory(prefix="mertk-bench-") as tmp:
        out = Path(tmp) / "synth"
        synthesize(out, subjects=subjects, seed=seed, progress=False)
        yield out


def face_crop(clip: SynthClip, landmarks: str = "gt") -> tuple[SynthClip, np.ndarray]:
    """Crop a clip to the LAENet box of its onset frame; returns the crop and the method's landmarks.

    ``landmarks="gt"`` places the box on the ground-truth landmarks; ``"dlib"`` detects the face and
    its landmarks on the onset frame as the pipeline does. The returned landmarks (crop coordinates)
    are the ones a method would use; the crop's ``landmarks`` stay the ground truth.
    """
    if landmarks == "gt":
        points = clip.landmarks
    elif landmarks == "dlib":
        from mertk.preprocess.face import face_landmarks

        _, points = face_landmarks(clip.frames[0], source=clip.name)
    else:
        raise MertkError(f"unknown landmark source {landmarks!r}; choose from: gt, dlib")
    box = laenet_box(points, clip.frames.shape[1:])
    return clip.cropped(box), (points - np.array([box.left, box.top])).astype(np.float32)


def scale_points(points: np.ndarray, from_shape: Sequence[int], size: tuple[int, int]) -> np.ndarray:
    """Landmarks of an image of ``from_shape`` moved to the same image resized to ``size`` (pixel centres kept)."""
    s = np.array([size[1] / from_shape[1], size[0] / from_shape[0]])
    return ((np.asarray(points, dtype=np.float64) + 0.5) * s - 0.5).astype(np.float32)


def hull_mask(shape: Sequence[int], points: np.ndarray) -> np.ndarray:
    """Boolean ``(H, W)`` mask of the convex hull of ``points`` (the face region of 68 landmarks)."""
    canvas = np.zeros((int(shape[0]), int(shape[1])), np.uint8)
    hull = cv2.convexHull(np.rint(np.asarray(points) * 16).astype(np.int32))
    cv2.fillConvexPoly(canvas, hull, 1, lineType=cv2.LINE_8, shift=4)
    return canvas.astype(bool)


def synth_pairs(clips: Sequence[SynthClip], size: tuple[int, int], *, landmarks: str = "gt") -> Pairs:
    """Onset/apex pairs of face crops resized to ``size``, their true flows and face-hull masks."""
    prevs, nexts, flows, masks = [], [], [], []
    for clip in clips:
        face, _ = face_crop(clip, landmarks)
        shape = face.frames.shape[1:]
        prevs.append(resize(face.frames[0], size))
        nexts.append(resize(face.frames[face.apex], size))
        flows.append(resize_flow(face.flow_apex, size))
        masks.append(hull_mask(size, scale_points(face.landmarks, shape, size)))
    return np.stack(prevs), np.stack(nexts), np.stack(flows), np.stack(masks)


# ------------------------------------------------------------------------------------------------
# the astronaut pairs
# ------------------------------------------------------------------------------------------------


def _smooth_field(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """A sum of 2-4 Gaussian bumps, each with its own direction, scaled to a 0.3-2 px peak."""
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    field = np.zeros((h, w, 2))
    for _ in range(rng.integers(2, 5)):
        cy, cx = rng.uniform(0.2, 0.8) * h, rng.uniform(0.2, 0.8) * w
        s = rng.uniform(0.08, 0.2) * min(h, w)
        bump = np.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * s * s))
        angle = rng.uniform(0, 2 * np.pi)
        field += bump[..., None] * rng.uniform(0.3, 1.0) * np.array([np.cos(angle), np.sin(angle)])
    peak = np.hypot(field[..., 0], field[..., 1]).max()
    return (field * rng.uniform(0.3, 2.0) / peak).astype(np.float32)


def _warp_forward(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """The image ``next`` with ``next(x + flow(x)) = image(x)``: invert the field by fixed-point iteration."""
    h, w = image.shape
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    back = flow.copy()  # back(y) = flow(x*) where x* + flow(x*) = y
    for _ in range(20):
        back = cv2.remap(flow, xs - back[..., 0], ys - back[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return cv2.remap(image, xs - back[..., 0], ys - back[..., 1], cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)


def face_mask(h: int, w: int) -> np.ndarray:
    """Boolean ellipse covering the central face region (semi-axes 0.4 w and 0.42 h)."""
    ys, xs = np.mgrid[0:h, 0:w]
    return ((xs - (w - 1) / 2) / (0.4 * w)) ** 2 + ((ys - (h - 1) / 2) / (0.42 * h)) ** 2 <= 1.0


def make_pairs(
    size: tuple[int, int], n: int, *, seed: int = 0, noise: float = 1.5
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` uint8 grey pairs of ``size`` (H, W) with ground-truth flows: (prevs, nexts, flows)."""
    rng = np.random.default_rng(seed)
    grey = cv2.cvtColor(astronaut(), cv2.COLOR_RGB2GRAY).astype(np.float32)
    y0, y1, x0, x1 = FACE_BOX
    h, w = size
    prevs, nexts, flows = [], [], []
    for _ in range(n):
        dy, dx = rng.integers(-6, 7, size=2)
        face = cv2.resize(grey[y0 + dy : y1 + dy, x0 + dx : x1 + dx], (w, h), interpolation=cv2.INTER_AREA)
        flow = _smooth_field(h, w, rng)
        nxt = _warp_forward(face, flow)
        prevs.append(np.clip(np.rint(face + rng.normal(0, noise, face.shape)), 0, 255).astype(np.uint8))
        nexts.append(np.clip(np.rint(nxt + rng.normal(0, noise, nxt.shape)), 0, 255).astype(np.uint8))
        flows.append(flow)
    return np.stack(prevs), np.stack(nexts), np.stack(flows)


def astronaut_pairs(size: tuple[int, int], n: int, *, seed: int = 0) -> Pairs:
    """:func:`make_pairs` with the central-ellipse EPE mask of every pair."""
    prevs, nexts, flows = make_pairs(size, n, seed=seed)
    return prevs, nexts, flows, np.broadcast_to(face_mask(*size), (n, *size))


# ------------------------------------------------------------------------------------------------
# the benchmark
# ------------------------------------------------------------------------------------------------


def mean_epe(est: np.ndarray, truth: np.ndarray, mask: np.ndarray) -> float:
    """Mean end-point error over the true pixels of ``mask`` (``(H, W)`` or one per pair) of all pairs."""
    m = np.broadcast_to(mask, est.shape[:3])
    d = (est - truth)[m]
    return float(np.hypot(d[:, 0], d[:, 1]).mean())


def parse_params(specs: Sequence[str]) -> dict[str, dict[str, Any]]:
    """``["tvl1:lambda_=0.08,iterations=20", ...]`` as ``{"tvl1": {"lambda_": 0.08, "iterations": 20}}``.

    Values are read as JSON (numbers, ``true``/``false``, ``null``), anything else as a string; the
    method name and the parameter names are checked when the method is instantiated.
    """
    out: dict[str, dict[str, Any]] = {}
    for spec in specs:
        method, sep, body = spec.partition(":")
        if not sep or not method.strip():
            raise MertkError(f"--param {spec!r}: expected METHOD:NAME=VALUE[,NAME=VALUE...]")
        for item in body.split(","):
            name, eq, value = item.partition("=")
            if not eq or not name.strip():
                raise MertkError(f"--param {spec!r}: {item!r} is not NAME=VALUE")
            try:
                parsed = json.loads(value)
            except json.JSONDecodeError:
                parsed = value
            out.setdefault(method.strip(), {})[name.strip()] = parsed
    for method, kw in out.items():
        get_flow_method(method, **kw)  # unknown methods or parameters fail here, before any timing
    return out


def benchmark(
    data: dict[tuple[int, int], Pairs],
    methods: Sequence[str],
    repeats: int = 3,
    params: dict[str, dict[str, Any]] | None = None,
) -> dict:
    """EPE and batched ms/pair of every method at every size, plus the tvl1 / tvl1_opencv comparison.

    ``params`` maps a method to keyword parameters replacing its defaults.
    """
    params = params or {}
    rows = []
    for size, (prevs, nexts, truth, masks) in data.items():
        key = f"{size[0]}x{size[1]}"
        moving = masks & (np.hypot(truth[..., 0], truth[..., 1]) > MOVING_PX)
        zero = np.zeros_like(truth)
        rows.append({"method": "zero flow", "size": key, "epe": mean_epe(zero, truth, masks),
                     "epe_moving": mean_epe(zero, truth, moving), "ms_per_pair": None})
        for m in methods:
            kw = params.get(m, {})
            compute_flow_batch(prevs[:2], nexts[:2], m, **kw)  # warm-up (allocations, lazy init)
            dt = float("inf")
            for _ in range(repeats):  # best of `repeats`: the least disturbed by other load
                t0 = time.perf_counter()
                est = compute_flow_batch(prevs, nexts, m, **kw)
                dt = min(dt, time.perf_counter() - t0)
            rows.append({"method": m, "size": key, "epe": mean_epe(est, truth, masks),
                         "epe_moving": mean_epe(est, truth, moving), "ms_per_pair": 1000 * dt / len(prevs)})
    comparison = {}
    for size in data:
        key = f"{size[0]}x{size[1]}"
        r = {row["method"]: row for row in rows if row["size"] == key}
        if OURS in r and REFERENCE in r:
            ratio = r[REFERENCE]["ms_per_pair"] / r[OURS]["ms_per_pair"]
            comparison[key] = {
                "speed_ratio": ratio,
                "epe_ours": r[OURS]["epe"],
                "epe_reference": r[REFERENCE]["epe"],
                "target_met": bool(ratio >= TARGET_SPEEDUP and r[OURS]["epe"] <= r[REFERENCE]["epe"]),
            }
    return {
        "pairs": {f"{s[0]}x{s[1]}": len(d[0]) for s, d in data.items()}, "repeats": repeats, "params": params, "rows": rows,
        "tvl1_vs_opencv": comparison,
        "torch_threads": torch.get_num_threads(), "opencv_threads": cv2.getNumThreads(),
        "machine": platform.processor() or platform.machine(), "python": sys.version.split()[0],
    }


def print_table(result: dict) -> None:
    """Print :func:`benchmark`'s result (with ``source``) as a table."""
    n = ", ".join(f"{v} at {k}" for k, v in result["pairs"].items())
    print(f"flow benchmark ({result['source']}): {n} pairs; best of {result['repeats']} timed batched runs; "
          f"torch global threads {result['torch_threads']} (tvl1 sets its own), OpenCV threads {result['opencv_threads']}")
    for m, kw in result["params"].items():
        print(f"{m} parameters changed from its defaults: {', '.join(f'{k}={v}' for k, v in kw.items())}")
    print(f"{'method':<14} {'size':>8} {'EPE face (px)':>14} {f'EPE |gt|>{MOVING_PX}':>14} {'ms/pair':>9}")
    for r in result["rows"]:
        ms = "" if r["ms_per_pair"] is None else f"{r['ms_per_pair']:.2f}"
        print(f"{r['method']:<14} {r['size']:>8} {r['epe']:>14.4f} {r['epe_moving']:>14.4f} {ms:>9}")
    for size, c in result["tvl1_vs_opencv"].items():
        verdict = "met" if c["target_met"] else "NOT met"
        print(f"{size}: {OURS} / {REFERENCE} pairs/s {c['speed_ratio']:.1f}x, EPE {c['epe_ours']:.4f} vs "
              f"{c['epe_reference']:.4f} px -> target (>= {TARGET_SPEEDUP:.0f}x, EPE no worse) {verdict}")


def run_cli(entry: Callable[[list[str] | None], None], argv: list[str] | None = None) -> None:
    """Run a benchmark's entry point; bad input is one line on stderr and exit 2 (as the CLI does)."""
    try:
        entry(argv)
    except MertkError as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2) from None


def main(argv: list[str] | None = None) -> None:
    run_cli(_main, argv)


def _main(argv: list[str] | None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", choices=("synth", "pairs"), default="synth",
                    help="synthetic benchmark clips (default) or warped astronaut pairs")
    ap.add_argument("--synth", metavar="DIR", default=None,
                    help="existing `mertk synth` output (default: write a 4-subject one to a temp folder)")
    ap.add_argument("--datasets", default=",".join(SYNTH_DATASETS), help="synth: micro datasets (default CASME2,SAMM)")
    ap.add_argument("--landmarks", choices=("gt", "dlib"), default="gt",
                    help="synth: landmarks placing the face box (ground truth, or dlib on the onset frame)")
    ap.add_argument("--pairs", type=int, default=None,
                    help="pairs per size (pairs: default 16; synth: default every clip)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the astronaut pairs or the generated benchmark")
    ap.add_argument("--methods", default=",".join(FLOWS.names()), help="comma-separated flow methods")
    ap.add_argument("--param", action="append", default=[], metavar="METHOD:NAME=VALUE[,...]",
                    help="override a method's parameters, e.g. tvl1:lambda_=0.08 (repeatable)")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs per method; the best is kept")
    ap.add_argument("--threads", type=int, default=None,
                    help="set both torch's and OpenCV's thread counts (default: library defaults)")
    ap.add_argument("--json", action="store_true", help="print the results as JSON instead of a table")
    args = ap.parse_args(argv)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    for m in methods:
        FLOWS.entry(m)
    params = parse_params(args.param)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
        cv2.setNumThreads(args.threads)
    if args.source == "pairs":
        n = args.pairs or 16
        data = {s: astronaut_pairs(s, n, seed=args.seed) for s in SIZES}
        source = f"astronaut pairs, seed {args.seed}"
    else:
        datasets = [d.strip() for d in args.datasets.split(",") if d.strip()]
        with synth_root(args.synth, seed=args.seed) as root:
            clips = load_synth_clips(root, datasets, limit=args.pairs)
        data = {s: synth_pairs(clips, s, landmarks=args.landmarks) for s in SIZES}
        where = args.synth or f"generated, 4 subjects, seed {args.seed}"
        source = f"synthetic onset->apex of {'+'.join(datasets)} ({where}), {args.landmarks} landmarks"
    result = {"source": source, **benchmark(data, methods, args.repeats, params)}
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print_table(result)


if __name__ == "__main__":
    main()
