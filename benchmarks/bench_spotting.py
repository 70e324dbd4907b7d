"""Micro-expression spotting benchmark on synthetic long videos with known intervals.

For each seed, writes the synthetic long videos (``mertk.synth.long.write_long_videos``: SAMM
long-video layout, 100 fps, 800 frames, 2-4 micro and 1-2 macro events per video, blinks, drift,
flicker, noise, JPEG) to a temporary folder (or reads ``--data DIR``, a folder holding
``SAMM_longvideos/``), crops each video's face with the LAENet box placed from dlib's landmarks on
the first frame (``mertk.preprocess.face.face_landmarks``, ``get_box("laenet", ...)``), runs each
spotting method on the crop with the first frame's landmarks (crop coordinates) and scores it with
the MEGC rule (IoU >= 0.5): precision / recall / F1 on micro events (predicted micro vs true micro)
and on all events (any kind), the mean |apex error| (frames) of matched events, and the seconds per
1000 frames of spotting (cropping and decoding excluded).

Parameters were chosen on seeds 1 and 2 (``--seeds 1,2``); report on other seeds (default 3,4).
``--param method:NAME=VALUE`` overrides a spotting parameter (for tuning).

Usage: ``python benchmarks/bench_spotting.py [--seeds 3,4] [--subjects 4] [--methods flow,feature]
[--data DIR] [--param flow:z=6,...] [--json]``
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from bench_flow import run_cli

from mertk.data.base import numbered_frames
from mertk.synth.long import LONG_ROOT, write_long_videos
from mertk.errors import DataError, MertkError
from mertk.preprocess.crop import crop_clip, get_box
from mertk.preprocess.face import face_landmarks
from mertk.realtime.spotting import METHODS, spot_events, spotting_metrics


def load_video(root: Path, entry: dict) -> tuple[np.ndarray, np.ndarray]:
    """A video's frames cropped to the LAENet face box, and the first frame's landmarks in the crop."""
    paths, _ = numbered_frames(root / entry["frame_dir"])
    if len(paths) != entry["frames"]:
        raise DataError(root / entry["frame_dir"], f"holds {len(paths)} frames, ground truth says {entry['frames']}")
    frames = np.stack([cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p in paths])
    _, pts = face_landmarks(cv2.cvtColor(frames[0], cv2.COLOR_GRAY2RGB), source=paths[0])
    box = get_box("laenet", pts, frames.shape[1:])
    return crop_clip(frames, box), pts - np.array([box.left, box.top])


def parse_params(items: list[str]) -> dict[str, dict[str, Any]]:
    """``["flow:z=6", "feature:k_s=(0.1,0.3)"]`` -> ``{"flow": {"z": 6}, "feature": {"k_s": (0.1, 0.3)}}``."""
    out: dict[str, dict[str, Any]] = {}
    for item in items:
        for part in item.split(";"):
            try:
                method, assign = part.split(":", 1)
                name, value = assign.split("=", 1)
                out.setdefault(method.strip(), {})[name.strip()] = ast.literal_eval(value.strip())
            except (ValueError, SyntaxError):
                raise MertkError(f"--param {part!r}: expected METHOD:NAME=VALUE with a Python literal VALUE") from None
    return out


def evaluate(root: Path, methods: list[str], params: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Spot every video under ``root`` (a ``SAMM_longvideos`` folder) with each method; pooled scores."""
    truth = json.loads((root / "ground_truth.json").read_text())
    pooled: dict[str, dict[str, Any]] = {m: {"micro": [0, 0, 0], "all": [0, 0, 0], "apex": [], "seconds": 0.0,
                                             "frames": 0} for m in methods}
    for entry in truth["videos"]:
        crop, pts = load_video(root, entry)
        events = entry["events"]
        true_all = [(e["onset"] - 1, e["offset"] - 1) for e in events]
        true_micro = [(e["onset"] - 1, e["offset"] - 1) for e in events if e["type"] == "micro"]
        for m in methods:
            t0 = time.perf_counter()
            spotted = spot_events(crop, fps=entry["fps"], landmarks=pts, method=m, **params.get(m, {}))
            acc = pooled[m]
            acc["seconds"] += time.perf_counter() - t0
            acc["frames"] += len(crop)
            for key, pred, true in (("micro", [(s.onset, s.offset) for s in spotted if s.kind == "micro"], true_micro),
                                    ("all", [(s.onset, s.offset) for s in spotted], true_all)):
                r = spotting_metrics(pred, true)
                acc[key] = [acc[key][0] + r["tp"], acc[key][1] + r["fp"], acc[key][2] + r["fn"]]
            for e in events:  # apex error of true events matched by some spotted event
                hit = [s for s in spotted if _iou((s.onset, s.offset), (e["onset"] - 1, e["offset"] - 1)) >= 0.5]
                if hit:
                    acc["apex"].append(abs(hit[0].apex - (e["apex"] - 1)))
    return {m: _summary(acc) for m, acc in pooled.items()}


def _iou(a: tuple[int, int], b: tuple[int, int]) -> float:
    from mertk.realtime.spotting import interval_iou

    return interval_iou(a, b)


def _summary(acc: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in ("micro", "all"):
        tp, fp, fn = acc[key]
        p = tp / (tp + fp) if tp + fp else 0.0
        r = tp / (tp + fn) if tp + fn else 0.0
        out[key] = {"tp": tp, "fp": fp, "fn": fn, "precision": round(p, 3), "recall": round(r, 3),
                    "f1": round(2 * p * r / (p + r) if p + r else 0.0, 3)}
    out["apex_error_frames"] = round(float(np.mean(acc["apex"])), 2) if acc["apex"] else None
    out["seconds_per_1000_frames"] = round(acc["seconds"] / max(acc["frames"], 1) * 1000, 2)
    return out


def main(argv: list[str] | None = None) -> None:
    run_cli(_main, argv)


def _main(argv: list[str] | None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="3,4", help="seeds of the generated long videos (default 3,4: report seeds)")
    ap.add_argument("--subjects", type=int, default=4, help="subjects (one video each) per seed (default 4)")
    ap.add_argument("--data", metavar="DIR", default=None, help="read DIR/SAMM_longvideos instead of generating")
    ap.add_argument("--methods", default=",".join(METHODS), help="comma-separated spotting methods")
    ap.add_argument("--param", action="append", default=[], help="METHOD:NAME=VALUE spotting parameter override")
    ap.add_argument("--json", action="store_true", help="print the results as JSON")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    for m in methods:
        if m not in METHODS:
            raise MertkError(f"unknown spotting method {m!r}; choose from: {', '.join(METHODS)}")
    params = parse_params(args.param)
    results: dict[str, Any] = {}
    if args.data:
        root = Path(args.data) / LONG_ROOT
        if not (root / "ground_truth.json").is_file():
            raise DataError(root, "no ground_truth.json of synthetic long videos here")
        results["data"] = evaluate(root, methods, params)
    else:
        try:
            seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
        except ValueError:
            raise MertkError(f"--seeds {args.seeds!r}: expected comma-separated integers") from None
        for seed in seeds:
            with tempfile.TemporaryDirectory() as tmp:
                write_long_videos(Path(tmp), subjects=args.subjects, seed=seed)
                results[f"seed {seed}"] = evaluate(Path(tmp) / LONG_ROOT, methods, params)
    if args.json:
        print(json.dumps(results, indent=1))
        return
    print(f"{'data':<8} {'method':<8} {'micro P/R/F1 (tp/fp/fn)':<34} {'all P/R/F1 (tp/fp/fn)':<34} "
          f"{'apex err':>8} {'s/1000 fr':>9}")
    for data, per in results.items():
        for m, r in per.items():
            cells = [f"{r[k]['precision']:.2f}/{r[k]['recall']:.2f}/{r[k]['f1']:.2f} "
                     f"({r[k]['tp']}/{r[k]['fp']}/{r[k]['fn']})" for k in ("micro", "all")]
            print(f"{data:<8} {m:<8} {cells[0]:<34} {cells[1]:<34} {str(r['apex_error_frames']):>8} "
                  f"{r['seconds_per_1000_frames']:>9}")


if __name__ == "__main__":
    sys.exit(main())
