"""The synthetic CAS(ME)^3, 4DME and MMEW copies: their layouts, and the older copies stay byte-identical."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd
import pytest

import mertk.synth as synth
from mertk.data import get_label_map, open_dataset
from mertk.synth.layouts import MICRO

NEW = ("CASME3", "4DME", "MMEW")


def _hashes(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_new_copies_leave_the_others_byte_identical(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    full = _hashes(Path(synth.synthesize(tmp_path / "full", subjects=1, seed=5, progress=False)["out"]))
    for name in NEW:
        monkeypatch.delitem(MICRO, name)
    without = _hashes(Path(synth.synthesize(tmp_path / "without", subjects=1, seed=5, progress=False)["out"]))
    new = {k for k in full if k.startswith(tuple(f"{n}/" for n in NEW) + tuple(f"ground_truth/{n}/" for n in NEW))}
    assert {k.removeprefix("ground_truth/").split("/")[0] for k in new} == set(NEW) and not new & without.keys()
    same = {k: v for k, v in full.items() if k not in new and k not in ("ground_truth.json", "README.txt")}
    assert same == {k: v for k, v in without.items() if k not in ("ground_truth.json", "README.txt")}


def test_layouts_of_the_new_copies(synth_root: Path) -> None:
    casme3 = pd.read_excel(synth_root / "CASME3" / "cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx")
    assert list(casme3.columns) == ["Subject", "Filename", "Onset", "Apex", "Offset", "AU", "Objective class", "emotion"]
    # two clips per video letter, in one color/ folder
    per_letter = casme3.groupby(["Subject", "Filename"]).size()
    assert per_letter.max() == 2
    first = casme3.iloc[0]
    assert (synth_root / "CASME3" / first.Subject / first.Filename / "color" / f"{first.Onset}.jpg").is_file()
    fourd = pd.read_excel(synth_root / "4DME" / "4DME_Labelling_Micro_release v1.xlsx")
    row = fourd.iloc[0]
    assert (synth_root / "4DME" / "gray_micro" / row.sub_ID / row.fold_name / f"img{row.Onset}.jpg").is_file()
    mmew = pd.read_excel(synth_root / "MMEW" / "MMEW_Micro_Exp.xlsx")
    row = mmew.iloc[0]
    folder = synth_root / "MMEW" / "Micro_Expression" / row["Estimated Emotion"] / row.Filename
    assert (folder / f"{row.OnsetFrame}.jpg").is_file()


def test_new_copies_load_with_their_ground_truth_classes(synth_root: Path) -> None:
    truth = json.loads((synth_root / "ground_truth.json").read_text())
    for folder, name in (("CASME3", "casme3"), ("4DME", "fourdme"), ("MMEW", "mmew")):
        ds = open_dataset(name, synth_root / folder)
        assert ds.skipped == [] and len(ds.usable()) == len(ds.records) > 0
        megc = {(c["subject"], c["clip"]): c["megc2019"] for c in truth["clips"] if c["dataset"] == folder}
        lm = get_label_map("megc2019")
        assert {(r.subject.split("/", 1)[1], r.clip): lm.map(r) for r in ds.records} == megc
