"""Smoke tests of the benchmark scripts' core functions on a tiny synthetic set (known answers where there are some)."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import bench_flow  # noqa: E402
import bench_preprocess  # noqa: E402
import bench_train  # noqa: E402

from mertk.errors import DataError, MertkError  # noqa: E402
from mertk.preprocess.flow import FlowError  # noqa: E402


@pytest.fixture(scope="module")
def clips(synth_root: Path) -> list[bench_flow.SynthClip]:
    return bench_flow.load_synth_clips(synth_root)


def test_load_synth_clips_matches_ground_truth(synth_root: Path, clips: list[bench_flow.SynthClip]) -> None:
    truth = json.loads((synth_root / "ground_truth.json").read_text())["clips"]
    micro = [c for c in truth if c["dataset"] in ("CASME2", "SAMM")]
    assert [c.name for c in clips] == [f"{c['dataset']}/{c['subject']}/{c['clip']}" for c in micro]
    for clip, entry in zip(clips, micro):
        first, last = entry["frames"]
        assert clip.frames.shape[0] == last - first + 1 and clip.frames.dtype == np.uint8
        assert clip.apex == entry["apex"] - first
        assert clip.blink == tuple(b - first for b in entry["blink_frames"])
        assert clip.flow_apex.shape == (*clip.frames.shape[1:], 2)
        assert clip.envelope()[0] == 0.0 and clip.envelope()[clip.apex] == 1.0
    assert len(bench_flow.load_synth_clips(synth_root, ["SMIC"], limit=2)) == 2


def test_load_synth_clips_errors(tmp_path: Path, synth_root: Path) -> None:
    with pytest.raises(DataError, match=r"ground_truth\.json: missing"):
        bench_flow.load_synth_clips(tmp_path)
    with pytest.raises(MertkError, match="unknown micro dataset.*CK\\+"):
        bench_flow.load_synth_clips(synth_root, ["CK+"])


def test_resize_flow_scales_vectors() -> None:
    flow = np.broadcast_to(np.float32([1.0, 2.0]), (50, 40, 2)).copy()
    out = bench_flow.resize_flow(flow, (100, 120))  # height x2, width x3
    assert out.shape == (100, 120, 2)
    np.testing.assert_allclose(out[..., 0], 3.0)
    np.testing.assert_allclose(out[..., 1], 4.0)


def test_hull_mask_area() -> None:
    pts = np.array([[10, 20], [29, 20], [29, 34], [10, 34]] * 17, dtype=np.float32)  # 68 points, a 20 x 15 rectangle
    mask = bench_flow.hull_mask((50, 40), pts)
    assert mask.sum() == 20 * 15 and mask[20, 10] and mask[34, 29] and not mask[19, 10]


def test_synth_pairs_ground_truth_explains_the_motion(clips: list[bench_flow.SynthClip]) -> None:
    """Warping the apex crop back with the resized true flow brings it much closer to the onset crop."""
    prevs, nexts, flows, masks = bench_flow.synth_pairs(clips[:4], (170, 140))
    assert prevs.shape == nexts.shape == (4, 170, 140) and flows.shape == (4, 170, 140, 2)
    assert masks.shape == (4, 170, 140) and 0.3 < masks.mean() < 0.95
    ys, xs = np.mgrid[0:170, 0:140].astype(np.float32)
    for a, b, f, m in zip(prevs, nexts, flows, masks):
        a, b = a.astype(np.float32), b.astype(np.float32)
        warped = cv2.remap(b, xs + f[..., 0], ys + f[..., 1], cv2.INTER_CUBIC)
        shrunk = cv2.remap(b, xs + f[..., 0] / 2, ys + f[..., 1] / 2, cv2.INTER_CUBIC)  # vectors not rescaled
        assert np.abs(warped - a)[m].mean() < 0.85 * np.abs(b - a)[m].mean()
        assert np.abs(warped - a)[m].mean() < np.abs(shrunk - a)[m].mean()


def test_flow_benchmark_rows_and_comparison(clips: list[bench_flow.SynthClip]) -> None:
    data = {s: bench_flow.synth_pairs(clips[:3], s) for s in bench_flow.SIZES}
    result = bench_flow.benchmark(data, ["tvl1", "tvl1_opencv"], repeats=1)
    assert result["pairs"] == {"128x128": 3, "170x140": 3}
    rows = {(r["method"], r["size"]): r for r in result["rows"]}
    assert set(rows) == {(m, s) for m in ("zero flow", "tvl1", "tvl1_opencv") for s in ("128x128", "170x140")}
    for size in ("128x128", "170x140"):
        zero = rows["zero flow", size]
        assert zero["ms_per_pair"] is None and 0.05 < zero["epe"] < 2.0
        for m in ("tvl1", "tvl1_opencv"):
            assert rows[m, size]["epe"] < 0.8 * zero["epe"]
            assert rows[m, size]["epe_moving"] < 0.8 * zero["epe_moving"]
            assert rows[m, size]["ms_per_pair"] > 0
        c = result["tvl1_vs_opencv"][size]
        assert c["speed_ratio"] == pytest.approx(rows["tvl1_opencv", size]["ms_per_pair"] / rows["tvl1", size]["ms_per_pair"])
        assert c["target_met"] == (c["speed_ratio"] >= 10 and c["epe_ours"] <= c["epe_reference"])


def test_astronaut_pairs_source() -> None:
    prevs, nexts, flows, masks = bench_flow.astronaut_pairs((128, 128), 2, seed=3)
    assert prevs.shape == (2, 128, 128) and masks.shape == (2, 128, 128)
    peak = np.hypot(flows[..., 0], flows[..., 1]).reshape(2, -1).max(axis=1)
    assert np.all((peak > 0.29) & (peak < 2.01))


def test_parse_params() -> None:
    assert bench_flow.parse_params(["tvl1:lambda_=0.08,iterations=20", "tvl1:presmooth_sigma=0"]) == {
        "tvl1": {"lambda_": 0.08, "iterations": 20, "presmooth_sigma": 0}}
    with pytest.raises(FlowError, match="unknown parameter.*bogus"):
        bench_flow.parse_params(["tvl1:bogus=1"])
    with pytest.raises(MertkError, match="expected METHOD:NAME=VALUE"):
        bench_flow.parse_params(["lambda_=0.1"])


def test_flow_main_json_and_error(synth_root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bench_flow.main(["--synth", str(synth_root), "--pairs", "2", "--methods", "tvl1,dis", "--repeats", "1", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert out["pairs"] == {"128x128": 2, "170x140": 2} and "synthetic" in out["source"]
    assert out["tvl1_vs_opencv"] == {}  # the reference was not run
    with pytest.raises(SystemExit) as exc:
        bench_flow.main(["--synth", str(synth_root / "nowhere")])
    assert exc.value.code == 2
    assert "ground_truth.json: missing" in capsys.readouterr().err


def test_spotting_rows(clips: list[bench_flow.SynthClip]) -> None:
    faces = [bench_flow.face_crop(c) for c in clips[:3]]
    rows = bench_preprocess.spotting(faces, spotters=["std_diff", "flow_peak"])
    assert [r["spotter"] for r in rows] == ["middle frame (baseline)", "std_diff", "flow_peak (tvl1)",
                                            "flow_peak (tvl1, eyes masked)"]
    middle = np.mean([abs((len(c.frames) - 1) // 2 - c.apex) for c, _ in faces])
    assert rows[0]["mae"] == pytest.approx(middle)
    for r in rows:
        assert r["clips"] == 3 and 0 <= r["within2"] <= 1 and r["mae"] >= 0
        assert r["no_blink_clips"] == sum(not c.blink for c, _ in faces)


def test_evm_amplifies_the_expression(clips: list[bench_flow.SynthClip]) -> None:
    faces = [bench_flow.face_crop(c) for c in clips[:3]]
    gt, raw, evm = bench_preprocess.evm_effect(faces, alpha=8)
    assert [r["input"] for r in (gt, raw, evm)] == ["ground truth", "raw", "EVM alpha 8"]
    assert gt["expression"] > bench_preprocess.MOVING_PX and gt["static"] < gt["expression"]
    assert 0.5 * gt["expression"] < raw["expression"] < 1.5 * gt["expression"]
    assert evm["expression"] > 1.5 * raw["expression"]
    assert raw["ratio"] == pytest.approx(raw["expression"] / raw["static"])


def test_eye_mask_effect_grows_with_dilation(clips: list[bench_flow.SynthClip]) -> None:
    chosen = [c for c in clips if c.blink][:2] + [c for c in clips if not c.blink][:1]
    faces = [bench_flow.face_crop(c) for c in chosen]
    rows = bench_preprocess.eye_mask_effect(faces, dilations=(0, 3))
    assert [r["dilate"] for r in rows] == [0, 3] and rows[0]["blink_clips"] == 2 and rows[0]["clips"] == 3
    for key in ("flow_removed", "blink_removed", "expression_removed"):
        assert 0 <= rows[0][key] <= rows[1][key] <= 1
    assert rows[0]["blink_removed"] > rows[0]["expression_removed"]  # blinks sit in the eyes, expressions mostly not


def test_train_settings_break_even_and_steady_epoch() -> None:
    # 20 s more to compile, 0.5 s less per epoch: pays back after 40 epochs
    assert bench_train.break_even_epochs(1.0, 2.0, 21.0, 1.5) == pytest.approx(40.0)
    assert bench_train.break_even_epochs(1.0, 2.0, 0.5, 1.5) == 0.0  # cheaper in both parts
    assert math.isinf(bench_train.break_even_epochs(1.0, 2.0, 0.5, 2.5))  # slower epochs never pay back
    assert math.isinf(bench_train.break_even_epochs(1.0, 2.0, 1.0, 2.0))  # identical: never strictly below
    assert bench_train.break_even_epochs(1.0, 2.0, 0.5, 2.0) == 0.0
    assert bench_train.steady_epoch([0.5, 1.0, 3.0, 2.0]) == 1.0  # the first (warm-up / compile) epoch is left out
    assert bench_train.steady_epoch([4.0]) == 4.0


def test_train_settings_rows(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench_train.main(["--settings", "eager,bogus"]) == 2
    assert "unknown setting 'bogus'" in capsys.readouterr().err
    row = bench_train.bench_settings("laenet", ["eager", "flush_denormal"], epochs=2, n_folds=2, repeats=1, seed=0)
    eager, flushed = row["settings"]["eager"], row["settings"]["flush_denormal"]
    assert eager["epoch_ratio"] == 1.0 and eager["max_prob_diff"] == 0.0 and eager["break_even_epochs"] is None
    assert flushed["max_prob_diff"] < 1e-6  # same seeds and batches: flushing denormals changes nothing measurable
    assert flushed["epoch_ratio"] == pytest.approx(flushed["epoch_s"] / eager["epoch_s"], rel=0.01)
    assert eager["fixed_later_folds_s"] is not None and row["folds"] == 2
