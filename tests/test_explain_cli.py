"""``mertk explain``: saliency overlays of a run's final model on a synthetic clip's frame folder."""

from __future__ import annotations

import argparse
import json
import re

import numpy as np
import pytest

from mertk.engine.run import run_recipe
from mertk.errors import DataError, MertkError
from mertk.explain.cli import add_explain_parser, cmd_explain, explain


@pytest.fixture(scope="module")
def run_dir(synth_root, tmp_path_factory):
    import torch

    torch.set_num_threads(1)
    tmp = tmp_path_factory.mktemp("explain")
    return run_recipe("laenet-megc2019", data=synth_root, out=tmp / "runs",
                      overrides=("train.epochs=3", "pretrain.epochs=2"), progress=False, cache_dir=tmp / "cache")


@pytest.fixture(scope="module")
def clip(synth_root):
    folder = synth_root / "CASME2" / "CASME2_RAW_selected" / "sub01"
    return sorted(p for p in folder.iterdir() if p.is_dir())[0]


def _parser():
    parser = argparse.ArgumentParser()
    add_explain_parser(parser.add_subparsers())
    return parser


def test_frame_folder_writes_pngs_and_prints_the_figures(run_dir, clip, tmp_path, capsys):
    out = tmp_path / "ex"
    assert cmd_explain(_parser().parse_args(["explain", str(run_dir), str(clip), "--out", str(out), "--json"])) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["model"] == "laenet" and summary["classes"] == ["negative", "positive", "surprise"]
    (row,) = summary["inputs"]
    assert row["input"] == str(clip)
    probs = row["probabilities"]
    assert abs(sum(probs.values()) - 1) < 1e-5
    assert row["predicted"] == max(probs, key=probs.get) == row["target"]
    assert row["norm_improved"] > 0 and row["norm_original"] >= 0
    assert 0 < row["saliency_pixels"] <= row["pixels_total"] == 28 * 28
    adv = row["adversarial"]
    assert adv["before"] == row["predicted"] and adv["delta"] == pytest.approx(20 / 255)
    assert adv["changed_saliency"] == (adv["after_saliency"] != adv["before"])
    import matplotlib.image

    png = out / f"{clip.name}_saliency.png"
    assert [str(png), str(out / f"{clip.name}_maps.npz")] == row["files"]
    image = matplotlib.image.imread(png)
    assert image.shape[1] > 3 * image.shape[0] > 0 and image[..., :3].std() > 0.05  # four panels side by side
    with np.load(out / f"{clip.name}_maps.npz") as maps:
        assert maps["improved"].shape == (3, 28, 28)
        assert np.linalg.norm(maps["improved"]) == pytest.approx(row["norm_improved"], rel=1e-5)
        assert int(maps["saliency_pixels"].sum()) == row["saliency_pixels"]


def test_target_and_npy_input_and_checkpoint_file(run_dir, tmp_path):
    x = np.random.default_rng(0).random((3, 28, 28)).astype(np.float32)
    np.save(tmp_path / "feat.npy", x)
    summary = explain(run_dir / "model.pt", [tmp_path / "feat.npy"], out=tmp_path / "o", target="surprise",
                      adversarial=False)
    (row,) = summary["inputs"]
    assert row["target"] == "surprise" and row["adversarial"] is None and row["norm_improved"] > 0


def test_bad_inputs_are_one_line_errors(run_dir, clip, tmp_path):
    with pytest.raises(MertkError, match=r"^unknown target class 'joy'; the model's classes are: negative, positive, surprise$"):
        cmd_explain(_parser().parse_args(["explain", str(run_dir), str(clip), "--target", "joy", "--out", str(tmp_path)]))
    broken = tmp_path / "broken_clip"
    broken.mkdir()
    for i in (1, 2):
        (broken / f"img{i}.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(DataError, match=rf"^{re.escape(str(broken / 'img1.jpg'))}: unreadable image$"):
        explain(run_dir, [broken], out=tmp_path / "o")
    with pytest.raises(DataError, match=r"nowhere: input not found$"):
        explain(run_dir, [tmp_path / "nowhere"], out=tmp_path / "o")
    np.save(tmp_path / "small.npy", np.zeros((3, 10, 10), dtype=np.float32))
    with pytest.raises(DataError, match=r"small.npy: prepared input has shape \(3, 10, 10\), the model takes \(3, 28, 28\)"):
        explain(run_dir, [tmp_path / "small.npy"], out=tmp_path / "o")
    frame = next(clip.iterdir())
    with pytest.raises(DataError, match=r"a single image is an input only for still-image models \(gray_face\); "
                                        r"laenet takes uvs"):
        explain(run_dir, [frame], out=tmp_path / "o")
