"""Folds on Ray: the same predictions as the serial run, fold for fold, and resume of lost folds."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from mertk.engine.run import run_recipe
from mertk.engine.rundir import load_folds
from mertk.errors import MertkError

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


# ---------------------------------------------------------------------------------------------
# a real worker killed, a real driver killed
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def serial(synth_root, cache, tmp_path_factory):
    """The serial run every killed run must end equal to, fold for fold."""
    return load_folds(_run(synth_root, cache, tmp_path_factory.mktemp("serial")) / "folds")


def _assert_equal_folds(folds, serial):
    assert sorted(folds) == sorted(serial) and len(folds) == 12
    for name, saved in serial.items():
        np.testing.assert_array_equal(folds[name].test_index, saved.test_index)
        np.testing.assert_allclose(folds[name].probs, saved.probs, rtol=0, atol=1e-6)


def _fold_task_pids() -> list[int]:
    """Ray worker processes busy with a fold task (Ray names them after the task)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "cmdline").read_bytes().startswith(b"ray::_fold_task"):
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def test_killed_workers_lose_only_their_folds_and_the_next_call_resumes(ray_local, serial, synth_root, cache,
                                                                        tmp_path):
    """SIGKILL every worker that starts a fold once the first fold file exists, until Ray's retries are
    spent: the run stops with a one-line error, the finished folds stay, and the next call trains the rest."""
    stop, killed = threading.Event(), []

    def killer():
        while not stop.is_set() and not list(tmp_path.glob("*/folds/*.npz")):
            time.sleep(0.01)
        while not stop.is_set():
            for pid in _fold_task_pids():
                try:
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
                except ProcessLookupError:
                    pass
            time.sleep(0.01)

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    try:
        with pytest.raises(MertkError, match=r"the Ray worker training fold \S+ died .*run the same command again"):
            _run(synth_root, cache, tmp_path, train_workers=2)
    finally:
        stop.set()
        thread.join()
    assert len(killed) >= 3  # a fold is given up only after its retries died too
    (run_dir,) = {p.parent.parent for p in tmp_path.glob("*/folds/*.npz")}
    before = {p.name: p.stat().st_mtime_ns for p in (run_dir / "folds").glob("*.npz")}
    assert 1 <= len(before) < 12 and not (run_dir / "results.json").exists()

    assert _run(synth_root, cache, tmp_path, train_workers=2) == run_dir
    after = load_folds(run_dir / "folds")
    assert {p.name: p.stat().st_mtime_ns for p in (run_dir / "folds").glob("*.npz") if p.name in before} == before
    _assert_equal_folds(after, serial)
    results = json.loads((run_dir / "results.json").read_text())
    assert sum(f["resumed"] for f in results["folds"]) == len(before)


def test_killed_driver_resumes_with_the_serial_predictions(serial, synth_root, cache, tmp_path):
    """SIGKILL a real `mertk train --workers 2` after its first fold file appears; the same command finishes."""
    cmd = [sys.executable, "-m", "mertk.cli", "train", "ststnet-megc2019", "--data", str(synth_root), "--out",
           str(tmp_path), "--cache", str(cache), "--quiet", "--workers", "2"]
    for item in TINY:
        cmd += ["--set", item]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    folds = []
    while time.monotonic() < deadline and proc.poll() is None:
        folds = list(tmp_path.glob("*/folds/*.npz"))
        if folds:
            break
        time.sleep(0.01)
    assert folds, f"no fold finished before the deadline: {proc.stderr.read().decode()[-600:] if proc.poll() else ''}"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    (run_dir,) = {p.parent.parent for p in folds}
    time.sleep(1.0)  # the killed driver's Ray workers: whatever they still write is a whole fold file
    before = {p.name: p.stat().st_mtime_ns for p in (run_dir / "folds").glob("*.npz")}
    assert 1 <= len(before) and not (run_dir / "results.json").exists()

    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    _assert_equal_folds(load_folds(run_dir / "folds"), serial)
    results = json.loads((run_dir / "results.json").read_text())
    assert sum(f["resumed"] for f in results["folds"]) >= len(before)
    assert str(run_dir) in done.stdout


def test_nested_selection_on_ray_chooses_and_predicts_as_the_serial_run(ray_local, synth_root, cache, tmp_path):
    from mertk.engine.rundir import load_choices

    kw = dict(data=synth_root, progress=False, cache_dir=cache, overrides=[*TINY, "train.val_fraction=0.3"],
              select_grid=["train.lr=1e-2,1e-4"])
    serial = run_recipe("ststnet-megc2019", out=tmp_path / "serial", **kw)
    parallel = run_recipe("ststnet-megc2019", out=tmp_path / "ray", train_workers=2, **kw)
    a, b = load_choices(serial), load_choices(parallel)
    assert sorted(a) == sorted(b) and len(a) == 12 and a == b
    fa, fb = load_folds(serial / "folds"), load_folds(parallel / "folds")
    for name in fa:
        np.testing.assert_allclose(fa[name].probs, fb[name].probs, rtol=0, atol=1e-6)
        assert fb[name].history[0]["lr"] == pytest.approx(b[name]["chosen"]["lr"])
    ra, rb = (json.loads((d / "results.json").read_text()) for d in (serial, parallel))
    assert ra["selected_hyperparameters"] == rb["selected_hyperparameters"] == a
