"""ONNX export: parity with PyTorch for every registered model, dynamic batch, checkpoint metadata, CLI."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from mertk.deploy import INPUT_NAME, OUTPUT_NAME, OnnxClassifier, export_onnx
from mertk.deploy.onnx_export import add_export_parser, cmd_export
from mertk.engine.checkpoint import load_checkpoint
from mertk.errors import DataError, ModelError
from mertk.models import create_model, list_models

TOLERANCE = 1e-4


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("name", list_models("torch"))  # classical models are not torch graphs
def test_export_matches_torch(name: str, tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = create_model(name).eval()
    path = export_onnx(model, tmp_path / f"{name}.onnx")
    assert path == tmp_path / f"{name}.onnx" and path.is_file()
    assert [p.name for p in tmp_path.iterdir()] == [f"{name}.onnx"]  # no temporary file left
    assert not model.training
    clf = OnnxClassifier(path, threads=1)
    assert clf.input_name == INPUT_NAME and clf.session.get_outputs()[0].name == OUTPUT_NAME
    assert clf.input_shape == model.input_spec.shape
    assert clf.metadata["feature"] == model.input_spec.feature and clf.classes == ()
    gen = torch.Generator().manual_seed(1)
    for n in (1, 2):  # the graph was traced with a batch of 2: 1 checks the dynamic axis
        x = torch.randn(n, *model.input_spec.shape, generator=gen)
        with torch.no_grad():
            expected = torch.softmax(model(x), dim=1).numpy()
        got = clf(x)
        assert got.shape == (n, model.num_classes)
        np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=1e-5)
        assert np.abs(got - expected).max() < TOLERANCE, name


@pytest.fixture(scope="module")
def run_dir(synth_root: Path, tmp_path_factory) -> Path:
    from mertk.engine.run import run_recipe

    tmp = tmp_path_factory.mktemp("onnx-run")
    return run_recipe("laenet-megc2019", data=synth_root, out=tmp, overrides=("train.epochs=3", "pretrain.epochs=2"),
                      progress=False, cache_dir=tmp / "cache")


def test_export_checkpoint_metadata_and_parity(run_dir: Path, tmp_path: Path) -> None:
    ckpt = load_checkpoint(run_dir)
    path = export_onnx(run_dir / "model.pt", tmp_path / "sub" / "laenet.onnx")
    clf = OnnxClassifier(path)
    assert clf.classes == ckpt.classes == ("negative", "positive", "surprise")
    meta = clf.metadata
    assert meta["model"] == "laenet" and meta["recipe"] == "laenet-megc2019"
    assert meta["label_map"] == ckpt.label_map and meta["inference"] == ckpt.inference
    assert meta["features"] == dict(ckpt.features) and meta["features"]["eye_mask"] is True
    assert meta["model_kwargs"] == dict(ckpt.model_kwargs) and meta["num_classes"] == 3
    model = ckpt.build_model()
    x = torch.rand(5, 3, 28, 28, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        expected = torch.softmax(model(x), dim=1).numpy()
    assert np.abs(clf(x) - expected).max() < TOLERANCE


def _export_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    add_export_parser(parser.add_subparsers(dest="command"))
    return cmd_export(parser.parse_args(argv))


def test_export_cli_json(run_dir: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "m.onnx"
    assert _export_cli(["export", str(run_dir), "--onnx", str(out), "--opset", "17", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["onnx"] == str(out) and summary["bytes"] == out.stat().st_size
    assert summary["opset"] == 17 and summary["model"] == "laenet"
    assert 0 <= summary["parity_max_abs_diff"] < TOLERANCE


def test_export_cli_text(run_dir: Path, tmp_path: Path, capsys) -> None:
    assert _export_cli(["export", str(run_dir / "model.pt"), "--onnx", str(tmp_path / "m.onnx")]) == 0
    text = capsys.readouterr().out
    assert f"wrote {tmp_path / 'm.onnx'}" in text and "max |p_onnx - p_torch| =" in text


def test_export_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="checkpoint not found"):
        _export_cli(["export", str(tmp_path / "nope.pt"), "--onnx", str(tmp_path / "x.onnx")])
    with pytest.raises(ModelError, match="takes a mertk model"):
        export_onnx(torch.nn.Linear(2, 2), tmp_path / "x.onnx")
    with pytest.raises(DataError, match="ONNX model not found"):
        OnnxClassifier(tmp_path / "missing.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a protobuf")
    with pytest.raises(DataError, match="not a readable ONNX model"):
        OnnxClassifier(bad)
    path = export_onnx(create_model("laenet"), tmp_path / "l.onnx")
    with pytest.raises(ModelError, match=r"expects input \(N, 3, 28, 28\), got \(1, 3, 32, 32\)"):
        OnnxClassifier(path)(np.zeros((1, 3, 32, 32), np.float32))
    assert not (tmp_path / "x.onnx").exists()
