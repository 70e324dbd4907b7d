"""Saliency maps (shcnn-miao-2019 III.F): the vanishing original map, the improved map, pixels, checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mertk.engine.train import make_optimizer, train_one_epoch
from mertk.engine.trainconfig import TrainConfig
from mertk.errors import MertkError
from mertk.explain import (
    ExplainError,
    adversarial_check,
    overlay,
    per_frame,
    saliency_maps,
    saliency_pixels,
    save_overlay,
)
from mertk.models import ModelError, create_model


def _blobs(n_per: int = 8, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Three classes of 3x28x28 inputs: faint noise plus a bright 6x6 blob at a class-dependent place."""
    g = torch.Generator().manual_seed(seed)
    xs, ys = [], []
    for c in range(3):
        x = 0.1 * torch.rand(n_per, 3, 28, 28, generator=g)
        x[:, :, 4 + 8 * c : 10 + 8 * c, 4 + 8 * c : 10 + 8 * c] += 0.9
        xs.append(x)
        ys.append(torch.full((n_per,), c))
    return torch.cat(xs), torch.cat(ys)


@pytest.fixture(scope="module")
def saturated():
    """LAENet trained (Adam, lr 0.05) until its top score on training input 0 is within 1e-8 of 1."""
    x, y = _blobs()
    torch.manual_seed(0)
    model = create_model("laenet")
    config = TrainConfig(epochs=1, batch_size=len(x), lr=0.05)
    optimizer = make_optimizer(model, config)
    g = torch.Generator().manual_seed(1)
    for _ in range(300):
        train_one_epoch(model, x, y, optimizer, config, g)
        model.eval()
        with torch.no_grad():
            top = torch.softmax(model(x[:1]).double(), -1).max()
        if 1 - float(top) < 1e-8:
            break
    return model, x


def test_original_map_vanishes_when_saturated_but_improved_does_not(saturated):
    model, x = saturated
    r = saliency_maps(model, x[0])
    top = float(r.scores.max())
    n_orig, n_imp = float(np.linalg.norm(r.original)), float(np.linalg.norm(r.improved))
    figures = f"scores={r.scores} logits={r.logits} M={r.shrinkage:.4g} |original|={n_orig:.3e} |improved|={n_imp:.3e}"
    assert r.target == 0, figures
    assert top > 1 - 1e-6, figures
    assert n_orig < 1e-5 * n_imp, figures
    print(figures)
    assert n_imp > 1e-3, figures
    assert r.original.shape == r.improved.shape == (3, 28, 28)


def test_model_mode_restored_and_parameter_grads_untouched(saturated):
    model, x = saturated
    model.zero_grad(set_to_none=True)
    model.train()
    a = saliency_maps(model, x[0])
    b = saliency_maps(model, x[0])
    assert model.training
    assert all(p.grad is None for p in model.parameters())
    np.testing.assert_array_equal(a.improved, b.improved)  # eval mode: no dropout noise


def test_saliency_pixels_follow_gradient_sign(saturated):
    model, x = saturated
    r = saliency_maps(model, x[5])
    model.eval()
    xi = x[5:6].clone().requires_grad_(True)
    o = model(xi)[0]
    v = torch.softmax(o / o.detach().abs().max(), -1)[r.target]
    (grad,) = torch.autograd.grad(v, xi)
    expected = grad[0].sum(0).numpy() >= 0
    mask = saliency_pixels(r.improved)
    assert mask.shape == (28, 28) and mask.dtype == bool
    np.testing.assert_array_equal(mask, expected)
    assert 0 < mask.sum() < mask.size


def test_shrinkage_and_finite_differences():
    torch.manual_seed(3)
    model = create_model("laenet").double().eval()
    x = torch.rand(3, 28, 28, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    r = saliency_maps(model, x, target=1)
    with torch.no_grad():
        o = model(x[None])[0]
    assert r.shrinkage == pytest.approx(float(o.abs().max()), rel=0, abs=1e-12)
    np.testing.assert_allclose(r.logits, o.numpy())
    m = o.abs().max()

    def v1(z: torch.Tensor) -> float:  # V_1 with M held at its value at x (eq. 12)
        with torch.no_grad():
            return float(torch.softmax(model(z[None])[0] / m, -1)[1])

    def s1(z: torch.Tensor) -> float:
        with torch.no_grad():
            return float(torch.softmax(model(z[None])[0], -1)[1])

    eps = 1e-6
    for p in [(0, 10, 12), (2, 14, 3), (1, 20, 20)]:
        e = torch.zeros_like(x)
        e[p] = eps
        fd_v = (v1(x + e) - v1(x - e)) / (2 * eps)
        fd_s = (s1(x + e) - s1(x - e)) / (2 * eps)
        assert r.improved[p] == pytest.approx(fd_v, rel=1e-5, abs=1e-10)
        assert r.original[p] == pytest.approx(fd_s, rel=1e-5, abs=1e-10)
        assert abs(fd_v) > 1e-8  # the pixel is not in a dead region


def test_adversarial_check_saliency_beats_random(saturated):
    model, x = saturated
    rep = adversarial_check(model, x[0], seed=0)
    assert set(rep) == {
        "target", "delta", "n_pixels", "n_total", "pred_before", "score_before",
        "pred_saliency", "changed_saliency", "score_saliency", "score_change_saliency",
        "pred_random", "changed_random", "score_random", "score_change_random",
    }
    assert rep["delta"] == pytest.approx(20 / 255)
    assert rep["n_total"] == 28 * 28 and 0 < rep["n_pixels"] < rep["n_total"]
    assert rep["target"] == rep["pred_before"] == 0
    assert rep["changed_saliency"] == (rep["pred_saliency"] != 0)
    # Lowering the pixels with dV/dp >= 0 lowers the target score, and by more than random pixels do.
    assert rep["score_change_saliency"] < 0, rep
    assert rep["score_change_saliency"] < rep["score_change_random"], rep
    assert adversarial_check(model, 255 * x[0])["delta"] == 20.0


def test_clip_model_per_frame_maps():
    torch.manual_seed(0)
    model = create_model("c3d_vgg", input_size=(16, 32, 32))
    clip = torch.rand(3, 16, 32, 32, generator=torch.Generator().manual_seed(0))
    r = saliency_maps(model, clip)
    assert r.original.shape == r.improved.shape == (3, 16, 32, 32)
    frames = per_frame(r.improved)
    assert frames.shape == (16, 32, 32)
    np.testing.assert_array_equal(frames, np.abs(r.improved).max(axis=0))
    assert saliency_pixels(r.improved).shape == (16, 32, 32)
    assert np.linalg.norm(r.improved) > 0
    with pytest.raises(ExplainError, match=r"per_frame needs a clip map \(C, T, H, W\), got \(3, 32, 32\)"):
        per_frame(np.zeros((3, 32, 32)))


def test_bad_inputs_raise():
    model = create_model("laenet")
    with pytest.raises(ExplainError, match="target class 3 is out of range for a model with 3 classes"):
        saliency_maps(model, torch.rand(3, 28, 28), target=3)
    with pytest.raises(ExplainError, match=r"got \(28, 28\)"):
        saliency_maps(model, torch.rand(28, 28))
    with pytest.raises(ModelError, match="LAENet expects input"):
        saliency_maps(model, torch.rand(1, 28, 28))
    with pytest.raises(ExplainError, match=r"got \(2, 3, 28, 28\)"):
        saliency_maps(model, torch.rand(2, 3, 28, 28))
    batch_of_one = saliency_maps(model, torch.rand(1, 3, 28, 28))
    assert batch_of_one.improved.shape == (3, 28, 28)
    torch.nn.init.zeros_(model.classifier.weight)
    torch.nn.init.zeros_(model.classifier.bias)
    with pytest.raises(MertkError, match="shrinkage factor M"):
        saliency_maps(model, torch.rand(3, 28, 28))


def test_overlay_and_png(tmp_path):
    image = (np.arange(20 * 24) % 256).astype(np.uint8).reshape(20, 24)
    smap = np.zeros((3, 20, 24))
    smap[1, 5, 7] = -2.0  # magnitude counts, over channels
    out = overlay(image, smap, alpha=0.5)
    assert out.shape == (20, 24, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(overlay(image, smap, alpha=0.0), np.repeat(image[..., None], 3, 2))
    hot = overlay(image, smap, alpha=1.0)
    np.testing.assert_array_equal(hot[5, 7], [128, 0, 0])  # jet(1.0) = dark red
    assert (hot[0, 0] != hot[5, 7]).any()
    path = save_overlay(tmp_path / "sub" / "map.png", image, smap)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    import matplotlib.image

    back = matplotlib.image.imread(path)
    assert back.shape[:2] == (20, 24)
    with pytest.raises(ExplainError, match=r"does not match image \(20, 24\)"):
        overlay(image, np.zeros((10, 10)))
