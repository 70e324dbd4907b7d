"""Long synthetic recordings holding micro- and macro-expressions at known intervals (spotting truth).

:func:`write_long_videos` writes recordings in the layout of the SAMM long-video release (SAMM-LV,
Yap et al. 2020, the MEGC 2019-2021 spotting data) under ``out/SAMM_longvideos/``::

    SAMM_LongVideos_V1_Release.xlsx   preamble rows, then Subject, Filename (006_1_1 = video 006_1,
                                      event 1), Inducement Code, Onset, Apex, Offset, Duration,
                                      Type ("Micro - 1/2" or "Macro"), Action Units, Notes
    006_1/006_1_00001.jpg ...         the frames of video 006_1 (1-based frame numbers, grey JPEG)
    006_1.mp4                         the same frames encoded (MPEG-4 part 2), for video input
    ground_truth.json                 per video: fps, frames, events (onset/apex/offset as in the
                                      xlsx, type, AUs, objective class, MEGC 2019 class), blinks,
                                      drift, noise, JPEG quality

Each recording shows one synthetic subject (:func:`~mertk.synth.faces.make_subject`) at
``FPS`` frames per second for ``FRAMES`` frames, with 2-4 micro-expressions (0.1-0.5 s,
0.35-1.9 px, the amplitudes of the micro clips of :mod:`.layouts`) and 1-2 macro-expressions
(0.6-1.5 s, 3-6 px) at non-overlapping intervals, each a SAMM action-unit program
(:data:`~mertk.synth.actions.PROGRAMS`) rendered by :func:`~mertk.synth.render.render_frames`
with a raised-cosine rise and fall. The distractors are those of the short clips, spread over the
recording: 2-4 eye blinks (kept 0.1 s away from the events, so they are unannotated movements a
spotter must ignore), a slow head drift of 0.5-2 px with a wobble, lighting flicker, sensor noise
and JPEG. The same seed gives byte-identical files.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..errors import MertkError
from .fake.long import LONG_COLUMNS, LONG_PREAMBLE, LONG_ROOT, LONG_XLSX, MACRO_TYPE, MICRO_TYPE
from .fake.micro import _write_table
from .actions import PROGRAMS, Program, normalised_field, objective_class
from .layouts import _draw_weights, _subject, _write_image, freeze_xlsx
from .render import Distractors, Timeline, render_frames

__all__ = ["write_long_videos", "LONG_ROOT", "LONG_XLSX", "LONG_COLUMNS", "LONG_FORMAT", "FPS", "FRAMES"]

LONG_FORMAT = "mertk-synth-long-videos/1"

FPS = 100.0
FRAMES = 800
FRAME_SIZE = (240, 200)  # (H, W): the LAENet face box is then about 170 x 140
FACE_WIDTH = 0.68
SUBJECT_STREAM = 5  # the k of layouts._subject: other copies use 0..4, so no person is shared
MICRO_S, MICRO_PX = (0.1, 0.5), (0.35, 1.9)
MACRO_S, MACRO_PX = (0.6, 1.5), (3.0, 6.0)
MIN_GAP_S = 0.3  # neutral time between events (and before the first, after the last)
BLINK_S, BLINK_CLEAR_S = (0.1, 0.15), 0.1


def _plan_events(rng: np.random.Generator, n_frames: int, fps: float) -> list[dict]:
    """Draw 2-4 micro and 1-2 macro events and place them, in random order, without overlap."""
    kinds = ["micro"] * int(rng.integers(2, 5)) + ["macro"] * int(rng.integers(1, 3))
    rng.shuffle(kinds)
    lengths = [max(int(round(rng.uniform(*(MICRO_S if k == "micro" else MACRO_S)) * fps)), 6) for k in kinds]
    gap = int(round(MIN_GAP_S * fps))
    slack = n_frames - sum(lengths) - gap * (len(kinds) + 1)
    if slack < 0:
        raise MertkError(f"long video: {n_frames} frames cannot hold events of {sum(lengths)} frames")
    extra = np.floor(rng.dirichlet(np.ones(len(kinds) + 1)) * slack).astype(int)
    programs = PROGRAMS["SAMM"]
    shares = np.array([p.share for p in programs], np.float64)
    events, start = [], 0
    for kind, length, pad in zip(kinds, lengths, extra):
        start += gap + int(pad)
        program: Program = programs[int(rng.choice(len(programs), p=shares / shares.sum()))]
        aus = program.variants[int(rng.integers(len(program.variants)))]
        amplitude = float(rng.uniform(*(MICRO_PX if kind == "micro" else MACRO_PX)))
        apex = start + int(round(rng.uniform(0.3, 0.6) * (length - 1)))
        events.append({"kind": kind, "onset": start, "apex": apex, "offset": start + length - 1, "program": program,
                       "aus": aus, "weights": _draw_weights(aus, rng), "amplitude": amplitude})
        start += length
    return events


def _distractors(events: list[dict], n_frames: int, fps: float, rng: np.random.Generator) -> Distractors:
    """Drift, blinks away from the events, flicker and noise for a whole recording."""
    t = np.arange(n_frames) / fps
    direction, total = rng.uniform(0, 2 * np.pi), rng.uniform(0.5, 2.0)
    ramp = 0.5 - 0.5 * np.cos(np.pi * t / t[-1])  # a slow, smooth sway of the head
    wobble = 0.08 * np.sin(2 * np.pi * rng.uniform(0.3, 1.0) * t + rng.uniform(0, 2 * np.pi))
    drift = np.stack([np.cos(direction) * total * ramp + wobble, np.sin(direction) * total * ramp], axis=1)
    clear = int(round(BLINK_CLEAR_S * fps))
    busy = np.zeros(n_frames, bool)
    for e in events:
        busy[max(e["onset"] - clear, 0): e["offset"] + clear + 1] = True
    blink = np.zeros(n_frames)
    for _ in range(int(rng.integers(2, 5))):
        length = max(3, int(round(rng.uniform(*BLINK_S) * fps)))
        starts = [s for s in range(n_frames - length) if not busy[max(s - clear, 0): s + length + clear].any()]
        if not starts:
            break
        s = int(starts[int(rng.integers(len(starts)))])
        k = np.arange(length)
        blink[s: s + length] = np.sin(np.pi * (k + 0.5) / length) ** 2
        busy[s: s + length] = True
    flicker = (1.0 + rng.uniform(0.002, 0.012) * np.sin(2 * np.pi * rng.uniform(8, 25) * t + rng.uniform(0, 6.3))
               + np.cumsum(rng.normal(0, 0.0005, n_frames)))
    return Distractors(drift, blink, flicker, float(rng.uniform(0.8, 2.2)), int(rng.integers(2**31)))


def _blink_intervals(blink: np.ndarray) -> list[list[int]]:
    """1-based [first, last] frame of each blink."""
    on = np.concatenate([[0], (blink > 0.05).astype(int), [0]])
    edges = np.flatnonzero(np.diff(on))
    return [[int(a) + 1, int(b)] for a, b in zip(edges[::2], edges[1::2])]


def _write_mp4(path: Path, frames: list[np.ndarray], fps: float) -> None:
    """Encode grey frames as MPEG-4 part 2 in an .mp4 (OpenCV's bundled FFmpeg, ``mp4v``)."""
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height), True)
    if not writer.isOpened():
        raise OSError(f"{path}: OpenCV cannot open an mp4v video writer")
    try:
        for frame in frames:
            writer.write(cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR))
    finally:
        writer.release()


def _prepare_root(root: Path) -> None:
    """Create ``root``, or clear a previous long-video output there; refuse a foreign folder."""
    if root.is_dir() and any(root.iterdir()):
        if not (root / "ground_truth.json").is_file():
            raise MertkError(f"{root}: folder is not empty and holds no previous synthetic long videos")
        shutil.rmtree(root)
    elif root.exists() and not root.is_dir():
        raise MertkError(f"{root}: exists and is not a directory")
    root.mkdir(parents=True, exist_ok=True)


def write_long_videos(out: str | Path, *, subjects: int, seed: int, videos_per_subject: int = 1,
                      progress: bool = False) -> dict[str, Any]:
    """Write synthetic long videos with known micro/macro intervals under ``out/SAMM_longvideos``.

    Args:
        out: folder that receives ``SAMM_longvideos/`` (replaced if it holds a previous output).
        subjects: number of synthetic subjects (006, 007, ...), one person each.
        seed: random seed; the same seed gives byte-identical files.
        videos_per_subject: recordings per subject (``006_1``, ``006_2``, ...).
        progress: show a progress bar.

    Returns:
        ``{"root", "annotation", "ground_truth", "videos", "events", "micro", "macro", "seed", "subjects"}``.
    """
    if subjects < 1:
        raise MertkError(f"long videos: subjects must be at least 1 (got {subjects})")
    if videos_per_subject < 1:
        raise MertkError(f"long videos: videos per subject must be at least 1 (got {videos_per_subject})")
    root = Path(out).expanduser() / LONG_ROOT
    _prepare_root(root)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    rows: list[dict] = []
    videos: list[dict] = []
    columns = (TextColumn("[bold]synth[/] long videos"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, disable=not progress, transient=True) as bar:
        task = bar.add_task("", total=subjects * videos_per_subject)
        for i in range(subjects):
            number = i + 6
            sid = f"{number:03d}"
            subject = _subject(sid, SUBJECT_STREAM, i, FRAME_SIZE, seed, face_width=FACE_WIDTH)
            for v in range(1, videos_per_subject + 1):
                name = f"{sid}_{v}"
                rng = np.random.default_rng([seed, SUBJECT_STREAM, i, v])
                events = _plan_events(rng, FRAMES, FPS)
                dist = _distractors(events, FRAMES, FPS, rng)
                quality = int(rng.integers(86, 95))
                fields = [normalised_field(subject.face, e["aus"], e["weights"], e["amplitude"], FRAME_SIZE)
                          for e in events]
                envelopes = np.zeros((len(events), FRAMES))
                for k, e in enumerate(events):
                    tl = Timeline(e["offset"] - e["onset"] + 1, 0, e["apex"] - e["onset"], e["offset"] - e["onset"])
                    envelopes[k, e["onset"]: e["offset"] + 1] = tl.envelope()
                frames = list(render_frames(subject, fields, envelopes, dist, grey=True))
                folder = root / name
                for n, frame in enumerate(frames, start=1):
                    _write_image(folder / f"{name}_{n:05d}.jpg", frame, quality)
                _write_mp4(root / f"{name}.mp4", frames, FPS)
                truth_events = []
                for k, e in enumerate(events, start=1):
                    onset, apex, offset = e["onset"] + 1, e["apex"] + 1, e["offset"] + 1
                    aus = "+".join(e["aus"])
                    rows.append({"Subject": sid, "Filename": f"{name}_{k}", "Inducement Code": v, "Onset": onset,
                                 "Apex": apex, "Offset": offset, "Duration": offset - onset + 1,
                                 "Type": MICRO_TYPE if e["kind"] == "micro" else MACRO_TYPE, "Action Units": aus,
                                 "Notes": None})
                    truth_events.append({
                        "filename": f"{name}_{k}", "type": e["kind"], "onset": onset, "apex": apex, "offset": offset,
                        "duration_s": round((offset - onset + 1) / FPS, 4), "aus": list(e["aus"]),
                        "emotion": e["program"].label, "objective_class": objective_class(e["aus"]),
                        "megc2019": e["program"].megc, "amplitude_px": round(e["amplitude"], 4),
                    })
                videos.append({
                    "video": name, "subject": sid, "fps": FPS, "frames": FRAMES, "frame_size": list(FRAME_SIZE),
                    "frame_dir": name, "mp4": f"{name}.mp4", "events": truth_events,
                    "blinks": _blink_intervals(dist.blink),
                    "drift_total_px": round(float(np.linalg.norm(dist.drift[-1] - dist.drift[0])), 4),
                    "flicker_max": round(float(np.abs(dist.flicker - 1).max()), 4),
                    "noise_sigma": round(dist.noise_sigma, 3), "jpeg_quality": quality,
                    "landmarks_first": np.round(subject.landmarks + dist.drift[0], 3).tolist(),
                })
                bar.advance(task)
    annotation = _write_table(root / LONG_XLSX, LONG_COLUMNS, [[r[c] for c in LONG_COLUMNS] for r in rows],
                              preamble=LONG_PREAMBLE)
    freeze_xlsx(annotation)
    gt_path = root / "ground_truth.json"
    gt_path.write_text(json.dumps({"format": LONG_FORMAT, "seed": seed, "fps": FPS, "frame_size": list(FRAME_SIZE),
                                   "grey": True, "videos": videos}, indent=1) + "\n")
    n_micro = sum(e["type"] == "micro" for v in videos for e in v["events"])
    return {"root": str(root), "annotation": str(annotation), "ground_truth": str(gt_path), "videos": len(videos),
            "events": len(rows), "micro": n_micro, "macro": len(rows) - n_micro, "seed": seed, "subjects": subjects}
