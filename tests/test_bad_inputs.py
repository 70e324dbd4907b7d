"""The catalogue of bad inputs and failed writes: each runs the real command line in a subprocess and
must end with exit code 2, exactly one line on stderr, naming the file (or key) at fault.

Outputs on a read-only or a full file system use tmpfs mounts and are skipped where the test cannot
mount (not root, no mount namespace). Also here: the worker processes of a killed ``mertk prepare``
exit with it, and a truncated frame is skipped by ``prepare`` with its reason.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from mertk.config_types import check_fields
from mertk.engine.run import run_recipe
from mertk.errors import MertkError

SRC = str(Path(__file__).resolve().parents[1] / "src")


def cli(*args: str, cwd: Path | None = None, memory: int | None = None, timeout: float = 300):
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}

    def limit() -> None:  # pragma: no cover (runs in the child)
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))

    return subprocess.run([sys.executable, "-m", "mertk.cli", *map(str, args)], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=timeout, preexec_fn=limit if memory else None)


def _mount(path: Path, options: str) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    if shutil.which("mount") is None:
        pytest.skip("no mount command")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.decode().strip()})")
    return path


@pytest.fixture(scope="module")
def mounts(tmp_path_factory):
    """A read-only tmpfs and a 64 KiB tmpfs filled by the first large write."""
    base = tmp_path_factory.mktemp("mounts")
    made: dict[str, Path] = {}

    def mount(kind: str) -> Path:
        if kind not in made:
            made[kind] = _mount(base / kind, "ro,size=64k" if kind == "ro" else "size=64k")
        return made[kind]

    yield mount
    for path in made.values():
        subprocess.run(["umount", str(path)], capture_output=True)


@pytest.fixture(scope="module")
def env(synth_root, tmp_path_factory):
    """A short trained run, a frame pair, a regular file, bad checkpoints and a truncated frame."""
    import pickle

    import torch

    torch.set_num_threads(1)
    tmp = tmp_path_factory.mktemp("bad")
    run = run_recipe("laenet-megc2019", data=synth_root, out=tmp / "runs", overrides=("train.epochs=1", "pretrain.epochs=1"),
                     progress=False, cache_dir=tmp / "cache")
    clip = sorted(p for p in (synth_root / "CASME2" / "CASME2_RAW_selected" / "sub01").iterdir() if p.is_dir())[0]
    frames = sorted(clip.glob("*.jpg"))
    (tmp / "afile").write_text("a regular file\n")
    cut = tmp / "cut.jpg"
    data = frames[1].read_bytes()
    cut.write_bytes(data[: len(data) // 3])
    (tmp / "proto0.pt").write_bytes(pickle.dumps({"x": 1}, protocol=0))

    class Code:
        def __reduce__(self):
            return (os.getcwd, ())

    torch.save({"state": Code()}, tmp / "code.pt")
    return {"tmp": tmp, "run": run, "a": frames[0], "b": frames[1], "cut": cut, "file": tmp / "afile",
            "root": synth_root}


def _damaged_run(env, name: str, change) -> Path:
    copy = env["tmp"] / name
    if not copy.exists():
        shutil.copytree(env["run"], copy)
        change(copy)
    return copy


def _results(copy: Path) -> None:
    path = copy / "results.json"
    results = json.loads(path.read_text())
    results["metrics"]["uf1"] = "high"
    path.write_text(json.dumps(results))


def _predictions_csv(tmp: Path, cell: str) -> Path:
    path = tmp / f"pred_{abs(hash(cell))}.csv"
    path.write_text("dataset,subject,clip,y_true,y_pred,p_a,p_b\n"
                    "d,s1,c1,a,a,0.9,0.1\n"
                    f"d,s2,c2,b,a,{cell},0.5\n")
    return path


def _nan_input(tmp: Path) -> Path:
    import numpy as np

    path = tmp / "nan.npy"
    x = np.zeros((3, 28, 28), np.float32)
    x[0, 3, 4] = np.nan
    np.save(path, x)
    return path


def _xlsx_as_csv(env) -> Path:
    path = env["tmp"] / "coding.csv"
    shutil.copy(next((env["root"] / "CASME2").glob("*.xlsx")), path)
    return path


# (id, command arguments from the env and mounts, the text stderr must name)
CASES = [
    # 1. failed output writes
    ("flow-out-under-file", lambda e, m: ["flow", e["a"], e["b"], "--out", e["file"] / "x.npy"], lambda e: e["file"]),
    ("flow-out-read-only", lambda e, m: ["flow", e["a"], e["b"], "--out", m("ro") / "x.npy"], lambda e: "read-only"),
    ("flow-out-full-disk", lambda e, m: ["flow", e["a"], e["b"], "--out", m("full") / "flow.npy"], lambda e: "flow.npy"),
    ("prepare-cache-under-file", lambda e, m: ["prepare", "casme2", e["root"] / "CASME2", "--features", "uvs", "--quiet",
                                               "--cache", e["file"] / "cache"], lambda e: e["file"]),
    ("prepare-cache-read-only", lambda e, m: ["prepare", "casme2", e["root"] / "CASME2", "--features", "uvs", "--quiet",
                                              "--cache", m("ro") / "cache"], lambda e: "cache"),
    ("prepare-cache-full-disk-workers", lambda e, m: ["prepare", "casme2", e["root"] / "CASME2", "--features", "uvs",
                                                      "--quiet", "--workers", "2", "--cache", m("full") / "cache"],
     lambda e: ".npz: No space left on device"),
    ("train-out-under-file", lambda e, m: ["train", "laenet-megc2019", "--data", e["root"], "--out", e["file"] / "runs"],
     lambda e: e["file"]),
    ("train-cache-read-only", lambda e, m: ["train", "laenet-megc2019", "--data", e["root"], "--out", e["tmp"] / "r1",
                                            "--cache", m("ro") / "cache"], lambda e: "read-only"),
    ("export-onnx-under-file", lambda e, m: ["export", e["run"], "--onnx", e["file"] / "m.onnx"], lambda e: e["file"]),
    ("explain-out-under-file", lambda e, m: ["explain", e["run"], e["a"].parent, "--out", e["file"] / "ex"],
     lambda e: e["file"]),
    ("compare-markdown-under-file", lambda e, m: ["compare", e["run"], "--markdown", e["file"] / "c.md"],
     lambda e: e["file"]),
    ("out-of-memory", lambda e, m: ["prepare", "casme2", e["root"] / "CASME2", "--features", "uvs", "--no-cache",
                                    "--quiet", "--workers", "1", "--set", "size=[40000,40000]"],
     lambda e: "out of memory (Failed to allocate"),
    # 2. wrongly typed configuration values
    ("set-bool", lambda e, m: ["prepare", "casme2", e["root"] / "CASME2", "--features", "uvs", "--no-cache",
                               "--set", "eye_mask=maybe"], lambda e: "eye_mask must be true or false, got 'maybe'"),
    ("set-size-scalar", lambda e, m: ["prepare", "casme2", e["root"] / "CASME2", "--features", "uvs", "--no-cache",
                                      "--set", "size=1000000000000"], lambda e: "size must be a list of 2"),
    ("set-flow-size", lambda e, m: ["prepare", "casme2", e["root"] / "CASME2", "--features", "uvs", "--no-cache",
                                    "--set", "flow_size=hello"], lambda e: "flow_size must be an integer, got 'hello'"),
    ("train-set-feature-bool", lambda e, m: ["train", "laenet-megc2019", "--data", e["root"], "--out", e["tmp"] / "r2",
                                             "--set", "features.eye_mask=maybe"],
     lambda e: "features: eye_mask must be true or false, got 'maybe'"),
    ("train-set-augment-list", lambda e, m: ["train", "laenet-megc2019", "--data", e["root"], "--out", e["tmp"] / "r2",
                                             "--set", "augment.rotate=[5,left]"], lambda e: "laenet-megc2019.yaml: augment.rotate"),
    ("train-set-seed", lambda e, m: ["train", "laenet-megc2019", "--data", e["root"], "--out", e["tmp"] / "r2",
                                     "--set", "seed=1.5"], lambda e: "seed must be an integer, got 1.5"),
    # 3. a truncated frame given as a single image
    ("flow-truncated-jpeg", lambda e, m: ["flow", e["cut"], e["b"]], lambda e: f"{e['cut']}: truncated JPEG"),
    # 4. extra lines from libraries
    ("xlsx-renamed-csv", lambda e, m: ["info", "casme2", e["root"] / "CASME2", "--annotation", _xlsx_as_csv(e)],
     lambda e: "coding.csv: cannot read"),
    ("flow-missing-image", lambda e, m: ["flow", e["a"], e["tmp"] / "missing.jpg"], lambda e: "missing.jpg: image not found"),
    ("checkpoint-with-code", lambda e, m: ["export", e["tmp"] / "code.pt", "--onnx", e["tmp"] / "m.onnx"],
     lambda e: "code.pt: not a readable mertk checkpoint (UnpicklingError: Trying to load unsupported GLOBAL"),
    ("checkpoint-protocol-0", lambda e, m: ["export", e["tmp"] / "proto0.pt", "--onnx", e["tmp"] / "m.onnx"],
     lambda e: "proto0.pt: not a readable mertk checkpoint"),
    # 5. damaged run directories
    ("report-no-config", lambda e, m: ["report", _damaged_run(e, "no_config", lambda d: (d / "config.yaml").unlink())],
     lambda e: "config.yaml: missing"),
    ("compare-text-score", lambda e, m: ["compare", _damaged_run(e, "text_uf1", _results), e["run"]],
     lambda e: "results.json: metrics.uf1 must be a number, got 'high'"),
    ("report-no-predictions", lambda e, m: ["report", _damaged_run(e, "no_pred", lambda d: (d / "predictions.csv").unlink())],
     lambda e: "predictions.csv: missing"),
    ("report-garbage-predictions", lambda e, m: ["report", _damaged_run(
        e, "bad_pred", lambda d: (d / "predictions.csv").write_bytes(b'\x00garbage,,"\n"""'))],
     lambda e: "predictions.csv: missing column"),
    # 8. smaller defects
    ("metrics-negative-probability", lambda e, m: ["metrics", _predictions_csv(e["tmp"], "-3.0")],
     lambda e: "row 3: p_a must be a probability in [0, 1], got '-3.0'"),
    ("metrics-inf-probability", lambda e, m: ["metrics", _predictions_csv(e["tmp"], "inf")],
     lambda e: "row 3: p_a must be a probability in [0, 1], got 'inf'"),
    ("explain-nan-input", lambda e, m: ["explain", e["run"], _nan_input(e["tmp"]), "--out", e["tmp"] / "ex"],
     lambda e: "nan.npy: holds 1 NaN"),
    ("train-data-nowhere", lambda e, m: ["train", "laenet-megc2019", "--data", e["tmp"] / "nowhere", "--out",
                                         e["tmp"] / "r3"], lambda e: "nowhere"),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_named_line(case, env, mounts):
    name, make_args, named = case
    done = cli(*make_args(env, mounts), cwd=env["tmp"], memory=3 * 2**30 if name == "out-of-memory" else None)
    lines = done.stderr.splitlines()
    assert done.returncode == 2, done.stderr[-3000:]
    assert len(lines) == 1, done.stderr[-3000:]
    assert lines[0].startswith("mertk: error: ")
    assert str(named(env)) in lines[0]
    assert "\x1b[" not in lines[0] and "weights_only" not in lines[0]


def test_refused_train_values_leave_no_run_directory(env, mounts):
    for out in ("r2", "r3"):
        assert not (env["tmp"] / out).exists() or not any((env["tmp"] / out).iterdir())
    runs = env["tmp"] / "r4"
    done = cli("train", "laenet-megc2019", "--data", env["tmp"] / "nowhere", "--out", runs)
    assert done.returncode == 2 and not runs.exists()


def test_flow_out_creates_a_missing_parent_and_labels_the_size(env):
    out = env["tmp"] / "new" / "sub" / "flow.npy"
    done = cli("flow", env["a"], env["b"], "--out", out)
    assert done.returncode == 0, done.stderr
    assert out.is_file() and "(WxH) flow in" in done.stdout and done.stderr == ""


def test_prepare_skips_a_clip_with_a_truncated_frame(synth_root, tmp_path):
    root = tmp_path / "CASME2"
    shutil.copytree(synth_root / "CASME2", root)
    clip = sorted(p for p in (root / "CASME2_RAW_selected" / "sub01").iterdir() if p.is_dir())[0]
    frame = sorted(clip.glob("*.jpg"))[2]
    data = frame.read_bytes()
    frame.write_bytes(data[: len(data) // 3])
    done = cli("prepare", "casme2", root, "--features", "uvs", "--no-cache", "--quiet", "--json")
    assert done.returncode == 0, done.stderr
    skipped = {s["item"]: s["reason"] for s in json.loads(done.stdout)["skipped"]}
    assert skipped == {f"casme2/sub01/{clip.name}": f"{frame}: truncated JPEG ({len(data) // 3} bytes, no end-of-image "
                                                     f"marker FF D9)"}
    assert "Premature end" not in done.stderr


def test_yaml_recipe_values_are_checked_like_set(tmp_path):
    from mertk.engine.recipe import load_recipe

    path = tmp_path / "mine.yaml"
    path.write_text("name: mine\ndata: casme2\nmodel: laenet\nfinal_model: maybe\n")
    with pytest.raises(MertkError, match=rf"^{path}: final_model must be true or false, got 'maybe'$"):
        load_recipe(path)
    path.write_text("name: mine\ndata: {dataset: casme2, root: 5}\nmodel: laenet\n")
    with pytest.raises(MertkError, match=r"data.root must be a string or null, got 5$"):
        load_recipe(path)


def test_a_field_added_later_is_checked_from_its_annotation():
    @dataclass(frozen=True)
    class Later:
        gaps: int = field(default=0, metadata={"range": (0, 10)})
        shares: tuple[float, ...] = ()
        name: str | None = None

        def __post_init__(self) -> None:
            check_fields(self, prefix="later.")

    assert Later(gaps=3, shares=[1, 0.5]).shares == (1.0, 0.5)
    with pytest.raises(MertkError, match=r"^later.gaps must be between 0 and 10, got 11$"):
        Later(gaps=11)
    with pytest.raises(MertkError, match=r"^later.gaps must be an integer, got True$"):
        Later(gaps=True)
    with pytest.raises(MertkError, match=r"^later.shares must be a list \(each a number\), got \['x'\]$"):
        Later(shares=["x"])
    with pytest.raises(MertkError, match=r"^later.name must be a string or null, got 3$"):
        Later(name=3)


def _children(pid: int) -> list[int]:
    kids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(stat[1]) == pid:
                kids.append(int(entry))
    return kids


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_workers_exit_when_prepare_is_killed(synth_root, tmp_path):
    cache = tmp_path / "cache"
    env = {**os.environ, "PYTHONPATH": SRC}
    parent = subprocess.Popen([sys.executable, "-m", "mertk.cli", "prepare", "casme2", str(synth_root / "CASME2"),
                               "--features", "uvs", "--cache", str(cache), "--quiet", "--workers", "2"],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 240
        while time.time() < deadline and not list(cache.glob("*/*.npz")):  # a worker has finished a clip
            assert parent.poll() is None, "prepare ended before it could be killed"
            time.sleep(0.2)
        kids = _children(parent.pid)
        assert len(kids) >= 2
    finally:
        parent.send_signal(signal.SIGKILL)
        parent.wait()
    deadline = time.time() + 8
    while time.time() < deadline and any(_alive(k) for k in kids):
        time.sleep(0.2)
    survivors = [k for k in kids if _alive(k)]
    for k in survivors:
        os.kill(k, signal.SIGKILL)
    assert survivors == []
