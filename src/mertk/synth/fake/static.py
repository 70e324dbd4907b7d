"""Writers in the native layouts of CK+, FER2013, FERPlus and the STSTNet feature folders, and small
fake trees built with them for the loader tests (the idea of torchvision's ``inject_fake_data``).

The writers are also used by the synthetic benchmark, so they write exactly the files the dataset
owners ship. They write what they are given without validating it, so tests can also write the
malformed rows real copies sometimes hold. Image arrays are taken in RGB order (or grayscale).

Each ``write_fake_*`` function returns its own accounting of what it wrote (rows, the records a loader
must produce, the rows it must skip and why), so tests compare a loader against the writer rather
than against numbers copied by hand.
"""

from __future__ import annotations

from collections import Counter

import csv
from pathlib import Path
from typing import Any, Sequence

import cv2
import numpy as np

from ...data.features import HTNET_CSV, HTNET_FOLDER
from ...registry import FAKE_TREES

FER2013_EMOTIONS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
FER2013_USAGES = ("Training", "PublicTest", "PrivateTest")
FERPLUS_COLUMNS = (
    "neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt", "unknown", "NF",
)


# ----------------------------------------------------------------------------------------------
# native writers
# ----------------------------------------------------------------------------------------------


def _write_png(path: Path, image: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    if not cv2.imwrite(str(path), pixels):
        raise OSError(f"{path}: could not write image")


def write_ckplus_sequence(
    root: Path, subject: int, sequence: int, frames: Sequence[np.ndarray], emotion: int | None
) -> Path:
    """Write one CK+ sequence; return its frame folder.

    Frames go to ``root/cohn-kanade-images/S005/001/S005_001_00000001.png`` ... (numbered from 1);
    when ``emotion`` is given the label goes to
    ``root/Emotion/S005/001/S005_001_<last frame:08d>_emotion.txt`` as ``"   %.7e\\n" % emotion``,
    the way CK+ writes it.
    """
    root = Path(root)
    subj, seq = f"S{subject:03d}", f"{sequence:03d}"
    folder = root / "cohn-kanade-images" / subj / seq
    folder.mkdir(parents=True, exist_ok=True)
    for i, frame in enumerate(frames, start=1):
        _write_png(folder / f"{subj}_{seq}_{i:08d}.png", frame)
    if emotion is not None:
        label_dir = root / "Emotion" / subj / seq
        label_dir.mkdir(parents=True, exist_ok=True)
        (label_dir / f"{subj}_{seq}_{len(frames):08d}_emotion.txt").write_text("   %.7e\n" % emotion)
    return folder


def write_fer2013_csv(path: Path, rows: Sequence[tuple[int, np.ndarray, str]]) -> Path:
    """Write ``fer2013.csv`` (columns ``emotion,pixels,Usage``) from (emotion, 48x48 uint8, Usage) rows.

    ``pixels`` is the array's values in row-major order separated by single spaces, as Kaggle ships it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        out = csv.writer(fh, lineterminator="\n")
        out.writerow(["emotion", "pixels", "Usage"])
        for emotion, pixels, usage in rows:
            out.writerow([emotion, " ".join(map(str, np.asarray(pixels).ravel().tolist())), usage])
    return path


def write_ferplus_csv(path: Path, rows: Sequence[tuple[str, str, Sequence[int]]]) -> Path:
    """Write ``fer2013new.csv`` from (Usage, Image name or "", 10 vote counts) rows.

    Vote counts follow the file's column order: neutral, happiness, surprise, sadness, anger,
    disgust, fear, contempt, unknown, NF.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        out = csv.writer(fh, lineterminator="\n")
        out.writerow(["Usage", "Image name", *FERPLUS_COLUMNS])
        for usage, name, votes in rows:
            out.writerow([usage, name, *[int(v) for v in votes]])
    return path


def write_feature_folder(root: Path, items: Sequence[tuple[str, int, str, np.ndarray]]) -> Path:
    """Write (subject, class id, name, 28x28x3 uint8 RGB) items in the STSTNet LOSO layout.

    Each subject is one fold: its own images go to ``root/<subject>/u_test/<class>/<name>.png`` and
    every other subject's images to ``root/<subject>/u_train/<class>/<name>.png``. Returns ``root``.
    """
    root = Path(root)
    subjects = sorted({s for s, _, _, _ in items})
    for subject, cls, name, image in items:
        pixels = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
        ok, encoded = cv2.imencode(".png", pixels)
        if not ok:
            raise OSError(f"could not encode {name} as PNG")
        data = encoded.tobytes()
        file_name = name if name.lower().endswith(".png") else f"{name}.png"
        for fold in subjects:
            part = "u_test" if fold == subject else "u_train"
            target = root / fold / part / str(cls) / file_name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
    return root


# ----------------------------------------------------------------------------------------------
# fake trees
# ----------------------------------------------------------------------------------------------


def _face(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return rng.integers(0, 256, size=shape, dtype=np.uint8)


@FAKE_TREES.register("ckplus")
def write_fake_ckplus(root: Path, *, subjects: int = 3, seed: int = 0, awkward: bool = False) -> dict[str, Any]:
    """A small CK+ tree: two labelled sequences per subject (S010, S011, ...), 3-6 frames each.

    ``awkward`` adds an unlabelled sequence, an emotion file holding 9, and an emotion file whose
    sequence folder is missing. Returns ``rows`` (emotion files), ``clips``, ``clips_with_frames``,
    ``labels``, ``skipped`` (counts, as every fake writer does), ``expected_skips`` (record key ->
    reason fragment), ``clip_table`` (clip -> label, onset, apex, offset, frame count), ``subjects``
    and ``unlabelled``.
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    clips: dict[str, dict[str, Any]] = {}
    skipped: dict[str, str] = {}
    rows = unlabelled = 0
    subject_ids = [10 + i for i in range(subjects)]
    for s in subject_ids:
        for q in (1, 2):
            n = int(rng.integers(3, 7))
            emotion = int(rng.integers(1, 8))
            write_ckplus_sequence(root, s, q, [_face(rng, (24, 20)) for _ in range(n)], emotion)
            rows += 1
            clips[f"S{s:03d}_{q:03d}"] = {"label": str(emotion), "onset": 1, "apex": n, "offset": n, "frames": n}
    if awkward:
        s = subject_ids[0]
        write_ckplus_sequence(root, s, 3, [_face(rng, (24, 20)) for _ in range(4)], None)
        unlabelled += 1
        write_ckplus_sequence(root, s, 4, [_face(rng, (24, 20)) for _ in range(4)], 9)
        rows += 1
        skipped[f"ckplus/S{s:03d}/S{s:03d}_004"] = "not a CK+ code in 1..7"
        label_dir = root / "Emotion" / f"S{s:03d}" / "005"
        label_dir.mkdir(parents=True)
        (label_dir / f"S{s:03d}_005_00000005_emotion.txt").write_text("   %.7e\n" % 5)
        rows += 1
        clips[f"S{s:03d}_005"] = {"label": "5", "onset": None, "apex": 5, "offset": 5, "frames": 0}
        skipped[f"ckplus/S{s:03d}/S{s:03d}_005"] = "frame folder not found"
    return {
        "root": root,
        "rows": rows,
        "clips": len(clips),
        "clips_with_frames": sum(1 for c in clips.values() if c["frames"] > 1),
        "labels": dict(sorted(Counter(c["label"] for c in clips.values()).items())),
        "clip_table": clips,
        "subjects": sorted(f"ckplus/S{s:03d}" for s in subject_ids),
        "unlabelled": unlabelled,
        "skipped": len(skipped), "expected_skips": skipped,
    }


def _usage_plan(rows: int) -> list[str]:
    """60% Training, 20% PublicTest, 20% PrivateTest, interleaved."""
    cycle = ("Training", "Training", "Training", "PublicTest", "PrivateTest")
    return [cycle[i % len(cycle)] for i in range(rows)]


@FAKE_TREES.register("fer2013")
def write_fake_fer2013(root: Path, *, rows: int = 30, seed: int = 0, awkward: bool = False) -> dict[str, Any]:
    """``root/fer2013.csv`` with ``rows`` good rows; ``awkward`` appends a short pixel row, a row
    with Usage ``Validation``, a row with emotion 8 and a row holding pixel value 300.

    Returns ``path``, ``rows`` (data rows written), ``images`` (item -> label, split, pixels),
    ``splits`` (split -> count), ``skipped`` (count) and ``expected_skips`` (item -> reason fragment).
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    table: list[tuple[int, np.ndarray, str]] = []
    images: dict[str, dict[str, Any]] = {}
    for usage in _usage_plan(rows):
        emotion, pixels = int(rng.integers(0, 7)), _face(rng, (48, 48))
        images[f"fer2013/{len(table):05d}"] = {"label": str(emotion), "split": usage, "pixels": pixels}
        table.append((emotion, pixels, usage))
    skipped: dict[str, str] = {}
    if awkward:
        bad_rows = [
            ((3, _face(rng, (2000,)), "Training"), "2000 pixel values"),
            ((3, _face(rng, (48, 48)), "Validation"), "Usage 'Validation'"),
            ((8, _face(rng, (48, 48)), "Training"), "emotion '8'"),
            ((2, np.full((48, 48), 300, dtype=np.int64), "PublicTest"), "outside 0..255"),
        ]
        for row, reason in bad_rows:
            skipped[f"fer2013/{len(table):05d}"] = reason
            table.append(row)
    path = write_fer2013_csv(root / "fer2013.csv", table)
    splits = {u: sum(1 for v in images.values() if v["split"] == u) for u in FER2013_USAGES}
    return {"path": path, "rows": len(table), "images": images, "splits": splits, "skipped": len(skipped), "expected_skips": skipped}


@FAKE_TREES.register("ferplus")
def write_fake_ferplus(root: Path, *, rows: int = 30, seed: int = 0, awkward: bool = False) -> dict[str, Any]:
    """``root/fer2013.csv`` and ``root/fer2013new.csv`` aligned row by row.

    Good rows give 10 votes, at most 2 of them to unknown/NF. ``awkward`` appends an NF-majority row,
    an unknown-majority row, a row without an image name (not a face), a row with no emotion votes,
    and a tie between surprise and fear (label: surprise, the earlier class).

    Returns ``rows``, ``images`` (item -> label, votes, split), ``unclear`` (split -> count),
    ``skipped`` (count) and ``expected_skips`` (item -> reason fragment).
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    fer_rows: list[tuple[int, np.ndarray, str]] = []
    plus_rows: list[tuple[str, str, list[int]]] = []
    images: dict[str, dict[str, Any]] = {}
    for usage in _usage_plan(rows):
        off = int(rng.integers(0, 3))
        votes = np.bincount(rng.integers(0, 8, size=10 - off), minlength=8).tolist()
        votes += [off // 2, off - off // 2]
        name = f"fer{len(plus_rows):07d}.png"
        images[name] = {"label": FERPLUS_COLUMNS[int(np.argmax(votes[:8]))], "votes": votes, "split": usage}
        fer_rows.append((int(rng.integers(0, 7)), _face(rng, (48, 48)), usage))
        plus_rows.append((usage, name, votes))
    skipped: dict[str, str] = {}
    unclear = dict.fromkeys(FER2013_USAGES, 0)
    if awkward:
        specials = [
            ("PublicTest", [1, 2, 0, 0, 0, 0, 0, 1, 0, 6], "unclear"),
            ("PublicTest", [0, 0, 3, 0, 0, 0, 0, 0, 7, 0], "unclear"),
            ("Training", None, "no image name (not a face)"),
            ("PrivateTest", [0, 0, 0, 0, 0, 0, 0, 0, 0, 0], "unclear"),
            ("Training", [0, 0, 4, 0, 0, 0, 4, 0, 2, 0], None),
        ]
        for usage, votes, reason in specials:
            i = len(plus_rows)
            name = "" if votes is None else f"fer{i:07d}.png"
            fer_rows.append((0, _face(rng, (48, 48)), usage))
            plus_rows.append((usage, name, votes if votes is not None else [0] * 9 + [10]))
            if reason is None:
                images[name] = {"label": "surprise", "votes": votes, "split": usage}
                continue
            skipped[name or f"row {i + 2}"] = reason
            if reason == "unclear":
                unclear[usage] += 1
    write_fer2013_csv(root / "fer2013.csv", fer_rows)
    write_ferplus_csv(root / "fer2013new.csv", plus_rows)
    return {"root": root, "rows": len(plus_rows), "images": images, "unclear": unclear, "skipped": len(skipped), "expected_skips": skipped}


SUBJECTS_BY_DATASET = {"smic": ("s1", "s2"), "casme2": ("sub01", "sub02"), "samm": ("006", "007")}


@FAKE_TREES.register("megc2019-features")
def write_fake_features(root: Path, *, per_subject: int = 3, seed: int = 0, awkward: bool = False) -> dict[str, Any]:
    """An STSTNet-layout folder with two subjects of each of SMIC, CASME II and SAMM.

    ``awkward`` adds an image in an unknown class folder ``3`` and a ``.png`` that is not an image.
    Returns ``images`` (item -> dataset, subject, label, pixels) and ``skipped`` (item -> reason fragment).
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    items: list[tuple[str, int, str, np.ndarray]] = []
    images: dict[str, dict[str, Any]] = {}
    for dataset, subjects in SUBJECTS_BY_DATASET.items():
        for subject in subjects:
            for k in range(per_subject):
                cls, name, pixels = int(rng.integers(0, 3)), f"{subject}_clip{k}", _face(rng, (28, 28, 3))
                items.append((subject, cls, name, pixels))
                images[f"{subject}/{name}.png"] = {
                    "dataset": dataset, "subject": f"{dataset}/{subject}", "label": str(cls), "pixels": pixels,
                }
    skipped: dict[str, str] = {}
    if awkward:
        items.append(("sub01", 3, "sub01_odd", _face(rng, (28, 28, 3))))
        skipped["sub01/sub01_odd.png"] = "unknown class folder '3'"
    write_feature_folder(root, items)
    if awkward:
        (root / "006" / "u_test" / "1" / "006_broken.png").write_text("not an image")
        skipped["006/006_broken.png"] = "not a readable image"
    return {"root": root, "images": images, "skipped": len(skipped), "expected_skips": skipped}


@FAKE_TREES.register("image-folder")
def write_fake_image_folder(root: Path, *, images: int = 6, seed: int = 0, awkward: bool = False) -> dict[str, Any]:
    """``root/images/*.png`` and ``root/labels.csv`` (path, label, subject, dataset).

    ``awkward`` adds a csv row whose file is missing and one whose file is not an image.
    Returns ``rows``, ``images`` (item -> label, subject, dataset, pixels), ``skipped`` (item -> reason fragment).
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    table: list[list[str]] = []
    written: dict[str, dict[str, Any]] = {}
    labels = ("happy", "sad", "surprise")
    for i in range(images):
        rel = f"images/img{i:03d}.png"
        pixels = _face(rng, (16, 12, 3))
        _write_png(root / rel, pixels)
        label, subject = labels[i % 3], f"p{i % 2}"
        table.append([rel, label, subject, "mine"])
        written[rel] = {"label": label, "subject": f"mine/{subject}", "dataset": "mine", "pixels": pixels}
    skipped: dict[str, str] = {}
    if awkward:
        table.append(["images/missing.png", "happy", "p0", "mine"])
        skipped["images/missing.png"] = "file not found"
        (root / "images" / "broken.png").write_text("not an image")
        table.append(["images/broken.png", "sad", "p1", "mine"])
        skipped["images/broken.png"] = "not a readable image"
    with (root / "labels.csv").open("w", newline="") as fh:
        out = csv.writer(fh, lineterminator="\n")
        out.writerow(["path", "label", "subject", "dataset"])
        out.writerows(table)
    return {"root": root, "rows": len(table), "images": written, "skipped": len(skipped), "expected_skips": skipped}


HTNET_HEADER = ("dataset", "sub", "filename_o", "label", "apex", "imagename", "sub_filename")


def write_htnet_features(root: Path, rows: Sequence[Sequence[str]], images: dict[str, np.ndarray]) -> Path:
    """Write HTNet's copy of the MEGC 2019 features under ``root`` (the HTNet repository's top).

    ``rows`` are (dataset, sub, filename_o, label, imagename) and go, as given, to
    ``root/combined_3_class2_for_optical_flow.csv`` under HTNet's header (``apex`` and
    ``sub_filename`` empty, as released). ``images`` maps file names (``'006_006_1_2 .png'``, with the
    space) to 28x28x3 RGB arrays, written to ``root/datasets/STSNet_whole_norm_u_v_os/``. Returns the
    image folder.
    """
    folder = Path(root) / "datasets" / HTNET_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    for name, pixels in images.items():
        _write_png(folder / name, pixels)
    with (Path(root) / HTNET_CSV).open("w", newline="") as fh:
        out = csv.writer(fh, lineterminator="\n")
        out.writerow(HTNET_HEADER)
        out.writerows([dataset, sub, clip, label, "", imagename, ""] for dataset, sub, clip, label, imagename in rows)
    return folder


def write_fake_htnet_features(root: Path, *, per_subject: int = 2, seed: int = 0, awkward: bool = False) -> dict[str, Any]:
    """HTNet's flat MEGC 2019 feature folder and csv (see :func:`write_htnet_features`) for two
    subjects of each of CASME II, SMIC and SAMM, with the released file's quirks: a space before
    ``.png``, an ``imagename`` column that is not the feature file (``s01_s1_ne_01.jpg``), and SAMM
    subjects unpadded in the csv (``6``, ``28``) as in spreadsheet-resaved copies, padded on disk.

    ``awkward`` adds a csv row without an image, an image without a row, a row of class 3 and a
    ``.png`` that is not an image. Returns ``root``, ``folder``, ``csv``, ``rows`` (csv data rows),
    ``images`` (file name -> dataset, subject, label, pixels) and ``expected_skips`` (file name ->
    reason fragment).
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    plan = {
        "casme2": [("sub01", "sub01", "sub01", lambda k: f"EP{k + 2:02d}_01f"),
                   ("sub02", "sub02", "sub02", lambda k: f"EP{k + 9:02d}_01")],
        "smic": [("s01", "s01", "s1", lambda k: f"s01_ne_{k + 1:02d}"), ("s03", "s03", "s3", lambda k: f"s03_po_{k + 1:02d}")],
        "samm": [("6", "006", "006", lambda k: f"006_1_{k + 2}"), ("28", "028", "028", lambda k: f"028_4_{k + 1}")],
    }  # dataset -> (csv sub, sub on disk, the native loaders' id, clip of the k-th image)
    rows: list[tuple[str, str, str, str, str]] = []
    pixels: dict[str, np.ndarray] = {}
    images: dict[str, dict[str, Any]] = {}
    for dataset, subjects in plan.items():
        for cell, padded, native, clip_of in subjects:
            for k in range(per_subject):
                clip, cls, image = clip_of(k), int(rng.integers(0, 3)), _face(rng, (28, 28, 3))
                apex_name = f"{padded}_{clip.replace('s0', 's', 1) if dataset == 'smic' else clip}.jpg"
                rows.append((dataset, cell, clip, str(cls), apex_name))
                name = f"{padded}_{clip} .png"
                pixels[name] = image
                images[name] = {"dataset": dataset, "subject": f"{dataset}/{native}", "label": str(cls), "pixels": image}
    skipped: dict[str, str] = {}
    if awkward:
        rows.append(("casme2", "sub02", "EP99_01", "0", "sub02_EP99_01.jpg"))
        skipped["sub02_EP99_01 .png"] = "no image 'sub02_EP99_01 .png'"
        pixels["s03_s03_sur_09 .png"] = _face(rng, (28, 28, 3))
        skipped["s03_s03_sur_09 .png"] = "no row in"
        rows.append(("samm", "28", "028_5_1", "3", "028_028_5_1.jpg"))
        pixels["028_028_5_1 .png"] = _face(rng, (28, 28, 3))
        skipped["028_028_5_1 .png"] = "unknown class '3'"
        rows.append(("smic", "s01", "s01_sur_01", "2", "s01_s1_sur_01.jpg"))
        skipped["s01_s01_sur_01 .png"] = "not a readable image"
    folder = write_htnet_features(root, rows, pixels)
    if awkward:
        (folder / "s01_s01_sur_01 .png").write_text("not an image")
    return {"root": root, "folder": folder, "csv": root / HTNET_CSV, "rows": len(rows), "images": images,
            "skipped": len(skipped), "expected_skips": skipped}
