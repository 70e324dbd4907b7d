"""The synthetic benchmark goes through the same loaders as real data, and agrees with its ground truth."""

from __future__ import annotations

import json

import pytest

from mertk.cli import main
from mertk.data import open_dataset

LOADERS = {"CASME2": "casme2", "SAMM": "samm", "SMIC": "smic", "CASME": "casme", "CK+": "ckplus",
           "CASME3": "casme3", "4DME": "fourdme", "MMEW": "mmew"}
SUBJECT = {name: name + "/{}" for name in LOADERS.values()}


@pytest.fixture(scope="module")
def truth(synth_root):
    return json.loads((synth_root / "ground_truth.json").read_text())


@pytest.mark.parametrize("folder", sorted(LOADERS))
def test_every_synthetic_clip_loads_with_its_annotation(folder, synth_root, truth):
    name = LOADERS[folder]
    ds = open_dataset(name, synth_root / folder)
    expected = [c for c in truth["clips"] if c["dataset"] == folder and c.get("labelled", True)]
    assert ds.skipped == []
    assert len(ds.usable()) == len(ds.records) == len(expected) > 0
    by_key = {(r.subject, r.clip): r for r in ds.records}
    for clip in expected:
        record = by_key[(SUBJECT[name].format(clip["subject"]), clip["clip"])]
        assert record.label == clip["label"]
        assert (record.onset, record.offset) == (clip["onset"], clip["offset"])
        if name != "smic":  # SMIC ships no apex
            assert record.apex == clip["apex"]
        assert record.frame_numbers[0] == clip["onset"] and record.frame_numbers[-1] == clip["offset"]


def test_fer2013_copy_loads(synth_root, truth):
    fer = open_dataset("fer2013", synth_root / "FER2013")
    assert fer.skipped == [] and len(fer) == len(truth["images"])
    assert [r.label for r in fer] == [i["label"] for i in truth["images"]]
    assert [r.split for r in fer] == [i["usage"] for i in truth["images"]]


def test_megc2019_composite_matches_the_ground_truth_classes(synth_root, truth):
    comp = open_dataset("megc2019", synth_root)
    micro = [c for c in truth["clips"] if c["dataset"] in ("CASME2", "SAMM", "SMIC")]
    mapped = {(LOADERS[c["dataset"]], c["subject"], c["clip"]): c["megc2019"] for c in micro}
    assert len(comp) == sum(v is not None for v in mapped.values())
    for r in comp:
        assert r.label == mapped[(r.dataset, r.subject.split("/", 1)[1], r.clip)]


def test_synth_cli(tmp_path, capsys):
    assert main(["synth", str(tmp_path / "s"), "--subjects", "1", "--quiet", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["subjects"] == 1 and summary["datasets"]["CASME2"] > 0
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "thesis.tex").write_text("keep me")
    assert main(["synth", str(tmp_path / "foreign"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert str(tmp_path / "foreign") in err and err.count("\n") == 1
    assert (tmp_path / "foreign" / "thesis.tex").read_text() == "keep me"
