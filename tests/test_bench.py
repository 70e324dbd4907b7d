"""`mertk bench`: structure and arithmetic of the report, the timed path equal to the pipeline, the CLI (no timing thresholds)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest

from mertk.errors import MertkError
from mertk.preprocess.face import face_landmarks
from mertk.preprocess.pipeline import prepare_frames, read_frames
from mertk.realtime.bench import (DEFAULT_MODELS, REFERENCE_FLOW, TARGET_STAGES, StageClock, add_bench_parser, bench,
                                  bench_clip, cmd_bench, format_bench, model_config, timed_features)

LAENET_STAGES = {"decode", "face", "crop", "flow", "strain", "encode", "model_torch", "model_onnx"}


@pytest.fixture(scope="module")
def result(synth_root: Path) -> dict:
    return bench(repeats=2, models=["laenet"], flows=["tvl1", "farneback"], threads=1, data=synth_root)


def test_bench_structure_and_sums(result: dict) -> None:
    assert json.loads(json.dumps(result)) == result
    assert result["settings"]["repeats"] == 2 and result["clip"]["name"].startswith("CASME2/")
    assert list(result["stages"]) == ["decode", "face"]
    assert list(result["flows"]) == ["tvl1", "farneback", REFERENCE_FLOW]
    ref = result["flows"][REFERENCE_FLOW]["median_ms"]
    for row in result["flows"].values():
        assert 0 < row["median_ms"] <= row["p90_ms"]
        assert row["ratio_to_reference"] == pytest.approx(ref / row["median_ms"], rel=1e-3)
    row = result["models"]["laenet"]
    assert (row["feature"], row["flow"], row["samples"], row["flow_pairs"]) == ("uvs", "tvl1", 1, 1)
    assert set(row["stages"]) == LAENET_STAGES
    assert all(v["median_ms"] > 0 for v in row["stages"].values())
    for engine in ("torch", "onnx"):
        total = row["total"][engine]
        assert total["stages"] == ["decode", "face", "crop", "flow", "strain", "encode", f"model_{engine}"]
        assert total["with_face_ms"] == pytest.approx(sum(row["stages"][s]["median_ms"] for s in total["stages"]), abs=1e-3)
        assert total["without_face_ms"] == pytest.approx(total["with_face_ms"] - row["stages"]["face"]["median_ms"], abs=1e-3)
    reference = row["reference"]
    assert reference["flow"] == REFERENCE_FLOW and reference["runs"] == 2
    ours = row["total"]["onnx"]["without_face_ms"]
    swapped = ours - row["stages"]["flow"]["median_ms"] + reference["flow_ms"]["median_ms"]
    assert reference["total_without_face_ms"] == pytest.approx(swapped, abs=1e-3)
    assert reference["speedup"] == pytest.approx(swapped / ours, rel=1e-3)
    target = result["target"]
    assert target["model"] == "laenet" and target["limit_ms"] == 10.0
    for engine in ("torch", "onnx"):
        path = sum(row["stages"][s]["median_ms"] for s in TARGET_STAGES) + row["stages"][f"model_{engine}"]["median_ms"]
        assert target["path_ms"][engine] == pytest.approx(path, abs=1e-3)
    assert target["met"] == (min(target["path_ms"].values()) <= 10.0)
    assert result["stream"]["fps_median"] > 0 and result["stream"]["frames"] > result["clip"]["frames"]
    text = format_bench(result)
    assert "laenet (uvs, flow tvl1, 1 sample(s))" in text and "target: laenet path" in text


@pytest.mark.parametrize("model", DEFAULT_MODELS)
def test_timed_path_equals_prepare_frames(model: str, synth_root: Path) -> None:
    clip = bench_clip(synth_root)
    frames = read_frames(clip["paths"])
    _, points = face_landmarks(frames[0])
    for flow_size in (None, 56):
        config = model_config(model, flow_size)
        if config.feature == "clip_rgb" and flow_size:
            continue
        clock = StageClock()
        got = timed_features(frames, points, clip["apex_index"], config, clock)
        assert {"crop", "encode"} <= set(clock.ms) <= {"crop", "flow", "strain", "encode"}
        assert ("flow" in clock.ms) == config.family.uses_flow
        want = prepare_frames(frames, config, apex_index=clip["apex_index"], landmarks=points)["x"]
        assert got.shape == want.shape and got.dtype == want.dtype
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)


def test_bench_rejects_bad_arguments(synth_root: Path) -> None:
    with pytest.raises(MertkError, match="bench: model shcnn takes 'gray_face'"):
        bench(models=["shcnn"], data=synth_root)
    with pytest.raises(MertkError, match="repeats must be >= 1"):
        bench(repeats=0, data=synth_root)
    with pytest.raises(MertkError, match="unknown"):
        bench(repeats=1, flows=["nope"], data=synth_root)


def test_bench_cli_json(synth_root: Path, capsys) -> None:
    parser = argparse.ArgumentParser()
    add_bench_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["bench", "--repeats", "1", "--models", "ststnet", "--flows", "dis", "--threads", "1",
                              "--flow-size", "56", "--synth", str(synth_root), "--json"])
    assert cmd_bench(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert list(out["models"]) == ["ststnet"] and list(out["flows"]) == ["dis", REFERENCE_FLOW]
    assert out["models"]["ststnet"]["flow_size"] == 56 and out["settings"]["flow_size"] == 56
    assert out["target"] is None


def test_flow_grey_scale(synth_root: Path) -> None:
    from mertk.preprocess.features.base import flow_grey

    frames = read_frames(bench_clip(synth_root)["paths"][:2])
    grey = flow_grey(frames)
    assert grey.dtype == np.float32 and grey.shape == frames.shape[:3] and 0 <= grey.min() and grey.max() <= 1
    want = frames.astype(np.float64) @ np.array([0.299, 0.587, 0.114]) / 255
    np.testing.assert_allclose(grey, want, atol=1e-5)
