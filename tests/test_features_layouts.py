"""The shared MEGC 2019 feature layouts read as shipped (HTNet's flat folder + csv, STSTNet/HTNet LOSO
folders), and label-csv paths confined to the dataset root (image-folder, megc2019-features)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from mertk.cli import main
from mertk.data import features
from mertk.synth.fake.static import (
    HTNET_CSV,
    write_fake_htnet_features,
    write_fake_image_folder,
    write_feature_folder,
)
from mertk.data.features import MEGC2019Features, ImageFolder, canonical_subject, inside_root
from mertk.data.base import id_key
from mertk.errors import DataError


def check_against_writer(ds: MEGC2019Features, acc: dict) -> None:
    assert ds.layout == "HTNet flat folder"
    assert ds.annotation == acc["csv"]
    assert ds.rows == acc["rows"]
    assert sorted(r.item for r in ds) == sorted(acc["images"])
    for r in ds:
        want = acc["images"][r.item]
        assert (r.label, r.subject, r.dataset) == (want["label"], want["subject"], "megc2019-features")
        assert dict(r.extra)["source_dataset"] == want["dataset"]
        assert r.path.parent == acc["folder"]
        assert np.array_equal(ds.load_image(r), want["pixels"])
    assert {s.item for s in ds.skipped} == set(acc["expected_skips"])
    for s in ds.skipped:
        assert acc["expected_skips"][s.item] in s.reason


@pytest.mark.parametrize("where", ["repo", "datasets", "flat"])
def test_htnet_flat_folder_read_as_shipped_from_any_level(tmp_path, where):
    acc = write_fake_htnet_features(tmp_path, per_subject=2, awkward=True)
    root = {"repo": tmp_path, "datasets": tmp_path / "datasets", "flat": acc["folder"]}[where]
    ds = MEGC2019Features(root)
    check_against_writer(ds, acc)
    assert ds.subjects == ["casme2/sub01", "casme2/sub02", "samm/006", "samm/028", "smic/s1", "smic/s3"]


def test_htnet_csv_quirks_reproduced_by_the_writer(tmp_path):
    acc = write_fake_htnet_features(tmp_path)
    lines = acc["csv"].read_text().splitlines()
    assert lines[0] == "dataset,sub,filename_o,label,apex,imagename,sub_filename"
    samm = [line.split(",") for line in lines[1:] if line.startswith("samm")]
    assert {row[1] for row in samm} == {"6", "28"}  # unpadded in the csv ...
    names = {p.name for p in acc["folder"].iterdir()}
    assert "006_006_1_2 .png" in names and "028_028_4_1 .png" in names  # ... padded on disk, space before .png
    smic = next(line.split(",") for line in lines[1:] if line.startswith("smic"))
    assert smic[5] == "s01_s1_ne_01.jpg" and f"{smic[5][:-4]} .png" not in names  # imagename is not the file


@pytest.mark.parametrize("place", ["datasets", "label"])
def test_htnet_csv_beside_the_folder_or_in_a_label_folder(tmp_path, place):
    acc = write_fake_htnet_features(tmp_path)
    target = tmp_path / place / HTNET_CSV
    target.parent.mkdir(exist_ok=True)
    shutil.move(acc["csv"], target)
    ds = MEGC2019Features(tmp_path)
    assert ds.annotation == target and len(ds) == len(acc["images"])


def test_htnet_csv_given_explicitly_is_read_as_htnet(tmp_path):
    acc = write_fake_htnet_features(tmp_path / "repo")
    moved = tmp_path / "elsewhere.csv"
    shutil.move(acc["csv"], moved)
    with pytest.raises(DataError, match=f"without {HTNET_CSV}"):
        MEGC2019Features(tmp_path / "repo")
    ds = MEGC2019Features(tmp_path / "repo", annotation=moved)
    assert ds.layout == "HTNet flat folder" and len(ds) == len(acc["images"]) and not ds.skipped


def test_htnet_ambiguous_and_duplicate_rows_are_listed(tmp_path):
    acc = write_fake_htnet_features(tmp_path)
    shutil.copy(acc["folder"] / "006_006_1_2 .png", acc["folder"] / "6_6_1_2.png")  # same clip id by value
    with acc["csv"].open("a") as fh:
        fh.write("casme2,sub01,EP02_01f,1,,sub01_EP02_01f.jpg,\n")
    ds = MEGC2019Features(tmp_path)
    reasons = {(s.item, s.reason.split(" (")[0].split(":")[0]) for s in ds.skipped}
    assert ("6_006_1_2 .png", "several images match") in reasons  # the csv row names it as HTNet would
    assert ("6_6_1_2.png", "several images share this clip id") in reasons
    assert ("006_006_1_2 .png", "several images share this clip id") in reasons
    assert ("sub01_EP02_01f .png", "duplicate row for 'sub01_EP02_01f .png'") in reasons
    assert len(ds) == len(acc["images"]) - 1


def test_htnet_loso_folders_and_preference_for_the_flat_folder(tmp_path):
    rng = np.random.default_rng(1)
    items = [(s, c, f"{s}_clip{c} ", rng.integers(0, 256, (28, 28, 3), dtype=np.uint8))
             for s in ("s01", "sub02", "006") for c in range(3)]
    write_feature_folder(tmp_path / "datasets" / "three_norm_u_v_os", items)
    ds = MEGC2019Features(tmp_path)
    assert ds.layout == "STSTNet LOSO folders" and len(ds) == 9
    assert ds.subjects == ["casme2/sub02", "samm/006", "smic/s1"]
    acc = write_fake_htnet_features(tmp_path)
    both = MEGC2019Features(tmp_path)
    assert both.layout == "HTNet flat folder" and len(both) == len(acc["images"])
    assert any("three_norm_u_v_os: the same images in LOSO folders, not read" in n for n in both.notes)


def test_unknown_folder_names_the_layouts_read(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "sub").mkdir()
    with pytest.raises(DataError, match="u_test") as err:
        MEGC2019Features(tmp_path)
    assert str(tmp_path) in str(err.value)
    for layout in ("STSTNet LOSO folders", "STSNet_whole_norm_u_v_os", HTNET_CSV, "label csv"):
        assert layout in str(err.value)


@pytest.mark.parametrize(
    "dataset, given, native",
    [("samm", "28", "028"), ("samm", "006", "006"), ("smic", "s03", "s3"), ("casme2", "sub1", "sub01"), ("mine", "p01", "p01")],
)
def test_canonical_subject(dataset, given, native):
    assert canonical_subject(dataset, given) == native


def test_id_key_drops_padding():
    assert id_key("006_006_1_2 ") == id_key("6_006_1_02") == "6_6_1_2"
    assert id_key("sub01_EP02_01f") == "sub1_ep2_1f"


def test_info_and_train_on_the_htnet_copy(tmp_path, capsys):
    acc = write_fake_htnet_features(tmp_path / "htnet", per_subject=3)
    assert main(["info", "megc2019-features", str(tmp_path / "htnet"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["rows"], report["clips"], report["subjects"]) == (acc["rows"], len(acc["images"]), 6)
    assert report["annotation"] == str(acc["csv"]) and report["skipped"] == []
    code = main(["train", "ststnet-megc2019", "--data", str(tmp_path / "htnet"), "--out", str(tmp_path / "runs"),
                 "--set", "data.dataset=megc2019-features", "--set", "train.epochs=1", "--cache", str(tmp_path / "cache"),
                 "--quiet"])
    assert code == 0, capsys.readouterr().err
    run = next((tmp_path / "runs").iterdir())
    predictions = (run / "predictions.csv").read_text().splitlines()
    assert len(predictions) == 1 + len(acc["images"])


# ----------------------------------------------------------------------------------------------
# label-csv paths confined to the root
# ----------------------------------------------------------------------------------------------


def test_inside_root_is_decided_on_the_text(tmp_path):
    assert inside_root(tmp_path, "a/b.png") == tmp_path / "a" / "b.png"
    assert inside_root(tmp_path, "a/../b.png") == tmp_path / "b.png"
    assert inside_root(tmp_path, str(tmp_path / "c.png")) == tmp_path / "c.png"
    assert inside_root(tmp_path, "../../x.png") is None
    assert inside_root(tmp_path, "a/../../x.png") is None
    assert inside_root(tmp_path, "/etc/passwd") is None


def spy_on_opening(monkeypatch) -> list[str]:
    touched: list[str] = []
    readable, reader = features._readable, features.cv2.haveImageReader
    monkeypatch.setattr(features, "_readable", lambda p: touched.append(str(p)) or readable(p))
    monkeypatch.setattr(features.cv2, "haveImageReader", lambda p: touched.append(str(p)) or reader(p))
    return touched


@pytest.mark.parametrize("loader", ["image-folder", "megc2019-features"])
def test_csv_rows_leaving_the_root_are_skipped_and_never_opened(tmp_path, monkeypatch, loader):
    root = tmp_path / "data" / "root"
    write_fake_image_folder(root, images=3)
    shutil.copy(root / "images" / "img000.png", tmp_path / "x.png")
    rows = ["images/img000.png", "images/img001.png", "images/../images/img002.png", "../../x.png", "/etc/passwd"]
    (root / "labels.csv").write_text("path,label,subject,dataset\n" + "".join(f"{r},1,p0,casme2\n" for r in rows))
    touched = spy_on_opening(monkeypatch)
    open_ = ImageFolder if loader == "image-folder" else (lambda r, **kw: MEGC2019Features(r, annotation=r / "labels.csv", **kw))
    ds = open_(root)
    refused = {s.item: s for s in ds.skipped}
    assert set(refused) == {"../../x.png", "/etc/passwd"}
    for skip in refused.values():
        assert f"path leaves the dataset root {root}" in skip.reason and "--allow-outside-root" in skip.reason
        assert skip.source.startswith(f"{root / 'labels.csv'}, row ")
    assert not [p for p in touched if "passwd" in p or p.endswith("x.png")]
    assert ds.rows == 5 and len(ds) == 3
    allowed = open_(root, allow_outside_root=True)
    assert "../../x.png" in {r.item for r in allowed}
    assert any(s.item == "/etc/passwd" and "not a readable image" in s.reason for s in allowed.skipped)


def test_allow_outside_root_on_the_command_line(tmp_path, capsys):
    root = tmp_path / "root"
    write_fake_image_folder(root, images=3)
    shutil.copy(root / "images" / "img000.png", tmp_path / "x.png")
    with (root / "labels.csv").open("a") as fh:
        fh.write("../x.png,happy,p0,mine\n")
    assert main(["info", "image-folder", str(root), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["clips"] == 3 and [s["clip"] for s in report["skipped"]] == ["../x.png"]
    assert main(["info", "image-folder", str(root), "--allow-outside-root", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["clips"] == 4 and report["skipped"] == []
    assert main(["info", "smic", str(root), "--allow-outside-root"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--allow-outside-root applies to" in err[0] and "image-folder" in err[0]
    assert main(["prepare", "smic", str(root), "--features", "uvs", "--allow-outside-root"]) == 2
    assert "not 'smic'" in capsys.readouterr().err
