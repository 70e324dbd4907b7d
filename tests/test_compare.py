"""``mertk compare``: two runs side by side; overall figures equal each run's results.json."""

from __future__ import annotations

import argparse
import json
import re

import pytest

from mertk.engine.run import run_recipe
from mertk.errors import DataError, MertkError
from mertk.report.compare import NOT_RECORDED, add_compare_parser, cmd_compare, compare, format_compare

BASE = ("train.epochs=3", "pretrain.epochs=2")


@pytest.fixture(scope="module")
def runs(synth_root, tmp_path_factory):
    """Two laenet-megc2019 runs that differ by one override (the learning rate: same cached features)."""
    import torch

    torch.set_num_threads(1)
    tmp = tmp_path_factory.mktemp("compare")
    kw = dict(data=synth_root, out=tmp / "runs", progress=False, cache_dir=tmp / "cache")
    a = run_recipe("laenet-megc2019", overrides=BASE, **kw)
    b = run_recipe("laenet-megc2019", overrides=BASE + ("train.lr=0.01",), **kw)
    return a, b


def _results(run_dir):
    return json.loads((run_dir / "results.json").read_text())


def test_table_has_both_rows_with_their_own_figures(runs):
    a, b = runs
    result = compare([a, b])
    assert result["datasets"] == ["casme2", "samm", "smic", "overall"]
    labels = [r["label"] for r in result["runs"]]
    assert labels == ["laenet-megc2019 / laenet", "laenet-megc2019 / laenet train.lr=0.01"]
    assert "shared by every run: --set pretrain.epochs=2 --set train.epochs=3" in result["notes"]
    text = format_compare(result, markdown=True)
    honest, inflated = text.split("Best test epoch per fold (INFLATED")
    rows = [line for line in honest.splitlines() if line.startswith("| laenet")]
    assert len(rows) == 2
    for row, run_dir in zip(rows, (a, b)):
        cells = [c.strip() for c in row.strip("|").split("|")]
        m = _results(run_dir)["metrics"]
        assert cells[-3:] == [f"{m['uf1']:.4f}", f"{m['uar']:.4f}", f"{m['accuracy']:.4f}"]
        per = _results(run_dir)["report"]["per_dataset"]
        assert cells[1:4] == [f"{per['casme2'][k]:.4f}" for k in ("uf1", "uar", "accuracy")]
    # the inflated figure is not recorded by these runs: said so, never invented, kept apart
    assert inflated.count(NOT_RECORDED) == 6 and NOT_RECORDED not in honest
    assert all(r["inflated"] is None for r in result["runs"])


def test_cli_markdown_and_errors(runs, tmp_path, capsys):
    a, b = runs
    parser = argparse.ArgumentParser()
    add_compare_parser(parser.add_subparsers())
    out = tmp_path / "cmp.md"
    assert cmd_compare(parser.parse_args(["compare", str(a), str(b), "--markdown", str(out)])) == 0
    printed = capsys.readouterr().out
    assert "laenet-megc2019 / laenet train.lr=0.01" in printed and out.read_text().startswith("Honest figures")
    assert cmd_compare(parser.parse_args(["compare", str(a), str(b), "--json"])) == 0
    data = json.loads(capsys.readouterr().out)
    assert [r["scores"]["overall"]["uf1"] for r in data["runs"]] == [_results(a)["metrics"]["uf1"],
                                                                     _results(b)["metrics"]["uf1"]]
    with pytest.raises(DataError, match=rf"^{re.escape(str(tmp_path))}: not a run directory \(no results.json"):
        compare([a, tmp_path])
    with pytest.raises(MertkError, match="is the same run directory as"):
        compare([a, a])


def test_different_class_sets_are_said(runs, tmp_path):
    import shutil

    a, _b = runs
    other = tmp_path / "other-run"
    shutil.copytree(a, other, ignore=shutil.ignore_patterns("model.pt", "folds", "report*"))
    results = _results(a)
    results["classes"] = ["negative", "positive", "surprise", "other"]
    (other / "results.json").write_text(json.dumps(results))
    result = compare([a, other])
    assert any(n.startswith("the runs use different class sets") for n in result["notes"])
    assert result["runs"][1]["label"].endswith("(other-run)")  # same method: told apart by folder


def test_per_held_out_dataset_table(synth_root, tmp_path):
    kw = dict(data=synth_root, out=tmp_path / "runs", progress=False, cache_dir=tmp_path / "cache")
    lodo = run_recipe("ststnet-cd6me-lodo", overrides=("train.epochs=2",), **kw)
    loso = run_recipe("ststnet-cd6me", overrides=("train.epochs=2",), **kw)
    result = compare([lodo, loso])
    held = result["runs"][0]["held_out"]
    assert result["runs"][1]["held_out"] is None and result["runs"][0]["protocol"] == "leave_one_dataset_out"
    per_fold = _results(lodo)["report"]["per_fold"]
    assert set(held) == set(per_fold) == {"casme", "casme2", "samm", "casme3", "fourdme", "mmew"}
    # each held-out dataset is one fold, so its fold figures are its per-dataset figures
    per_dataset = _results(lodo)["report"]["per_dataset"]
    for name in held:
        assert held[name]["uf1"] == per_fold[name]["uf1"] == per_dataset[name]["uf1"]
    text = format_compare(result, markdown=False)
    table = text.split("Leave one dataset out (honest)")[1].split("Best test epoch")[0]
    lines = [line for line in table.splitlines() if line.startswith("ststnet-cd6me-lodo")]
    assert len(lines) == 7 and lines[-1].split()[3] == "overall"
    n = _results(lodo)["metrics"]
    assert lines[-1].split()[-3:] == [f"{n['uf1']:.4f}", f"{n['uar']:.4f}", f"{n['accuracy']:.4f}"]
    mmew = next(line for line in lines if line.split()[3] == "mmew").split()
    assert mmew[4] == str(per_fold["mmew"]["n"]) and mmew[5] == f"{per_fold['mmew']['uf1']:.4f}"
    assert "ststnet-cd6me /" not in table


def test_per_class_recall_table_matches_the_predictions(runs):
    """Each class's recall, overall and per dataset, recomputed here from predictions.csv."""
    import pandas as pd

    a, b = runs
    result = compare([a, b])
    text = format_compare(result, markdown=True)
    table = text.split("Recall per class")[1].split("note: ")[0]
    classes = result["runs"][0]["classes"]
    header = [c.strip() for c in next(l for l in table.splitlines() if l.startswith("| method")).strip("|").split("|")]
    assert header == ["method", "dataset"] + classes
    for row, run_dir in zip(result["runs"], (a, b)):
        df = pd.read_csv(run_dir / "predictions.csv")
        lines = {c[1]: c[2:] for c in ([x.strip() for x in l.strip("|").split("|")] for l in table.splitlines()
                                        if l.startswith(f"| {row['label']} |"))}
        assert set(lines) == {"casme2", "samm", "smic", "overall"}
        for group, cells in lines.items():
            part = df if group == "overall" else df[df["dataset"] == group]
            for c, cell in zip(classes, cells):
                truth = part[part["y_true"].astype(str) == c]
                expected = "-" if truth.empty else f"{(truth['y_pred'].astype(str) == c).mean():.4f}"
                assert cell == expected, (row["label"], group, c)
