"""`mertk info` and composites on fake trees in the native layouts; CLI error contract."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from mertk.cli import main
from mertk.data import Composite, open_dataset
from mertk.synth.fake import fake_tree_names, write_fake_tree
from mertk.data.info import describe, format_info
from mertk.errors import DataError

CLIP_DATASETS = ["casme", "casme2", "samm", "smic", "ckplus"]


def run_cli(argv, capsys):
    code = main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_every_registered_loader_ships_a_fake_tree():
    assert set(fake_tree_names()) >= {"casme", "casme2", "samm", "smic", "ckplus", "fer2013", "ferplus",
                                      "megc2019-features", "image-folder"}


@pytest.mark.parametrize("name", CLIP_DATASETS)
def test_info_json_matches_the_fake_writers_accounting(name, tmp_path, capsys):
    wrote = write_fake_tree(name, tmp_path / name, awkward=True)
    code, out, err = run_cli(["info", name, str(tmp_path / name), "--json"], capsys)
    assert code == 0, err
    report = json.loads(out)
    for key in ("rows", "clips", "clips_with_frames", "subjects", "labels", "skipped"):
        assert key in report
    assert report["rows"] == wrote["rows"]
    assert report["clips"] == wrote["clips"]
    assert report["clips_with_frames"] == wrote["clips_with_frames"]
    assert len(report["skipped"]) == wrote["skipped"]
    assert report["clips_with_frames"] < report["clips"] or report["skipped"]  # awkward cases are visible
    assert sum(report["labels"].values()) == report["clips"]
    assert all({"row", "clip", "reason"} <= set(s) for s in report["skipped"])


@pytest.mark.parametrize("name", ["casme2", "samm", "casme"])
def test_info_on_a_spreadsheet_only_copy(name, tmp_path, capsys):
    wrote = write_fake_tree(name, tmp_path / name, frames=False)
    code, out, _ = run_cli(["info", name, str(tmp_path / name), "--json"], capsys)
    report = json.loads(out)
    assert code == 0
    assert report["clips"] == wrote["clips"] > 0
    assert report["clips_with_frames"] == 0
    assert "frames_note" in report and "frame folder not found" in report["frames_note"]
    assert len(report["skipped"]) >= report["clips"]  # every clip says why it has no frames


def test_info_text_output_lists_skips(tmp_path, capsys):
    write_fake_tree("casme2", tmp_path / "c2", awkward=True)
    code, out, _ = run_cli(["info", "casme2", str(tmp_path / "c2")], capsys)
    assert code == 0
    assert "rows parsed" in out and "-> megc2019" in out and "skipped" in out
    assert "onset" in out  # the onset-after-offset row is listed with its reason


def make_composite_root(tmp_path: Path) -> Path:
    root = tmp_path / "megc"
    write_fake_tree("casme2", root / "CASME2", subjects=3, clips_per_subject=4, seed=1)
    write_fake_tree("samm", root / "SAMM", subjects=3, clips_per_subject=4, seed=2)
    write_fake_tree("smic", root / "SMIC", subjects=3, clips_per_subject=4, seed=3)
    return root


def test_megc2019_composite_counts_and_namespaces(tmp_path):
    root = make_composite_root(tmp_path)
    comp = open_dataset("megc2019", root)
    assert isinstance(comp, Composite)
    expected = 0
    for name in ("casme2", "samm", "smic"):
        part = comp.parts[name]
        mapped = [r for r in part.records if comp.label_map.map(r) is not None]
        expected += len(mapped)
        assert comp.per_dataset()[name] == {c: sum(comp.label_map.map(r) == c for r in mapped) for c in comp.classes}
    assert len(comp) == expected
    assert set(r.label for r in comp) <= set(comp.classes)
    assert all(r.subject.split("/")[0] == r.dataset for r in comp)
    # the same subject number in two datasets stays two subjects
    prefixes = {s.split("/")[0] for s in comp.subjects}
    assert prefixes == {"casme2", "samm", "smic"}
    assert all(dict(r.extra)["native_label"] for r in comp)


def test_composite_info_and_missing_component(tmp_path, capsys):
    root = make_composite_root(tmp_path)
    code, out, _ = run_cli(["info", "megc2019", str(root), "--json"], capsys)
    report = json.loads(out)
    assert code == 0 and set(report["per_dataset"]) == {"casme2", "samm", "smic"}
    assert sum(report["mapped"]["megc2019"].values()) == report["clips"]
    (root / "SMIC").rename(root / "elsewhere")
    code, _, err = run_cli(["info", "megc2019", str(root)], capsys)
    assert code == 2 and "no smic folder" in err and str(root) in err


def test_official_list_reports_every_disagreement(tmp_path):
    root = make_composite_root(tmp_path)
    comp = open_dataset("megc2019", root)
    records = list(comp)
    gt = tmp_path / "gt.csv"
    with gt.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["Dataset", "Subject", "Filename", "Emotion"])
        flipped = records[0]
        for r in records[1:-1]:  # the last record is left out of the official list
            writer.writerow([r.dataset.upper(), r.subject.split("/")[1], r.clip, comp.classes.index(r.label)])
        other = next(c for c in comp.classes if c != flipped.label)
        writer.writerow([flipped.dataset, flipped.subject.split("/")[1], flipped.clip, other])
        writer.writerow(["samm", "999", "999_9_9", "surprise"])
    official = open_dataset("megc2019", root, official=gt)
    check = official.official_check
    assert check["matched"] == len(records) - 1 == len(official.records)
    assert check["label_disagreements"] == [
        {"clip": flipped.key, "native": dict(flipped.extra)["native_label"], "sheet": flipped.label, "official": other}
    ]
    assert check["only_official"] == [{"clip": "samm/999/999_9_9", "official": "surprise", "reason": "not in the annotation"}]
    assert check["only_sheets"] == [{"clip": records[-1].key, "sheet": records[-1].label}]
    assert {r.key: r.label for r in official.records}[flipped.key] == other  # the list's label wins
    assert any(s.item == "samm/999/999_9_9" and "not in the samm annotation" in s.reason for s in official.skipped)
    report = describe("megc2019", root, official=gt)
    assert "1 label disagreements" in format_info(report)


def test_official_list_with_unknown_class_names_the_row(tmp_path):
    root = make_composite_root(tmp_path)
    gt = tmp_path / "gt.csv"
    gt.write_text("dataset,subject,filename,emotion\nsmic,s1,s1_po_01,happy\n")
    with pytest.raises(DataError, match=r"gt.csv, row 2: unknown class 'happy'"):
        open_dataset("megc2019", root, official=gt)


@pytest.mark.parametrize(
    "argv,fragment",
    [
        (["info", "casme2", "/nonexistent/CASME2"], "/nonexistent/CASME2: dataset root does not exist"),
        (["info", "casme9", "/tmp"], "unknown dataset 'casme9'; choose from:"),
    ],
)
def test_cli_errors_are_one_line_exit_2(argv, fragment, capsys):
    code, out, err = run_cli(argv, capsys)
    assert code == 2
    assert fragment in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_cli_wrong_spreadsheet_is_one_line_in_a_real_process(tmp_path):
    root = tmp_path / "CASME2"
    root.mkdir()
    (root / "CASME2-coding-20140508.xlsx").write_bytes(b"this is not a spreadsheet")
    proc = subprocess.run([sys.executable, "-m", "mertk.cli", "info", "casme2", str(root)],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert "CASME2-coding-20140508.xlsx" in proc.stderr and "cannot read" in proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
