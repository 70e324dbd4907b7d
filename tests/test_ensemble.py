"""Seed ensembles: members equal single-seed runs, the ensemble's probabilities are their mean, resume
per member, and the figures of every member are reported beside the ensemble's."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from mertk.engine.ensemble import average_folds, member_summary
from mertk.engine.recipe import RecipeError, load_recipe
from mertk.engine.run import run_recipe
from mertk.engine.rundir import SavedFold, load_folds
from mertk.errors import MertkError

TINY = ["train.epochs=2", "fold_batching=false", "final_model=false"]
SEEDS = ["ensemble.seeds=[0, 5]"]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def ensemble_run(synth_root, cache, tmp_path_factory):
    out = tmp_path_factory.mktemp("ens")
    return run_recipe("ststnet-megc2019", data=synth_root, out=out, overrides=[*TINY, *SEEDS], progress=False,
                      cache_dir=cache)


def _fold(name, probs, index=(0, 1), curve=None, seconds=1.0, epoch=0):
    return SavedFold(name, np.array(index), np.array(probs, dtype=np.float32), [{"loss": 1.0}], seconds, epoch,
                     None if curve is None else np.array(curve, dtype=np.float32))


def test_average_folds_is_the_mean_of_the_members():
    a = {"s1": _fold("s1", [[1.0, 0.0], [0.2, 0.8]], curve=[[[1, 0], [0, 1]]], epoch=3)}
    b = {"s1": _fold("s1", [[0.0, 1.0], [0.6, 0.4]], curve=[[[0, 1], [0, 1]]], seconds=2.0, epoch=5)}
    (avg,) = average_folds([a, b]).values()
    np.testing.assert_allclose(avg.probs, [[0.5, 0.5], [0.4, 0.6]])
    np.testing.assert_allclose(avg.test_curve, [[[0.5, 0.5], [0.0, 1.0]]])
    assert avg.seconds == 3.0 and avg.selected_epoch == 4
    assert average_folds([a, {"s1": _fold("s1", [[0, 1], [1, 0]])}])["s1"].test_curve is None
    with pytest.raises(MertkError, match="members tested different samples in fold s1"):
        average_folds([a, {"s1": _fold("s1", [[0, 1], [1, 0]], index=(0, 2))}])


def test_member_summary_gives_mean_and_sample_std():
    reports = [{"uf1": 0.5, "uar": 0.6, "accuracy": 0.7, "n": 10, "per_dataset": {"casme2": {"uf1": 0.4, "uar": 0.5, "accuracy": 0.6}}},
               {"uf1": 0.7, "uar": 0.8, "accuracy": 0.9, "n": 10, "per_dataset": {"casme2": {"uf1": 0.6, "uar": 0.5, "accuracy": 0.6}}}]
    s = member_summary([0, 1], reports)
    assert s["member_mean"]["uf1"] == pytest.approx({"mean": 0.6, "std": np.std([0.5, 0.7], ddof=1)})
    assert s["member_mean_per_dataset"]["casme2"]["uar"] == {"mean": 0.5, "std": 0.0}
    assert [m["seed"] for m in s["members"]] == [0, 1] and s["members"][1]["metrics"]["uf1"] == 0.7


def test_ensemble_probabilities_are_the_mean_of_its_members(ensemble_run):
    ens = pd.read_csv(ensemble_run / "predictions.csv")
    members = [pd.read_csv(ensemble_run / "members" / f"seed-{s}" / "predictions.csv") for s in (0, 5)]
    p_cols = [c for c in ens.columns if c.startswith("p_")]
    for m in members:
        assert list(m["clip"]) == list(ens["clip"])
    mean = np.mean([m[p_cols].to_numpy() for m in members], axis=0)
    np.testing.assert_allclose(ens[p_cols].to_numpy(), mean, atol=2e-6)
    classes = [c.removeprefix("p_") for c in p_cols]
    assert list(ens["y_pred"]) == [classes[i] for i in mean.argmax(axis=1)]
    assert not np.allclose(members[0][p_cols].to_numpy(), members[1][p_cols].to_numpy())  # the seeds differ


def test_a_member_equals_the_single_run_with_its_seed(ensemble_run, synth_root, cache, tmp_path):
    single = run_recipe("ststnet-megc2019", data=synth_root, out=tmp_path, overrides=[*TINY, "train.seed=5"],
                        progress=False, cache_dir=cache)
    a, b = load_folds(single / "folds"), load_folds(ensemble_run / "members" / "seed-5" / "folds")
    assert sorted(a) == sorted(b) and len(a) == 12
    for name in a:
        np.testing.assert_array_equal(a[name].probs, b[name].probs)


def test_results_report_the_ensemble_and_every_member(ensemble_run):
    results = json.loads((ensemble_run / "results.json").read_text())
    ens = results["ensemble"]
    assert ens["seeds"] == [0, 5] and [m["folder"] for m in ens["members"]] == ["members/seed-0", "members/seed-5"]
    uf1 = [m["metrics"]["uf1"] for m in ens["members"]]
    assert ens["member_mean"]["uf1"]["mean"] == pytest.approx(np.mean(uf1))
    assert ens["member_mean"]["uf1"]["std"] == pytest.approx(np.std(uf1, ddof=1))
    assert set(ens["member_mean_per_dataset"]) == set(results["report"]["per_dataset"])
    assert "per_fold" not in ens["members"][0]["report"] and "per_dataset" in ens["members"][0]["report"]
    assert not (ensemble_run / "folds").exists()


def test_ensemble_resumes_member_by_member(ensemble_run, synth_root, cache):
    lost = sorted((ensemble_run / "members" / "seed-5" / "folds").glob("*.npz"))[:2]
    kept = {p: p.stat().st_mtime_ns for p in (ensemble_run / "members" / "seed-0" / "folds").glob("*.npz")}
    before = pd.read_csv(ensemble_run / "predictions.csv")
    for p in lost:
        p.unlink()
    lines: list[str] = []
    again = run_recipe("ststnet-megc2019", data=synth_root, out=ensemble_run.parent, overrides=[*TINY, *SEEDS],
                       progress=False, cache_dir=cache, log=lines.append)
    assert again == ensemble_run and all(p.is_file() for p in lost)
    assert {p: p.stat().st_mtime_ns for p in kept} == kept
    assert "ensemble member seed 5: resuming: 10 of 12 folds already done" in lines
    pd.testing.assert_frame_equal(pd.read_csv(ensemble_run / "predictions.csv"), before)


@pytest.mark.parametrize("seeds, message", [
    ("[3]", r"two or more distinct seeds, got \[3\]"),
    ("[1, 1]", r"two or more distinct seeds, got \[1, 1\]"),
    ("[a, b]", "ensemble.seeds must be"),
])
def test_bad_ensemble_seeds_are_one_line_errors(seeds, message):
    with pytest.raises(RecipeError, match=message):
        load_recipe("ststnet-megc2019", [f"ensemble.seeds={seeds}"])


def test_compare_and_report_show_the_ensemble_and_each_seed(ensemble_run):
    from mertk.report import write_report
    from mertk.report.compare import compare, format_compare

    result = compare([ensemble_run])
    (row,) = result["runs"]
    assert row["label"].endswith("[ensemble of seeds 0,5]") and [m["seed"] for m in row["members"]] == [0, 5]
    results = json.loads((ensemble_run / "results.json").read_text())
    member = results["ensemble"]["members"][1]
    assert row["members"][1]["scores"]["overall"]["uf1"] == member["metrics"]["uf1"]
    assert row["members"][1]["recall"]["overall"] == {c: v["recall"] for c, v in member["report"]["per_class"].items()}
    text = format_compare(result, markdown=False)
    honest, recall = text.split("Recall per class")
    for part in (honest, recall):
        assert "[seed 0]" in part and "[seed 5]" in part
    mean = results["ensemble"]["member_mean"]["uf1"]
    assert f"{mean['mean']:.4f} ± {mean['std']:.4f}" in honest.split("Best test epoch")[0]
    report = write_report(ensemble_run, samples=0)
    assert "Seed ensemble" in report["sections"]
    html = (ensemble_run / "report.html").read_text()
    assert "Seed ensemble" in html and "seed 5" in html and "members: mean ± std" in html


def test_an_ensemble_on_ray_starts_one_instance_and_equals_the_serial_members(ensemble_run, synth_root, cache,
                                                                               tmp_path, monkeypatch):
    ray = pytest.importorskip("ray")
    assert not ray.is_initialized()
    starts = []
    real_init = ray.init
    monkeypatch.setattr(ray, "init", lambda *a, **kw: (starts.append(kw), real_init(*a, **kw))[1])
    run_dir = run_recipe("ststnet-megc2019", data=synth_root, out=tmp_path, overrides=[*TINY, *SEEDS],
                         progress=False, cache_dir=cache, train_workers=2)
    assert len(starts) == 1 and not ray.is_initialized()
    for seed in (0, 5):
        a = load_folds(ensemble_run / "members" / f"seed-{seed}" / "folds")
        b = load_folds(run_dir / "members" / f"seed-{seed}" / "folds")
        assert sorted(a) == sorted(b) and len(b) == 12
        for name in a:
            np.testing.assert_allclose(a[name].probs, b[name].probs, rtol=0, atol=1e-6)
