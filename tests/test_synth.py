"""The synthetic benchmark: layouts, annotation files, ground truth, determinism, subjects."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import cv2
import numpy as np
import openpyxl
import pandas as pd
import pytest

from mertk.synth import synthesize
from mertk.synth.actions import FaceFrame, normalised_field, objective_class
from mertk.synth.faces import make_subject
from mertk.synth.render import Distractors, Timeline, render_clip
from mertk.errors import MertkError

SUBJECTS = 4


def _hashes(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, dict]:
    out = tmp_path_factory.mktemp("synth") / "bench"
    summary = synthesize(out, subjects=SUBJECTS, seed=3, progress=False)
    truth = json.loads((out / "ground_truth.json").read_text())
    return out, summary, truth


def test_summary_counts(bench: tuple[Path, dict, dict]) -> None:
    out, summary, truth = bench
    assert summary["datasets"] == {"CASME2": 12, "SAMM": 12, "SMIC": 12, "CASME": 12, "CASME3": 12, "4DME": 12,
                                   "MMEW": 12, "CK+": 8, "FER2013": 64, "FERPlus": 64}
    assert summary["subjects"] == SUBJECTS and summary["seed"] == 3
    assert len(truth["clips"]) == 92 and len(truth["images"]) == 64
    assert (out / "README.txt").read_text().startswith("mertk synthetic micro-expression benchmark")


def test_casme2_layout_and_coding(bench: tuple[Path, dict, dict]) -> None:
    out, _, truth = bench
    table = pd.read_excel(out / "CASME2" / "CASME2-coding-20140508.xlsx")
    assert list(table.columns) == ["Subject", "Filename", "OnsetFrame", "ApexFrame", "OffsetFrame", "Action Units",
                                   "Estimated Emotion", "Objective Class"]
    assert len(table) == 12 and set(table["Subject"]) == {1, 2, 3, 4}
    assert set(table["Estimated Emotion"]) <= {"happiness", "surprise", "disgust", "repression", "others"}
    for row in table.itertuples():
        folder = out / "CASME2" / "CASME2_RAW_selected" / f"sub{row.Subject:02d}" / row.Filename
        numbers = sorted(int(p.stem[3:]) for p in folder.glob("img*.jpg"))
        assert numbers == list(range(row.OnsetFrame, row.OffsetFrame + 1))
        assert row.OnsetFrame < row.ApexFrame < row.OffsetFrame
        aus = str(row._6).split("+")
        assert row._8 == objective_class(aus)
    clip = next(c for c in truth["clips"] if c["dataset"] == "CASME2")
    assert cv2.imread(str(out / clip["frame_dir"] / f"img{clip['apex']}.jpg")).shape == (192, 160, 3)


def test_samm_layout_and_preamble(bench: tuple[Path, dict, dict]) -> None:
    out, _, _ = bench
    sheet = openpyxl.load_workbook(out / "SAMM" / "SAMM_Micro_FACS_Codes_v2.xlsx").active
    rows = list(sheet.iter_rows(values_only=True))
    header_at = next(i for i, r in enumerate(rows) if r and r[0] == "Subject")
    assert header_at > 0  # preamble rows precede the header
    header = rows[header_at]
    assert "Objective Classes" in header and "Estimated Emotion" in header
    body = [dict(zip(header, r)) for r in rows[header_at + 1:]]
    assert len(body) == 12 and {b["Subject"] for b in body} == {"006", "007", "008", "009"}
    for b in body:
        folder = out / "SAMM" / "SAMM" / b["Subject"] / b["Filename"]
        frames = sorted(folder.glob(f"{b['Subject']}_*.jpg"))
        assert len(frames) == b["Offset Frame"] - b["Onset Frame"] + 1 == b["Duration"]
        assert cv2.imread(str(frames[0]), cv2.IMREAD_UNCHANGED).ndim == 2  # SAMM is grey


def test_smic_ckplus_fer_layouts(bench: tuple[Path, dict, dict]) -> None:
    out, _, truth = bench
    smic = sorted((out / "SMIC" / "HS").glob("s*/micro/*/*"))
    assert len(smic) == 12
    assert {p.parent.name for p in smic} == {"positive", "negative", "surprise"}
    assert all(p.name.startswith(f"{p.parents[2].name}_") and any(p.glob("image??????.bmp")) for p in smic)
    seqs = sorted((out / "CK+" / "cohn-kanade-images").glob("S*/*"))
    assert len(seqs) == 8
    labels = sorted((out / "CK+" / "Emotion").glob("S*/*/*_emotion.txt"))
    ck = [c for c in truth["clips"] if c["dataset"] == "CK+"]
    assert len(labels) == sum(c["labelled"] for c in ck)
    for path in labels:
        assert 1 <= float(path.read_text()) <= 7
    fer = pd.read_csv(out / "FER2013" / "fer2013.csv")
    assert list(fer.columns) == ["emotion", "pixels", "Usage"] and len(fer) == 64
    assert set(fer["Usage"]) == {"Training", "PublicTest", "PrivateTest"}
    assert fer["emotion"].between(0, 6).all()
    assert all(len(p.split()) == 2304 for p in fer["pixels"])


def test_every_megc_class_in_each_micro_dataset(bench: tuple[Path, dict, dict]) -> None:
    _, _, truth = bench
    for name in ("CASME2", "SAMM", "SMIC"):
        clips = [c for c in truth["clips"] if c["dataset"] == name]
        for megc in ("negative", "positive", "surprise"):
            subjects = {c["subject"] for c in clips if c["megc2019"] == megc}
            assert len(subjects) >= 3, (name, megc)


def test_ground_truth_amplitudes(bench: tuple[Path, dict, dict]) -> None:
    out, _, truth = bench
    for clip in truth["clips"]:
        gt = np.load(out / clip["ground_truth"])
        flow, drift = gt["flow_apex"], np.array(clip["drift_px"], np.float32)
        expression = np.linalg.norm(flow - drift, axis=-1).max()
        assert gt["landmarks"].shape == (68, 2)
        assert list(gt["blink"]) == [n - clip["frames"][0] for n in clip["blink_frames"]]
        assert expression == pytest.approx(clip["amplitude_px"], abs=2e-3)
        if clip["dataset"] == "CK+":
            assert 2.9 < expression < 8.1
        else:
            assert 0.3 <= expression <= 2.0
            assert clip["apex"] not in clip["blink_frames"] and clip["onset"] not in clip["blink_frames"]


def test_blinks_in_a_share_of_clips(bench: tuple[Path, dict, dict]) -> None:
    _, _, truth = bench
    micro = [c for c in truth["clips"] if c["dataset"] != "CK+"]
    blinks = sum(c["blink"] for c in micro)
    assert 0 < blinks < len(micro)
    assert all(c["blink"] == bool(c["blink_frames"]) for c in micro)


def test_subjects_are_distinct(bench: tuple[Path, dict, dict]) -> None:
    out, _, truth = bench
    firsts = []
    for clip in truth["clips"]:
        if clip["dataset"] == "CASME2" and clip["subject"] not in [s for s, _ in firsts]:
            img = cv2.imread(str(out / clip["frame_dir"] / f"img{clip['onset']}.jpg")).astype(np.float32)
            firsts.append((clip["subject"], img))
    assert len(firsts) == SUBJECTS
    for i in range(len(firsts)):
        for j in range(i + 1, len(firsts)):
            assert np.abs(firsts[i][1] - firsts[j][1]).mean() > 15.0


def test_gt_flow_explains_the_apex_frame() -> None:
    subject = make_subject("t", 0, (192, 160), np.random.default_rng(1))
    field = normalised_field(subject.face, ("6", "12"), (1.0, 1.0), 1.5, (192, 160))
    tl = Timeline(9, 0, 4, 8)
    drift = np.linspace([0.0, 0.0], [0.3, -0.2], 9)
    quiet = Distractors(drift, np.zeros(9), np.ones(9), 0.0, 0)
    clip = render_clip(subject, field, tl, quiet, grey=True, noiseless=True)
    onset, apex = (f.astype(np.float32) for f in (clip.frames[0], clip.frames[4]))
    h, w = onset.shape
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    # apex(x + F(x)) should equal onset(x): sample the apex frame along the ground-truth flow
    warped = cv2.remap(apex, xs + clip.flow_apex[..., 0], ys + clip.flow_apex[..., 1], cv2.INTER_CUBIC)
    inner = (slice(10, -10), slice(10, -10))
    moving = np.linalg.norm(clip.flow_apex - drift[4], axis=-1)[inner] > 0.3
    err_gt = np.abs(warped - onset)[inner][moving].mean()
    err_still = np.abs(apex - onset)[inner][moving].mean()
    assert err_gt < 0.5 * err_still
    assert clip.amplitude == pytest.approx(1.5, abs=0.01)


def test_objective_classes() -> None:
    assert objective_class(["6", "12"]) == 1
    assert objective_class(["1", "2", "5"]) == 2
    assert objective_class(["4", "7"]) == 3
    assert objective_class(["9", "10"]) == 4
    assert objective_class(["1", "4", "15"]) == 5
    assert objective_class(["1", "2", "4", "20"]) == 6
    assert objective_class(["R12"]) == 7 and objective_class(["14"]) == 7


def test_face_frame_axes() -> None:
    subject = make_subject("t", 1, (200, 200), np.random.default_rng(0))
    face = FaceFrame.from_landmarks(subject.landmarks)
    assert face.up[1] < -0.9  # up points towards smaller y
    assert 50 < face.iod < 90


def test_deterministic_per_seed(tmp_path: Path, bench: tuple[Path, dict, dict]) -> None:
    out, _, _ = bench
    again = tmp_path / "again"
    synthesize(again, subjects=SUBJECTS, seed=3, progress=False)
    assert _hashes(again) == _hashes(out)
    assert {"CASME/CASME_A_Section_coding.xlsx", "CASME/CASME_B_Section_coding.xlsx",
            "FER2013/fer2013new.csv"} <= _hashes(out).keys()
    synthesize(again, subjects=SUBJECTS, seed=4, progress=False)  # overwrites a previous output
    other = _hashes(again)
    assert other.keys() != _hashes(out).keys() or other != _hashes(out)
    assert (again / "CASME2" / "CASME2-coding-20140508.xlsx").read_bytes() != (
        out / "CASME2" / "CASME2-coding-20140508.xlsx").read_bytes()


def test_refuses_a_foreign_non_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "thesis.tex").write_text("x")
    with pytest.raises(MertkError, match="not empty"):
        synthesize(tmp_path, subjects=1, progress=False)
    assert (tmp_path / "thesis.tex").read_text() == "x"
    with pytest.raises(MertkError, match="unknown size"):
        synthesize(tmp_path / "new", size="huge", progress=False)
