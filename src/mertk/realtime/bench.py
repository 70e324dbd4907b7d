"""``mertk bench``: per-stage latency of the inference path on a synthetic micro clip.

The clip is the first CASME II-format micro clip of the synthetic benchmark (``mertk synth``: 200
fps, a 170x140 face in a 192x160 frame, JPEG frames), from onset to apex. Each repeat runs, in this
order and timed stage by stage with ``time.perf_counter``:

- ``decode``: reading the onset..apex JPEG frames (:func:`~mertk.preprocess.pipeline.read_frames`);
- ``face``: dlib face detection and 68 landmarks on the onset frame (once per video when streaming);
- every flow method on the onset -> apex pair of the LAENet face crop at the crop's resolution,
  the reference (OpenCV's DualTVL1, ``tvl1_opencv``) always among them;
- for every model, :func:`~mertk.preprocess.pipeline.prepare_frames` itself, timed by its
  ``timer`` (the annotated apex, the given landmarks), then :func:`~mertk.engine.checkpoint.classify`'s
  steps: ``crop`` (face box, the frames the family reads, ``flow_size`` resize, grey), ``flow``
  (its configured method: one pair, or first -> every later frame for SHCNN), ``strain`` (``uvs``
  only), ``encode`` (eye mask, [u, v, strain] / flow channels / HSI / resized clip, the model's
  input tensor), then ``model_torch`` (PyTorch eager) and ``model_onnx`` (onnxruntime) on the same
  input, plus ``flow_reference``: the same flows by ``tvl1_opencv`` (one pair timed, times the number
  of pairs: OpenCV computes pairs one after another). The inference path builds ``x`` only, so
  ``apex_plus_one`` (the training copy ``x_aug``) is off.

The reference flow takes 0.2-0.3 s per pair, so it is timed in the first ``min(repeats, 5)`` runs
only. Flows get grey frames on a 0..1 scale (:func:`~mertk.preprocess.features.base.flow_grey`, the grey
``prepare_frames`` gives its flows).
The streaming loop's sustained frames/s (``stream``) comes from
:func:`mertk.realtime.predict.measure_stream_fps` on the whole clip (onset..offset).

Figures are the median and the 90th percentile over the repeats after one untimed warm-up pass.
A model's ``total`` is the sum of its stages' medians, ``with_face`` and ``without_face`` (the
streaming case); ``reference`` swaps the flow stage's median for ``flow_reference``'s, measured in
the same run, so ``speedup`` (reference total / ours) is a same-run ratio. The ``target`` is the
issue's: the LAENet path crop -> flow -> strain -> uvs -> LAENet at most 10 ms per clip.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import cv2
import numpy as np
import torch

from ..errors import MertkError, frame_size

REFERENCE_FLOW = "tvl1_opencv"
DEFAULT_MODELS = ("laenet", "ststnet", "shallow_1conv_single", "off_apexnet", "shcnn_hsi", "c3d_vgg")
REFERENCE_REPEATS = 5  # OpenCV's DualTVL1 is slow: its median is taken over the first 5 runs
TARGET_MODEL = "laenet"
TARGET_MS = 10.0
TARGET_STAGES = ("crop", "flow", "strain", "encode")
STAGE_ORDER = ("decode", "face", "crop", "flow", "strain", "encode")


# ---------------------------------------------------------------------------------------------
# the clip
# ---------------------------------------------------------------------------------------------


@contextmanager
def _synth_root(data: str | Path | None, seed: int) -> Iterator[Path]:
    if data is not None:
        yield Path(data)
        return
    from ..synth import synthesize

    with tempfile.TemporaryDirectory(prefix="mertk-bench-") as tmp:
        out = Path(tmp) / "synth"
        synthesize(out, subjects=1, seed=seed, progress=False)
        yield out


def bench_clip(root: str | Path) -> dict[str, Any]:
    """The first CASME II micro clip of a synthetic benchmark: frame paths (onset..apex), all frame paths, metadata.

    Raises:
        DataError: ``ground_truth.json`` is missing or lists no CASME II clip.
    """
    from ..data.base import numbered_frames
    from ..errors import DataError

    gt = Path(root) / "ground_truth.json"
    if not gt.is_file():
        raise DataError(gt, "missing; is this a synthetic benchmark written by `mertk synth`?")
    entries = [c for c in json.loads(gt.read_text()).get("clips", []) if c.get("dataset") == "CASME2"]
    if not entries:
        raise DataError(gt, "no CASME2 micro clip listed")
    entry = entries[0]
    paths, numbers = numbered_frames(Path(root) / entry["frame_dir"])
    by_number = dict(zip(numbers, paths))
    onset, apex = int(entry["onset"]), int(entry["apex"])
    missing = [n for n in range(onset, apex + 1) if n not in by_number]
    if missing:
        raise DataError(Path(root) / entry["frame_dir"], f"frame {missing[0]} of onset..apex {onset}..{apex} not found")
    return {"name": f"CASME2/{entry['subject']}/{entry['clip']}", "paths": [by_number[n] for n in range(onset, apex + 1)],
            "all_paths": list(paths), "apex_index": apex - onset, "fps": float(entry["fps"])}


# ---------------------------------------------------------------------------------------------
# one model's path, stage by stage
# ---------------------------------------------------------------------------------------------


def _benchable(family: Any) -> bool:
    """Bench runs clip families whose input needs nothing fitted on training folds."""
    return family.clips and not family.pixel_mask


def model_config(model: str, flow_size: int | None = None):
    """The :class:`~mertk.preprocess.pipeline.PrepareConfig` a recipe would give ``model`` (with the
    fields its input shape fixes, e.g. a clip's frame count), for inference (no ``apex_plus_one``),
    with ``flow_size`` overridden when given."""
    from .. import models  # noqa: F401  (registers the models)
    from ..preprocess.features import FEATURES, feature_family
    from ..preprocess.pipeline import config_for_model
    from ..registry import MODELS

    spec = MODELS.entry(model).meta["input_spec"]
    if spec.feature not in FEATURES or not _benchable(feature_family(spec.feature)):
        names = ", ".join(e.name for e in FEATURES if _benchable(e.obj))
        raise MertkError(f"bench: model {model} takes {spec.feature!r}; bench runs models of: {names}")
    derived: dict[str, Any] = {**feature_family(spec.feature).spec_config(spec.shape), "apex_plus_one": False}
    if flow_size is not None:
        derived["flow_size"] = flow_size
    return config_for_model(model, **derived)


def checkpoint_stub(model: str, config: Any):
    """A weightless :class:`Checkpoint` so that :func:`model_inputs` builds the input as ``predict`` does."""
    from ..engine.checkpoint import Checkpoint

    inference = "vote" if config.family.per_frame else "none"
    return Checkpoint(model=model, model_kwargs={}, classes=(), label_map="", features=config.as_dict(),
                      inference=inference, state_dict={})


class StageClock:
    """Accumulates wall milliseconds per stage name."""

    def __init__(self) -> None:
        self.ms: dict[str, float] = {}

    @contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.ms[stage] = self.ms.get(stage, 0.0) + (time.perf_counter() - start) * 1000


def timed_features(frames: np.ndarray, points: np.ndarray, apex_index: int, config: Any,
                   clock: Callable[[str], Any] | None = None) -> np.ndarray:
    """The model feature ``x`` as bench times it: ``prepare_frames(frames, config, apex_index=...,
    landmarks=points)["x"]`` with ``clock`` as its per-stage timer."""
    from ..preprocess.pipeline import prepare_frames

    return prepare_frames(frames, config, apex_index=apex_index, landmarks=points, timer=clock or StageClock())["x"]


# ---------------------------------------------------------------------------------------------
# the benchmark
# ---------------------------------------------------------------------------------------------


def _summary(values: Sequence[float]) -> dict[str, float]:
    a = np.asarray(values, dtype=np.float64)
    return {"median_ms": round(float(np.median(a)), 4), "p90_ms": round(float(np.percentile(a, 90)), 4)}


def _stream_fps(frames: np.ndarray, points: np.ndarray, runs: int) -> dict[str, Any]:
    """Sustained frames/s of the streaming loop (``mertk.realtime.predict.measure_stream_fps``)."""
    from .predict import measure_stream_fps

    fps = [measure_stream_fps(frames, points) for _ in range(runs)]
    return {"fps_median": round(float(np.median(fps)), 2), "fps_min": round(float(min(fps)), 2), "runs": runs,
            "frames": len(frames)}


def bench(*, repeats: int = 50, models: Sequence[str] | None = None, flows: Sequence[str] | None = None,
          threads: int = 2, seed: int = 0, flow_size: int | None = None, data: str | Path | None = None) -> dict:
    """Per-stage latency (median and p90 ms) of the inference path; see the module docstring.

    Args:
        repeats: timed runs of every stage (after one warm-up run).
        models: registered models (default: one per family, :data:`DEFAULT_MODELS`).
        flows: flow methods of the flow table (default: every registered one); the reference
            ``tvl1_opencv`` is always added.
        threads: torch, OpenCV and onnxruntime threads (our ``tvl1`` keeps its own ``threads``
            parameter, 1 by default, as in the pipeline).
        seed: seed of the synthetic benchmark written when ``data`` is not given.
        flow_size: override every model's ``PrepareConfig.flow_size`` (default: the model's).
        data: an existing ``mertk synth`` folder (default: a one-subject one in a temporary folder).

    Returns:
        A JSON-serialisable dict: ``clip``, ``settings``, ``stages`` (decode, face), ``flows`` (per
        method, with ``ratio_to_reference``), ``models`` (per model: ``stages``, ``total``,
        ``reference``), ``target``, ``stream``.
    """
    from ..deploy import OnnxClassifier, export_onnx
    from ..engine.checkpoint import model_inputs
    from ..engine.inputs import aggregate
    from ..models import create_model
    from ..preprocess.crop import crop_clip, get_box
    from ..preprocess.features.base import flow_grey
    from ..preprocess.face import face_landmarks
    from ..preprocess.flow import get_flow_method
    from ..preprocess.pipeline import read_frames
    from ..registry import FLOWS

    if repeats < 1:
        raise MertkError(f"bench: repeats must be >= 1, got {repeats}")
    if threads < 1:
        raise MertkError(f"bench: threads must be >= 1, got {threads}")
    models = list(dict.fromkeys(models or DEFAULT_MODELS))
    flow_names = list(dict.fromkeys([*(flows or FLOWS.names()), REFERENCE_FLOW]))
    methods = {name: get_flow_method(name) for name in flow_names}  # unknown names list the valid ones
    configs = {m: model_config(m, flow_size) for m in models}
    old_torch, old_cv = torch.get_num_threads(), cv2.getNumThreads()
    torch.set_num_threads(threads)
    cv2.setNumThreads(threads)
    try:
        with _synth_root(data, seed) as root, tempfile.TemporaryDirectory(prefix="mertk-bench-onnx-") as tmp:
            clip = bench_clip(root)
            nets, onnx = {}, {}
            for m in models:
                torch.manual_seed(seed)
                nets[m] = create_model(m).eval()
                onnx[m] = OnnxClassifier(export_onnx(nets[m], Path(tmp) / f"{m}.onnx"), threads=threads)
            stubs = {m: checkpoint_stub(m, configs[m]) for m in models}
            shared: dict[str, list[float]] = {"decode": [], "face": []}
            flow_ms: dict[str, list[float]] = {f: [] for f in flow_names}
            per_model: dict[str, dict[str, list[float]]] = {m: {} for m in models}
            samples: dict[str, int] = {}
            flow_pairs: dict[str, int] = {}
            for run in range(repeats + 1):  # run 0 warms up (lazy model loads, allocations) and is dropped
                keep = run > 0
                t0 = time.perf_counter()
                frames = read_frames(clip["paths"])
                t1 = time.perf_counter()
                _, points = face_landmarks(frames[0], source=clip["name"])
                t2 = time.perf_counter()
                if keep:
                    shared["decode"].append((t1 - t0) * 1000)
                    shared["face"].append((t2 - t1) * 1000)
                box = get_box("laenet", points, frames[0].shape)
                pair = flow_grey(np.ascontiguousarray(crop_clip(frames[[0, clip["apex_index"]]], box)))
                with_reference = 1 <= run <= REFERENCE_REPEATS  # not in the warm-up: OpenCV has no lazy setup
                for name in flow_names:
                    if name == REFERENCE_FLOW and not with_reference:
                        continue
                    start = time.perf_counter()
                    methods[name].batch([pair[0]], [pair[1]])
                    if keep:
                        flow_ms[name].append((time.perf_counter() - start) * 1000)
                # The reference's time for one pair per distinct flow input of this run (crop, flow
                # size); the flow table's pair is the apex models' input at the crop's resolution.
                reference_ms = {("laenet", 0): flow_ms[REFERENCE_FLOW][-1]} if with_reference and keep else {}
                for m in models:
                    clock = StageClock()
                    with torch.no_grad():
                        x = timed_features(frames, points, clip["apex_index"], configs[m], clock)
                        with clock("encode"):
                            arrays = {"x": x, "apex_index": np.array(clip["apex_index"] - 1)}
                            inputs, apex = model_inputs(stubs[m], arrays)
                        with clock("model_torch"):
                            probs = torch.softmax(nets[m](inputs), dim=1).numpy()
                            aggregate(probs, stubs[m].inference, apex)
                    with clock("model_onnx"):
                        aggregate(onnx[m](inputs.numpy()), stubs[m].inference, apex)
                    pairs = configs[m].family.flow_pairs(len(clip["paths"]), configs[m])
                    if configs[m].family.uses_flow and with_reference:
                        key = (configs[m].crop, configs[m].flow_size)
                        if key not in reference_ms:
                            ref_clock = StageClock()
                            one_pair = configs[m].replace(feature="flow_uv") if pairs > 1 else configs[m]
                            timed_features(frames, points, clip["apex_index"],
                                           one_pair.replace(flow=REFERENCE_FLOW, flow_params=()), ref_clock)
                            reference_ms[key] = ref_clock.ms["flow"]
                        clock.ms["flow_reference"] = reference_ms[key] * pairs
                    samples[m], flow_pairs[m] = len(inputs), pairs
                    if keep:
                        for stage, ms in clock.ms.items():
                            per_model[m].setdefault(stage, []).append(ms)
            stream_frames = read_frames(clip["all_paths"])
            _, stream_points = face_landmarks(stream_frames[0], source=clip["name"])
            stream = _stream_fps(stream_frames, stream_points, runs=max(1, min(repeats, 5)))
            crop_shape = [box.height, box.width]
    finally:
        torch.set_num_threads(old_torch)
        cv2.setNumThreads(old_cv)

    stages = {name: _summary(v) for name, v in shared.items()}
    ref_flow = _summary(flow_ms[REFERENCE_FLOW])["median_ms"]
    flow_table = {}
    for name, values in flow_ms.items():
        s = _summary(values)
        flow_table[name] = {**s, "ratio_to_reference": round(ref_flow / s["median_ms"], 3)}
    model_rows = {m: _model_row(m, configs[m], per_model[m], stages, samples[m], flow_pairs[m]) for m in models}
    target = None
    if TARGET_MODEL in model_rows:
        row = model_rows[TARGET_MODEL]["stages"]
        path_ms = {k.removeprefix("model_"): round(sum(row[s]["median_ms"] for s in TARGET_STAGES) + row[k]["median_ms"], 4)
                   for k in ("model_torch", "model_onnx")}
        target = {"model": TARGET_MODEL, "stages": [*TARGET_STAGES, "model"], "limit_ms": TARGET_MS, "path_ms": path_ms,
                  "flow": configs[TARGET_MODEL].flow, "flow_size": configs[TARGET_MODEL].flow_size,
                  "met": bool(min(path_ms.values()) <= TARGET_MS)}
    return {
        "clip": {"name": clip["name"], "frames": len(clip["paths"]), "frame_size": list(frames.shape[1:3]),
                 "fps": clip["fps"], "laenet_crop": crop_shape},
        "settings": {"repeats": repeats, "threads": threads, "seed": seed, "flow_size": flow_size,
                     "reference_flow": REFERENCE_FLOW, "machine": platform.processor() or platform.machine(),
                     "python": sys.version.split()[0], "torch": torch.__version__, "opencv": cv2.__version__},
        "stages": stages,
        "flows": flow_table,
        "models": model_rows,
        "target": target,
        "stream": stream,
    }


def _model_row(model: str, config: Any, times: Mapping[str, list[float]], shared: Mapping[str, dict], samples: int,
               pairs: int) -> dict:
    stages = {**shared, **{s: _summary(v) for s, v in times.items() if s != "flow_reference"}}
    order = [s for s in STAGE_ORDER if s in stages]
    row: dict[str, Any] = {"feature": config.feature, "flow": config.flow if config.family.uses_flow else None,
                           "flow_size": config.flow_size, "flow_pairs": pairs,
                           "samples": samples, "stages": stages, "total": {}}
    for engine in ("model_torch", "model_onnx"):
        with_face = sum(stages[s]["median_ms"] for s in order) + stages[engine]["median_ms"]
        row["total"][engine.removeprefix("model_")] = {
            "stages": [*order, engine], "with_face_ms": round(with_face, 4),
            "without_face_ms": round(with_face - stages["face"]["median_ms"], 4)}
    if "flow_reference" in times:
        ref = _summary(times["flow_reference"])
        ours = row["total"]["onnx"]["without_face_ms"]
        swapped = ours - stages["flow"]["median_ms"] + ref["median_ms"]
        row["reference"] = {"flow": REFERENCE_FLOW, "flow_ms": ref, "runs": len(times["flow_reference"]),
                            "total_without_face_ms": round(swapped, 4),
                            "speedup": round(swapped / ours, 3)}
    return row


# ---------------------------------------------------------------------------------------------
# command line
# ---------------------------------------------------------------------------------------------


def format_bench(result: dict) -> str:
    """:func:`bench`'s result as text tables (milliseconds, median / p90)."""
    s, c = result["settings"], result["clip"]
    header = (f"mertk bench: {c['name']} ({c['frames']} frames onset..apex, {frame_size(*c['frame_size'])}, "
              f"LAENet crop {frame_size(*c['laenet_crop'])}); {s['repeats']} repeats, {s['threads']} threads; "
              f"median / p90 ms ({s['reference_flow']}: first {min(s['repeats'], REFERENCE_REPEATS)} runs)")
    lines = [header, ""]
    for name, v in result["stages"].items():
        lines.append(f"  {name:<22} {v['median_ms']:9.3f} / {v['p90_ms']:9.3f}")
    lines += ["", f"flow onset->apex on the LAENet crop (ratio = {s['reference_flow']} median / method median):"]
    for name, v in result["flows"].items():
        lines.append(f"  {name:<22} {v['median_ms']:9.3f} / {v['p90_ms']:9.3f}   x{v['ratio_to_reference']:.2f}")
    for m, row in result["models"].items():
        flow = f"flow {row['flow']}" + (f" at {row['flow_size']}px" if row["flow_size"] else "") if row["flow"] else "no flow"
        lines += ["", f"{m} ({row['feature']}, {flow}, {row['samples']} sample(s)):"]
        for stage in [t for t in row["stages"] if t not in result["stages"]]:
            v = row["stages"][stage]
            lines.append(f"  {stage:<22} {v['median_ms']:9.3f} / {v['p90_ms']:9.3f}")
        for engine, t in row["total"].items():
            lines.append(f"  total ({engine:<5})          {t['with_face_ms']:9.3f} with face, {t['without_face_ms']:.3f} without")
        if "reference" in row:
            r = row["reference"]
            lines.append(f"  with {r['flow']} instead: {r['total_without_face_ms']:.3f} without face "
                         f"(flow {r['flow_ms']['median_ms']:.3f}); ours is x{r['speedup']:.2f} faster")
    t = result["target"]
    if t:
        size = f"flow_size {t['flow_size']}" if t["flow_size"] else "flow at the crop's resolution"
        lines += ["", (f"target: {t['model']} path ({' -> '.join(t['stages'])}, {t['flow']}, {size}) <= {t['limit_ms']:.0f} ms: "
                       f"{t['path_ms']['onnx']:.2f} ms (onnx), {t['path_ms']['torch']:.2f} ms (torch) -> "
                       f"{'met' if t['met'] else 'NOT met'}")]
    st = result["stream"]
    if st.get("fps_median") is not None:
        lines.append(f"streaming loop (track, crop, grey): {st['fps_median']:.1f} frames/s median over {st['runs']} run(s) "
                     f"of {st['frames']} frames")
    else:
        lines.append(f"streaming loop: not measured ({st['note']})")
    return "\n".join(lines)


def add_bench_parser(sub: Any) -> argparse.ArgumentParser:
    """Add ``mertk bench [--repeats N] [--models A,B] [--flows A,B] [--threads T] [--flow-size S] [--json]``."""
    text = "latency of the inference path, stage by stage, beside OpenCV's TV-L1 in the same run"
    p = sub.add_parser("bench", help=text, description=text)
    p.add_argument("--repeats", type=int, default=50, help="timed runs per stage (default 50)")
    p.add_argument("--models", default=None, help=f"comma-separated models (default {','.join(DEFAULT_MODELS)})")
    p.add_argument("--flows", default=None, help="comma-separated flow methods (default all; tvl1_opencv always)")
    p.add_argument("--threads", type=int, default=2, help="torch / OpenCV / onnxruntime threads (default 2)")
    p.add_argument("--flow-size", type=int, default=None, help="override PrepareConfig.flow_size of every model")
    p.add_argument("--seed", type=int, default=0, help="seed of the synthetic clip (default 0)")
    p.add_argument("--synth", type=Path, default=None, help="an existing `mertk synth` folder (default: a temporary one)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    return p


def _names(text: str | None) -> list[str] | None:
    return None if text is None else [t.strip() for t in text.split(",") if t.strip()]


def cmd_bench(args: argparse.Namespace) -> int:
    """Run :func:`bench` and print its tables (or JSON)."""
    result = bench(repeats=args.repeats, models=_names(args.models), flows=_names(args.flows), threads=args.threads,
                   seed=args.seed, flow_size=args.flow_size, data=args.synth)
    print(json.dumps(result, indent=2) if args.json else format_bench(result))
    return 0
