"""The contract every registered dataset keeps, checked on its fake tree (torchvision's DatasetTestCase
idea, driven by the registry): adding a dataset without a fake-tree writer fails here."""

from __future__ import annotations

from pathlib import Path

import pytest

from mertk.data import Composite, Dataset, dataset_folder, list_datasets, open_dataset
from mertk.errors import DataError, UnknownNameError
from mertk.records import AnnotationIssue, ClipRecord, ImageRecord, Skip
from mertk.registry import DATASETS, FAKE_TREES
from mertk.synth.fake import fake_tree_names, write_fake_tree

NAMES = list_datasets()
KINDS = ("clips", "images", "composite")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Each dataset's fake tree (with its awkward rows), written once and opened by its loader."""
    cache: dict[str, tuple[Dataset, dict]] = {}

    def get(name: str) -> tuple[Dataset, dict]:
        if name not in cache:
            if name not in FAKE_TREES:
                pytest.fail(f"dataset {name!r} has no fake-tree writer: register one in mertk.synth.fake")
            root = tmp_path_factory.mktemp(name.replace("+", "plus"))
            wrote = write_fake_tree(name, root, awkward=True)
            cache[name] = (open_dataset(name, root), wrote)
        return cache[name]

    return get


def test_the_registry_lists_every_kind():
    assert {DATASETS.entry(n).meta["kind"] for n in NAMES} == set(KINDS)
    assert "samm-long" in NAMES and len(NAMES) > 10


@pytest.mark.parametrize("name", NAMES)
def test_every_dataset_has_a_fake_writer(name):
    assert name in fake_tree_names(), f"dataset {name!r} has no fake-tree writer: register one in mertk.synth.fake"


@pytest.mark.parametrize("name", NAMES)
def test_one_base_and_its_kind(built, name):
    ds, _ = built(name)
    kind = DATASETS.entry(name).meta["kind"]
    assert isinstance(ds, Dataset) and ds.kind == kind
    assert isinstance(ds, Composite) == (kind == "composite")
    assert ds.name == name


@pytest.mark.parametrize("name", NAMES)
def test_sequence_protocol(built, name):
    ds, _ = built(name)
    assert len(ds) == len(ds.records) > 0
    by_index = [ds[i] for i in range(len(ds))]
    assert by_index == list(ds) == ds.records
    with pytest.raises(IndexError):
        ds[len(ds)]


@pytest.mark.parametrize("name", NAMES)
def test_records_unique_labelled_and_with_subjects(built, name):
    ds, _ = built(name)
    kind = ds.kind
    keys = [r.key if isinstance(r, ClipRecord) else f"{r.dataset}/{r.item}" for r in ds]
    assert len(set(keys)) == len(keys)
    want = ClipRecord if kind == "clips" else ImageRecord if kind == "images" else (ClipRecord, ImageRecord)
    assert all(isinstance(r, want) for r in ds)
    vocabulary = ds.classes if isinstance(ds, Composite) else ds.labels
    assert vocabulary and all(r.label in vocabulary or r.label.lower() in vocabulary for r in ds)
    subjects = {r.subject for r in ds if r.subject}
    assert ds.subjects == sorted(subjects)
    if kind != "images":  # still images may carry no subject (FER2013 has none)
        assert subjects and all(r.subject for r in ds)
    if isinstance(ds, Composite):
        assert set(ds.parts) == set(ds.spec.components)
        assert {r.dataset for r in ds} <= set(ds.parts)


@pytest.mark.parametrize("name", NAMES)
def test_skips_and_warnings_carry_their_reason(built, name):
    ds, wrote = built(name)
    assert all(isinstance(s, Skip) and s.item and s.reason for s in ds.skipped)
    assert all(isinstance(w, AnnotationIssue) and w.item and w.problem and w.fallback for w in ds.warnings)
    got = {s.item: s.reason for s in ds.skipped}
    assert len(ds.skipped) >= wrote["skipped"] > 0
    for item, fragment in wrote["expected_skips"].items():
        assert fragment in got[item], (item, got[item])


@pytest.mark.parametrize("name", NAMES)
def test_usable_is_a_subset_in_order(built, name):
    ds, _ = built(name)
    usable = ds.usable()
    assert usable
    positions = [next(i for i, r in enumerate(ds.records) if r is u) for u in usable]
    assert positions == sorted(positions)
    for record in usable:
        if isinstance(record, ClipRecord):
            assert len(record.frames) >= 2 and all(Path(p).is_file() for p in record.frames)
    if ds.kind != "images":
        unusable = [r for r in ds.records if not any(r is u for u in usable)]
        skipped = {s.item for s in ds.skipped}
        assert all(r.key in skipped for r in unusable)


@pytest.mark.parametrize("name", [n for n in NAMES if DATASETS.entry(n).meta.get("folders")])
def test_dataset_folder_finds_each_usual_folder(tmp_path, name):
    folders = DATASETS.entry(name).meta["folders"]
    with pytest.raises(DataError, match=f"no {name} folder"):
        dataset_folder(name, tmp_path)
    assert dataset_folder(name, tmp_path, default=tmp_path) == tmp_path
    (tmp_path / folders[-1]).mkdir()
    assert dataset_folder(name, tmp_path) == tmp_path / folders[-1]


def test_unknown_fake_tree_lists_the_valid_ones(tmp_path):
    with pytest.raises(UnknownNameError, match="choose from: .*casme2.*samm-long"):
        write_fake_tree("nope", tmp_path)
