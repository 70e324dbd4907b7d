"""The newer micro-expression loaders (CAS(ME)^3 part A, 4DME, MMEW) against fake trees in their layouts,
their label maps, and the six-dataset composite's leave-one-dataset-out folds."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mertk.data import get_label_map
from mertk.data.base import count_labels
from mertk.data.casme3 import CASME3
from mertk.synth.fake.newer import write_fake_casme3, write_fake_fourdme, write_fake_mmew
from mertk.data.fourdme import FourDME
from mertk.data.mmew import MMEW
from mertk.errors import DataError
from mertk.registry import DATASETS, FAKE_TREES

LOADERS = {
    "casme3": (CASME3, write_fake_casme3, r"casme3/spNO\.\d+"),
    "fourdme": (FourDME, write_fake_fourdme, r"fourdme/S\d{2}"),
    "mmew": (MMEW, write_fake_mmew, r"mmew/S\d{2}"),
}


def build(tmp_path: Path, name: str, **kwargs):
    cls, writer, _ = LOADERS[name]
    root = tmp_path / name
    acc = writer(root, **kwargs)
    return cls(root), acc, root


@pytest.mark.parametrize("name", LOADERS)
def test_registered_with_fake_writer(name):
    cls, writer, _ = LOADERS[name]
    entry = DATASETS.entry(name)
    assert entry.obj is cls and entry.meta["kind"] == "clips" and FAKE_TREES.get(name) is writer


@pytest.mark.parametrize("awkward", [False, True])
@pytest.mark.parametrize("name", LOADERS)
def test_counts_match_writer(tmp_path, name, awkward):
    ds, acc, _ = build(tmp_path, name, subjects=3, clips_per_subject=4, seed=3, awkward=awkward)
    listed = acc.get("expected_listed", {})
    assert ds.rows == acc["rows"]
    assert len(ds.records) == acc["clips"]
    # a clip whose offset lies past the video is either skipped or kept with a warning (base's choice)
    assert acc["clips_with_frames"] <= len(ds.usable()) <= acc["clips_with_frames"] + len(listed)
    assert count_labels(ds.records) == acc["labels"]
    assert len(ds.subjects) == acc["subjects"] == 3
    if not awkward:
        assert acc["skipped"] == 0 == len(ds.skipped) and acc["clips"] == 12


@pytest.mark.parametrize("name", LOADERS)
def test_every_awkward_row_is_listed_with_its_reason(tmp_path, name):
    ds, acc, _ = build(tmp_path, name, awkward=True)
    got = {s.item: s.reason for s in ds.skipped}
    listed = acc.get("expected_listed", {})
    assert set(acc["expected_skips"]) <= set(got) <= set(acc["expected_skips"]) | set(listed)
    for item, fragment in acc["expected_skips"].items():
        assert fragment in got[item], (item, got[item])
    warned = {w.item: w.problem for w in ds.warnings}
    for item, fragment in listed.items():
        assert fragment in got.get(item, warned.get(item, "")), item
    unknown = next(s for s in got.values() if "unknown emotion" in s)
    assert "(known: " + ", ".join(LOADERS[name][0].labels) + ")" in unknown


@pytest.mark.parametrize("name", LOADERS)
def test_records_namespaced_unique_and_cut_to_their_interval(tmp_path, name):
    ds, _, _ = build(tmp_path, name, awkward=True)
    cls, _, pattern = LOADERS[name]
    keys = [r.key for r in ds.records]
    assert len(keys) == len(set(keys))
    for r in ds.records:
        assert r.dataset == name and re.fullmatch(pattern, r.subject) and r.fps == cls.fps
        assert r.label.lower() in cls.labels
    for r in ds.usable():
        # one awkward clip has a hole in its frames, listed as missing (a warning, not a loss)
        assert sorted(r.frame_numbers + r.missing_frames) == list(range(r.onset, min(r.offset, r.frame_numbers[-1]) + 1))
        for path, n in zip(r.frames, r.frame_numbers):
            assert int(re.search(r"(\d+)\D*$", path.stem).group(1)) == n


@pytest.mark.parametrize("name", LOADERS)
def test_annotation_only_copy_lists_every_clip(tmp_path, name):
    ds, acc, _ = build(tmp_path, name, awkward=True, frames=False)
    assert ds.usable() == [] and len(ds.records) == acc["clips"] > 0
    missing = {s.item for s in ds.skipped if "frame folder not found" in s.reason}
    assert all(r.key in missing for r in ds.records)


@pytest.mark.parametrize("name", LOADERS)
def test_missing_sheet_raises_naming_the_root(tmp_path, name):
    _, acc, root = build(tmp_path, name)
    Path(acc["annotation"]).unlink()
    with pytest.raises(DataError, match=re.escape(str(root)) + ".* not found"):
        LOADERS[name][0](root)


def test_casme3_several_clips_per_video_letter_keep_the_onset_in_their_id(tmp_path):
    ds, _, root = build(tmp_path, "casme3", awkward=True)
    j = {r.clip: r for r in ds.records if r.subject == "casme3/spNO.1" and r.clip.startswith("j@")}
    assert {"j@28", "j@40"} <= set(j)
    assert j["j@28"].frames[0].parent == root / "spNO.1" / "j" / "color"
    assert j["j@28"].frame_numbers == tuple(range(28, 35)) and j["j@40"].frame_numbers == tuple(range(40, 47))
    assert j["j@40"].apex is None
    duplicate = next(s for s in ds.skipped if "duplicate clip" in s.reason)
    assert duplicate.item == "casme3/spNO.1/j@28" and j["j@28"].apex == 30  # the first row wins
    assert next(s for s in ds.skipped if "not a whole frame number" in s.reason).item == "casme3/spNO.1/j"


def test_fourdme_k_marked_aus_are_kept_apart(tmp_path):
    ds, _, _ = build(tmp_path, "fourdme")
    marked = [r for r in ds.records if dict(r.extra).get("k_marked_aus")]
    assert marked and len(marked) < len(ds.records)
    for r in marked:
        assert r.aus == ("AU7",) and dict(r.extra)["k_marked_aus"] == "AU4(k)"


def test_mmew_frames_under_the_emotion_folder_or_found_under_another(tmp_path):
    ds, _, root = build(tmp_path, "mmew", awkward=True)
    for r in ds.usable():
        folder = r.frames[0].parent
        assert folder.name == r.clip
        assert folder.parent.name == (r.label if r.clip != "S01_30" else "repression")


def test_label_maps_of_the_newer_datasets(tmp_path):
    megc = get_label_map("megc2019")
    seven = get_label_map("casme3-7")
    from mertk.records import ClipRecord

    def rec(ds, label):
        return ClipRecord(ds, f"{ds}/x", "c", label)

    assert [megc.map(rec("casme3", x)) for x in ("sad", "anger", "happy", "surprise", "others")] == \
        ["negative", "negative", "positive", "surprise", None]
    assert [megc.map(rec("fourdme", x)) for x in ("Negative", "Positive", "Surprise", "Repression", "Others")] == \
        ["negative", "positive", "surprise", None, None]
    assert [megc.map(rec("mmew", x)) for x in ("fear", "disgust", "happiness", "others")] == \
        ["negative", "negative", "positive", None]
    assert seven.classes == ("happy", "disgust", "fear", "anger", "sad", "surprise", "others")
    assert seven.map(rec("casme3", "Sadness")) == "sad" and seven.map(rec("mmew", "sadness")) is None
