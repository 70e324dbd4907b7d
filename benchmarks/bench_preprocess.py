"""Preprocessing benchmark on the synthetic micro clips: apex spotting, EVM, and the eye mask.

Reads the micro clips of a synthetic benchmark (``mertk synth``; ``--synth DIR``, or a 4-subject
one written to a temporary folder) and crops each to the LAENet box of its onset frame (placed on
the ground-truth landmarks, or dlib's with ``--landmarks dlib``), at the crop's own resolution, as
the pipeline computes flow. The stages are called directly (no cache). Three tables:

(a) Apex spotting: every registered spotter (``flow_peak`` with ``--flow``) on the cropped clips
    against the true apex: mean absolute error in frames and the share within +-2 frames; the clip's
    middle frame is given as a baseline (the true apex lies at 30-60 % of the clip).
(b) EVM (``magnify_clip`` with STRCN's r1 = 0.4, r2 = 0.05, lambda_c = 16, ``--alpha`` 8): mean
    |flow| onset -> apex where the true expression moves more than 0.1 px inside the face hull
    ("expression"), and where it moves less than 0.01 px anywhere in the crop ("static": background
    and still face parts; the true flow there is the head drift only), without and with
    magnification, and their ratio. The ground truth's own values are the first row.
(c) Eye mask: for clips with a blink, the flow from the onset to the middle blink frame minus the
    expression's true flow at that frame (envelope x expression field) minus the median of that
    difference over the face (the head drift) is the blink's motion; the share of its magnitude
    (summed over the pixels where it exceeds 0.1 px) inside ``eye_mask`` is what the mask removes.
    The share of the expression's true apex flow magnitude inside the mask (all clips) is what it
    removes wrongly. One row per dilation (``--dilate``).

Usage: ``python benchmarks/bench_preprocess.py [--synth DIR] [--datasets A,B] [--clips N]
[--landmarks gt|dlib] [--flow M] [--alpha A] [--dilate 0,2,4] [--seed S] [--json]``
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any, Sequence

import numpy as np

from bench_flow import SYNTH_DATASETS, SynthClip, face_crop, hull_mask, load_synth_clips, run_cli, synth_root

import mertk.preprocess.apex  # noqa: F401  (importing registers the spotters)
from mertk.errors import MertkError
from mertk.preprocess.eyemask import eye_mask
from mertk.preprocess.flow import get_flow_method
from mertk.preprocess.magnify import magnify_clip
from mertk.registry import SPOTTERS

MOVING_PX = 0.1  # true expression motion above this (px): "expression" pixels
STATIC_PX = 0.01  # true expression motion below this (px): "static" pixels
BLINK_PX = 0.1  # blink-motion pixels: residual flow above this (px)
WITHIN = 2  # frames
STRCN_EVM = {"r1": 0.4, "r2": 0.05, "lambda_c": 16.0}

Faces = list[tuple[SynthClip, np.ndarray]]  # cropped clip (ground-truth landmarks) and the method's landmarks


def _magnitude(flow: np.ndarray) -> np.ndarray:
    return np.hypot(flow[..., 0], flow[..., 1])


def spotting(faces: Faces, flow: str = "tvl1", spotters: Sequence[str] | None = None,
             eye_dilate: int | None = 4) -> list[dict[str, Any]]:
    """Apex error in frames of each spotter (and the middle-frame baseline) over the cropped clips.

    Returns rows ``{"spotter", "mae", "within2", "mae_no_blink", "clips", "no_blink_clips",
    "s_per_clip"}``; ``within2`` is the share of clips whose spotted apex is at most 2 frames from the
    true one, ``mae_no_blink`` the error over the clips without a blink. Spotters that take a flow
    method also run with the eye mask (dilated by ``eye_dilate``; ``None``: not) excluded from their score.
    """
    method = get_flow_method(flow)
    names = list(spotters) if spotters is not None else SPOTTERS.names()
    truth = np.array([c.apex for c, _ in faces])
    calm = np.array([not c.blink for c, _ in faces])

    def row(label: str, found: Sequence[int], seconds: float) -> dict[str, Any]:
        err = np.abs(np.asarray(found) - truth)
        return {"spotter": label, "mae": float(err.mean()), "within2": float((err <= WITHIN).mean()),
                "mae_no_blink": float(err[calm].mean()) if calm.any() else float("nan"),
                "clips": len(faces), "no_blink_clips": int(calm.sum()), "s_per_clip": seconds}

    rows = [row("middle frame (baseline)", [(len(c.frames) - 1) // 2 for c, _ in faces], 0.0)]
    for name in names:
        entry = SPOTTERS.entry(name)
        needs_flow = bool(entry.meta.get("needs_flow"))
        kw = {"flow_fn": method} if needs_flow else {}
        t0 = time.perf_counter()
        found = [entry.obj(c.frames, landmarks=points, **kw) for c, points in faces]
        rows.append(row(f"{name} ({flow})" if needs_flow else name, found, (time.perf_counter() - t0) / len(faces)))
        if needs_flow and eye_dilate is not None:
            t0 = time.perf_counter()
            found = [entry.obj(c.frames, landmarks=points, mask=~eye_mask(c.frames.shape[1:], points, dilate=eye_dilate),
                               **kw) for c, points in faces]
            rows.append(row(f"{name} ({flow}, eyes masked)", found, (time.perf_counter() - t0) / len(faces)))
    return rows


def evm_effect(faces: Faces, flow: str = "tvl1", alpha: float = 8.0) -> list[dict[str, Any]]:
    """Mean |flow| onset -> apex on expression and static pixels: ground truth, raw, magnified.

    Means are over the clips of each clip's mean over its pixels. Rows ``{"input", "expression",
    "static", "ratio"}``.
    """
    method = get_flow_method(flow)
    sums: dict[str, list[tuple[float, float]]] = {"ground truth": [], "raw": [], f"EVM alpha {alpha:g}": []}
    for clip, _ in faces:
        expr = _magnitude(clip.expression)
        moving = (expr > MOVING_PX) & hull_mask(expr.shape, clip.landmarks)
        static = expr < STATIC_PX
        if not moving.any() or not static.any():
            continue
        magnified = magnify_clip(clip.frames, alpha=alpha, **STRCN_EVM)
        for key, mag in (("ground truth", _magnitude(clip.flow_apex)),
                         ("raw", _magnitude(method(clip.frames[0], clip.frames[clip.apex]))),
                         (f"EVM alpha {alpha:g}", _magnitude(method(magnified[0], magnified[clip.apex])))):
            sums[key].append((float(mag[moving].mean()), float(mag[static].mean())))
    rows = []
    for key, values in sums.items():
        e, s = np.mean(values, axis=0)
        rows.append({"input": key, "expression": float(e), "static": float(s), "ratio": float(e / s), "clips": len(values)})
    return rows


def _residual(clip: SynthClip, t: int, method: Any, face: np.ndarray) -> np.ndarray:
    """|flow onset -> frame t| after removing the expression's true flow there and the head drift."""
    if t == 0:
        return np.zeros(clip.frames.shape[1:])
    r = method(clip.frames[0], clip.frames[t]) - clip.envelope()[t] * clip.expression
    r -= np.median(r[face], axis=0)  # the head drift at frame t (a translation not in the ground truth)
    return _magnitude(r)


def eye_mask_effect(faces: Faces, flow: str = "tvl1", dilations: Sequence[int] = (0, 2, 4)) -> list[dict[str, Any]]:
    """Shares of blink-frame flow, of blink motion and of true expression flow inside the eye mask.

    For each clip with a blink, ``t`` is its middle blink frame and ``t0`` the last frame before the
    blink. Per dilation, pooled over clips (summed magnitudes inside the face hull):

    - ``flow_removed``: share of ``|flow onset -> t|`` inside the mask;
    - ``blink_removed``: share of the blink's motion inside the mask, the blink's motion being the
      per-pixel excess ``max(|r_t| - |r_t0|, 0)`` of the residual ``r`` (flow minus the true
      expression flow at that frame, minus its median over the face, i.e. the head drift) over the
      frame just before the blink;
    - ``expression_removed``: share of the true expression flow onset -> apex inside the mask, over
      all clips.
    """
    method = get_flow_method(flow)
    blinks = []  # (face mask, |flow onset -> t|, blink motion, the method's landmarks)
    for clip, points in faces:
        if not clip.blink:
            continue
        t, t0 = clip.blink[len(clip.blink) // 2], clip.blink[0] - 1
        face = hull_mask(clip.frames.shape[1:], clip.landmarks)
        excess = np.maximum(_residual(clip, t, method, face) - _residual(clip, t0, method, face), 0.0)
        blinks.append((face, _magnitude(method(clip.frames[0], clip.frames[t])), excess, points))
    rows = []
    for d in dilations:
        shares = {}
        for key, k in (("flow_removed", 1), ("blink_removed", 2)):
            inside = sum(float(b[k][b[0] & eye_mask(b[0].shape, b[3], dilate=d)].sum()) for b in blinks)
            total = sum(float(b[k][b[0]].sum()) for b in blinks)
            shares[key] = inside / total if total else float("nan")
        expr_in = expr_total = 0.0
        for clip, points in faces:
            expr = _magnitude(clip.expression)
            expr_in += float(expr[eye_mask(expr.shape, points, dilate=d)].sum())
            expr_total += float(expr.sum())
        rows.append({"dilate": d, **shares, "expression_removed": expr_in / expr_total,
                     "blink_clips": len(blinks), "clips": len(faces)})
    return rows


def run(clips: Sequence[SynthClip], *, landmarks: str = "gt", flow: str = "tvl1", alpha: float = 8.0,
        dilations: Sequence[int] = (0, 2, 4)) -> dict[str, Any]:
    """All three measurements on the face crops of ``clips``."""
    faces = [face_crop(c, landmarks) for c in clips]
    return {
        "clips": len(faces), "landmarks": landmarks, "flow": flow,
        "spotting": spotting(faces, flow),
        "evm": evm_effect(faces, flow, alpha),
        "eye_mask": eye_mask_effect(faces, flow, dilations),
    }


def print_tables(result: dict[str, Any]) -> None:
    """Print :func:`run`'s result (with ``source``) as three tables."""
    print(f"preprocessing benchmark ({result['source']}): {result['clips']} clips, face crops from "
          f"{result['landmarks']} landmarks, flow {result['flow']}")
    r0 = result["spotting"][0]
    print(f"\n(a) apex spotting error (frames), {r0['clips']} clips, {r0['no_blink_clips']} without a blink\n"
          f"{'spotter':<36} {'MAE':>6} {'within +-2':>11} {'MAE no blink':>13} {'s/clip':>7}")
    for r in result["spotting"]:
        print(f"{r['spotter']:<36} {r['mae']:>6.2f} {100 * r['within2']:>10.0f}% {r['mae_no_blink']:>13.2f} "
              f"{r['s_per_clip']:>7.3f}")
    n = result["evm"][0]["clips"]
    print(f"\n(b) EVM: mean |flow| onset->apex (px), {n} clips; expression: true motion > {MOVING_PX} px in the "
          f"face, static: < {STATIC_PX} px\n{'input':<16} {'expression':>10} {'static':>8} {'ratio':>7}")
    for r in result["evm"]:
        print(f"{r['input']:<16} {r['expression']:>10.4f} {r['static']:>8.4f} {r['ratio']:>7.1f}")
    r0 = result["eye_mask"][0]
    print(f"\n(c) eye mask: share inside the mask of the flow onset -> mid-blink frame and of the blink's own motion "
          f"({r0['blink_clips']} clips with a blink), and of the true expression flow ({r0['clips']} clips)\n"
          f"{'dilate (px)':<12} {'blink-frame flow':>16} {'blink motion':>13} {'expression (wrong)':>19}")
    for r in result["eye_mask"]:
        print(f"{r['dilate']:<12} {100 * r['flow_removed']:>15.1f}% {100 * r['blink_removed']:>12.1f}% "
              f"{100 * r['expression_removed']:>18.1f}%")


def main(argv: list[str] | None = None) -> None:
    run_cli(_main, argv)


def _main(argv: list[str] | None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--synth", metavar="DIR", default=None,
                    help="existing `mertk synth` output (default: write a 4-subject one to a temp folder)")
    ap.add_argument("--datasets", default=",".join(SYNTH_DATASETS), help="micro datasets (default CASME2,SAMM)")
    ap.add_argument("--clips", type=int, default=None, help="use the first N clips (default all)")
    ap.add_argument("--landmarks", choices=("gt", "dlib"), default="gt",
                    help="landmarks placing the face box and the eye mask (ground truth, or dlib)")
    ap.add_argument("--flow", default="tvl1", help="flow method for flow_peak, EVM and the eye mask")
    ap.add_argument("--alpha", type=float, default=8.0, help="EVM amplification (STRCN: 8)")
    ap.add_argument("--dilate", default="0,2,4", help="eye-mask dilations in px (comma-separated)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the generated benchmark")
    ap.add_argument("--json", action="store_true", help="print the results as JSON instead of tables")
    args = ap.parse_args(argv)
    get_flow_method(args.flow)
    try:
        dilations = [int(d) for d in args.dilate.split(",") if d.strip()]
    except ValueError:
        raise MertkError(f"--dilate {args.dilate!r}: expected comma-separated whole numbers of pixels") from None
    datasets = [d.strip() for d in args.datasets.split(",") if d.strip()]
    with synth_root(args.synth, seed=args.seed) as root:
        clips = load_synth_clips(root, datasets, limit=args.clips)
    result = run(clips, landmarks=args.landmarks, flow=args.flow, alpha=args.alpha, dilations=dilations)
    where = args.synth or f"generated, 4 subjects, seed {args.seed}"
    result = {"source": f"{'+'.join(datasets)}, {where}", **result}
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print_tables(result)


if __name__ == "__main__":
    main()
