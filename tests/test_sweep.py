"""`mertk sweep`: grid parsing, one ordinary run per combination and seed, mean ± std over seeds."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mertk.cli import main
from mertk.engine.grid import combinations, parse_grid, split_values
from mertk.workflows.sweep import parse_seeds, run_sweep
from mertk.errors import MertkError


def test_grid_parsing():
    assert split_values("[5,-5],[],3") == ["[5,-5]", "[]", "3"]
    grid = parse_grid(["train.lr=1e-3,5e-5", "augment.rotate=[5,-5],[]"])
    assert grid == [("train.lr", ["1.0e-3", "5.0e-5"]), ("augment.rotate", ["[5,-5]", "[]"])]
    assert combinations(grid) == [["train.lr=1.0e-3", "augment.rotate=[5,-5]"], ["train.lr=1.0e-3", "augment.rotate=[]"],
                                  ["train.lr=5.0e-5", "augment.rotate=[5,-5]"], ["train.lr=5.0e-5", "augment.rotate=[]"]]
    assert parse_seeds("0,1,2") == [0, 1, 2]
    for bad in (["train.lr"], ["train.lr=1e-3,"], ["a=1", "a=2"]):
        with pytest.raises(MertkError):
            parse_grid(bad)
    with pytest.raises(MertkError):
        parse_seeds("0,0")


def test_sweep_runs_every_combination_and_summarises_seeds(synth_root, tmp_path, capsys):
    kw = dict(data=synth_root, out=tmp_path / "runs", cache_dir=tmp_path / "cache", progress=False)
    sweep = run_sweep("ststnet-megc2019", ["train.lr=1e-3,5e-5"], [0, 1], overrides=["train.epochs=1"], **kw)
    dirs = [r["run_dir"] for r in sweep["runs"]]
    assert len(set(dirs)) == 4
    rows = {row["label"]: row for row in sweep["summary"]["rows"]}
    assert set(rows) == {"ststnet-megc2019 train.lr=1.0e-3", "ststnet-megc2019 train.lr=5.0e-5"}
    for label, row in rows.items():
        lr = float(label.split("=")[1])
        members = [r for r in sweep["runs"] if float(r["sets"][0].split("=")[1]) == lr]
        results = [json.loads((Path(r["run_dir"]) / "results.json").read_text()) for r in members]
        assert sorted(r["seed"] for r in results) == [0, 1]
        assert all(len(r["report"]["per_dataset"]) == 3 for r in results)
        uf1 = [r["metrics"]["uf1"] for r in results]
        assert row["scores"]["overall"]["uf1"]["mean"] == pytest.approx(np.mean(uf1))
        assert row["scores"]["overall"]["uf1"]["std"] == pytest.approx(np.std(uf1, ddof=1))
        casme2 = [r["report"]["per_dataset"]["casme2"]["uar"] for r in results]
        assert row["scores"]["casme2"]["uar"]["mean"] == pytest.approx(np.mean(casme2))
    mtimes = {p: p.stat().st_mtime_ns for p in (tmp_path / "runs").glob("*/folds/*.npz")}
    assert len(mtimes) == 48
    code = main(["sweep", "ststnet-megc2019", "--grid", "train.lr=1e-3,5e-5", "--seeds", "0,1", "--set",
                 "train.epochs=1", "--data", str(synth_root), "--out", str(tmp_path / "runs"), "--cache",
                 str(tmp_path / "cache"), "--quiet"])
    assert code == 0
    out = capsys.readouterr().out
    assert "Mean ± std over seeds" in out and " ± " in out and "train.lr=5.0e-5" in out
    # the second sweep resumed every run: no fold was trained again
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "runs").glob("*/folds/*.npz")} == mtimes
