"""Write synthetic subjects and clips in each dataset's native layout, with ground-truth records.

The native files come from the writers in :mod:`mertk.synth.fake` (the same ones the fake test trees
use), so the loaders read synthetic and real copies through the same code.
"""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np

from .fake.micro import (
    casme2_clip_dir, casme2_frame_name, casme_clip_dir, casme_frame_name, samm_clip_dir, samm_frame_name,
    smic_clip_dir, smic_frame_name, write_casme2_coding, write_casme_coding, write_samm_coding,
)
from .fake.newer import (
    casme3_frame_name, casme3_video_dir, fourdme_clip_dir, fourdme_frame_name, mmew_clip_dir, mmew_frame_name,
    write_casme3_labels, write_fourdme_labels, write_mmew_labels, CASME3_SHEET, FOURDME_SHEET, MMEW_SHEET,
)
from .fake.static import FERPLUS_COLUMNS, write_ckplus_sequence, write_fer2013_csv, write_ferplus_csv
from .actions import Program, normalised_field, objective_class, plan_labels
from .faces import Subject, make_subject
from .render import Timeline, draw_distractors, render_clip, render_still

FIXED_DATE = "2014-05-08T00:00:00Z"
_ZIP_DATE = (2014, 5, 8, 0, 0, 0)


@dataclass(frozen=True)
class Size:
    """Clips per subject and clip durations of a ``--size`` preset."""

    micro_clips: int  # per subject, per micro dataset
    ckplus_sequences: int  # per subject
    fer_images: int  # per subject
    duration_s: tuple[float, float]  # onset -> offset of micro clips
    ckplus_frames: tuple[int, int]


SIZES = {
    "small": Size(3, 2, 16, (0.1, 0.22), (8, 14)),
    "medium": Size(6, 4, 60, (0.1, 0.35), (10, 24)),
    "large": Size(10, 6, 200, (0.1, 0.5), (12, 40)),
}


@dataclass(frozen=True)
class MicroSpec:
    """How one micro-expression dataset copy looks: frame size, colour, rate, file format.

    ``stream`` is the dataset's index in the random streams (``[seed, stream, ...]``): each copy draws
    from its own streams, so adding a copy leaves the files of the others unchanged for a seed.
    """

    name: str
    frame: tuple[int, int]
    grey: bool
    fps: float
    face_width: float
    jpeg: tuple[int, int] | None  # quality range, or None for lossless frames
    stream: int


# streams 3 and 4 are CK+ and FER2013, 6 the FERPlus votes
MICRO = {
    "CASME2": MicroSpec("CASME2", (192, 160), False, 200.0, 0.8, (88, 96), 0),
    "SAMM": MicroSpec("SAMM", (200, 200), True, 200.0, 0.68, (90, 97), 1),
    "SMIC": MicroSpec("SMIC", (128, 108), False, 100.0, 0.8, None, 2),
    # the real CASME has 640x480 frames at 60 fps; a small frame like the others
    "CASME": MicroSpec("CASME", (192, 160), False, 60.0, 0.8, (88, 96), 5),
    # the newer datasets, after the others (own streams): CAS(ME)^3 part A 30 fps colour, 4DME's grey
    # micro frames at 60 fps, MMEW at 90 fps; frames kept small like the others
    "CASME3": MicroSpec("CASME3", (192, 160), False, 30.0, 0.8, (88, 96), 7),
    "4DME": MicroSpec("4DME", (176, 176), True, 60.0, 0.72, (90, 97), 8),
    "MMEW": MicroSpec("MMEW", (192, 160), False, 90.0, 0.8, (88, 96), 9),
}
CK_STREAM, FER_STREAM, FERPLUS_STREAM = 3, 4, 6


def freeze_xlsx(path: Path) -> None:
    """Make an openpyxl workbook byte-reproducible: fixed document dates and zip entry times."""
    with zipfile.ZipFile(path) as src:
        entries = [(info.filename, src.read(info.filename)) for info in src.infolist()]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as dst:
        for name, data in entries:
            if name == "docProps/core.xml":
                data = re.sub(rb"(<dcterms:(?:created|modified)[^>]*>)[^<]*", rb"\g<1>" + FIXED_DATE.encode(), data)
            info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            dst.writestr(info, data)
    path.write_bytes(buf.getvalue())


def _write_image(path: Path, image: np.ndarray, jpeg_quality: int | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    bgr = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    params = [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality] if jpeg_quality is not None else []
    if not cv2.imwrite(str(path), bgr, params):
        raise OSError(f"{path}: could not write frame")


def _save_gt(out: Path, rel: str, rendered: Any, blink_frames: list[int]) -> None:
    path = out / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    # rounded to 1/4096 px (exact in float32) so that the archive compresses; far below any flow error
    flow = (np.rint(rendered.flow_apex * 4096.0) / 4096.0).astype(np.float32)
    np.savez_compressed(path, flow_apex=flow, landmarks=rendered.landmarks_onset,
                        blink=np.asarray(blink_frames, np.int32))


def _au_string(aus: tuple[str, ...]) -> str:
    return "+".join(aus)


def _draw_weights(aus: tuple[str, ...], rng: np.random.Generator) -> list[float]:
    return [float(rng.uniform(0.6, 1.0)) for _ in aus]


def _subject(name: str, k: int, i: int, frame: tuple[int, int], seed: int, **kw: Any) -> Subject:
    return make_subject(name, i + k, frame, np.random.default_rng([seed, k, i, 0]), **kw)


def write_micro(out: Path, spec: MicroSpec, n_subjects: int, size: Size, seed: int,
                tick: Callable[[], None]) -> tuple[list[dict], list[dict]]:
    """Write one micro dataset copy under ``out/<spec.name>``; returns (ground-truth clips, subjects).

    CASME is split like the real release: the first half of the subjects in section A
    (``CASME_A_Section_coding.xlsx``, frames under ``CASME_A/``), the rest in section B. CAS(ME)^3 puts
    two clips in each video letter (clips 1 and 2 in ``a``, 3 and 4 in ``b``, ...; the second 400 frames
    later), so clip ids are ``a@<onset>``.
    """
    root, k = out / spec.name, spec.stream
    plan = plan_labels(spec.name, n_subjects, size.micro_clips, np.random.default_rng([seed, k, 999]))
    clips: list[dict] = []
    subjects: list[dict] = []
    rows: list[dict] = []
    sections: dict[str, list[dict]] = {"A": [], "B": []}
    for i in range(n_subjects):
        number = i + 1 if spec.name != "SAMM" else i + 6
        sid = {"CASME2": f"sub{number:02d}", "SAMM": f"{number:03d}", "SMIC": f"s{number}",
               "CASME": f"sub{number:02d}", "CASME3": f"spNO.{number}", "4DME": f"S{number:02d}",
               "MMEW": f"S{number:02d}"}[spec.name]
        section = "A" if i < (n_subjects + 1) // 2 else "B"
        subject = _subject(sid, k, i, spec.frame, seed, face_width=spec.face_width)
        subjects.append({"dataset": spec.name, "subject": sid, **subject.params})
        used_names: set[str] = set()
        smic_index: dict[str, int] = {}
        for c, program in enumerate(plan[i]):
            rng = np.random.default_rng([seed, k, i, 1 + c])
            aus = program.variants[int(rng.integers(len(program.variants)))]
            amplitude = float(rng.uniform(0.35, 1.9))
            field = normalised_field(subject.face, aus, _draw_weights(aus, rng), amplitude, spec.frame)
            n = max(int(round(rng.uniform(*size.duration_s) * spec.fps)), 6) + 1
            apex = int(round(rng.uniform(0.3, 0.6) * (n - 1)))
            tl = Timeline(n, 0, apex, n - 1)
            dist = draw_distractors(tl, spec.fps, rng, blink_share=0.35)
            rendered = render_clip(subject, field, tl, dist, grey=spec.grey)
            quality = None if spec.jpeg is None else int(rng.integers(spec.jpeg[0], spec.jpeg[1] + 1))
            # all three are drawn for every copy, so that each stream stays as earlier versions drew it
            starts = (int(rng.integers(1, 300)), int(rng.integers(1000, 9000)), int(rng.integers(100000, 900000)))
            first = starts[{"CASME2": 0, "CASME": 0, "SAMM": 1, "SMIC": 2, "CASME3": 0, "4DME": 1, "MMEW": 0}[spec.name]]
            if spec.name == "CASME3":
                first += 400 * (c % 2)
            numbers = list(range(first, first + n))
            if spec.name == "CASME2":
                name = ""
                while not name or name in used_names:
                    name = f"EP{int(rng.integers(1, 20)):02d}_{int(rng.integers(1, 10)):02d}" + ("f" if rng.random() < 0.4 else "")
                folder = casme2_clip_dir(root, number, name)
                paths = [folder / casme2_frame_name(m) for m in numbers]
            elif spec.name == "CASME":
                name = ""
                while not name or name in used_names:
                    name = f"EP{int(rng.integers(1, 20)):02d}_{int(rng.integers(1, 10))}"
                folder = casme_clip_dir(root, number, name, section=section)
                paths = [folder / casme_frame_name(name, m) for m in numbers]
            elif spec.name == "SAMM":
                name = f"{number:03d}_{int(rng.integers(1, 8))}_{c + 1}"
                folder = samm_clip_dir(root, number, name)
                paths = [folder / samm_frame_name(number, m) for m in numbers]
            elif spec.name == "CASME3":
                name = f"{chr(ord('a') + c // 2)}@{first}"
                folder = casme3_video_dir(root, sid, name.split("@")[0])
                paths = [folder / casme3_frame_name(m) for m in numbers]
            elif spec.name == "4DME":
                name = f"{sid}_{c + 1:02d}"
                folder = fourdme_clip_dir(root, sid, name)
                paths = [folder / fourdme_frame_name(m) for m in numbers]
            elif spec.name == "MMEW":
                name = f"{sid}_{c + 1:02d}"
                folder = mmew_clip_dir(root, program.label, name)
                paths = [folder / mmew_frame_name(m) for m in numbers]
            else:
                smic_index[program.label] = smic_index.get(program.label, 0) + 1
                folder = smic_clip_dir(root, number, program.label, smic_index[program.label])
                name = folder.name
                paths = [folder / smic_frame_name(m) for m in numbers]
            used_names.add(name)
            for path, frame in zip(paths, rendered.frames):
                _write_image(path, frame, quality)
            onset, apex_n, offset = numbers[0], numbers[apex], numbers[-1]
            objective = objective_class(aus)
            if spec.name == "CASME2":
                rows.append({"Subject": number, "Filename": name, "OnsetFrame": onset, "ApexFrame": apex_n,
                             "OffsetFrame": offset, "Action Units": _au_string(aus),
                             "Estimated Emotion": program.label, "Objective Class": objective})
            elif spec.name == "SAMM":
                rows.append({"Subject": f"{number:03d}", "Filename": name, "Inducement Code": int(name.split("_")[1]),
                             "Onset Frame": onset, "Apex Frame": apex_n, "Offset Frame": offset,
                             "Type": "Micro - 1/2", "Action Units": _au_string(aus), "Notes": None,
                             "Estimated Emotion": program.label, "Objective Classes": objective})
            elif spec.name == "CASME":
                sections[section].append({"Subject": number, "Filename": name, "OnsetFrame": onset, "ApexFrame": apex_n,
                                          "OffsetFrame": offset, "Action Units": _au_string(aus),
                                          "Emotion": program.label})
            elif spec.name == "CASME3":
                rows.append({"Subject": sid, "Filename": name.split("@")[0], "Onset": onset, "Apex": apex_n,
                             "Offset": offset, "AU": _au_string(aus), "Objective class": objective,
                             "emotion": program.label})
            elif spec.name == "4DME":
                rows.append({"sub_ID": sid, "fold_name": name, "Emotion": program.label, "Onset": onset,
                             "Apex": apex_n, "Offset": offset, "AUs": _au_string(aus)})
            elif spec.name == "MMEW":
                rows.append({"Subject": sid, "Filename": name, "OnsetFrame": onset, "ApexFrame": apex_n,
                             "OffsetFrame": offset, "Action Units": _au_string(aus),
                             "Estimated Emotion": program.label, "remarks": None})
            gt_rel = f"ground_truth/{spec.name}/{sid}/{name}.npz"
            _save_gt(out, gt_rel, rendered, dist.blink_frames)
            clips.append(_clip_record(spec.name, sid, name, program, aus, objective, numbers, tl, spec.fps,
                                      rendered, dist, quality, folder.relative_to(out), gt_rel))
            tick()
    if spec.name == "CASME2":
        path = write_casme2_coding(root / "CASME2-coding-20140508.xlsx", rows, objective_class=True)
        freeze_xlsx(path)
    elif spec.name == "SAMM":
        path = write_samm_coding(root / "SAMM_Micro_FACS_Codes_v2.xlsx", rows)
        freeze_xlsx(path)
    newer = {"CASME3": (write_casme3_labels, CASME3_SHEET), "4DME": (write_fourdme_labels, FOURDME_SHEET),
             "MMEW": (write_mmew_labels, MMEW_SHEET)}
    if spec.name in newer:
        writer, sheet = newer[spec.name]
        freeze_xlsx(writer(root / sheet, rows))
    for section, members in sections.items():
        if members:
            freeze_xlsx(write_casme_coding(root / f"CASME_{section}_Section_coding.xlsx", members))
    return clips, subjects


def _clip_record(dataset: str, sid: str, name: str, program: Program, aus: tuple[str, ...], objective: int,
                 numbers: list[int], tl: Timeline, fps: float, rendered: Any, dist: Any, quality: int | None,
                 folder: Path, gt_rel: str) -> dict:
    blink_frames = [numbers[j] for j in dist.blink_frames]
    return {
        "dataset": dataset, "subject": sid, "clip": name, "label": program.label, "megc2019": program.megc,
        "objective_class": objective, "aus": list(aus), "fps": fps,
        "frames": [numbers[0], numbers[-1]], "onset": numbers[tl.onset], "apex": numbers[tl.apex],
        "offset": numbers[tl.offset], "amplitude_px": round(rendered.amplitude, 4),
        "drift_px": [round(float(v), 4) for v in dist.drift[tl.apex] - dist.drift[tl.onset]],
        "drift_total_px": round(float(np.linalg.norm(dist.drift[-1] - dist.drift[0])), 4),
        "blink": bool(blink_frames), "blink_frames": blink_frames,
        "flicker_max": round(float(np.abs(dist.flicker - 1).max()), 4), "noise_sigma": round(dist.noise_sigma, 3),
        "jpeg_quality": quality, "frame_dir": folder.as_posix(), "ground_truth": gt_rel,
    }


def write_ckplus(out: Path, k: int, n_subjects: int, size: Size, seed: int,
                 tick: Callable[[], None]) -> tuple[list[dict], list[dict]]:
    """CK+-style macro sequences (30 fps, neutral first frame to apex last frame), grey PNG."""
    root = out / "CK+"
    frame = (240, 200)
    plan = plan_labels("CK+", n_subjects, size.ckplus_sequences, np.random.default_rng([seed, k, 999]))
    clips, subjects = [], []
    for i in range(n_subjects):
        number = 10 + i
        sid = f"S{number:03d}"
        subject = _subject(sid, k, i, frame, seed, face_width=0.72)
        subjects.append({"dataset": "CK+", "subject": sid, **subject.params})
        for c, program in enumerate(plan[i]):
            rng = np.random.default_rng([seed, k, i, 1 + c])
            aus = program.variants[int(rng.integers(len(program.variants)))]
            field = normalised_field(subject.face, aus, _draw_weights(aus, rng), float(rng.uniform(3.0, 8.0)), frame)
            n = int(rng.integers(size.ckplus_frames[0], size.ckplus_frames[1] + 1))
            tl = Timeline(n, 0, n - 1, n - 1, macro=True)
            dist = draw_distractors(tl, 30.0, rng, blink_share=0.0)
            rendered = render_clip(subject, field, tl, dist, grey=True)
            # about a quarter of CK+ sequences carry no emotion file, as in the real release
            labelled = rng.random() >= 0.25
            folder = write_ckplus_sequence(root, number, c + 1, rendered.frames, int(program.label) if labelled else None)
            name = f"{sid}_{c + 1:03d}"
            gt_rel = f"ground_truth/CK+/{sid}/{name}.npz"
            _save_gt(out, gt_rel, rendered, [])
            record = _clip_record("CK+", sid, name, program, aus, objective_class(aus), list(range(1, n + 1)), tl,
                                  30.0, rendered, dist, None, folder.relative_to(out), gt_rel)
            record["labelled"] = labelled
            clips.append(record)
            tick()
    return clips, subjects


def write_fer(out: Path, k: int, n_subjects: int, size: Size, seed: int,
              tick: Callable[[], None]) -> tuple[list[dict], list[dict]]:
    """FER2013-style 48x48 grey faces at full expression, with pose jitter and JPEG, in ``fer2013.csv``."""
    frame = (96, 96)
    plan = plan_labels("FER2013", n_subjects, size.fer_images, np.random.default_rng([seed, k, 999]))
    items, subjects = [], []
    for i in range(n_subjects):
        sid = f"fer{i + 1:02d}"
        subject = _subject(sid, k, i, frame, seed, face_width=0.95, eye_row=0.4)
        subjects.append({"dataset": "FER2013", "subject": sid, **subject.params})
        for c, program in enumerate(plan[i]):
            rng = np.random.default_rng([seed, k, i, 1 + c])
            aus = program.variants[int(rng.integers(len(program.variants)))]
            if aus:
                field = normalised_field(subject.face, aus, _draw_weights(aus, rng), float(rng.uniform(2.0, 5.0)), frame)
                still = render_still(subject, field, grey=True)
            else:
                still = cv2.cvtColor(np.clip(subject.neutral, 0, 255), cv2.COLOR_RGB2GRAY)
            angle, scale = rng.uniform(-8, 8), rng.uniform(0.92, 1.08)
            m = cv2.getRotationMatrix2D((48 + rng.uniform(-3, 3), 48 + rng.uniform(-3, 3)), angle, scale)
            still = cv2.warpAffine(still, m, (96, 96), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
            small = cv2.resize(still, (48, 48), interpolation=cv2.INTER_AREA) + rng.normal(0, 1.5, (48, 48))
            ok, enc = cv2.imencode(".jpg", np.clip(np.rint(small), 0, 255).astype(np.uint8),
                                   [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(70, 92))])
            pixels = cv2.imdecode(enc, cv2.IMREAD_GRAYSCALE)
            items.append((program, aus, sid, pixels))
        tick()
    # interleave subjects so that every split holds every subject; ~80/10/10 as Kaggle's release
    order = sorted(range(len(items)), key=lambda j: (j % size.fer_images, j))
    rows, records = [], []
    for r, j in enumerate(order):
        program, aus, sid, pixels = items[j]
        usage = ("Training", "Training", "Training", "Training", "Training", "Training", "Training", "Training",
                 "PublicTest", "PrivateTest")[r % 10]
        rows.append((int(program.label), pixels, usage))
        records.append({"dataset": "FER2013", "row": r, "subject": sid, "label": program.label,
                        "megc2019": program.megc, "aus": list(aus), "usage": usage})
    write_fer2013_csv(out / "FER2013" / "fer2013.csv", rows)
    return records, subjects


# FERPlus columns that annotators confuse with each FERPlus emotion (votes that miss go there)
_FERPLUS_NEIGHBOURS = {
    "neutral": ("sadness", "happiness", "contempt"), "happiness": ("neutral", "surprise"),
    "surprise": ("fear", "happiness", "neutral"), "sadness": ("neutral", "fear", "anger"),
    "anger": ("disgust", "contempt", "sadness"), "disgust": ("anger", "contempt"),
    "fear": ("surprise", "sadness"), "contempt": ("neutral", "disgust", "anger"),
}


# FER2013 code -> FERPlus column of the same emotion
_FER_TO_FERPLUS = ("anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral")


def write_ferplus(out: Path, images: list[dict], seed: int) -> tuple[list[dict], int]:
    """Write ``out/FER2013/fer2013new.csv``: 10 FERPlus votes per ``fer2013.csv`` row, drawn from its true label.

    A clear row gives 6-10 votes to the FERPlus emotion of the row's FER2013 label (so it stays the
    strict majority) and spreads the rest over confusable emotions, now and then "unknown". About 4 %
    of the rows (at least one) are unclear: 6-8 votes to "unknown" or "NF", which the loader skips.
    Returns the image records with ``ferplus_votes`` and ``ferplus_label`` (None when unclear) added,
    and the number of unclear rows.
    """
    rng = np.random.default_rng([seed, FERPLUS_STREAM])
    col = {name: j for j, name in enumerate(FERPLUS_COLUMNS)}
    unclear_rows = set(rng.choice(len(images), size=max(1, round(0.04 * len(images))), replace=False).tolist())
    rows, records = [], []
    for r, image in enumerate(images):
        target = _FER_TO_FERPLUS[int(image["label"])]
        votes = [0] * len(FERPLUS_COLUMNS)
        if r in unclear_rows:
            other = int(rng.integers(6, 9))
            votes[col["unknown" if rng.random() < 0.5 else "NF"]] = other
            votes[col[target]] = 10 - other
            label = None
        else:
            hits = int(rng.integers(6, 11))
            votes[col[target]] = hits
            for _ in range(10 - hits):
                miss = "unknown" if rng.random() < 0.15 else str(rng.choice(_FERPLUS_NEIGHBOURS[target]))
                votes[col[miss]] += 1
            label = target
        rows.append((image["usage"], f"fer{r:07d}.png", votes))
        records.append({**image, "ferplus_votes": votes, "ferplus_label": label})
    write_ferplus_csv(out / "FER2013" / "fer2013new.csv", rows)
    return records, len(unclear_rows)
