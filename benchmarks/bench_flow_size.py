"""Which ``PrepareConfig.flow_size`` meets the issue's real-time target with an accurate flow.

Two figures per flow size (``--sizes``, default 56, 84, 112 and 0 = the crop's own resolution):

- **EPE**: mean end-point error (px, at that size) of our ``tvl1`` and of OpenCV's DualTVL1
  (``tvl1_opencv``) on the onset -> apex pairs of the synthetic micro clips against the true apex
  displacement, inside the face hull (``bench_flow.py``'s pairs, masks and EPE: the LAENet crop on the
  ground-truth landmarks, resized to ``size x size`` as the pipeline's ``flow_size`` does; at size 0
  each clip keeps its crop, the EPE pooled over all face pixels). ``zero`` is the EPE of predicting no
  motion, the score to beat; ``rel`` = EPE / zero-flow EPE compares sizes.
- **latency**: the LAENet path of ``mertk bench`` (crop -> flow -> strain -> uvs 28x28 -> LAENet
  with onnxruntime, :func:`mertk.realtime.bench.timed_features`) on its clip with that ``flow_size``,
  median and p90 over ``--repeats`` runs after a warm-up.

A size meets the target when ours' EPE <= OpenCV's at that size and the path's median <= 10 ms.
Usage: ``python benchmarks/bench_flow_size.py [--synth DIR] [--clips N] [--sizes 56,84,112,0]
[--repeats R] [--threads T] [--json]``
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_flow  # noqa: E402

from mertk.preprocess.flow import compute_flow_batch  # noqa: E402

OURS, REFERENCE = "tvl1", "tvl1_opencv"
LIMIT_MS = 10.0


def native_epe(clips: list[bench_flow.SynthClip], methods: list[str]) -> dict[str, float]:
    """EPE at each clip's own LAENet crop resolution, pooled over the face pixels of all clips."""
    errors: dict[str, list[np.ndarray]] = {m: [] for m in ["zero", *methods]}
    for clip in clips:
        face, _ = bench_flow.face_crop(clip)
        mask = bench_flow.hull_mask(face.frames.shape[1:], face.landmarks)
        truth = face.flow_apex
        errors["zero"].append(np.hypot(truth[..., 0], truth[..., 1])[mask])
        for m in methods:
            est = compute_flow_batch(face.frames[:1], face.frames[face.apex : face.apex + 1], m)[0]
            d = est - truth
            errors[m].append(np.hypot(d[..., 0], d[..., 1])[mask])
    return {m: float(np.concatenate(e).mean()) for m, e in errors.items()}


def sized_epe(clips: list[bench_flow.SynthClip], size: int, methods: list[str]) -> dict[str, float]:
    """EPE with every crop resized to ``size x size`` (``bench_flow.synth_pairs``)."""
    prevs, nexts, truth, masks = bench_flow.synth_pairs(clips, (size, size))
    out = {"zero": bench_flow.mean_epe(np.zeros_like(truth), truth, masks)}
    for m in methods:
        out[m] = bench_flow.mean_epe(compute_flow_batch(prevs, nexts, m), truth, masks)
    return out


def path_latency(root: Path, size: int, repeats: int, threads: int) -> dict[str, float]:
    """Median and p90 ms of the LAENet path (crop, flow, strain, encode, onnxruntime LAENet) at ``flow_size``."""
    from mertk.deploy import OnnxClassifier, export_onnx
    from mertk.engine.checkpoint import model_inputs
    from mertk.models import create_model
    from mertk.preprocess.face import face_landmarks
    from mertk.preprocess.pipeline import read_frames
    from mertk.realtime.bench import StageClock, checkpoint_stub, bench_clip, model_config, timed_features

    clip = bench_clip(root)
    frames = read_frames(clip["paths"])
    _, points = face_landmarks(frames[0])
    config = model_config("laenet", size)
    stub = checkpoint_stub("laenet", config)
    with tempfile.TemporaryDirectory() as tmp:
        torch.manual_seed(0)
        model = OnnxClassifier(export_onnx(create_model("laenet"), Path(tmp) / "laenet.onnx"), threads=threads)
    totals = []
    for run in range(repeats + 1):
        clock = StageClock()
        x = timed_features(frames, points, clip["apex_index"], config, clock)
        with clock("model"):
            model(model_inputs(stub, {"x": x})[0].numpy())
        if run:
            totals.append(sum(clock.ms.values()))
    return {"median_ms": float(np.median(totals)), "p90_ms": float(np.percentile(totals, 90))}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--synth", default=None, help="existing `mertk synth` output (default: 4 subjects, seed 0, temporary)")
    ap.add_argument("--clips", type=int, default=None, help="keep the first N micro clips (default all)")
    ap.add_argument("--sizes", default="56,84,112,0", help="flow sizes (0 = the crop's resolution)")
    ap.add_argument("--repeats", type=int, default=30, help="timed runs of the LAENet path per size")
    ap.add_argument("--threads", type=int, default=2, help="torch / OpenCV / onnxruntime threads")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    sizes = [int(s) for s in args.sizes.split(",")]
    rows = []
    start = time.perf_counter()
    with bench_flow.synth_root(args.synth) as root:
        clips = bench_flow.load_synth_clips(root, limit=args.clips)
        for size in sizes:
            epe = native_epe(clips, [OURS, REFERENCE]) if size == 0 else sized_epe(clips, size, [OURS, REFERENCE])
            lat = path_latency(root, size, args.repeats, args.threads)
            rows.append({"flow_size": size, "epe_zero": epe["zero"], "epe_ours": epe[OURS], "epe_reference": epe[REFERENCE],
                         "path_median_ms": lat["median_ms"], "path_p90_ms": lat["p90_ms"],
                         "meets": bool(epe[OURS] <= epe[REFERENCE] and lat["median_ms"] <= LIMIT_MS)})
    result = {"clips": len(clips), "repeats": args.repeats, "threads": args.threads, "rows": rows,
              "seconds": round(time.perf_counter() - start, 1)}
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"flow_size study: {len(clips)} synthetic micro clips (EPE), LAENet path latency over {args.repeats} runs, "
          f"{args.threads} thread(s)")
    print(f"{'flow_size':>9} {'EPE zero':>9} {'EPE tvl1':>9} {'rel':>6} {'EPE ocv':>9} {'rel':>6} {'path ms':>8} {'p90':>7}  target")
    for r in rows:
        print(f"{r['flow_size'] or 'crop':>9} {r['epe_zero']:9.4f} {r['epe_ours']:9.4f} {r['epe_ours'] / r['epe_zero']:6.3f} "
              f"{r['epe_reference']:9.4f} {r['epe_reference'] / r['epe_zero']:6.3f} {r['path_median_ms']:8.2f} "
              f"{r['path_p90_ms']:7.2f}  {'met' if r['meets'] else 'not met'}")


if __name__ == "__main__":
    main()
