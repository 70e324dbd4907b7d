"""Folds on Ray: the same predictions as the serial run, fold for fold, and resume of lost folds."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mertk.engine.run import run_recipe
from mertk.engine.rundir import load_folds

ray = pytest.importorskip("ray")

TINY = ["train.epochs=2", "fold_batching=false"]


@pytest.fixture(scope="module")
def ray_local():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


def _run(synth_root, cache, out, **kw):
    return run_recipe("ststnet-megc2019", data=synth_root, out=out, overrides=TINY, progress=False, cache_dir=cache, **kw)


def test_ray_predictions_equal_serial_fold_for_fold(ray_local, synth_root, cache, tmp_path):
    serial = _run(synth_root, cache, tmp_path / "serial")
    parallel = _run(synth_root, cache, tmp_path / "ray", train_workers=2)
    assert serial.name == parallel.name  # the worker count is not part of the run's identity
    a, b = load_folds(serial / "folds"), load_folds(parallel / "folds")
    assert sorted(a) == sorted(b) and len(a) == 12
    for name in a:
        np.testing.assert_array_equal(a[name].test_index, b[name].test_index)
        np.testing.assert_allclose(a[name].probs, b[name].probs, rtol=0, atol=1e-6)
        assert [h["loss"] for h in a[name].history] == pytest.approx([h["loss"] for h in b[name].history], abs=1e-6)
    assert (serial / "predictions.csv").read_text().splitlines()[0] == (parallel / "predictions.csv").read_text().splitlines()[0]
    ra, rb = (json.loads((d / "results.json").read_text()) for d in (serial, parallel))
    assert ra["metrics"] == pytest.approx(rb["metrics"])


def test_ray_run_retrains_only_lost_folds(ray_local, synth_root, cache, tmp_path):
    run_dir = _run(synth_root, cache, tmp_path, train_workers=2)
    files = sorted((run_dir / "folds").glob("*.npz"))
    lost = files[:3]
    kept = {p.name: p.stat().st_mtime_ns for p in files[3:]}
    before = {p.name: np.load(p)["probs"] for p in lost}
    for p in lost:  # what a killed driver or a dead worker leaves: some fold files missing
        p.unlink()
    (run_dir / "results.json").unlink()
    assert _run(synth_root, cache, tmp_path, train_workers=2) == run_dir
    after = {p.name: p.stat().st_mtime_ns for p in (run_dir / "folds").glob("*.npz")}
    assert len(after) == 12 and {k: after[k] for k in kept} == kept
    for name, probs in before.items():
        np.testing.assert_allclose(np.load(run_dir / "folds" / name)["probs"], probs, atol=1e-6)
    results = json.loads((run_dir / "results.json").read_text())
    assert sum(f["resumed"] for f in results["folds"]) == 9


def test_one_worker_runs_serially_without_ray(synth_root, cache, tmp_path, monkeypatch):
    from mertk.engine import parallel

    monkeypatch.setattr(parallel, "ray_available", lambda: False)
    lines = []
    run_dir = run_recipe("ststnet-megc2019", data=synth_root, out=tmp_path, overrides=TINY, progress=False,
                         cache_dir=cache, train_workers=2, log=lines.append)
    assert any("Ray is not installed" in line for line in lines)
    assert len(load_folds(run_dir / "folds")) == 12
    assert not parallel.wanted(1, None)
