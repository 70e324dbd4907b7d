"""`mertk predict` end to end on synthetic long videos: spotting precision / recall and event labels.

Runs :func:`mertk.realtime.predict.predict` (decode the .mp4, track the face, spot, classify every
spotted event with a checkpoint) on each long video of a synthetic benchmark (``mertk synth DIR --long
N``) and scores it against ``SAMM_longvideos/ground_truth.json`` with the MEGC spotting rule (a spotted
interval is a true positive when its IoU with a not yet matched true interval is >= 0.5): precision,
recall and F1 over all events and over micro events, and, for the true micro events with a MEGC 2019
label that were found, the share whose predicted label is right (chance is about 1/3).

Ground-truth frames are 1-based (as in the xlsx); predict's are 0-based indices into the video.

Usage: ``python benchmarks/bench_predict.py --data DIR --checkpoint RUN_DIR_OR_MODEL_PT [--spotter flow]
[--json]``
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import torch

from bench_flow import run_cli

from mertk.errors import DataError
from mertk.realtime.predict import predict
from mertk.realtime.spotting import interval_iou, spotting_metrics


def score_video(truth: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
    """Spotting counts and label hits of one video (true intervals converted to 0-based)."""
    true_all = [(e["onset"] - 1, e["offset"] - 1) for e in truth["events"]]
    true_micro = [(e["onset"] - 1, e["offset"] - 1) for e in truth["events"] if e["type"] == "micro"]
    spotted = [(e["onset"], e["offset"]) for e in result["events"]]
    spotted_micro = [(e["onset"], e["offset"]) for e in result["events"] if e["kind"] == "micro"]
    labelled, correct = 0, 0
    for e in truth["events"]:
        if e["type"] != "micro" or not e.get("megc2019"):
            continue
        interval = (e["onset"] - 1, e["offset"] - 1)
        best = max(result["events"], key=lambda s: interval_iou(interval, (s["onset"], s["offset"])), default=None)
        if best is not None and interval_iou(interval, (best["onset"], best["offset"])) >= 0.5 and best.get("label"):
            labelled += 1
            correct += best["label"] == e["megc2019"]
    return {"all": spotting_metrics(spotted, true_all), "micro": spotting_metrics(spotted_micro, true_micro),
            "labelled": labelled, "label_correct": correct}


def _rates(tp: int, fp: int, fn: int) -> dict[str, float]:
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    return {"tp": tp, "fp": fp, "fn": fn, "precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0}


def _main(argv: list[str] | None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True, help="a synthetic benchmark written with --long N")
    ap.add_argument("--checkpoint", type=Path, required=True, help="model.pt or a run directory")
    ap.add_argument("--spotter", default="feature", choices=("feature", "flow"))
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    root = args.data / "SAMM_longvideos"
    gt_path = root / "ground_truth.json"
    if not gt_path.is_file():
        raise DataError(gt_path, "not found: write the benchmark with `mertk synth DIR --long N`")
    videos = json.loads(gt_path.read_text())["videos"]
    totals = {"all": [0, 0, 0], "micro": [0, 0, 0]}
    labelled = correct = 0
    rows = []
    for truth in videos:
        result = predict(root / truth["mp4"], args.checkpoint, spotter=args.spotter)
        s = score_video(truth, result)
        for key in totals:
            for i, name in enumerate(("tp", "fp", "fn")):
                totals[key][i] += s[key][name]
        labelled += s["labelled"]
        correct += s["label_correct"]
        rows.append({"video": truth["video"], **s, "seconds": result["timings"]["total"]})
    summary = {"videos": len(videos), "spotter": args.spotter, "all": _rates(*totals["all"]),
               "micro": _rates(*totals["micro"]), "micro_labelled": labelled, "micro_label_correct": correct,
               "per_video": rows}
    if args.json:
        print(json.dumps(summary, indent=2))
        return
    for key in ("all", "micro"):
        m = summary[key]
        print(f"{key:5s} events: precision {m['precision']:.2f}  recall {m['recall']:.2f}  F1 {m['f1']:.2f} "
              f"(tp {m['tp']}, fp {m['fp']}, fn {m['fn']})")
    print(f"found micro events labelled correctly: {correct} of {labelled}")
    print(f"{len(videos)} videos, {sum(r['seconds'] for r in rows):.1f} s in predict")


def main(argv: list[str] | None = None) -> None:
    run_cli(_main, argv)


if __name__ == "__main__":
    main()
