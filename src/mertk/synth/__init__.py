"""The synthetic micro-expression benchmark (SPEC section 3), written in the native dataset layouts.

:func:`synthesize` writes CASME II-, SAMM-, SMIC-HS-, CASME-, CAS(ME)^3-, 4DME-, MMEW-, CK+-, FER2013- and
FERPlus-format copies built from face photos shipped inside installed packages, plus the ground truth (labels, onset/apex/offset, AUs,
blinks, apex displacement fields) documented in ``docs/synthetic.md``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from ..errors import MertkError
from .layouts import CK_STREAM, FER_STREAM, MICRO, SIZES, write_ckplus, write_fer, write_ferplus, write_micro

__all__ = ["synthesize", "GT_FORMAT"]

GT_FORMAT = "mertk-synth-ground-truth/1"
MARKER = ".mertk-synth"
OWNED = ("CASME2", "SAMM", "SMIC", "CASME", "CASME3", "4DME", "MMEW", "CK+", "FER2013", "SAMM_longvideos", "ground_truth", "ground_truth.json", "README.txt", MARKER)

README = """\
mertk synthetic micro-expression benchmark (seed {seed}, size {size}, {subjects} subjects per dataset)

Written by `mertk synth`. Every face is a synthetic subject derived from public-domain photos that
ship with scikit-image (astronaut) and Matplotlib (grace_hopper), animated with action-unit
displacement fields. Nothing here comes from a licensed dataset; the folders only copy the native
layouts so that the mertk loaders read them exactly as they read the real datasets:

  CASME2/   CASME2-coding-20140508.xlsx, CASME2_RAW_selected/subNN/<Filename>/imgN.jpg (200 fps)
  SAMM/     SAMM_Micro_FACS_Codes_v2.xlsx, SAMM/NNN/NNN_i_c/NNN_NNNNN.jpg (200 fps, grey)
  SMIC/     HS/sN/micro/<label>/sN_xx_NN/imageNNNNNN.bmp (100 fps)
  CASME/    CASME_A_Section_coding.xlsx, CASME_B_Section_coding.xlsx,
            CASME_A|B/subNN/<Filename>/<Filename>-N.jpg (60 fps)
  CASME3/   cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx, spNO.N/<letter>/color/N.jpg (30 fps, two clips
            per video letter)
  4DME/     4DME_Labelling_Micro_release v1.xlsx, gray_micro/SNN/SNN_NN/imgN.jpg (60 fps, grey)
  MMEW/     MMEW_Micro_Exp.xlsx, Micro_Expression/<emotion>/SNN_NN/N.jpg (90 fps)
  CK+/      cohn-kanade-images/SNNN/NNN/*.png and Emotion/SNNN/NNN/*_emotion.txt (30 fps, macro)
  FER2013/  fer2013.csv (48x48 grey, emotion 0..6, Usage) and fer2013new.csv (FERPlus votes,
            aligned row by row)

ground_truth.json and ground_truth/<dataset>/<subject>/<clip>.npz hold the truth: labels,
onset/apex/offset, action units, blinks, drift and the exact onset->apex displacement field
(see docs/synthetic.md in the mertk sources).
"""


def _prepare(out: Path) -> None:
    """Make ``out`` ready: create it, or clear a previous synthetic output; refuse anything else."""
    if out.exists() and not out.is_dir():
        raise MertkError(f"{out}: output exists and is not a directory")
    if out.is_dir() and any(out.iterdir()):
        if not (out / MARKER).is_file():
            raise MertkError(f"{out}: output folder is not empty and holds no previous synthetic benchmark; "
                             "choose an empty or new folder")
        for name in OWNED:
            path = out / name
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
    out.mkdir(parents=True, exist_ok=True)


def synthesize(out: str | Path, *, subjects: int = 12, seed: int = 0, size: str = "small",
               long_videos: int = 0, progress: bool = True) -> dict[str, Any]:
    """Write the synthetic benchmark under ``out``; returns a summary.

    Args:
        out: output folder; must be new, empty, or a previous ``synthesize`` output (replaced).
        subjects: distinct synthetic subjects per dataset copy (each person is in one dataset only).
        seed: random seed; the same seed gives byte-identical files.
        size: ``"small"`` (the demo's: 3 clips per subject and dataset, short clips), ``"medium"`` or
            ``"large"`` (more clips per subject, longer clips, more FER2013 images).
        long_videos: also write this many long recordings (one per extra subject) with known micro-
            and macro-expression intervals in the SAMM long-video layout (``SAMM_longvideos/``), the
            spotting ground truth for ``mertk predict``.
        progress: show a progress bar.

    Returns:
        ``{"out", "datasets": {name: clips or images}, "ground_truth": path, "subjects", "seed", "size"}``;
        ``datasets`` holds CASME2, SAMM, SMIC, CASME, CASME3, 4DME, MMEW, CK+ (clips), FER2013 and FERPlus (csv rows).
    """
    if size not in SIZES:
        raise MertkError(f"unknown size {size!r}; choose from {', '.join(SIZES)}")
    if long_videos < 0:
        raise MertkError(f"--long must be at least 0 (got {long_videos})")
    if subjects < 1:
        raise MertkError(f"--subjects must be at least 1 (got {subjects})")
    out = Path(out).expanduser()
    _prepare(out)
    (out / MARKER).write_text(json.dumps({"format": GT_FORMAT, "seed": seed, "size": size}) + "\n")
    preset = SIZES[size]

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    total = subjects * (len(MICRO) * preset.micro_clips + preset.ckplus_sequences + 1)
    columns = (TextColumn("[bold]synth[/] {task.description:<8}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    clips: list[dict] = []
    people: list[dict] = []
    datasets: dict[str, int] = {}
    with Progress(*columns, disable=not progress, transient=True) as bar:
        task = bar.add_task("", total=total)

        def tick() -> None:
            bar.advance(task)

        for name, spec in MICRO.items():
            bar.update(task, description=name)
            got, who = write_micro(out, spec, subjects, preset, seed, tick)
            clips += got
            people += who
            datasets[name] = len(got)
        bar.update(task, description="CK+")
        got, who = write_ckplus(out, CK_STREAM, subjects, preset, seed, tick)
        clips += got
        people += who
        datasets["CK+"] = len(got)
        bar.update(task, description="FER2013")
        images, who = write_fer(out, FER_STREAM, subjects, preset, seed, tick)
        people += who
        datasets["FER2013"] = len(images)
        images, unclear = write_ferplus(out, images, seed)
        datasets["FERPlus"] = len(images)
        if long_videos:
            from .long import write_long_videos

            bar.update(task, description="long")
            long = write_long_videos(out, subjects=long_videos, seed=seed)
            datasets["SAMM_longvideos"] = long["events"]

    gt_path = out / "ground_truth.json"
    truth = {
        "format": GT_FORMAT, "seed": seed, "size": size, "subjects_per_dataset": subjects,
        "datasets": {
            **{name: {"root": name, "fps": spec.fps, "frame_size": list(spec.frame), "grey": spec.grey,
                      "clips": datasets[name]} for name, spec in MICRO.items()},
            "CK+": {"root": "CK+", "fps": 30.0, "frame_size": [240, 200], "grey": True, "clips": datasets["CK+"]},
            "FER2013": {"root": "FER2013", "frame_size": [48, 48], "grey": True, "images": datasets["FER2013"]},
            "FERPlus": {"root": "FER2013", "annotation": "FER2013/fer2013new.csv", "pixels": "FER2013/fer2013.csv",
                        "images": datasets["FERPlus"], "unclear": unclear},
        },
        "subjects": people,
        "clips": clips,
        "images": images,
    }
    gt_path.write_text(json.dumps(truth, indent=1) + "\n")
    (out / "README.txt").write_text(README.format(seed=seed, size=size, subjects=subjects))
    return {"out": str(out), "datasets": datasets, "ground_truth": str(gt_path), "subjects": subjects,
            "seed": seed, "size": size}
