"""Micro-expression loaders (CASME II, SAMM, SMIC-HS, CASME) against fake trees in the native layouts.

The fake writers return their own accounting of what they wrote; the loaders must agree with it
exactly, and list every awkward row with the expected reason.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import openpyxl
import pytest

from mertk.data.base import au_numbers, cell_int, cell_text, count_labels, read_table, split_aus
from mertk.data.casme import CASME
from mertk.data.casme2 import CASME2
from mertk.data.sheet import objective_roman, subject_number
from mertk.synth.fake.micro import (
    SAMM_PREAMBLE,
    casme2_clip_dir,
    casme2_frame_name,
    samm_frame_name,
    smic_frame_name,
    write_casme2_coding,
    write_casme_coding,
    write_fake_casme,
    write_fake_casme2,
    write_fake_samm,
    write_fake_smic,
    write_fake_smic_apex,
    write_samm_coding,
)
from mertk.data.samm import SAMM
from mertk.data.smic import SMIC
from mertk.errors import DataError
from mertk.registry import DATASETS, FAKE_TREES

LOADERS = {
    "casme2": (CASME2, write_fake_casme2, r"casme2/sub\d{2}"),
    "samm": (SAMM, write_fake_samm, r"samm/\d{3}"),
    "smic": (SMIC, write_fake_smic, r"smic/s\d+"),
    "casme": (CASME, write_fake_casme, r"casme/sub\d{2}"),
}
SHEETS = ("casme2", "samm", "casme")
MISSING_SHEET_HINT = {"casme2": "CASME2-coding-*.xlsx", "samm": "SAMM_Micro_FACS_Codes", "casme": "*coding*.xlsx"}


def build(tmp_path: Path, name: str, **kwargs):
    cls, writer, _ = LOADERS[name]
    root = tmp_path / name
    acc = writer(root, **kwargs)
    return cls(root), acc, root


# ----------------------------------------------------------------------------------------------
# contract common to the four loaders
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", LOADERS)
def test_registered_with_fake_writer(name):
    cls, writer, _ = LOADERS[name]
    entry = DATASETS.entry(name)
    assert entry.obj is cls
    assert entry.meta["kind"] == "clips"
    assert FAKE_TREES.get(name) is writer
    assert cls.name == name


@pytest.mark.parametrize("awkward", [False, True])
@pytest.mark.parametrize("name", LOADERS)
def test_counts_match_writer(tmp_path, name, awkward):
    ds, acc, root = build(tmp_path, name, subjects=3, clips_per_subject=4, seed=3, awkward=awkward)
    assert ds.rows == acc["rows"]
    assert len(ds.records) == acc["clips"]
    assert len(ds.usable()) == acc["clips_with_frames"]
    assert len(ds.skipped) == acc["skipped"]
    assert count_labels(ds.records) == acc["labels"]
    assert len(ds.subjects) == acc["subjects"] == 3
    assert ds.root == root
    if not awkward:
        assert acc["skipped"] == 0 and acc["clips"] == acc["rows"] == 12


@pytest.mark.parametrize("name", LOADERS)
def test_records_are_namespaced_and_unique(tmp_path, name):
    ds, _, _ = build(tmp_path, name, awkward=True)
    cls, _, pattern = LOADERS[name]
    for r in ds.records:
        assert r.dataset == name
        assert re.fullmatch(pattern, r.subject), r.subject
        assert r.fps == cls.fps
        assert r.label.lower() in cls.labels
    keys = [r.key for r in ds.records]
    assert len(keys) == len(set(keys))


@pytest.mark.parametrize("name", LOADERS)
def test_frames_sorted_and_within_interval(tmp_path, name):
    ds, _, _ = build(tmp_path, name, awkward=True)
    assert ds.usable()
    for r in ds.usable():
        # the fakes write consecutive frames (one clip has a hole, listed as missing); CASME folders
        # hold two more on each side, cut away
        assert sorted(r.frame_numbers + r.missing_frames) == list(range(r.onset, r.offset + 1))
        assert r.frame_numbers[0] == r.onset and r.frame_numbers[-1] == r.offset
        assert len(r.frames) == len(r.frame_numbers)
        for path, n in zip(r.frames, r.frame_numbers):
            assert int(re.search(r"(\d+)\D*$", path.stem).group(1)) == n
        if r.apex is not None:
            assert r.onset < r.apex <= r.offset
            assert r.frame_path(r.apex).is_file()


@pytest.mark.parametrize("name", LOADERS)
def test_every_awkward_row_is_listed_with_its_reason(tmp_path, name):
    ds, acc, _ = build(tmp_path, name, awkward=True)
    got = {s.item: s for s in ds.skipped}
    assert set(got) == set(acc["expected_skips"])
    for item, fragment in acc["expected_skips"].items():
        assert fragment in got[item].reason, (item, got[item].reason)
    if name in SHEETS:
        sheet_names = {Path(ds.annotation).name} | {Path(p).name for p in getattr(ds, "annotations", ())}
        for s in ds.skipped:
            file, row = s.source.split(":row ")
            assert file in sheet_names and int(row) >= 2
    warned = {}
    for w in ds.warnings:
        warned.setdefault(w.item, []).append(w)
    assert set(warned) == set(acc["expected_warnings"])
    for item, fragment in acc["expected_warnings"].items():
        assert any(fragment in w.problem for w in warned[item]), (item, warned[item])
        assert item in {r.key for r in ds.usable()}, f"{item} was repaired, not lost"
    unknown = next(s for s in ds.skipped if "unknown emotion" in s.reason)
    assert "(known: " + ", ".join(LOADERS[name][0].labels) + ")" in unknown.reason


@pytest.mark.parametrize("name", LOADERS)
def test_annotation_only_copy_lists_every_clip_with_a_reason(tmp_path, name):
    ds, acc, _ = build(tmp_path, name, awkward=True, frames=False)
    assert acc["clips_with_frames"] == 0
    assert ds.usable() == []
    assert len(ds.records) == acc["clips"] > 0
    reasons = {s.item: s.reason for s in ds.skipped}
    for r in ds.records:
        assert r.frames == () and r.key in reasons
    missing = "frame folder holds no images" if name == "smic" else "frame folder not found"
    if name == "samm":
        assert all(str(ds.root / "SAMM" / r.subject[5:] / r.clip) in reasons[r.key] for r in ds.records)
    assert sum(missing in reasons[r.key] for r in ds.records) == len(ds.records)


@pytest.mark.parametrize("name", LOADERS)
def test_missing_root_raises_naming_it(tmp_path, name):
    cls = LOADERS[name][0]
    with pytest.raises(DataError, match=re.escape(str(tmp_path / "nope")) + ": dataset root does not exist"):
        cls(tmp_path / "nope")


@pytest.mark.parametrize("name", SHEETS)
def test_missing_spreadsheet_raises_naming_what_was_looked_for(tmp_path, name):
    _, acc, root = build(tmp_path, name)
    for path in root.glob("*.xlsx"):
        path.unlink()
    with pytest.raises(DataError) as err:
        LOADERS[name][0](root)
    assert str(root) in str(err.value) and MISSING_SHEET_HINT[name] in str(err.value)
    with pytest.raises(DataError, match=re.escape(str(root / "absent.xlsx")) + ": .* not found"):
        LOADERS[name][0](root, annotation=root / "absent.xlsx")


@pytest.mark.parametrize("name", SHEETS)
def test_wrong_header_raises_naming_the_file(tmp_path, name):
    _, acc, root = build(tmp_path, name)
    sheet = Path(acc["annotation"])
    book = openpyxl.Workbook()
    book.active.append(["Participant", "Clip", "Start", "Peak", "End", "AUs", "Label"])
    book.active.append([1, "EP01", 1, 2, 3, "4", "happiness"])
    book.save(sheet)
    with pytest.raises(DataError, match=re.escape(str(sheet)) + ": no header row with columns Subject"):
        LOADERS[name][0](root)


@pytest.mark.parametrize("name", SHEETS)
def test_corrupt_spreadsheet_raises_naming_the_file(tmp_path, name):
    _, acc, root = build(tmp_path, name)
    sheet = Path(acc["annotation"])
    sheet.write_bytes(b"this is not a workbook")
    with pytest.raises(DataError, match=re.escape(str(sheet)) + ": cannot read as a spreadsheet"):
        LOADERS[name][0](root)


@pytest.mark.parametrize("name", SHEETS)
def test_no_usable_row_still_constructs(tmp_path, name):
    _, acc, root = build(tmp_path, name)
    sheet = Path(acc["annotation"])
    book = openpyxl.load_workbook(sheet)
    ws = book.active
    header_row = next(i for i, row in enumerate(ws.iter_rows(values_only=True), 1) if row[0] == "Subject")
    col = [c.value for c in ws[header_row]].index("Emotion" if name == "casme" else "Estimated Emotion") + 1
    for r in range(header_row + 1, ws.max_row + 1):
        ws.cell(row=r, column=col, value="bored")
    book.save(sheet)
    for other in acc.get("annotations", [])[1:]:
        Path(other).unlink()
    ds = LOADERS[name][0](root)
    assert ds.records == [] and ds.rows == len(ds.skipped) > 0
    assert all("unknown emotion 'bored'" in s.reason for s in ds.skipped)


# ----------------------------------------------------------------------------------------------
# CASME II
# ----------------------------------------------------------------------------------------------


def test_casme2_row_without_apex_is_kept_with_apex_none(tmp_path):
    ds, acc, _ = build(tmp_path, "casme2", awkward=True)
    no_apex = [r for r in ds.records if r.apex is None]
    # the row with "/" and the row whose apex lies outside onset..offset (kept, apex to be spotted)
    assert sorted(r.key for r in no_apex) == acc["apex_missing"] == ["casme2/sub01/EP21_02f", "casme2/sub01/EP26_02f"]
    assert no_apex[0].has_frames and no_apex[0].frame_numbers == tuple(range(300, 307))
    assert no_apex[1].has_frames and no_apex[1].frame_numbers == tuple(range(300, 306))


def test_casme2_subject_cells_as_text_and_float_frames(tmp_path):
    ds, _, _ = build(tmp_path, "casme2", awkward=True)
    by_clip = {r.clip: r for r in ds.records}
    assert by_clip["EP21_02f"].subject == "casme2/sub01"  # Subject cell "01"
    float_row = by_clip["EP27_02f"]  # Subject "sub01", frames written as 300.0, 302.0, 305.0
    assert (float_row.subject, float_row.onset, float_row.apex, float_row.offset) == ("casme2/sub01", 300, 302, 305)


def test_casme2_objective_class_parsed_and_optional(tmp_path):
    rows = [
        {"Subject": 1, "Filename": f"EP0{i}_01f", "OnsetFrame": 10, "ApexFrame": 12, "OffsetFrame": 15,
         "Action Units": "12", "Estimated Emotion": "happiness", "Objective Class": oc}
        for i, oc in enumerate([1, 5, 7, "III", 9, None], start=1)
    ]
    write_casme2_coding(tmp_path / "CASME2-coding-20190701.xlsx", rows, objective_class=True)
    ds = CASME2(tmp_path)
    assert [r.objective_class for r in ds.records] == ["I", "V", "VII", "III", None]
    assert [(s.item, s.reason) for s in ds.skipped if "Objective" in s.reason] == [
        ("casme2/sub01/EP05_01f", "Objective Class is '9', not 1..7 or I..VII")
    ]
    old = tmp_path / "old"
    write_casme2_coding(old / "CASME2-coding-20140508.xlsx", rows[:2])
    assert [r.objective_class for r in CASME2(old).records] == [None, None]


def test_casme2_takes_the_latest_coding_file(tmp_path):
    row = {"Subject": 1, "Filename": "EP01_01f", "OnsetFrame": 1, "ApexFrame": 2, "OffsetFrame": 3,
           "Action Units": "4", "Estimated Emotion": "disgust"}
    write_casme2_coding(tmp_path / "CASME2-coding-20140508.xlsx", [row])
    write_casme2_coding(tmp_path / "CASME2-coding-20190701.xlsx", [row, {**row, "Filename": "EP02_01f"}])
    ds = CASME2(tmp_path)
    assert ds.annotation.name == "CASME2-coding-20190701.xlsx" and ds.rows == 2


def test_casme2_cropped_versus_raw(tmp_path):
    root = tmp_path / "c2"
    acc = write_fake_casme2(root, cropped=True)
    only_cropped = CASME2(root)
    assert only_cropped.cropped is True
    assert len(only_cropped.usable()) == acc["clips_with_frames"]
    assert all(p.name.startswith("reg_img") and p.parent.parent.parent.name == "Cropped"
               for r in only_cropped.usable() for p in r.frames)

    forced_raw = CASME2(root, cropped=False)
    assert forced_raw.usable() == [] and len(forced_raw.records) == acc["clips"]
    assert all("frame folder not found" in s.reason and "CASME2_RAW_selected" in s.reason for s in forced_raw.skipped)
    assert any("CASME2_RAW_selected or CASME2_RAW" in n for n in forced_raw.notes)

    write_fake_casme2(root, cropped=False)  # same seed: same sheet, now raw frames too
    both = CASME2(root)
    assert both.cropped is False
    assert all(re.fullmatch(r"img\d+\.jpg", p.name) for r in both.usable() for p in r.frames)
    assert [r.key for r in CASME2(root, cropped=True).usable()] == [r.key for r in both.usable()]

    (root / "CASME2_RAW_selected").rename(root / "CASME2_RAW")
    (root / "Cropped").rename(root / "CASME2_Cropped")
    assert len(CASME2(root).usable()) == len(CASME2(root, cropped=True).usable()) == acc["clips_with_frames"]


def test_casme2_reads_csv_with_text_cells(tmp_path):
    sheet = tmp_path / "coding.csv"
    sheet.write_text(
        "Subject,Filename,OnsetFrame,ApexFrame,OffsetFrame,Action Units,Estimated Emotion\n"
        "sub02,EP01_01f,46.0,48,50,4+R12,repression\n"
        "02,EP01_01f,46,48,50,4,repression\n"
        ",,,,,,\n"
        "x2,EP03_01f,1,2,3,,others\n"
        "2,EP04_01f,/,2,3,,others\n"
        "2,EP05_01f,1,2,3,,\n"
    )
    for n in range(46, 51):
        path = casme2_clip_dir(tmp_path, 2, "EP01_01f") / casme2_frame_name(n)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")  # listing frames does not decode them
    ds = CASME2(tmp_path, annotation=sheet)
    assert ds.rows == 5
    (r,) = ds.records
    assert (r.subject, r.onset, r.aus, r.frame_numbers) == ("casme2/sub02", 46, ("AU4", "R12"), (46, 47, 48, 49, 50))
    assert [(s.source, s.reason) for s in ds.skipped] == [
        ("coding.csv:row 3", "duplicate clip (first at coding.csv:row 2)"),
        ("coding.csv:row 5", "Subject is 'x2', not a subject number"),
        ("coding.csv:row 6", "OnsetFrame is missing"),
        ("coding.csv:row 7", "Estimated Emotion is blank"),
    ]


# ----------------------------------------------------------------------------------------------
# SAMM
# ----------------------------------------------------------------------------------------------


def test_samm_header_found_after_preamble_and_rows_numbered_as_in_excel(tmp_path):
    ds, acc, _ = build(tmp_path, "samm")
    first = ds.records[0]
    header_row = len(SAMM_PREAMBLE) + 1
    assert first.source == f"SAMM_Micro_FACS_Codes_v2.xlsx:row {header_row + 1}"
    sheet = openpyxl.load_workbook(acc["annotation"]).active
    assert sheet.cell(row=header_row, column=1).value == "Subject"
    assert sheet.cell(row=header_row + 1, column=2).value == first.clip
    assert dict(first.extra) == {"inducement code": "1", "duration": str(first.offset - first.onset + 1),
                                 "type": "Micro - 1/2"}


def test_samm_or_action_units_and_numeric_subject(tmp_path):
    ds, _, root = build(tmp_path, "samm", awkward=True)
    by_clip = {r.clip: r for r in ds.records}
    alt = by_clip["006_26_3"]
    assert alt.aus == ("R12 or AU14",) and au_numbers(alt.aus) == frozenset()
    assert alt.onset == 5562 and alt.frames[0].name == samm_frame_name(6, 5562) == "006_05562.jpg"
    assert by_clip["006_20_3"].subject == "samm/006"  # Subject cell is the number 6
    flat = tmp_path / "flat"  # ROOT directly holding 006/
    shutil.copytree(root / "SAMM", flat)
    shutil.copy(root / "SAMM_Micro_FACS_Codes_v2.xlsx", flat)
    assert [r.key for r in SAMM(flat).usable()] == [r.key for r in ds.usable()]


def test_samm_unknown_emotion_is_case_insensitive_and_label_kept_native(tmp_path):
    base = {"Subject": "011", "Onset Frame": 100, "Apex Frame": 102, "Offset Frame": 104, "Action Units": "4"}
    write_samm_coding(tmp_path / "SAMM_Micro_FACS_Codes_v2.xlsx", [
        {**base, "Filename": "011_1_1", "Estimated Emotion": " ANGER "},
        {**base, "Filename": "011_1_2", "Estimated Emotion": "Angry"},
    ])
    ds = SAMM(tmp_path)
    assert [r.label for r in ds.records] == ["ANGER"]
    (unknown,) = [s for s in ds.skipped if s.item == "samm/011/011_1_2"]
    assert unknown.reason.startswith("unknown emotion 'Angry' (known: anger, contempt")


# ----------------------------------------------------------------------------------------------
# SMIC-HS
# ----------------------------------------------------------------------------------------------


def test_smic_labels_from_folders_and_no_apex(tmp_path):
    ds, acc, root = build(tmp_path, "smic", awkward=True)
    assert ds.annotation is None
    for r in ds.usable():
        assert r.apex is None
        assert r.frames[0].parent.parent.name == r.label
        assert r.frames[0].name == smic_frame_name(r.onset)
        assert (r.onset, r.offset) == (r.frame_numbers[0], r.frame_numbers[-1])
    assert sorted(r.key for r in ds.records) == acc["apex_missing"]
    assert any("non_micro" in n and "1 non-micro-expression clip" in n for n in ds.notes)
    from_hs = SMIC(root / "HS")
    assert [r.key for r in from_hs.records] == [r.key for r in ds.records]
    assert from_hs.rows == ds.rows == acc["rows"]


def test_smic_rejects_a_folder_without_subjects_and_an_annotation(tmp_path):
    with pytest.raises(DataError, match=re.escape(str(tmp_path)) + ": no SMIC-HS subject folders"):
        SMIC(tmp_path)
    write_fake_smic(tmp_path)
    with pytest.raises(DataError, match="labels.xlsx: SMIC apex file not found"):
        SMIC(tmp_path, annotation=tmp_path / "labels.xlsx")
    (tmp_path / "apex.csv").write_text("subject,clip,label\n1,s1_po_01,1\n")
    with pytest.raises(DataError, match="apex.csv: no header row with columns subject, clip, apex_frame"):
        SMIC(tmp_path, annotation=tmp_path / "apex.csv")


@pytest.mark.parametrize("suffix", [".xlsx", ".csv"])
def test_smic_apex_file_replaces_spotting_and_lists_every_disagreement(tmp_path, suffix):
    write_fake_smic(tmp_path, awkward=True)
    acc = write_fake_smic_apex(tmp_path, awkward=True, name=f"smic_apex{suffix}")
    plain = SMIC(tmp_path)
    ds = SMIC(tmp_path, annotation=acc["path"])
    assert ds.annotation == acc["path"]
    got = {r.key: r.apex for r in ds.records if r.apex is not None}
    assert got == acc["apex"]
    for r in ds.records:
        assert r.apex_source.startswith(f"{acc['path']}, row ") == (r.apex is not None)
        assert (r.onset, r.offset, r.frames, r.label) == next(
            (p.onset, p.offset, p.frames, p.label) for p in plain.records if p.key == r.key)  # folders stay the clips
    # the apex cell's row: every applied apex is the one written on that row
    table, rows = read_table(acc["path"], ("subject", "clip", "apex_frame"))
    by_row = dict(zip(rows, table["apex_frame"]))
    for r in ds.records:
        if r.apex is not None:
            assert int(by_row[int(r.apex_source.rsplit(" ", 1)[1])]) == r.apex
    assert {w.item: w.problem for w in ds.warnings}.keys() == acc["warnings"].keys()
    for w in ds.warnings:
        assert acc["warnings"][w.item] in w.problem and w.source.startswith(str(acc["path"]))
    new_skips = [s for s in ds.skipped if s not in plain.skipped]
    assert {s.item: s.reason for s in new_skips}.keys() == acc["expected_skips"].keys()
    for s in new_skips:
        assert acc["expected_skips"][s.item] in s.reason
    no_row = [n for n in ds.notes if "have no row in" in n]
    assert len(no_row) == 1 and no_row[0].startswith(f"{len(acc['no_row'])} clip(s)")
    assert all(k in no_row[0] for k in acc["no_row"])
    assert all(ds.records[i].apex is None for i, r in enumerate(ds.records) if r.key in acc["no_row"])


def test_smic_apex_file_frame_paths_are_never_opened(tmp_path, monkeypatch):
    write_fake_smic(tmp_path)
    acc = write_fake_smic_apex(tmp_path)
    opened = []
    real = Path.is_file
    monkeypatch.setattr(Path, "is_file", lambda self: opened.append(str(self)) or real(self))
    ds = SMIC(tmp_path, annotation=acc["path"])
    assert len([r for r in ds.records if r.apex is not None]) == len(acc["apex"]) > 0
    assert not [p for p in opened if p.startswith("/data/SMIC")]


def test_info_reports_the_smic_apex_file(tmp_path, capsys):
    from mertk.cli import main

    write_fake_smic(tmp_path)
    acc = write_fake_smic_apex(tmp_path)
    assert main(["info", "smic", str(tmp_path), "--annotation", str(acc["path"]), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["annotation"] == str(acc["path"])
    assert report["rows_without_apex"] == report["clips"] - len(acc["apex"]) == 0


# ----------------------------------------------------------------------------------------------
# CASME
# ----------------------------------------------------------------------------------------------


def test_casme_reads_every_section_and_trims_to_the_interval(tmp_path):
    ds, acc, root = build(tmp_path, "casme", subjects=4)
    assert [p.name for p in ds.annotations] == ["CASME_A_Section_coding.xlsx", "CASME_B_Section_coding.xlsx"]
    assert {r.source.split(":")[0] for r in ds.records} == {p.name for p in ds.annotations}
    assert {r.frames[0].parts[-4] for r in ds.usable()} == {"CASME_A", "CASME_B"}
    r = ds.usable()[0]
    on_disk = sorted(r.frames[0].parent.iterdir())
    assert len(on_disk) == len(r.frames) + 4


def test_casme_single_csv_with_estimated_emotion_header(tmp_path):
    sheet = tmp_path / "casme_coding.csv"
    sheet.write_text(
        "Subject,Filename,OnsetFrame,ApexFrame,OffsetFrame,Estimated Emotion,Duration\n"
        "1,EP01_5,10,12,14,Tense,5\n"
    )
    folder = tmp_path / "sub1" / "EP01_5"  # ROOT itself, unpadded subject folder
    folder.mkdir(parents=True)
    for n in range(10, 15):
        (folder / f"EP01_5-{n}.jpg").write_bytes(b"")
    (r,) = CASME(tmp_path).records
    assert (r.subject, r.label, r.aus, r.frame_numbers, dict(r.extra)) == (
        "casme/sub01", "Tense", (), (10, 11, 12, 13, 14), {"duration": "5"}
    )


def test_casme_duplicate_across_sections_is_skipped(tmp_path):
    row = {"Subject": 3, "Filename": "EP02_1", "OnsetFrame": 5, "ApexFrame": 6, "OffsetFrame": 9, "Emotion": "disgust"}
    write_casme_coding(tmp_path / "CASME_A_coding.xlsx", [row])
    write_casme_coding(tmp_path / "CASME_B_coding.xlsx", [row])
    ds = CASME(tmp_path)
    assert len(ds.records) == 1
    dupes = [s for s in ds.skipped if s.reason.startswith("duplicate")]
    assert [(s.source, s.reason) for s in dupes] == [
        ("CASME_B_coding.xlsx:row 2", "duplicate clip (first at CASME_A_coding.xlsx:row 2)")
    ]


# ----------------------------------------------------------------------------------------------
# cell helpers (base.py)
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cell, expected", [
    ("4+7", ("AU4", "AU7")),
    ("AU4 + AU7", ("AU4", "AU7")),
    ("R12 or 14", ("R12 or AU14",)),
    ("L2, R2; 4", ("L2", "R2", "AU4")),
    ("4/7", ("AU4 or AU7",)),
    (12.0, ("AU12",)),
    ("/", ()),
    (None, ()),
    (float("nan"), ()),
])
def test_split_aus(cell, expected):
    assert split_aus(cell) == expected


@pytest.mark.parametrize("cell, expected", [
    (46, 46), (46.0, 46), ("46", 46), (" 46.0 ", 46), ("/", None), ("", None), (None, None), (float("nan"), None),
])
def test_cell_int_accepts(cell, expected):
    assert cell_int(cell, column="ApexFrame") == expected


@pytest.mark.parametrize("cell, message", [
    (46.5, "ApexFrame is 46.5, not a whole frame number"),
    ("12a", "ApexFrame is '12a', not a frame number"),
    (True, "ApexFrame is True, not a frame number"),
    ("-3", "ApexFrame is '-3', not a frame number"),
])
def test_cell_int_rejects(cell, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        cell_int(cell, column="ApexFrame")


def test_cell_text_subject_and_objective_helpers():
    assert cell_text(46.0) == "46" and cell_text("  Other ") == "Other" and cell_text(float("nan")) == ""
    assert [subject_number(v) for v in (1, 1.0, "01", "sub01", "006", "Sub 7")] == [1, 1, 1, 1, 6, 7]
    with pytest.raises(ValueError, match="Subject is blank"):
        subject_number(None)
    assert [objective_roman(v, column="OC") for v in (1, "7", "iv", None)] == ["I", "VII", "IV", None]
    with pytest.raises(ValueError, match=r"OC is '0', not 1..7"):
        objective_roman(0, column="OC")
