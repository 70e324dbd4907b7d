"""The synthetic CASME and FERPlus copies: loaders agree with the ground truth; the other copies are unaffected."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pytest

import mertk.synth as synth
from mertk.data import open_dataset
from mertk.synth.fake.static import FERPLUS_COLUMNS
from mertk.data.labels import get_label_map
from mertk.synth.layouts import MICRO

FER_TO_FERPLUS = ("anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral")


@pytest.fixture(scope="module")
def truth(synth_root: Path) -> dict:
    return json.loads((synth_root / "ground_truth.json").read_text())


def test_casme_sections_and_sheets(synth_root: Path, truth: dict) -> None:
    root = synth_root / "CASME"
    assert truth["datasets"]["CASME"] == {"root": "CASME", "fps": 60.0, "frame_size": [192, 160], "grey": False,
                                          "clips": 12}
    subjects = {}
    for section in ("A", "B"):
        sheet = openpyxl.load_workbook(root / f"CASME_{section}_Section_coding.xlsx").active
        rows = list(sheet.iter_rows(values_only=True))
        assert rows[0] == ("Subject", "Filename", "OnsetFrame", "ApexFrame", "OffsetFrame", "Action Units", "Emotion")
        subjects[section] = {r[0] for r in rows[1:]}
        for subject, filename, onset, _, offset, _, _ in rows[1:]:
            folder = root / f"CASME_{section}" / f"sub{subject:02d}" / filename
            numbers = sorted(int(p.stem.rsplit("-", 1)[1]) for p in folder.glob(f"{filename}-*.jpg"))
            assert numbers == list(range(onset, offset + 1))
    assert subjects == {"A": {1, 2}, "B": {3, 4}}


def test_casme_loader_matches_ground_truth_and_covers_the_recipes(synth_root: Path, truth: dict) -> None:
    ds = open_dataset("casme", synth_root / "CASME")
    expected = {(f"casme/{c['subject']}", c["clip"]): c for c in truth["clips"] if c["dataset"] == "CASME"}
    assert ds.skipped == [] and len(ds.records) == len(expected) == 12
    for r in ds.records:
        clip = expected[(r.subject, r.clip)]
        assert (r.label, r.onset, r.apex, r.offset, r.fps) == (clip["label"], clip["onset"], clip["apex"],
                                                               clip["offset"], 60.0)
        assert r.frame_numbers == tuple(range(clip["onset"], clip["offset"] + 1))
        assert tuple(a.removeprefix("AU") for a in r.aus) == tuple(clip["aus"])
        assert r.frames[0].parent.relative_to(synth_root).as_posix() == clip["frame_dir"]
    labels = {r.label for r in ds.records}
    for name in ("shcnn-casme5", "c3d-casme4"):
        assert set(get_label_map(name).classes) <= labels, name


def test_ferplus_file_is_aligned_with_fer2013(synth_root: Path, truth: dict) -> None:
    plus = pd.read_csv(synth_root / "FER2013" / "fer2013new.csv")
    fer = pd.read_csv(synth_root / "FER2013" / "fer2013.csv")
    assert list(plus.columns) == ["Usage", "Image name", *FERPLUS_COLUMNS]
    assert len(plus) == len(fer) == len(truth["images"]) == 64
    assert list(plus["Usage"]) == list(fer["Usage"])
    assert list(plus["Image name"]) == [f"fer{r:07d}.png" for r in range(64)]
    votes = plus[list(FERPLUS_COLUMNS)].to_numpy()
    assert (votes.sum(axis=1) == 10).all()
    assert votes.tolist() == [i["ferplus_votes"] for i in truth["images"]]
    for image, row in zip(truth["images"], votes):
        target = FERPLUS_COLUMNS.index(FER_TO_FERPLUS[int(image["label"])])
        if image["ferplus_label"] is None:
            assert row[8:].sum() > 5  # unknown + NF majority
        else:
            assert image["ferplus_label"] == FERPLUS_COLUMNS[target] and row[target] >= 6


def test_ferplus_loader_matches_ground_truth(synth_root: Path, truth: dict) -> None:
    ds = open_dataset("ferplus", synth_root / "FER2013")
    clear = [(r, i) for r, i in enumerate(truth["images"]) if i["ferplus_label"] is not None]
    unclear = [(r, i) for r, i in enumerate(truth["images"]) if i["ferplus_label"] is None]
    assert truth["datasets"]["FERPlus"]["unclear"] == len(unclear) >= 1
    assert len(ds) == len(clear) == 64 - len(unclear)
    assert [r.item for r in ds] == [f"fer{r:07d}.png" for r, _ in clear]
    assert [r.label for r in ds] == [i["ferplus_label"] for _, i in clear]
    assert [r.split for r in ds] == [i["usage"] for _, i in clear]
    for record, (_, image) in zip(ds, clear):
        np.testing.assert_allclose(record.soft_label, np.array(image["ferplus_votes"][:8]) / sum(image["ferplus_votes"][:8]))
    assert [(s.item, s.reason.split(":")[0]) for s in ds.skipped] == [(f"fer{r:07d}.png", "unclear") for r, _ in unclear]
    assert sum(ds.unclear.values()) == len(unclear)
    fer = open_dataset("fer2013", synth_root / "FER2013")
    assert len(fer) == 64 and fer.skipped == []  # fer2013.csv itself keeps every row


def _hashes(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_new_copies_leave_the_others_byte_identical(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    full = _hashes(Path(synth.synthesize(tmp_path / "full", subjects=1, seed=5, progress=False)["out"]))
    monkeypatch.delitem(MICRO, "CASME")
    monkeypatch.setattr(synth, "write_ferplus", lambda out, images, seed: (images, 0))
    without = _hashes(Path(synth.synthesize(tmp_path / "without", subjects=1, seed=5, progress=False)["out"]))
    new = {k for k in full if k.startswith(("CASME/", "ground_truth/CASME/")) or k == "FER2013/fer2013new.csv"}
    assert len(new) > 3 and not new & without.keys()
    same = {k: v for k, v in full.items() if k not in new and k not in ("ground_truth.json", "README.txt")}
    assert same == {k: v for k, v in without.items() if k not in ("ground_truth.json", "README.txt")}
