"""LBP-TOP + SVM: the descriptor on inputs whose histograms are known, the SVM's scores, and the
subject-wise inner selection that never sees a fold's test subject."""

from __future__ import annotations

import numpy as np
import pytest

from mertk.engine import classical
from mertk.engine.protocols import loso
from mertk.errors import ModelError
from mertk.models import LBPTOPSVM, create_model
from mertk.models.lbptop import PLANES, block_histograms, lbp_top, lbp_top_codes, n_bins


def _moving_clip(t: int = 9, h: int = 24, w: int = 24, seed: int = 0) -> np.ndarray:
    """A random texture translating one pixel to the right per frame (grey uint8)."""
    base = np.random.default_rng(seed).integers(0, 256, (h, w + t)).astype(np.uint8)
    return np.stack([base[:, t - k:t - k + w] for k in range(t)])


def _hists(x: np.ndarray, grid, bins: int) -> np.ndarray:
    return x.reshape(int(np.prod(grid)), len(PLANES), bins)


@pytest.mark.parametrize(("method", "bins"), [("nri_uniform", 59), ("uniform", 10)])
def test_constant_clip_puts_every_voxel_in_one_bin(method, bins):
    grid = (3, 2, 1)
    clip = np.full((6, 20, 18, 3), 117, dtype=np.uint8)
    x = lbp_top(clip, grid=grid, radii=(1, 1, 1), method=method)
    assert n_bins(8, method) == bins and x.shape == (3 * 2 * 1 * 3 * bins,)
    h = _hists(x, grid, bins)
    np.testing.assert_allclose(h.sum(axis=2), 1.0, rtol=1e-6)  # every histogram L1-normalised
    peak = h.argmax(axis=2)
    assert (h.max(axis=2) == 1.0).all() and (peak == peak[0, 0]).all()  # borders excluded: one code everywhere


def test_histogram_length_is_blocks_times_planes_times_bins():
    clip = _moving_clip(t=10, h=30, w=40)
    for grid in ((5, 5, 1), (2, 4, 3)):
        assert lbp_top(clip, grid=grid, radii=(1, 2, 2)).shape == (int(np.prod(grid)) * 3 * 59,)
    assert create_model("lbptop", grid=(8, 8, 1)).num_features == 64 * 3 * 59


def test_blocks_are_ordered_row_col_time():
    rows, cols, times, bins = 2, 3, 2, 12
    codes = np.zeros((3, 4, 6, 9), dtype=np.uint8)
    for r in range(rows):
        for c in range(cols):
            for t in range(times):
                codes[:, t * 2:(t + 1) * 2, r * 3:(r + 1) * 3, c * 3:(c + 1) * 3] = (r * cols + c) * times + t
    h = _hists(block_histograms(codes, (rows, cols, times), bins), (rows, cols, times), bins)
    assert (h.argmax(axis=2) == np.arange(rows * cols * times)[:, None]).all() and (h.max(axis=2) == 1).all()


def test_time_reversal_keeps_xy_histograms_and_changes_xt_yt():
    clip = _moving_clip()
    grid = (2, 2, 1)
    fwd, back = (_hists(lbp_top(c, grid=grid, radii=(1, 1, 1)), grid, 59) for c in (clip, clip[::-1]))
    np.testing.assert_array_equal(fwd[:, 0], back[:, 0])  # XY: the same frames, in one temporal block
    assert np.abs(fwd[:, 1] - back[:, 1]).sum() > 0.5  # XT: rightward motion became leftward
    assert np.abs(fwd[:, 2] - back[:, 2]).sum() > 0  # YT as well (the texture is not symmetric)


def test_codes_leave_out_the_border_and_reject_bad_settings():
    grey = _moving_clip(t=9, h=20, w=22)
    assert lbp_top_codes(grey, (1, 2, 2)).shape == (3, 9 - 4, 20 - 4, 22 - 4)
    with pytest.raises(ModelError, match="leave no voxel"):
        lbp_top_codes(grey[:3], (1, 2, 2))
    with pytest.raises(ModelError, match="grid"):
        lbp_top(grey, grid=(30, 1, 1))
    with pytest.raises(ModelError, match="uint8"):
        lbp_top(grey.astype(np.float32))
    with pytest.raises(ModelError, match="search key 'P'"):
        LBPTOPSVM(search={"P": [8]})


def test_scores_cover_every_class_even_when_training_lacks_some():
    rng = np.random.default_rng(0)
    x = rng.random((30, 12))
    y = np.repeat([0, 2], 15)
    x[y == 2] += 1.0
    model = LBPTOPSVM(4).fit(x, y)
    probs = model.predict_proba(x)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    assert (probs[:, [1, 3]] == 0).all()  # never seen in training
    assert (probs.argmax(axis=1) == model.svm.predict(x)).mean() == 1.0  # softmax keeps the SVM's decision
    single = LBPTOPSVM(3).fit(x, np.ones(30, dtype=int)).predict_proba(x)
    assert (single.argmax(axis=1) == 1).all()


def test_parameter_count_is_the_fitted_svm_weights():
    model = LBPTOPSVM(3, grid=(2, 2, 1))
    x = np.random.default_rng(1).random((12, model.num_features))
    model.fit(x, np.arange(12) % 3)
    assert model.num_params == model.svm.coef_.size + model.svm.intercept_.size == 3 * (4 * 3 * 59 + 1)


def _subject_clips(subjects: int = 4, per: int = 4):
    rng = np.random.default_rng(5)
    clips, y, groups = [], [], []
    for s in range(subjects):
        for k in range(per):
            clip = _moving_clip(t=6, h=16, w=16, seed=int(rng.integers(1 << 30)))
            clips.append(clip[::-1] if k % 2 else clip)  # class = direction of motion
            y.append(k % 2)
            groups.append(f"s{s}")
    return np.stack(clips), np.array(y), groups


KW = {"num_classes": 2, "input_size": (6, 16, 16),
      "search": {"grid": [[1, 1, 1], [2, 2, 1]], "radii": [[1, 1, 1]], "C": [0.1, 10.0]}}


def test_the_selection_only_ever_sees_training_subjects(monkeypatch):
    clips, y, groups = _subject_clips()
    seen = []
    real = classical.select_hyperparameters

    def spy(model, features, y_train, groups_train, **kw):
        seen.append((set(groups_train), {k: len(v) for k, v in features.items()}, len(y_train)))
        return real(model, features, y_train, groups_train, **kw)

    monkeypatch.setattr(classical, "select_hyperparameters", spy)
    folds = loso(groups)
    results = classical.fit_folds("lbptop", KW, clips, y, groups, folds, progress=False)
    assert len(seen) == len(folds) == len(results)
    for fold, (subjects, sizes, n) in zip(folds, seen):
        test_subjects = {groups[i] for i in fold.test}
        assert subjects == set(groups) - test_subjects and not subjects & test_subjects
        assert n == len(fold.train) and set(sizes.values()) == {len(fold.train)}
    for r in results:
        assert sum(row["chosen"] for row in r.history) == 1 and len(r.history) == 4  # 2 grids x 2 C
        assert all(row["inner_folds"] == 3 for row in r.history)


def test_test_clips_do_not_change_what_is_chosen():
    clips, y, groups = _subject_clips()
    folds = loso(groups)
    first = classical.fit_folds("lbptop", KW, clips, y, groups, folds, progress=False)
    noisy = clips.copy()
    test = np.array(folds[0].test)
    noisy[test] = np.random.default_rng(9).integers(0, 256, noisy[test].shape, dtype=np.uint8)
    second = classical.fit_folds("lbptop", KW, noisy, y, groups, folds[:1], progress=False)
    assert second[0].history == first[0].history  # the same inner scores and choice
    assert not np.allclose(second[0].probs, first[0].probs)  # the test clips did change
    assert classical.chosen_hyperparameters(first[0].history)["grid"] in ([1, 1, 1], [2, 2, 1])


def test_selection_prefers_the_informative_descriptor():
    rng = np.random.default_rng(3)
    y = np.tile([0, 1, 2], 8)
    groups = np.repeat(["a", "b", "c", "d"], 6)
    signal = np.eye(3)[y] + 0.1 * rng.random((24, 3))
    model = LBPTOPSVM(3, search={"grid": [[1, 1, 1], [2, 2, 1]]})
    features = {model.descriptor_key({"grid": [1, 1, 1], "radii": [1, 1, 1]}): rng.random((24, 3)),
                model.descriptor_key({"grid": [2, 2, 1], "radii": [1, 1, 1]}): signal}
    chosen, rows = classical.select_hyperparameters(model, features, y, groups)
    assert chosen["grid"] == [2, 2, 1] and rows[1]["inner_uar"] == 1.0 > rows[0]["inner_uar"]
    alone, rows = classical.select_hyperparameters(model, features, y, np.array(["a"] * 24))
    assert alone["grid"] == [1, 1, 1] and rows == [{**alone, "inner_uar": None, "inner_folds": 0, "chosen": True}]
