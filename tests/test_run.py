"""Runs: a reduced-epoch smoke run of every recipe family on the synthetic benchmark, determinism, and a
real SIGKILL + resume of `mertk train`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from mertk.engine.metrics import metrics_report, read_predictions
from mertk.engine.recipe import load_recipe
from mertk.engine.run import run_recipe
from mertk.engine.runconfig import read_run_config
from mertk.errors import DataError

TINY_SHCNN = ["model.kwargs.filters=[4, 4, 8]", "model.kwargs.hidden=[16]"]
SMOKE = {
    "laenet-megc2019": ["train.epochs=3", "pretrain.epochs=2"],
    "ststnet-megc2019": ["train.epochs=3"],
    "shcnn-casme2": ["train.epochs=1", "model.kwargs.input_size=32", *TINY_SHCNN],
    "shcnn-fer2013": ["train.epochs=1", *TINY_SHCNN],
    "shcnn-casme": ["train.epochs=1", "model.kwargs.input_size=32", *TINY_SHCNN],
    "c3d-casme": ["train.epochs=1", "model.kwargs.input_size=[16, 32, 32]", "model.kwargs.filters=[2, 2, 2, 2]",
                  "model.kwargs.hidden=8", "augment.rotate=[5]"],
    "shcnn-ferplus": ["train.epochs=1", *TINY_SHCNN],
    "c3d-casme2": ["train.epochs=1", "model.kwargs.input_size=[16, 32, 32]", "model.kwargs.filters=[2, 2, 2, 2]",
                   "model.kwargs.hidden=8", "augment.rotate=[5]"],
    "shallow-megc2018": ["train.epochs=2", "model.kwargs.input_size=32"],
    "resnet-megc2018": ["train.epochs=1", "model.name=resnet18_reduced_1", "model.kwargs.input_size=32"],
    "strcn-g-smic": ["train.epochs=1", "model.kwargs.input_size=[64, 48]", "model.kwargs.num_rcl=2",
                     "model.kwargs.num_maps=4", "model.kwargs.steps=1", "augment.magnify=[]"],
    "strcn-a-smic": ["train.epochs=1", "features.size=[32, 24]", "model.kwargs.num_rcl=2", "model.kwargs.num_maps=4",
                     "model.kwargs.steps=1", "augment.magnify=[5]", "augment.frame_select=[0.8]", "protocol=lovo",
                     "protocol_options.test_fraction=0.25"],
}
TINY_LBPTOP = ["model.kwargs.input_size=[8, 32, 32]",
               "model.kwargs.search={grid: [[2, 2, 1], [4, 4, 1]], radii: [[1, 1, 1]], C: [0.1, 1.0]}"]
SMOKE.update({"lbptop-casme2": TINY_LBPTOP, "lbptop-megc2019": TINY_LBPTOP})
# The remaining recipes share a family's code with another dataset: the same tiny settings (LWM
# alignment, which detects the face on every frame, runs end to end in the two strcn-*-smic runs).
TINY_STRCN = ["train.epochs=1", "model.kwargs.num_rcl=2", "model.kwargs.num_maps=4", "model.kwargs.steps=1",
              "augment.magnify=[]", "features.align=none"]
SMOKE.update({
    "shcnn-samm": SMOKE["shcnn-casme2"],
    "strcn-g-casme2": [*TINY_STRCN, "model.kwargs.input_size=[64, 48]"],
    "strcn-g-samm": [*TINY_STRCN, "model.kwargs.input_size=[64, 48]"],
    "strcn-a-casme2": [*TINY_STRCN, "features.size=[32, 24]", "augment.frame_select=[]"],
    "strcn-a-samm": [*TINY_STRCN, "features.size=[32, 24]", "augment.frame_select=[]"],
    "ststnet-cd6me": SMOKE["ststnet-megc2019"],
    "ststnet-cd6me-lodo": SMOKE["ststnet-megc2019"],
    "laenet-cd6me": SMOKE["laenet-megc2019"],
    "laenet-cd6me-lodo": SMOKE["laenet-megc2019"],
    "megc2019-generalise": ["train.epochs=2", "ensemble.seeds=[0, 1]"],
})


def test_every_shipped_recipe_has_a_smoke_run():
    from mertk.engine.recipe import list_recipes

    assert sorted(SMOKE) == sorted(list_recipes())


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@pytest.mark.parametrize("name", sorted(SMOKE))
def test_smoke_run_of_each_family(name, synth_root, cache, tmp_path):
    run_dir = run_recipe(name, data=synth_root, out=tmp_path, overrides=SMOKE[name], progress=False, cache_dir=cache)
    for item in ("config.yaml", "predictions.csv", "results.json", "confusion.png", "training_curves.png"):
        assert (run_dir / item).is_file(), item
    results = json.loads((run_dir / "results.json").read_text())
    frame = read_predictions(run_dir / "predictions.csv")
    # every clip used is predicted exactly once, and the metrics are those of predictions.csv
    assert len(frame) == results["clips_tested"] == results["metrics"]["n"]
    if results["protocol"] != "official":  # the official split tests PublicTest only
        assert results["clips_tested"] == results["clips_used"]
    assert not frame.duplicated(["dataset", "subject", "clip"]).any()
    recomputed = metrics_report(frame, results["classes"])
    for key in ("accuracy", "uf1", "uar"):
        assert results["metrics"][key] == pytest.approx(recomputed[key], abs=1e-12)
    assert set(frame["fold"]) == {f["fold"] for f in results["folds"]}
    members = [run_dir / m["folder"] for m in (results["ensemble"] or {}).get("members", [])]
    for folder in members or [run_dir]:  # a seed ensemble's fold files lie in its members' folders
        assert len(list((folder / "folds").glob("*.npz"))) == len(results["folds"])
    assert results["seed"] == 0 and set(results["versions"]) >= {"mertk", "torch", "numpy", "opencv"}
    assert set(results["skipped"]) == {"loader", "prepare", "excluded_by_label_map"}
    saved = read_run_config(run_dir)  # config.yaml read back names the same directory (a lossless round trip)
    assert run_dir.name == f"{saved.recipe.name}-{saved.digest()}" and saved.classes == tuple(results["classes"])
    if load_recipe(name).final_model:
        _check_final_model(run_dir, results, synth_root)
        if name == "strcn-a-smic":
            _check_strcn_magnified_mask(run_dir, results, synth_root, cache)
    else:  # a fitted (classical) model: no model.pt, its per-fold choice recorded instead
        assert results["checkpoint"] is None and not (run_dir / "model.pt").exists()
        for fold in results["folds"]:
            assert fold["hyperparameters"]["grid"] in ([2, 2, 1], [4, 4, 1]) and fold["hyperparameters"]["C"] in (0.1, 1.0)


def _check_strcn_magnified_mask(run_dir, results, synth_root, cache):
    """Every clip is prepared at alpha 8; training gives (alpha 8 + alpha 5) x (all frames + 80%) = 4
    samples per clip; the saved mask is fitted on the alpha-8 frames of the training clips."""
    import numpy as np

    from mertk.data import open_dataset
    from mertk.engine.checkpoint import load_checkpoint
    from mertk.engine.recipe import load_recipe
    from mertk.engine.recipe import feature_config, prepare_config
    from mertk.engine.run import load_clips
    from mertk.preprocess.eyemask import fit_strcn_mask
    from mertk.preprocess.pipeline import prepare

    assert results["samples"] == 4 * results["clips_used"]
    ckpt = load_checkpoint(run_dir)
    config = ckpt.prepare_config()
    assert config.magnify == 8.0 and config.align == "lwm" and config.frame_select == ()
    recipe = load_recipe("strcn-a-smic", SMOKE["strcn-a-smic"])
    assert feature_config(recipe, 3) == config
    ds, clips = load_clips("smic", synth_root / "SMIC", "megc2019", {})
    prepared = prepare(ds, prepare_config(recipe, config), cache_dir=cache, records=clips.records, progress=False)
    assert prepared.hits == len(prepared.features) == results["clips_used"]  # the run's own features
    mask = fit_strcn_mask([f.x for f in prepared.features], percentile=30)
    np.testing.assert_array_equal(np.asarray(ckpt.arrays["strcn_mask"]).astype(bool), mask)


def _check_final_model(run_dir, results, synth_root):
    """model.pt holds the run's model, classes and preprocessing, and classifies a prepared clip."""
    import numpy as np

    from mertk.engine.checkpoint import classify, load_checkpoint, model_inputs
    from mertk.engine.recipe import resolve_root
    from mertk.engine.run import load_clips
    from mertk.preprocess.pipeline import prepare_clip

    assert results["checkpoint"] == str(run_dir / "model.pt")
    ckpt = load_checkpoint(run_dir)
    assert list(ckpt.classes) == results["classes"] and ckpt.meta["recipe"] == results["recipe"]
    assert ckpt.model == results["model"] and ckpt.meta["clips"] == results["clips_used"]
    config = ckpt.prepare_config()
    if config.feature == "gray_face":
        return
    cfg = json.loads(json.dumps(__import__("yaml").safe_load((run_dir / "config.yaml").read_text())))
    assert cfg["features"] == ckpt.features  # the same preprocessing as training
    dataset = cfg["recipe"]["data"]["dataset"]
    _, clips = load_clips(dataset, resolve_root(dataset, cfg["recipe"]["data"].get("root"), synth_root),
                          cfg["label_map"], {})
    arrays = prepare_clip(clips.records[0], config)
    x, apex = model_inputs(ckpt, arrays)
    model = ckpt.build_model()
    assert x.shape[1:] == tuple(model.input_spec.shape) or config.feature == "strcn_pixels"
    probs, pred = classify(ckpt, model, arrays)
    assert probs.shape == (len(ckpt.classes),) and abs(float(probs.sum()) - 1) < 1e-4 and pred == int(np.argmax(probs)) or \
        ckpt.inference == "vote"


def test_composite_breakdown_and_pretraining(synth_root, cache, tmp_path):
    run_dir = run_recipe("laenet-megc2019", data=synth_root, out=tmp_path, overrides=SMOKE["laenet-megc2019"],
                         progress=False, cache_dir=cache)
    results = json.loads((run_dir / "results.json").read_text())
    assert set(results["report"]["per_dataset"]) == {"casme2", "samm", "smic"}
    assert results["pretrain"]["dataset"] == "ckplus" and results["pretrain"]["clips"] > 0
    assert len(results["folds"]) == 12  # 4 subjects in each of the 3 datasets


def test_same_seed_same_metrics(synth_root, cache, tmp_path):
    runs = [run_recipe("ststnet-megc2019", data=synth_root, out=tmp_path / str(i), overrides=["train.epochs=4"],
                       progress=False, cache_dir=cache) for i in range(2)]
    a, b = (json.loads((r / "results.json").read_text()) for r in runs)
    assert a["metrics"] == b["metrics"] and a["report"]["confusion"] == b["report"]["confusion"]
    assert (runs[0] / "predictions.csv").read_text() == (runs[1] / "predictions.csv").read_text()


def test_sigkill_then_resume(synth_root, cache, tmp_path):
    """Kill a real `mertk train` after its first fold file appears; the same command finishes the run
    without retraining the folds already saved."""
    cmd = [sys.executable, "-m", "mertk.cli", "train", "ststnet-megc2019", "--data", str(synth_root),
           "--out", str(tmp_path), "--cache", str(cache), "--quiet", "--set", "train.epochs=60",
           "--set", "fold_batching=false"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 90
    folds = []
    while time.monotonic() < deadline and proc.poll() is None:
        folds = list(tmp_path.glob("*/folds/*.npz"))
        if folds:
            break
        time.sleep(0.05)
    assert folds, "no fold finished before the deadline"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    (run_dir,) = {p.parent.parent for p in folds}
    before = {p.name: p.stat().st_mtime_ns for p in (run_dir / "folds").glob("*.npz")}
    assert 1 <= len(before) < 12 and not (run_dir / "results.json").exists()

    done = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    after = {p.name: p.stat().st_mtime_ns for p in (run_dir / "folds").glob("*.npz")}
    assert len(after) == 12
    assert {name: after[name] for name in before} == before  # the saved folds were not retrained
    results = json.loads((run_dir / "results.json").read_text())
    assert sum(f["resumed"] for f in results["folds"]) == len(before)
    frame = read_predictions(run_dir / "predictions.csv")
    assert len(frame) == results["clips_used"] and not frame.duplicated(["dataset", "subject", "clip"]).any()
    assert str(run_dir) in done.stdout and "UF1" in done.stdout


def test_best_test_epoch_figure_is_computed_by_hand():
    """Two folds, one sample per clip: fold a is right at epoch 2 only, fold b at epochs 1 and 3."""
    import numpy as np

    from mertk.engine.protocols import Fold
    from mertk.engine.rundir import SavedFold
    from mertk.engine.run import best_test_epoch_figure
    from mertk.engine.samples import Samples

    samples = Samples(np.zeros((4, 1)), owner=np.arange(4), train_only=np.zeros(4, bool), apex=np.ones(4, bool))
    y = np.array([0, 1, 1, 0])
    folds = [Fold("a", (2, 3), (0, 1)), Fold("b", (0, 1), (2, 3))]
    one = lambda *cls: np.eye(2, dtype=np.float32)[list(cls)]  # noqa: E731
    curve_a = np.stack([one(1, 0), one(0, 1), one(0, 0)])  # accuracy 0, 1, 0.5
    curve_b = np.stack([one(1, 1), one(0, 0), one(1, 0)])  # accuracy 0.5, 0.5, 1
    done = {"a": SavedFold("a", np.array([0, 1]), curve_a[-1], [], 0.0, 3, curve_a),
            "b": SavedFold("b", np.array([2, 3]), curve_b[-1], [], 0.0, 3, curve_b)}
    figure = best_test_epoch_figure(folds, done, samples, [None] * 4, y, ["x", "y"], "none")
    assert figure["epochs"] == [2, 3] and figure["accuracy"] == 1.0 and figure["uf1"] == 1.0
    assert "inflated" in figure["label"]
    done["b"] = SavedFold("b", np.array([2, 3]), curve_b[-1], [], 0.0, 3, None)
    assert best_test_epoch_figure(folds, done, samples, [None] * 4, y, ["x", "y"], "none") is None


def test_clips_csv_lists_the_runs_records_and_cache_keys(synth_root, cache, tmp_path):
    """clips.csv holds one row per clip the run used, in the run's order, with the key of its cached features."""
    import csv

    import numpy as np

    from mertk.engine.recipe import feature_config, prepare_config, resolve_root
    from mertk.engine.run import load_clips
    from mertk.preprocess.cache import FeatureCache
    from mertk.preprocess.pipeline import prepare

    run_dir = run_recipe("ststnet-megc2019", data=synth_root, out=tmp_path, overrides=["train.epochs=1"],
                         progress=False, cache_dir=cache)
    results = json.loads((run_dir / "results.json").read_text())
    with open(run_dir / "clips.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["record_id", "dataset", "subject", "clip", "label", "class_index", "cache_key"]
    assert len(rows) == results["clips_used"]
    recipe = load_recipe("ststnet-megc2019", ["train.epochs=1"])
    ds, clips = load_clips("megc2019", resolve_root("megc2019", None, synth_root), "megc2019", {})
    prepared = prepare(ds, prepare_config(recipe, feature_config(recipe, 3)), cache_dir=cache, records=clips.records,
                       progress=False)
    assert prepared.hits == len(prepared.features) == len(rows)
    for row, feat, k in zip(rows, prepared.features, clips.y):
        r = feat.record
        assert [row["record_id"], row["dataset"], row["subject"], row["clip"]] == [r.key, r.dataset, r.subject, r.clip]
        assert row["label"] == r.label == results["classes"][int(row["class_index"])] and int(row["class_index"]) == k
        assert row["cache_key"] == feat.key
        np.testing.assert_array_equal(FeatureCache(cache).get(row["cache_key"])["x"], feat.arrays["x"])
    frame = read_predictions(run_dir / "predictions.csv")
    assert {(r["subject"], r["clip"]) for r in rows} == set(zip(frame["subject"], frame["clip"]))


def test_run_config_file_errors_name_the_file(tmp_path):
    (tmp_path / "config.yaml").write_text("bogus: 1\n")
    with pytest.raises(DataError, match=r"config.yaml: unknown key 'bogus'"):
        read_run_config(tmp_path)
    (tmp_path / "config.yaml").write_text("[1, 2]\n")
    with pytest.raises(DataError, match="config.yaml: not a mapping"):
        read_run_config(tmp_path)
    with pytest.raises(DataError, match="missing"):
        read_run_config(tmp_path / "absent")
