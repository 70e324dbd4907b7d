"""Training core: losses, schedule, per-fold loop vs fold-batched trainer, determinism, resume."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from mertk.engine.protocols import Fold
from mertk.engine.losses import (
    balanced_epoch_indices,
    balanced_loss,
    balanced_weights,
    class_balanced_weights,
    compute_loss,
    epoch_indices,
    jitter_factors,
    l2_penalty,
    mix_batch,
    mixed_loss,
)
from mertk.engine.train import (
    FoldResult,
    evaluate,
    lr_at,
    make_optimizer,
    make_scheduler,
    train_folds,
    train_one_epoch,
)
from mertk.engine.trainconfig import TrainConfig, TrainError
from mertk.models import create_model

# LAENet (BatchNorm + dropout) on small 12x12 inputs keeps every test fast.
KW = {"num_classes": 3, "input_size": 12}
KW_NO_DROPOUT = {**KW, "dropout": 0.0}
FAST = TrainConfig(epochs=12, batch_size=16, lr=1e-2, threads=1)


def toy(n_subjects: int = 5, per_subject: int = 12, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, list[Fold]]:
    """Linearly separable: the mean of channel 0 is (class - 1); LOSO folds over the subjects."""
    g = torch.Generator().manual_seed(seed)
    n = n_subjects * per_subject
    y = torch.arange(n) % 3
    x = 0.5 * torch.randn(n, 3, 12, 12, generator=g)
    x[:, 0] += (y.float() - 1)[:, None, None]
    subject = np.arange(n) // per_subject
    folds = [Fold(f"s{s}", tuple(np.flatnonzero(subject != s)), tuple(np.flatnonzero(subject == s)))
             for s in range(n_subjects)]
    return x, y, folds


def pooled_accuracy(results: list[FoldResult], y: torch.Tensor) -> float:
    pred = np.concatenate([r.probs.argmax(1) for r in results])
    true = np.concatenate([y.numpy()[r.test_index] for r in results])
    return float((pred == true).mean())


# --------------------------------------------------------------------------- config, losses, schedule


def test_config_defaults_are_the_ststnet_recipe_and_bad_values_raise():
    c = TrainConfig()
    assert (c.optimizer, c.lr, c.batch_size, c.epochs, c.loss) == ("adam", 5e-5, 256, 800, "ce")
    with pytest.raises(TrainError, match="train.optimizer 'adamw' is unknown; choose from: adam, sgd, rmsprop"):
        TrainConfig(optimizer="adamw")
    with pytest.raises(TrainError, match="train.loss .hinge. is unknown"):
        TrainConfig(loss="hinge")
    with pytest.raises(TrainError, match="train.batch_size must be >= 1"):
        TrainConfig(batch_size=0)
    with pytest.raises(TrainError, match="train.epochs must be an integer, got .10."):
        TrainConfig(epochs="10")
    assert TrainConfig(lr=1).lr == 1.0 and isinstance(TrainConfig(lr=1).lr, float)


def test_balanced_weights_on_a_known_batch():
    w = balanced_weights(torch.tensor([0, 0, 0, 1]), 3)
    # N = 4, K = 2 classes present: beta = 4 / (2 * n_c) -> 2/3 for class 0 (3 samples), 2 for class 1.
    torch.testing.assert_close(w, torch.tensor([2 / 3, 2 / 3, 2 / 3, 2.0]))
    assert float(w.sum()) == pytest.approx(4.0)
    stacked = balanced_weights(torch.tensor([[0, 0, 0, 1], [2, 2, 2, 2]]), 3)
    torch.testing.assert_close(stacked[1], torch.ones(4))


def test_balanced_loss_known_value():
    # Uniform softmax over 2 classes: each sample's eq. 10 term is -(log 0.5 + log 0.5) = 2 log 2, beta = 1.
    assert float(balanced_loss(torch.zeros(2, 2), torch.tensor([0, 1]))) == pytest.approx(2 * math.log(2), rel=1e-5)
    # Imbalanced batch: logits favour class 0; the minority sample (class 1) weighs 3x a majority sample.
    logits = torch.tensor([[2.0, 0.0]] * 4)
    y = torch.tensor([0, 0, 0, 1])
    p = torch.softmax(logits[0], 0)
    right = -(math.log(p[0]) + math.log(1 - p[1]))
    wrong = -(math.log(p[1]) + math.log(1 - p[0]))
    expected = (3 * (2 / 3) * right + 2 * wrong) / 4
    assert float(balanced_loss(logits, y)) == pytest.approx(expected, rel=1e-5)


def test_soft_loss_equals_cross_entropy_on_one_hot_targets():
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(7, 4, generator=g)
    y = torch.tensor([0, 3, 1, 2, 2, 0, 1])
    soft = compute_loss(logits, nn.functional.one_hot(y, 4).float(), "soft")
    torch.testing.assert_close(soft, nn.functional.cross_entropy(logits, y))
    torch.testing.assert_close(compute_loss(logits, y, "ce"), nn.functional.cross_entropy(logits, y))
    votes = torch.tensor([[0.5, 0.5, 0.0, 0.0]])
    expected = -0.5 * (torch.log_softmax(logits[:1], 1)[0, 0] + torch.log_softmax(logits[:1], 1)[0, 1])
    torch.testing.assert_close(compute_loss(logits[:1], votes, "soft"), expected)


def test_l2_penalty_counts_weights_not_biases():
    layer = nn.Linear(2, 3)
    nn.init.constant_(layer.weight, 2.0)
    nn.init.constant_(layer.bias, 5.0)
    assert float(l2_penalty(layer.parameters()).detach()) == pytest.approx(6 * 4.0)
    stacked = [torch.stack([layer.weight, 0.5 * layer.weight]), torch.stack([layer.bias, layer.bias])]
    torch.testing.assert_close(l2_penalty(stacked, stacked=True), torch.tensor([24.0, 6.0]))


def test_l2_is_added_to_the_training_objective():
    x, y, _ = toy(2)
    model = create_model("laenet", **KW_NO_DROPOUT)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    losses = []
    for l2 in (0.0, 0.5):
        model.load_state_dict(state)
        opt = make_optimizer(model, TrainConfig(lr=1e-9))
        cfg = TrainConfig(batch_size=len(x), l2=l2, lr=1e-9)
        losses.append(train_one_epoch(model, x, y, opt, cfg, torch.Generator().manual_seed(0)))
    model.load_state_dict(state)
    expected = 0.5 * float(l2_penalty(model.parameters()).detach())
    assert losses[1] - losses[0] == pytest.approx(expected, rel=1e-4)


def test_lr_decays_once_per_epoch():
    x, y, folds = toy(2)
    cfg = TrainConfig(epochs=3, batch_size=8, optimizer="sgd", lr=0.1, lr_decay=0.8, threads=1)
    model = create_model("laenet", **KW)
    opt = make_optimizer(model, cfg)
    assert isinstance(opt, torch.optim.SGD) and opt.param_groups[0]["momentum"] == 0.9
    g = torch.Generator().manual_seed(0)
    for _ in range(3):
        train_one_epoch(model, x, y, opt, cfg, g)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1 * 0.8**3)
    assert [lr_at(cfg, e) for e in range(3)] == pytest.approx([0.1, 0.08, 0.064])
    for batched in (False, True):
        (result,) = train_folds("laenet", KW, x, y, folds[:1], cfg, batched=batched, progress=False)
        assert [row["lr"] for row in result.history] == pytest.approx([0.1, 0.08, 0.064])


def test_lr_step_schedule_counts_optimizer_steps():
    x, y, folds = toy(2)
    n = len(folds[0].train)
    steps_per_epoch = -(-n // 4)
    cfg = TrainConfig(epochs=4, batch_size=4, optimizer="sgd", lr=0.1, lr_step_iters=3, lr_step_factor=0.5, threads=1)
    model = create_model("laenet", **KW)
    opt = make_optimizer(model, cfg)
    scheduler = make_scheduler(opt, cfg)
    g = torch.Generator().manual_seed(0)
    for _ in range(2):
        train_one_epoch(model, x, y, opt, cfg, g, scheduler=scheduler)
    steps = 2 * -(-len(x) // 4)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1 * 0.5 ** (steps // 3))
    assert lr_at(cfg, 0, steps) == pytest.approx(0.1 * 0.5 ** (steps // 3))
    expected = [0.1 * 0.5 ** ((e * steps_per_epoch) // 3) for e in range(4)]
    assert len(set(expected)) > 2  # the schedule steps more than once within the run
    for batched in (False, True):
        (result,) = train_folds("laenet", KW, x, y, folds[:1], cfg, batched=batched, progress=False)
        assert [row["lr"] for row in result.history] == pytest.approx(expected)
    decayed = TrainConfig(epochs=2, batch_size=4, lr=0.1, lr_decay=0.8, lr_step_iters=steps_per_epoch, threads=1)
    (result,) = train_folds("laenet", KW, x, y, folds[:1], decayed, batched=False, progress=False)
    assert [row["lr"] for row in result.history] == pytest.approx([0.1, 0.1 * 0.8 * 0.5])
    with pytest.raises(TrainError, match="lr_step_factor"):
        TrainConfig(lr_step_factor=0)
    assert make_scheduler(opt, TrainConfig()) is None


def test_epoch_indices_steps_and_top_up():
    idx = epoch_indices(10, 4, torch.Generator().manual_seed(0))
    assert idx.shape == (3, 4)  # ceil(10 / 4) steps, every one of 4 samples
    assert sorted(idx.flatten()[:10].tolist()) == list(range(10))  # a full shuffle, then the top-up
    assert epoch_indices(5, 256, torch.Generator()).shape == (1, 5)


# --------------------------------------------------------------------------- trainers


@pytest.mark.parametrize("batched", [False, True])
def test_toy_problem_is_learned(batched):
    x, y, folds = toy()
    results = train_folds("laenet", KW, x, y, folds, FAST, batched=batched, progress=False)
    assert [r.fold for r in results] == [f.name for f in folds]
    assert pooled_accuracy(results, y) > 0.9
    for r, f in zip(results, folds):
        assert r.probs.shape == (len(f.test), 3) and np.allclose(r.probs.sum(1), 1, atol=1e-5)
        assert len(r.history) == FAST.epochs and r.history[-1]["train_acc"] > 0.9
        assert r.history[-1]["loss"] < r.history[0]["loss"]


def test_fold_batching_equals_the_per_fold_loop_without_dropout():
    # Same initialisation, same minibatches (each fold's own generator), BatchNorm kept per fold:
    # only float rounding may differ.
    x, y, folds = toy()
    loop = train_folds("laenet", KW_NO_DROPOUT, x, y, folds, FAST, batched=False, progress=False)
    stacked = train_folds("laenet", KW_NO_DROPOUT, x, y, folds, FAST, batched=True, progress=False)
    assert [r.fold for r in loop] == [r.fold for r in stacked]
    for a, b in zip(loop, stacked):
        np.testing.assert_array_equal(a.test_index, b.test_index)
        np.testing.assert_allclose(a.probs, b.probs, atol=1e-4)
        np.testing.assert_allclose([h["loss"] for h in a.history], [h["loss"] for h in b.history], rtol=1e-3)
        for key in ("streams.0.2.running_mean", "streams.1.2.running_var", "classifier.weight"):
            torch.testing.assert_close(a.state_dict[key], b.state_dict[key], atol=1e-4, rtol=1e-3)
    # The toy is not a degenerate check: the trained models differ from their initialisation.
    init = create_model("laenet", **KW_NO_DROPOUT).state_dict()["classifier.weight"]
    assert not torch.allclose(loop[0].state_dict["classifier.weight"], init, atol=1e-2)


def test_fold_batching_agrees_with_dropout_within_noise():
    x, y, folds = toy()
    loop = train_folds("laenet", KW, x, y, folds, FAST, batched=False, progress=False)
    stacked = train_folds("laenet", KW, x, y, folds, FAST, batched=True, progress=False)
    assert abs(pooled_accuracy(loop, y) - pooled_accuracy(stacked, y)) <= 0.1


@pytest.mark.parametrize("batched", [False, True])
def test_same_seed_same_probabilities(batched):
    x, y, folds = toy(3)
    cfg = TrainConfig(epochs=3, batch_size=16, lr=1e-2, threads=1)
    a = train_folds("laenet", KW, x, y, folds, cfg, batched=batched, progress=False)
    b = train_folds("laenet", KW, x, y, folds, cfg, batched=batched, progress=False)
    c = train_folds("laenet", KW, x, y, folds, TrainConfig(epochs=3, batch_size=16, lr=1e-2, threads=1, seed=1),
                    batched=batched, progress=False)
    for ra, rb, rc in zip(a, b, c):
        np.testing.assert_array_equal(ra.probs, rb.probs)
        assert not np.array_equal(ra.probs, rc.probs)


@pytest.mark.parametrize("batched", [False, True])
def test_skip_folds_and_on_fold_done_resume_to_the_same_results(batched):
    x, y, folds = toy(4)
    cfg = TrainConfig(epochs=3, batch_size=16, lr=1e-2, threads=1)
    full = train_folds("laenet", KW, x, y, folds, cfg, batched=batched, progress=False)
    seen: list[str] = []
    rest = train_folds("laenet", KW, x, y, folds, cfg, batched=batched, progress=False,
                       on_fold_done=lambda r: seen.append(r.fold), skip_folds={"s0", "s2"})
    assert seen == ["s1", "s3"] and [r.fold for r in rest] == ["s1", "s3"]
    by_name = {r.fold: r for r in full}
    for r in rest:
        np.testing.assert_array_equal(r.probs, by_name[r.fold].probs)
    assert train_folds("laenet", KW, x, y, folds, cfg, batched=batched, progress=False,
                       skip_folds={f.name for f in folds}) == []


@pytest.mark.parametrize("batched", [False, True])
def test_validation_set_only_adds_a_curve(batched):
    x, y, folds = toy(3)
    extra = tuple(range(len(x) - 6, len(x)))
    plain = [Fold(f.name, tuple(i for i in f.train if i not in extra), tuple(i for i in f.test if i not in extra))
             for f in folds]
    with_val = [Fold(f.name, f.train, f.test, extra) for f in plain]
    cfg = TrainConfig(epochs=3, batch_size=16, lr=1e-2, threads=1)
    a = train_folds("laenet", KW, x, y, plain, cfg, batched=batched, progress=False)
    b = train_folds("laenet", KW, x, y, with_val, cfg, batched=batched, progress=False)
    for ra, rb in zip(a, b):
        np.testing.assert_array_equal(ra.probs, rb.probs)
        assert "val_acc" not in ra.history[0]
        assert len(rb.history) == 3 and 0 <= rb.history[-1]["val_acc"] <= 1 and rb.history[-1]["val_loss"] > 0


@pytest.mark.parametrize("batched", [False, True])
def test_init_state_is_loaded_and_a_new_classifier_stays_fresh(batched):
    x, y, folds = toy(2)
    cfg = TrainConfig(epochs=0, threads=1)
    torch.manual_seed(123)
    pretrained = create_model("laenet", **KW).state_dict()
    (same,) = train_folds("laenet", KW, x, y, folds[:1], cfg, init_state=pretrained, batched=batched, progress=False)
    for k, v in pretrained.items():
        torch.testing.assert_close(same.state_dict[k], v)
    torch.manual_seed(7)
    other_head = create_model("laenet", **{**KW, "num_classes": 7}).state_dict()  # e.g. CK+ classes
    (fresh,) = train_folds("laenet", KW, x, y, folds[:1], cfg, init_state=other_head, batched=batched,
                           progress=False)
    (scratch,) = train_folds("laenet", KW, x, y, folds[:1], cfg, batched=batched, progress=False)
    torch.testing.assert_close(fresh.state_dict["streams.0.0.weight"], other_head["streams.0.0.weight"])
    assert fresh.state_dict["classifier.weight"].shape == (3, scratch.state_dict["classifier.weight"].shape[1])
    torch.testing.assert_close(fresh.state_dict["classifier.weight"], scratch.state_dict["classifier.weight"])
    bad = {k: v for k, v in pretrained.items() if k != "streams.0.0.weight"}
    with pytest.raises(TrainError, match="init_state does not fit model laenet: missing key 'streams.0.0.weight'"):
        train_folds("laenet", KW, x, y, folds[:1], cfg, init_state=bad, batched=batched, progress=False)


def test_soft_targets_and_balanced_loss_train_in_both_modes():
    x, y, folds = toy(3)
    soft = 0.8 * nn.functional.one_hot(y, 3).float() + 0.2 / 3
    for loss, target in (("soft", soft), ("balanced", y)):
        cfg = TrainConfig(epochs=10, batch_size=16, lr=1e-2, loss=loss, l2=1e-4, threads=1)
        loop = train_folds("laenet", KW_NO_DROPOUT, x, target, folds, cfg, batched=False, progress=False)
        stacked = train_folds("laenet", KW_NO_DROPOUT, x, target, folds, cfg, batched=True, progress=False)
        for a, b in zip(loop, stacked):
            np.testing.assert_allclose(a.probs, b.probs, atol=1e-4)
        assert pooled_accuracy(loop, y) > 0.9


def test_bad_inputs_raise_one_line_errors():
    x, y, folds = toy(2)
    cfg = TrainConfig(epochs=1, threads=1)
    with pytest.raises(TrainError, match="x has 24 samples but y has 23"):
        train_folds("laenet", KW, x, y[:-1], folds, cfg, progress=False)
    with pytest.raises(TrainError, match=r"class labels must lie in 0..2, got 0..3"):
        train_folds("laenet", KW, x, y + (y == 2).long(), folds, cfg, progress=False)
    with pytest.raises(TrainError, match="fold 'big': sample index 99 is out of range for 24 samples"):
        train_folds("laenet", KW, x, y, [Fold("big", (0, 1), (99,))], cfg, progress=False)
    with pytest.raises(TrainError, match="loss=ce needs 1-D integer class labels"):
        train_folds("laenet", KW, x, y.float(), folds, cfg, progress=False)
    with pytest.raises(TrainError, match="fold name 's0' appears more than once"):
        train_folds("laenet", KW, x, y, [folds[0], folds[0]], cfg, progress=False)


def test_evaluate_is_batched_eval_mode_and_restores_mode():
    x, _, _ = toy(2)
    model = create_model("laenet", **KW).train()
    whole = evaluate(model, x, batch_size=len(x))
    np.testing.assert_allclose(evaluate(model, x, batch_size=5), whole, atol=1e-6)  # BN uses running stats
    assert model.training and whole.dtype == np.float32 and whole.shape == (len(x), 3)


# --------------------------------------------------------------------------- epoch selection, test curve


def _with_val(folds: list[Fold], x: torch.Tensor) -> list[Fold]:
    """Move the first two training subjects' samples (12 each) of every fold into ``val``."""
    out = []
    for f in folds:
        val = f.train[:24]
        out.append(Fold(f.name, f.train[24:], f.test, val))
    return out


@pytest.mark.parametrize("batched", [False, True])
def test_val_loss_selection_uses_the_epoch_of_lowest_validation_loss(batched):
    x, y, folds = toy(n_subjects=4)
    folds = _with_val(folds, x)
    config = TrainConfig(epochs=10, batch_size=16, lr=5e-2, threads=1, select="val_loss", test_curve=True)
    results = train_folds("laenet", KW_NO_DROPOUT, x, y, folds, config, batched=batched, progress=False)
    for r in results:
        val_losses = [h["val_loss"] for h in r.history]
        assert r.selected_epoch == int(np.argmin(val_losses)) + 1
        # the chosen weights' test probabilities are that epoch's row of the test curve
        assert r.test_curve.shape == (10, len(r.test_index), 3)
        np.testing.assert_allclose(r.probs, r.test_curve[r.selected_epoch - 1].astype(np.float32), atol=2e-3)


def test_last_epoch_is_the_default_and_the_test_curve_ends_with_it():
    x, y, folds = toy(n_subjects=3)
    config = TrainConfig(epochs=4, batch_size=16, lr=1e-2, threads=1, test_curve=True)
    (r, *_) = train_folds("laenet", KW_NO_DROPOUT, x, y, folds, config, batched=False, progress=False)
    assert r.selected_epoch == 4
    np.testing.assert_allclose(r.probs, r.test_curve[-1].astype(np.float32), atol=2e-3)
    plain = train_folds("laenet", KW_NO_DROPOUT, x, y, folds[:1], TrainConfig(epochs=4, batch_size=16, lr=1e-2, threads=1),
                        batched=False, progress=False)[0]
    assert plain.test_curve is None
    np.testing.assert_array_equal(plain.probs, r.probs)  # recording the curve changes nothing


def test_val_loss_selection_without_validation_set_is_an_error():
    x, y, folds = toy(n_subjects=3)
    with pytest.raises(TrainError, match="needs an inner validation set"):
        train_folds("laenet", KW, x, y, folds, TrainConfig(epochs=1, select="val_loss", threads=1), progress=False)
    with pytest.raises(TrainError, match="train.select 'best' is unknown; choose from: last, val_loss"):
        TrainConfig(select="best")
    with pytest.raises(TrainError, match="train.test_curve must be true or false"):
        TrainConfig(test_curve="yes")


# --------------------------------------------------------------------------- UF1/UAR options: weights, focal,
# balanced sampling, mixup/CutMix, magnitude jitter


def test_new_options_validate_with_one_line_errors():
    c = TrainConfig()
    assert (c.class_weights, c.sampler, c.mixup, c.cutmix, c.jitter, c.focal_gamma) == ("none", "uniform", 0, 0, 0, 2)
    for kwargs, message in (
        ({"class_weights": "inverse"}, "train.class_weights 'inverse' is unknown; choose from: none, balanced"),
        ({"sampler": "over"}, "train.sampler 'over' is unknown; choose from: uniform, balanced"),
        ({"class_weights": "balanced", "loss": "soft"}, "train.class_weights=balanced applies to loss ce or focal"),
        ({"focal_gamma": -1}, "train.focal_gamma must be >= 0"),
        ({"mixup": -0.2}, "train.mixup must be >= 0"),
        ({"mixup": 0.2, "cutmix": 1.0}, "train.mixup and train.cutmix are exclusive"),
        ({"cutmix": 1.0, "loss": "balanced"}, "train.cutmix needs a loss of labels or targets"),
        ({"jitter": 1.0}, r"train.jitter must be in \[0, 1\)"),
    ):
        with pytest.raises(TrainError, match=message):
            TrainConfig(**kwargs)


def test_class_balanced_weights_on_a_known_imbalance():
    y = torch.tensor([0] * 6 + [1] * 3 + [2] * 1)
    # n = 10, K = 3: n / (K n_c) = 10/18, 10/9, 10/3
    torch.testing.assert_close(class_balanced_weights(y, 3), torch.tensor([10 / 18, 10 / 9, 10 / 3]))
    assert float(class_balanced_weights(y, 3)[y].mean()) == pytest.approx(1.0)
    # an absent class gets no weight; K counts the present classes only
    torch.testing.assert_close(class_balanced_weights(torch.tensor([0, 0, 2]), 3), torch.tensor([0.75, 0.0, 1.5]))
    logits = torch.randn(10, 3, generator=torch.Generator().manual_seed(0))
    w = class_balanced_weights(y, 3)
    expected = (w[y] * nn.functional.cross_entropy(logits, y, reduction="none")).mean()
    torch.testing.assert_close(compute_loss(logits, y, "ce", weights=w), expected)


@pytest.mark.parametrize("batched", [False, True])
@pytest.mark.parametrize("option", [{"class_weights": "balanced"}, {"sampler": "balanced"}])
def test_class_balance_comes_from_the_training_labels_only(option, batched):
    """Folds whose labels differ only on their test samples train to the same weights."""
    x, y, folds = toy(3)
    y = y.clone()
    y[y == 2] = torch.where(torch.arange(int((y == 2).sum())) % 2 == 0, 2, 0)  # imbalance 0 > 1 > 2
    fold = folds[0]
    other = y.clone()
    other[list(fold.test)] = 2  # only the test labels change
    cfg = TrainConfig(epochs=3, batch_size=16, lr=1e-2, threads=1, **option)
    (a,) = train_folds("laenet", KW_NO_DROPOUT, x, y, [fold], cfg, batched=batched, progress=False)
    (b,) = train_folds("laenet", KW_NO_DROPOUT, x, other, [fold], cfg, batched=batched, progress=False)
    (plain,) = train_folds("laenet", KW_NO_DROPOUT, x, y, [fold], TrainConfig(epochs=3, batch_size=16, lr=1e-2,
                           threads=1), batched=batched, progress=False)
    np.testing.assert_array_equal(a.probs, b.probs)
    assert not np.allclose(a.probs, plain.probs)  # the option does act on training


def test_focal_loss_at_gamma_zero_is_cross_entropy_and_down_weights_confident_samples():
    logits = torch.randn(2, 8, 3, generator=torch.Generator().manual_seed(1))
    y = torch.randint(0, 3, (2, 8), generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(compute_loss(logits, y, "focal", gamma=0.0), compute_loss(logits, y, "ce"))
    # a confident, correct sample: p_y = 0.9 -> loss (1 - 0.9)^2 * -log 0.9
    confident = torch.log(torch.tensor([[0.9, 0.05, 0.05]]))
    focal = compute_loss(confident, torch.tensor([0]), "focal", gamma=2.0)
    torch.testing.assert_close(focal, torch.tensor(0.1**2 * -math.log(0.9)))
    assert float(focal) < 0.02 * float(compute_loss(confident, torch.tensor([0]), "ce"))


def test_balanced_sampler_draws_classes_equally_on_a_ten_to_one_imbalance():
    labels = torch.tensor([0] * 100 + [1] * 10)
    g = torch.Generator().manual_seed(0)
    epochs = [balanced_epoch_indices(labels, 16, g) for _ in range(200)]
    assert all(e.shape == epoch_indices(110, 16, torch.Generator()).shape == (7, 16) for e in epochs)
    drawn = labels[torch.cat([e.flatten() for e in epochs])]
    share = float((drawn == 1).float().mean())
    assert share == pytest.approx(0.5, abs=0.02)  # uniform sampling would give 1/11
    same = balanced_epoch_indices(labels, 16, torch.Generator().manual_seed(0))
    torch.testing.assert_close(same, epochs[0])


def test_mixup_batch_and_its_loss():
    x = torch.randn(6, 3, 4, 5, generator=torch.Generator().manual_seed(0))
    mixed, lam, perm = mix_batch(x, torch.Generator().manual_seed(3), mixup=0.4)
    assert 0 < lam < 1 and sorted(perm.tolist()) == list(range(6))
    torch.testing.assert_close(mixed, lam * x + (1 - lam) * x[perm])
    again = mix_batch(x, torch.Generator().manual_seed(3), mixup=0.4)
    assert again[1] == lam and torch.equal(again[2], perm)
    logits = torch.randn(6, 3, generator=torch.Generator().manual_seed(4))
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    ce = nn.functional.cross_entropy
    expected = lam * ce(logits, y) + (1 - lam) * ce(logits, y[perm])
    torch.testing.assert_close(mixed_loss(logits, y, "ce", lam, perm), expected)
    soft = lam * nn.functional.one_hot(y, 3).float() + (1 - lam) * nn.functional.one_hot(y[perm], 3).float()
    torch.testing.assert_close(mixed_loss(logits, y, "ce", lam, perm), compute_loss(logits, soft, "soft"))


def test_cutmix_pastes_a_box_and_corrects_lambda_to_its_area():
    x = torch.arange(4.0).view(4, 1, 1, 1).expand(4, 2, 8, 10).clone()  # sample i is the constant i
    for seed in range(5):
        mixed, lam, perm = mix_batch(x, torch.Generator().manual_seed(seed), cutmix=1.0)
        for i in range(4):
            pasted = mixed[i] != x[i]
            if perm[i] == i:
                continue
            assert torch.equal(mixed[i][pasted], x[perm[i]][pasted])
            assert float(pasted.float().mean()) == pytest.approx(1 - lam)
            rows, cols = pasted[0].nonzero().T  # a box: every row of the box has the same columns
            if len(rows):
                assert pasted[0][rows.min():rows.max() + 1, cols.min():cols.max() + 1].all()


def test_jitter_factors_lie_in_range_and_eval_is_untouched():
    f = jitter_factors(10_000, 0.2, torch.Generator().manual_seed(0))
    assert 0.8 <= float(f.min()) < 0.81 and 1.19 < float(f.max()) <= 1.2
    x, y, folds = toy(3)
    cfg = TrainConfig(epochs=2, batch_size=16, lr=1e-2, threads=1, jitter=0.3)
    (result,) = train_folds("laenet", KW_NO_DROPOUT, x, y, folds[:1], cfg, batched=False, progress=False)
    model = create_model("laenet", **KW_NO_DROPOUT)
    model.load_state_dict(result.state_dict)
    np.testing.assert_array_equal(result.probs, evaluate(model, x[list(folds[0].test)], cfg.batch_size))
    (plain,) = train_folds("laenet", KW_NO_DROPOUT, x, y, folds[:1], TrainConfig(epochs=2, batch_size=16, lr=1e-2,
                           threads=1), batched=False, progress=False)
    assert not np.allclose(result.probs, plain.probs)


@pytest.mark.parametrize("option", [
    {"class_weights": "balanced"}, {"loss": "focal", "focal_gamma": 1.5}, {"sampler": "balanced"},
    {"mixup": 0.4}, {"cutmix": 1.0}, {"jitter": 0.2}, {"loss": "soft", "mixup": 0.4},
])
def test_new_options_give_the_same_model_in_both_trainers(option):
    x, y, folds = toy(3)
    target = nn.functional.one_hot(y, 3).float() if option.get("loss") == "soft" else y
    cfg = TrainConfig(epochs=6, batch_size=16, lr=1e-2, threads=1, **option)
    loop = train_folds("laenet", KW_NO_DROPOUT, x, target, folds, cfg, batched=False, progress=False)
    stacked = train_folds("laenet", KW_NO_DROPOUT, x, target, folds, cfg, batched=True, progress=False)
    for a, b in zip(loop, stacked):
        np.testing.assert_allclose(a.probs, b.probs, atol=1e-4)
        np.testing.assert_allclose([h["loss"] for h in a.history], [h["loss"] for h in b.history], rtol=1e-3)


def test_mixup_rejects_inputs_that_are_not_images():
    x = torch.randn(20, 3, 4, 12, 12)
    y = torch.arange(20) % 3
    folds = [Fold("a", tuple(range(10)), tuple(range(10, 20)))]
    with pytest.raises(TrainError, match=r"train.cutmix needs 2-D inputs \(N, C, H, W\), got inputs of shape"):
        train_folds("laenet", KW, x, y, folds, TrainConfig(epochs=1, cutmix=1.0), progress=False)


def test_pretraining_runs_with_the_recipes_threads(synth_root, tmp_path, monkeypatch):
    """Pretraining trains under train.threads, as the folds do (a machine's core count must not decide it)."""
    import torch

    import mertk.engine.train as train
    from mertk.engine import run
    from mertk.engine.recipe import feature_config, load_recipe

    seen = []
    real = train.train_one_epoch

    def spy(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return real(*args, **kwargs)

    monkeypatch.setattr(train, "train_one_epoch", spy)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        recipe = load_recipe("laenet-megc2019", ["pretrain.epochs=2", "train.threads=1"])
        state, report = run.pretrain(recipe, synth_root, feature_config(recipe, 3), "megc2019", tmp_path, False, 1)
        assert seen == [1, 1] and torch.get_num_threads() == 2 and report["epochs"] == 2
    finally:
        torch.set_num_threads(before)
