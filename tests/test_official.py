"""Real data as shipped: the official MEGC 2019 list (headerless, unpadded ids) defines the composite
exactly; annotation errors (an apex outside its clip, an offset past the frames, missing frames) are
warnings with a fallback, never a lost clip. Fake trees reproduce each property of the real files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import openpyxl
import pytest

from mertk.cli import main
from mertk.data import open_dataset
from mertk.data.base import id_key
from mertk.data.composite import read_official_list
from mertk.synth.fake.official import write_fake_megc2019_release
from mertk.errors import DataError
from mertk.preprocess.pipeline import config_for_feature, prepare

CLASSES = ("negative", "positive", "surprise")


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    root = tmp_path_factory.mktemp("release")
    return write_fake_megc2019_release(root)


def run_cli(argv, capsys):
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("a,b", [("28", "028"), ("s01", "s1"), ("s01_ne_05", "s1_ne_5"), ("EP02_01f", "ep2_1f"),
                                 ("sub01", "SUB1")])
def test_ids_match_whatever_their_padding(a, b):
    assert id_key(a) == id_key(b)


def test_ids_that_differ_stay_apart():
    assert id_key("006_1_2") != id_key("006_1_20")
    assert id_key("s1_ne_01") != id_key("s1_po_01")


def test_headerless_list_is_read_as_dataset_subject_clip_label(tmp_path):
    path = tmp_path / "combined_3class_gt.csv"
    path.write_text("smic,s01,s01_ne_01,0\ncasme2,sub01,EP02_01f,1\nSAMM,28,028_4_1,2\n")
    entries = read_official_list(path, CLASSES)
    assert [(e.dataset, e.subject, e.clip, e.label) for e in entries] == [
        ("smic", "s01", "s01_ne_01", "negative"), ("casme2", "sub01", "EP02_01f", "positive"),
        ("samm", "28", "028_4_1", "surprise")]
    assert entries[2].source == "combined_3class_gt.csv, row 3"
    with_header = tmp_path / "with_header.csv"
    with_header.write_text("dataset,subject,clip,label\n" + path.read_text())
    assert [e.clip for e in read_official_list(with_header, CLASSES)] == [e.clip for e in entries]


@pytest.mark.parametrize("text,fragment", [
    ("smic,s1,s1_ne_01\n", "needs 4 columns"),
    ("smic,s1,s1_ne_01,7\n", "row 1: class index 7 outside 0..2"),
    ("mmew,s1,a,0\n", "row 1: unknown dataset 'mmew'"),
    ("smic,s1,s1_ne_01,0\nsmic,s01,s1_ne_1,1\n", "row 2: clip s01/s1_ne_1 listed twice (first at row 1)"),
])
def test_bad_official_list_names_file_and_row(tmp_path, text, fragment):
    path = tmp_path / "gt.csv"
    path.write_text(text)
    with pytest.raises(DataError, match="gt.csv") as err:
        read_official_list(path, CLASSES)
    assert fragment in str(err.value)


def test_release_with_official_list_is_exactly_442_clips_of_68_subjects(release, capsys):
    code, out, _ = run_cli(["info", "megc2019", release["root"], "--official", release["official"], "--json"], capsys)
    report = json.loads(out)
    assert code == 0
    assert report["clips"] == report["clips_with_frames"] == release["official_rows"] == 442
    assert report["subjects"] == 68
    assert report["definition"].startswith("the official list")
    for dataset, row in report["component_table"].items():
        want = release["counts"][dataset]
        assert {k: row[k] for k in ("clips", "subjects", "classes")} == want
        assert row["official"] == want
    warned = {w["clip"]: w for w in report["warnings"]}
    assert sorted(warned) == sorted(release["bad_apex"])
    assert "apex 1143 outside onset..offset 1071..1134" in warned["samm/028/028_4_1"]["problem"]
    assert warned["samm/028/028_4_1"]["fallback"] == "apex unknown: spotted"
    assert report["skipped"] == []
    assert report["apex_sources"]["spotted (annotated apex is an error)"] == 2
    check = report["official_check"]
    assert check["matched"] == 442 and check["label_disagreements"] == [] and check["only_official"] == []
    assert sorted(c["clip"] for c in check["only_sheets"]) == sorted(release["extra_sheet_clips"])


def test_release_without_official_list_says_it_comes_from_the_sheets(release, capsys):
    code, out, _ = run_cli(["info", "megc2019", release["root"]], capsys)
    assert code == 0
    assert "built from the sheets, not the official list" in out
    assert "147 clips, 24 subjects" in out  # the 2014 CASME II sheet through the label map: 2 more than listed
    assert "2 (annotation errors repaired, clips kept)" in out


def test_composite_with_official_holds_exactly_the_listed_clips_and_labels(release, tmp_path):
    rows = Path(release["official"]).read_text().splitlines()
    chosen = rows[::37]
    flipped = chosen[0].rsplit(",", 1)
    chosen[0] = f"{flipped[0]},{(int(flipped[1]) + 1) % 3}"
    short = tmp_path / "short.csv"
    short.write_text("\n".join(chosen) + "\n")
    comp = open_dataset("megc2019", release["root"], official=short)
    assert len(comp.records) == len(chosen)
    listed = {(d, id_key(s), id_key(c)): CLASSES[int(lab)] for d, s, c, lab in (r.split(",") for r in chosen)}
    got = {(r.dataset, id_key(r.subject.split("/")[1]), id_key(r.clip)): r.label for r in comp.records}
    assert got == listed
    assert len(comp.official_check["label_disagreements"]) == 1
    assert len(comp.official_check["only_sheets"]) == 444 - len(chosen)


def test_official_list_is_refused_for_a_single_dataset(release, capsys):
    code, _, err = run_cli(["info", "samm", str(Path(release["root"]) / "SAMM"), "--official", release["official"]],
                           capsys)
    assert code == 2 and "--official defines a composite" in err and err.count("\n") == 1


# ----------------------------------------------------------------------------------------------
# annotation errors on real frames: the kept clips reach prepare
# ----------------------------------------------------------------------------------------------


def _samm_copy(synth_root: Path, tmp_path: Path) -> Path:
    """A copy of the synthetic SAMM tree whose sheet and frames the test may change."""
    root = tmp_path / "SAMM"
    shutil.copytree(synth_root / "SAMM", root)
    return root


def _edit_sheet(root: Path, edits: dict[int, dict[str, int]]) -> list[tuple[str, dict[str, int]]]:
    """Change cells of data rows (0-based) of the SAMM sheet; returns (clip key, original cells)."""
    path = root / "SAMM_Micro_FACS_Codes_v2.xlsx"
    book = openpyxl.load_workbook(path)
    sheet = book.active
    header_row = next(r for r in range(1, 40) if sheet.cell(r, 1).value == "Subject")
    names = {sheet.cell(header_row, c).value: c for c in range(1, sheet.max_column + 1)}
    out = []
    for i, cells in edits.items():
        r = header_row + 1 + i
        original = {k: sheet.cell(r, names[k]).value for k in ("Onset Frame", "Apex Frame", "Offset Frame")}
        key = f"samm/{int(sheet.cell(r, names['Subject']).value):03d}/{sheet.cell(r, names['Filename']).value}"
        for column, value in cells.items():
            sheet.cell(r, names[column], value if not callable(value) else value(original))
        out.append((key, original))
    book.save(path)
    return out


def test_bad_apex_and_offset_are_repaired_and_the_clips_prepared(synth_root, tmp_path):
    root = _samm_copy(synth_root, tmp_path)
    (apex_key, _), (offset_key, original) = _edit_sheet(root, {
        0: {"Apex Frame": lambda o: o["Onset Frame"] - 50},
        1: {"Offset Frame": lambda o: o["Offset Frame"] + 40},
    })
    ds = open_dataset("samm", root)
    by_key = {r.key: r for r in ds.records}
    warned = {w.item: w for w in ds.warnings}
    assert set(warned) == {apex_key, offset_key}
    assert by_key[apex_key].apex is None and "outside onset..offset" in warned[apex_key].problem
    assert by_key[offset_key].offset == original["Offset Frame"]  # clipped to the frames found
    assert "after the last frame" in warned[offset_key].problem and warned[offset_key].fallback.startswith("clipped")
    assert {apex_key, offset_key} <= {r.key for r in ds.usable()} and not ds.skipped
    config = config_for_feature("uvs")
    result = prepare(ds, config, records=[by_key[apex_key], by_key[offset_key]], workers=1, progress=False)
    assert not result.skipped
    sources = {f.record.key: str(f.arrays["apex_source"]) for f in result.features}
    assert sources[apex_key] == f"spotted:{config.apex_fallback}"
    assert sources[offset_key] == "annotation"


def test_missing_frames_are_listed_and_interpolated_only_when_allowed(synth_root, tmp_path, capsys):
    root = _samm_copy(synth_root, tmp_path)
    ds = open_dataset("samm", root)
    record = ds.usable()[0]
    gone = [record.frame_numbers[i] for i in (2, 3, 4)]
    for n in gone:
        record.frame_path(n).unlink()
    ds = open_dataset("samm", root)
    warned = [w for w in ds.warnings if w.item == record.key]
    assert len(warned) == 1 and f"frames {gone[0]}-{gone[-1]} missing" in warned[0].problem
    assert "allow_frame_gaps >= 3" in warned[0].fallback
    gapped = next(r for r in ds.records if r.key == record.key)
    assert gapped.missing_frames == tuple(gone)
    config = config_for_feature("uvs")
    refused = prepare(ds, config, records=[gapped], workers=1, progress=False)
    assert not refused.features and f"frames {gone[0]}-{gone[-1]} missing" in refused.skipped[0].reason
    assert "allow_frame_gaps=3" in refused.skipped[0].reason
    allowed = prepare(ds, config.replace(allow_frame_gaps=3), records=[gapped], workers=1, progress=False)
    assert len(allowed.features) == 1 and not allowed.skipped
    code, out, _ = run_cli(["info", "samm", str(root)], capsys)
    assert code == 0 and f"{record.key}: frames {gone[0]}-{gone[-1]} missing" in out


def test_fill_frame_gaps_interpolates_linearly():
    import numpy as np

    from mertk.preprocess.pipeline import fill_frame_gaps

    frames = np.stack([np.full((2, 2, 3), v, np.uint8) for v in (0, 40, 100)])
    filled = fill_frame_gaps(frames, (10, 11, 15))
    assert filled.shape[0] == 6
    assert [int(f[0, 0, 0]) for f in filled] == [0, 40, 55, 70, 85, 100]
    assert fill_frame_gaps(frames, (1, 2, 3)) is frames


def test_train_with_official_list_uses_exactly_the_listed_clips(synth_root, tmp_path, capsys):
    from mertk.engine.metrics import read_predictions

    comp = open_dataset("megc2019", synth_root)
    chosen = comp.records[::2]
    gt = tmp_path / "gt.csv"
    gt.write_text("".join(f"{r.dataset},{r.subject.split('/')[1].lstrip('0') or '0'},{r.clip},"
                          f"{comp.classes.index(r.label)}\n" for r in chosen))
    code, out, _ = run_cli(["train", "ststnet-megc2019", "--data", str(synth_root), "--official", str(gt),
                            "--set", "train.epochs=1", "--set", "final_model=false", "--out", str(tmp_path / "runs"),
                            "--cache", str(tmp_path / "cache"), "--json"], capsys)
    assert code == 0
    run_dir = Path(json.loads(out)["run_dir"])
    results = json.loads((run_dir / "results.json").read_text())
    predictions = read_predictions(run_dir / "predictions.csv")
    tested = {(row["subject"], row["clip"]) for row in predictions.to_dict("records")}
    assert tested == {(r.subject, r.clip) for r in chosen}
    assert results["composite"]["definition"] == f"the official list {gt}"
    assert results["composite"]["official_check"]["matched"] == len(chosen)
    assert "## Data" in (run_dir / "report.md").read_text()
    code, _, err = run_cli(["train", "ststnet-megc2019", "--data", str(synth_root), "--set", "data.dataset=samm",
                            "--set", "data.label_map=megc2019", "--official", str(gt)], capsys)
    assert code == 2 and "data.official defines a composite" in err
