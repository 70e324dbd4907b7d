"""Static/macro loaders (CK+, FER2013, FERPlus) and the precomputed-feature-folder loaders against fake
trees in the native layouts.

The fake writers return their own accounting; the loaders must agree with it exactly and list every
awkward row with the expected reason. Known answers (a CK+ emotion string, a FERPlus tie, a soft
label) are written by hand with the native writers.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from mertk.data.ckplus import CKPlus
from mertk.synth.fake.static import (
    write_ckplus_sequence,
    write_fake_ckplus,
    write_fake_features,
    write_fake_fer2013,
    write_fake_ferplus,
    write_fake_image_folder,
    write_feature_folder,
    write_fer2013_csv,
    write_ferplus_csv,
)
from mertk.data.features import ImageFolder, MEGC2019Features, dataset_of_subject
from mertk.data.fer2013 import FERPLUS_CLASSES, FER2013, FERPlus, parse_pixel_rows
from mertk.errors import DataError, UnknownNameError
from mertk.registry import DATASETS, FAKE_TREES

LOADERS = {
    "ckplus": (CKPlus, write_fake_ckplus),
    "fer2013": (FER2013, write_fake_fer2013),
    "ferplus": (FERPlus, write_fake_ferplus),
    "megc2019-features": (MEGC2019Features, write_fake_features),
    "image-folder": (ImageFolder, write_fake_image_folder),
}


def skip_reasons(ds) -> dict[str, str]:
    return {s.item: s.reason for s in ds.skipped}


# ----------------------------------------------------------------------------------------------
# contract common to the five loaders
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", LOADERS)
def test_registered_with_fake_writer(name):
    entry = DATASETS.entry(name)
    assert entry.obj is LOADERS[name][0]
    assert FAKE_TREES.get(name) is LOADERS[name][1]
    assert entry.meta["description"]


@pytest.mark.parametrize("name", LOADERS)
def test_clean_tree_has_no_skips(tmp_path, name):
    cls, writer = LOADERS[name]
    writer(tmp_path)
    ds = cls(tmp_path)
    assert ds.skipped == []
    assert len(ds) > 0


@pytest.mark.parametrize("name", LOADERS)
def test_awkward_cases_listed_with_reasons(tmp_path, name):
    cls, writer = LOADERS[name]
    acc = writer(tmp_path, awkward=True)
    ds = cls(tmp_path)
    reasons = skip_reasons(ds)
    assert set(reasons) == set(acc["expected_skips"])
    for item, fragment in acc["expected_skips"].items():
        assert fragment in reasons[item], (item, reasons[item])
    for s in ds.skipped:
        assert s.source  # every skip names its file (and row)


@pytest.mark.parametrize("name", LOADERS)
def test_missing_root_names_path(tmp_path, name):
    cls, _ = LOADERS[name]
    missing = tmp_path / "nowhere"
    with pytest.raises(DataError, match=str(missing)):
        cls(missing)


# ----------------------------------------------------------------------------------------------
# CK+
# ----------------------------------------------------------------------------------------------


def test_ckplus_against_writer(tmp_path):
    acc = write_fake_ckplus(tmp_path, subjects=3, awkward=True)
    ds = CKPlus(tmp_path)
    assert ds.rows == acc["rows"] == 8
    assert ds.fps == 30.0
    assert {r.clip for r in ds} == set(acc["clip_table"])
    assert ds.subjects == acc["subjects"]
    for r in ds:
        want = acc["clip_table"][r.clip]
        assert (r.label, r.onset, r.apex, r.offset, len(r.frames)) == (
            want["label"], want["onset"], want["apex"], want["offset"], want["frames"],
        )
        assert r.dataset == "ckplus" and r.subject == f"ckplus/{r.clip[:4]}"
        assert r.label in CKPlus.label_names
    assert any("1 sequence without an emotion file" in n for n in ds.notes)
    assert len(ds.usable()) == len(ds) - 1  # the clip whose folder is missing keeps its annotation


def test_ckplus_emotion_parse_and_frames(tmp_path):
    frames = [np.full((10, 8), 10 * i, np.uint8) for i in range(5)]
    folder = write_ckplus_sequence(tmp_path, 5, 1, frames, 7)
    label_file = tmp_path / "Emotion" / "S005" / "001" / "S005_001_00000005_emotion.txt"
    assert label_file.read_text() == "   7.0000000e+00\n"
    (rec,) = CKPlus(tmp_path).records
    assert (rec.clip, rec.label, rec.onset, rec.apex, rec.offset) == ("S005_001", "7", 1, 5, 5)
    assert rec.frames == tuple(folder / f"S005_001_{i:08d}.png" for i in range(1, 6))
    (peak,) = CKPlus(tmp_path).peak_images()
    assert (peak.dataset, peak.label, peak.subject, peak.path) == ("ckplus", "7", "ckplus/S005", rec.frames[-1])


@pytest.mark.parametrize("text, reason", [("   abc\n", "not a number"), ("   2.5000000e+00\n", "1..7"), ("0\n", "1..7")])
def test_ckplus_bad_emotion_values(tmp_path, text, reason):
    write_ckplus_sequence(tmp_path, 5, 1, [np.zeros((4, 4), np.uint8)] * 3, 3)
    (tmp_path / "Emotion" / "S005" / "001" / "S005_001_00000003_emotion.txt").write_text(text)
    ds = CKPlus(tmp_path)
    assert ds.records == [] and ds.rows == 1
    assert reason in ds.skipped[0].reason and ds.skipped[0].item == "ckplus/S005/S005_001"


def test_ckplus_accepts_shipped_folder_names(tmp_path):
    write_fake_ckplus(tmp_path / "flat", subjects=2)
    nested = tmp_path / "nested"
    shutil.copytree(tmp_path / "flat" / "cohn-kanade-images", nested / "CK+" / "cohn-kanade-images")
    shutil.copytree(tmp_path / "flat" / "Emotion", nested / "Emotion_labels" / "Emotion")
    def summary(ds):
        return [(r.clip, r.label, r.onset, r.apex, r.offset, len(r.frames)) for r in ds]

    assert summary(CKPlus(nested)) == summary(CKPlus(tmp_path / "flat"))
    assert len(CKPlus(nested)) == 4 and CKPlus(nested).usable() == CKPlus(nested).records


def test_ckplus_missing_emotion_folder(tmp_path):
    write_fake_ckplus(tmp_path)
    shutil.rmtree(tmp_path / "Emotion")
    with pytest.raises(DataError, match="Emotion folder not found"):
        CKPlus(tmp_path)


# ----------------------------------------------------------------------------------------------
# FER2013
# ----------------------------------------------------------------------------------------------


def test_fer2013_against_writer(tmp_path):
    acc = write_fake_fer2013(tmp_path, rows=30, awkward=True)
    ds = FER2013(tmp_path)
    assert ds.rows == acc["rows"] == 34
    assert len(ds) == 30 and ds.pixels.shape == (30, 48, 48) and ds.pixels.dtype == np.uint8
    for r in ds:
        want = acc["images"][r.item]
        assert (r.label, r.split) == (want["label"], want["split"])
        assert np.array_equal(ds.load_image(r), want["pixels"])  # exact round trip
    assert {k: len(v) for k, v in ds.splits().items()} == acc["splits"] == {
        "Training": 18, "PublicTest": 6, "PrivateTest": 6,
    }
    assert ds.skipped[0].source == f"{tmp_path / 'fer2013.csv'}, row 32"  # first awkward data row


def test_fer2013_split_and_csv_path(tmp_path):
    acc = write_fake_fer2013(tmp_path)
    test = FER2013(tmp_path / "fer2013.csv", split="test")  # SHCNN: PublicTest is the test split
    assert {r.split for r in test} == {"PublicTest"} and len(test) == acc["splits"]["PublicTest"]
    assert len(test.pixels) == len(test)
    for r in test:
        assert np.array_equal(test.load_image(r), acc["images"][r.item]["pixels"])
    assert len(FER2013(tmp_path, split="privatetest")) == acc["splits"]["PrivateTest"]
    with pytest.raises(UnknownNameError, match="PublicTest"):
        FER2013(tmp_path, split="validation")


def test_fer2013_missing_file_and_column(tmp_path):
    with pytest.raises(DataError, match="fer2013.csv not found"):
        FER2013(tmp_path)
    (tmp_path / "fer2013.csv").write_text("emotion,Usage\n0,Training\n")
    with pytest.raises(DataError, match="missing column 'pixels'"):
        FER2013(tmp_path)


def test_parse_pixel_rows_known_answers():
    good = " ".join(str(i % 256) for i in range(2304))
    texts = [good, "1 2 3", good.replace("7", "x", 1), good.replace(" 9 ", " 256 ", 1), "  " + good + " ", "0012" + good[1:]]
    pixels, bad = parse_pixel_rows(texts)
    assert sorted(bad) == [1, 2, 3]
    assert bad[1] == "3 pixel values, expected 2304 (48 x 48)"
    assert "not a whole number" in bad[2] and bad[3] == "pixel value 256 outside 0..255"
    want = (np.arange(2304) % 256).astype(np.uint8).reshape(48, 48)
    assert pixels.shape == (3, 48, 48)
    assert np.array_equal(pixels[0], want) and np.array_equal(pixels[1], want)  # extra white space is fine
    assert pixels[2].ravel()[0] == 12  # leading zeros


def test_parse_pixel_rows_across_chunks():
    rng = np.random.default_rng(1)
    arrays = rng.integers(0, 256, size=(2100, 2304), dtype=np.uint8)  # more rows than one chunk
    texts = [" ".join(map(str, a.tolist())) for a in arrays]
    texts[2050] = "5"
    pixels, bad = parse_pixel_rows(texts)
    assert list(bad) == [2050]
    assert np.array_equal(pixels.reshape(-1, 2304), np.delete(arrays, 2050, axis=0))


# ----------------------------------------------------------------------------------------------
# FERPlus
# ----------------------------------------------------------------------------------------------


def test_ferplus_against_writer(tmp_path):
    acc = write_fake_ferplus(tmp_path, rows=30, awkward=True)
    ds = FERPlus(tmp_path)
    assert ds.rows == acc["rows"] == 35
    assert {r.item for r in ds} == set(acc["images"])
    for r in ds:
        want = acc["images"][r.item]
        votes = np.array(want["votes"][:8], float)
        assert (r.label, r.split) == (want["label"], want["split"])
        assert r.soft_classes == FERPLUS_CLASSES
        assert sum(r.soft_label) == pytest.approx(1.0)
        assert np.allclose(r.soft_label, votes / votes.sum())
        assert ds.load_image(r).shape == (48, 48)
    assert ds.unclear == acc["unclear"] == {"Training": 0, "PublicTest": 2, "PrivateTest": 1}
    assert any("PublicTest 2, PrivateTest 1" in n for n in ds.notes)


def test_ferplus_known_answers_majority_tie_soft(tmp_path):
    faces = [np.full((48, 48), v, np.uint8) for v in (10, 20, 30, 40)]
    write_fer2013_csv(tmp_path / "fer2013.csv", [(0, f, "Training") for f in faces])
    write_ferplus_csv(
        tmp_path / "fer2013new.csv",
        [
            ("Training", "fer0000000.png", [4, 0, 0, 0, 0, 6, 0, 0, 0, 0]),  # the paper's example
            ("Training", "fer0000001.png", [0, 3, 0, 0, 3, 0, 0, 0, 2, 2]),  # tie: happiness before anger
            ("Training", "fer0000002.png", [0, 0, 0, 0, 0, 0, 0, 5, 5, 0]),  # half unknown: kept
            ("Training", "fer0000003.png", [0, 0, 0, 0, 0, 0, 0, 4, 3, 3]),  # NF + unknown majority
        ],
    )
    ds = FERPlus(tmp_path)
    a, b, c = ds.records
    assert (a.label, a.soft_label) == ("disgust", (0.4, 0, 0, 0, 0, 0.6, 0, 0))
    assert (b.label, b.soft_label) == ("happiness", (0, 0.5, 0, 0, 0.5, 0, 0, 0))
    assert (c.label, c.soft_label) == ("contempt", (0, 0, 0, 0, 0, 0, 0, 1.0))
    assert [int(ds.load_image(r)[0, 0]) for r in ds] == [10, 20, 30]  # pixels follow the row, not the kept index
    assert ds.skipped[0].reason == "unclear: unknown + NF hold 6 of 10 votes"


def test_ferplus_row_count_mismatch_names_both_files(tmp_path):
    write_fake_ferplus(tmp_path, rows=10)
    lines = (tmp_path / "fer2013.csv").read_text().splitlines(keepends=True)
    (tmp_path / "fer2013.csv").write_text("".join(lines[:-1]))
    with pytest.raises(DataError) as err:
        FERPlus(tmp_path)
    assert str(tmp_path / "fer2013new.csv") in str(err.value) and str(tmp_path / "fer2013.csv") in str(err.value)


def test_ferplus_explicit_fer2013_and_missing(tmp_path):
    write_fake_ferplus(tmp_path / "a", rows=5)
    plus = tmp_path / "plus"
    plus.mkdir()
    shutil.move(tmp_path / "a" / "fer2013new.csv", plus / "fer2013new.csv")
    ds = FERPlus(plus, fer2013=tmp_path / "a" / "fer2013.csv")
    assert len(ds) == 5 and ds.fer2013_path == tmp_path / "a" / "fer2013.csv"
    with pytest.raises(DataError, match="fer2013.csv not found"):
        FERPlus(plus)


def test_ferplus_split(tmp_path):
    write_fake_ferplus(tmp_path, rows=20, awkward=True)
    full = FERPlus(tmp_path)
    val = FERPlus(tmp_path, split="val")
    assert [r.item for r in val] == [r.item for r in full.splits()["PrivateTest"]]
    for r in val:
        other = next(x for x in full if x.item == r.item)
        assert np.array_equal(val.load_image(r), full.load_image(other))


# ----------------------------------------------------------------------------------------------
# feature folders
# ----------------------------------------------------------------------------------------------


def test_megc_features_against_writer(tmp_path):
    acc = write_fake_features(tmp_path, per_subject=3, awkward=True)
    ds = MEGC2019Features(tmp_path)
    # each image lies in 6 subject folders (1 u_test + 5 u_train); it is read once
    assert len(ds) == len(acc["images"]) == 18
    assert len({r.item for r in ds}) == len(ds)
    assert all("u_test" in r.path.parts for r in ds)
    for r in ds:
        want = acc["images"][r.item]
        assert (r.label, r.subject, r.dataset) == (want["label"], want["subject"], "megc2019-features")
        assert dict(r.extra)["source_dataset"] == want["dataset"]
        assert np.array_equal(ds.load_image(r), want["pixels"])  # PNG, RGB order kept
    assert ds.subjects == ["casme2/sub01", "casme2/sub02", "samm/006", "samm/007", "smic/s1", "smic/s2"]
    assert ds.notes == []  # every u_train copy is accounted for by some subject's u_test


@pytest.mark.parametrize(
    "subject, dataset", [("s1", "smic"), ("S20", "smic"), ("sub01", "casme2"), ("006", "samm"), ("spNO.1", "unknown")]
)
def test_dataset_of_subject(subject, dataset):
    assert dataset_of_subject(subject) == dataset


def test_megc_features_from_csv(tmp_path):
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (28, 28, 3), dtype=np.uint8)
    write_feature_folder(tmp_path / "tree", [("sub01", 2, "a", img)])
    flat = tmp_path / "flat"
    flat.mkdir()
    shutil.copy(tmp_path / "tree" / "sub01" / "u_test" / "2" / "a.png", flat / "a.png")
    shutil.copy(flat / "a.png", flat / "b.png")
    csv = tmp_path / "labels.csv"
    csv.write_text("filename,label,subject\na.png,surprise,sub01\nb.png,1,006\nc.png,0,s3\nb.png,happy,006\n")
    ds = MEGC2019Features(flat, annotation=csv)
    assert [(r.item, r.label, r.subject) for r in ds] == [("a.png", "2", "casme2/sub01"), ("b.png", "1", "samm/006")]
    assert np.array_equal(ds.load_image(ds[0]), img)
    reasons = [s.reason for s in ds.skipped]
    assert reasons[0].startswith("file not found") and "unknown class 'happy'" in reasons[1]
    assert ds.skipped[1].source == f"{csv}, row 5"


def test_megc_features_notes_images_only_in_u_train(tmp_path):
    acc = write_fake_features(tmp_path, per_subject=2)
    shutil.rmtree(tmp_path / "s2" / "u_test")
    ds = MEGC2019Features(tmp_path)
    assert len(ds) == len(acc["images"]) - 2
    assert "folders without u_test, not read: s2" in ds.notes
    assert any(n.startswith("2 images lie only in u_train folders") for n in ds.notes)


def test_megc_features_empty_root(tmp_path):
    with pytest.raises(DataError, match="u_test"):
        MEGC2019Features(tmp_path)


def test_image_folder_against_writer(tmp_path):
    acc = write_fake_image_folder(tmp_path, images=6, awkward=True)
    ds = ImageFolder(tmp_path)
    assert ds.rows == acc["rows"] == 8 and len(ds) == 6
    for r in ds:
        want = acc["images"][r.item]
        assert (r.label, r.subject, r.dataset) == (want["label"], want["subject"], want["dataset"])
        assert np.array_equal(ds.load_image(r), want["pixels"])
    assert ds.labels == ("happy", "sad", "surprise")


def test_image_folder_csv_problems(tmp_path):
    (tmp_path / "x.csv").write_text("file,label\na.png,1\n")
    with pytest.raises(DataError, match=r"x\.csv: missing column 'path' or 'filename'"):
        ImageFolder(tmp_path)
    (tmp_path / "x.csv").write_text("filename,emotion\na.png,1\n")
    with pytest.raises(DataError, match=r"x\.csv: missing column 'label'"):
        ImageFolder(tmp_path)
    (tmp_path / "y.csv").write_text("filename,label\n")
    with pytest.raises(DataError, match="several csv files"):
        ImageFolder(tmp_path)


def test_load_image_unreadable_names_file(tmp_path):
    write_fake_image_folder(tmp_path, images=2)
    ds = ImageFolder(tmp_path)
    (tmp_path / ds[0].item).write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    with pytest.raises(DataError, match="img000.png: cannot read as an image"):
        ds.load_image(ds[0])
