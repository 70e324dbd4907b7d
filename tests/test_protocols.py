"""Evaluation protocols: folds are disjoint, cover every sample once, and never leak the test set."""

from __future__ import annotations

import pytest

from mertk.engine.protocols import (
    Fold,
    ProtocolError,
    classes_missing_from_train,
    inner_validation,
    leave_one_dataset_out,
    leave_one_video_out,
    loso,
    lovo,
    official_splits,
)
from mertk.errors import MertkError

# 3 datasets share the id "sub01": namespacing keeps them apart
SUBJECTS = ["casme2/sub01"] * 3 + ["samm/sub01"] * 2 + ["smic/s1"] * 4 + ["casme2/sub02"] * 1 + ["smic/s2"] * 2


def assert_partition(folds: list[Fold], n: int) -> None:
    """Every fold: train + test (+ val) is all samples, disjoint; the test sets cover each sample once."""
    tested = []
    for fold in folds:
        assert set(fold.train).isdisjoint(fold.test)
        assert set(fold.train) | set(fold.test) | set(fold.val) == set(range(n))
        tested += fold.test
    assert sorted(tested) == list(range(n))


def test_loso_one_fold_per_namespaced_subject():
    folds = loso(SUBJECTS)
    assert [f.name for f in folds] == ["casme2/sub01", "casme2/sub02", "samm/sub01", "smic/s1", "smic/s2"]
    assert_partition(folds, len(SUBJECTS))
    by_name = {f.name: f for f in folds}
    assert by_name["casme2/sub01"].test == (0, 1, 2)
    assert by_name["samm/sub01"].test == (3, 4)
    assert by_name["casme2/sub02"].test == (9,)
    assert len(by_name["smic/s1"].train) == len(SUBJECTS) - 4
    for fold in folds:
        assert {SUBJECTS[i] for i in fold.test} == {fold.name}
        assert fold.name not in {SUBJECTS[i] for i in fold.train}


def test_loso_errors():
    with pytest.raises(ProtocolError, match="^LOSO: no samples$"):
        loso([])
    with pytest.raises(ProtocolError, match="^LOSO: only one subject \\(casme2/sub01\\); its fold would have an empty train set$"):
        loso(["casme2/sub01", "casme2/sub01"])
    with pytest.raises(ProtocolError, match="^LOSO: sample 1 has no subject$"):
        loso(["a/1", "", "a/2"])
    assert issubclass(ProtocolError, MertkError)


def test_lovo_twenty_folds_of_five_percent_cover_every_video_once():
    n = 442
    folds = lovo(n)
    assert len(folds) == 20
    assert [f.name for f in folds][:2] == ["lovo01", "lovo02"] and folds[-1].name == "lovo20"
    assert_partition(folds, n)
    sizes = sorted(len(f.test) for f in folds)
    assert sizes[0] == 22 and sizes[-1] == 23 and sum(sizes) == n  # 442 / 20 = 22.1
    assert lovo(n, seed=0) == folds
    assert lovo(n, seed=1) != folds
    assert len(lovo(100, test_fraction=0.1)) == 10
    assert len(lovo(100, test_fraction=0.3)) == 4  # ceil(1 / 0.3)


def test_lovo_stratified_gives_every_fold_its_share_of_each_class():
    labels = ["negative"] * 200 + ["positive"] * 60 + ["surprise"] * 40
    folds = lovo(len(labels), labels=labels, seed=3)
    assert len(folds) == 20
    assert_partition(folds, len(labels))
    for fold in folds:
        counts = {c: sum(labels[i] == c for i in fold.test) for c in ("negative", "positive", "surprise")}
        assert counts == {"negative": 10, "positive": 3, "surprise": 2}
    assert lovo(len(labels), labels=labels, seed=3) == folds


def test_lovo_errors():
    for bad in (0.0, 1.0, -0.1, 1.5):
        with pytest.raises(ProtocolError, match="LOVO test_fraction must lie strictly between 0 and 1"):
            lovo(100, test_fraction=bad)
    with pytest.raises(ProtocolError, match="^LOVO: 19 videos cannot fill 20 folds of 0.05 each \\(need at least 20\\)$"):
        lovo(19)
    with pytest.raises(ProtocolError, match="^LOVO: no samples$"):
        lovo(0)
    with pytest.raises(ProtocolError, match="^LOVO: 3 labels for 40 videos$"):
        lovo(40, labels=["a", "b", "c"])


def test_leave_one_video_out():
    folds = leave_one_video_out(7)
    assert len(folds) == 7
    assert_partition(folds, 7)
    assert folds[3] == Fold("video0004", (0, 1, 2, 4, 5, 6), (3,))
    with pytest.raises(ProtocolError, match="one video leaves an empty train set"):
        leave_one_video_out(1)
    with pytest.raises(ProtocolError, match="no samples"):
        leave_one_video_out(0)


def test_official_splits_follow_shcnn():
    splits = ["Training", "PublicTest", "Training", "PrivateTest", "training", "PublicTest"]
    (fold,) = official_splits(splits)
    assert fold == Fold("official", (0, 2, 4), (1, 5), (3,))
    (no_val,) = official_splits(["Training", "PublicTest"], val=None)
    assert no_val.val == ()
    with pytest.raises(ProtocolError, match="^official splits: sample 1 has unknown split 'Validation' \\(known: Training, PrivateTest, PublicTest\\)$"):
        official_splits(["Training", "Validation"])
    with pytest.raises(ProtocolError, match="^fold 'official' has an empty test set$"):
        official_splits(["Training", "PrivateTest"])
    with pytest.raises(ProtocolError, match="^fold 'official' has an empty train set$"):
        official_splits(["PublicTest"])
    with pytest.raises(ProtocolError, match="no samples"):
        official_splits([])
    with pytest.raises(ProtocolError, match="must be different split names"):
        official_splits(["Training"], val="Training")


def test_fold_rejects_leaks_and_empty_parts():
    with pytest.raises(ProtocolError, match="^fold 'x': 1 sample\\(s\\) in both train and test \\(first: 2\\)$"):
        Fold("x", (0, 1, 2), (2, 3))
    with pytest.raises(ProtocolError, match="in both val and test"):
        Fold("x", (0,), (1,), (1,))
    with pytest.raises(ProtocolError, match="in both val and train"):
        Fold("x", (0,), (1,), (0,))
    with pytest.raises(ProtocolError, match="^fold 'x' has an empty train set$"):
        Fold("x", (), (1,))
    with pytest.raises(ProtocolError, match="appears twice in test"):
        Fold("x", (0,), (1, 1))
    assert Fold("x", (3, 1), (2,)).train == (1, 3)


def test_inner_validation_moves_whole_training_subjects_and_never_the_test_set():
    subjects = [f"d/s{i % 12:02d}" for i in range(60)]  # 12 subjects, 5 samples each
    for fold in loso(subjects):
        inner = inner_validation(fold, subjects, fraction=0.25, seed=7)
        assert inner.test == fold.test and inner.name == fold.name
        assert sorted(inner.train + inner.val) == list(fold.train)
        val_subjects = {subjects[i] for i in inner.val}
        train_subjects = {subjects[i] for i in inner.train}
        assert len(val_subjects) == 3  # round(0.25 * 11 training subjects) = 3 (2.75)
        assert val_subjects.isdisjoint(train_subjects)
        assert fold.name not in val_subjects
        assert inner_validation(fold, subjects, fraction=0.25, seed=7) == inner
    fold = loso(subjects)[0]
    draws = {tuple(inner_validation(fold, subjects, fraction=0.25, seed=s).val) for s in range(5)}
    assert len(draws) > 1  # the seed chooses


def test_inner_validation_keeps_one_training_subject_and_checks_inputs():
    subjects = ["a", "a", "b", "c"]
    fold = loso(subjects)[0]  # train subjects b and c
    inner = inner_validation(fold, subjects, fraction=0.9)
    assert len({subjects[i] for i in inner.train}) == 1 and len({subjects[i] for i in inner.val}) == 1
    small = inner_validation(fold, subjects, fraction=0.01)
    assert len(small.val) == 1  # at least one subject is held out
    with pytest.raises(ProtocolError, match="^fold 'b': 1 training subject\\(s\\); an inner validation split needs two$"):
        inner_validation(loso(["a", "b"])[1], ["a", "b"])
    with pytest.raises(ProtocolError, match="already has a validation set"):
        inner_validation(inner, subjects)
    with pytest.raises(ProtocolError, match="inner validation fraction must lie strictly between 0 and 1 \\(got 1\\)"):
        inner_validation(fold, subjects, fraction=1)
    with pytest.raises(ProtocolError, match="refers to sample 3 but only 2 subjects were given"):
        inner_validation(fold, subjects[:2])


def test_classes_missing_from_train():
    labels = ["neg", "neg", "pos", "sur", "neg"]
    subjects = ["a", "b", "b", "c", "c"]
    folds = {f.name: f for f in loso(subjects)}
    assert classes_missing_from_train(folds["a"], labels) == []
    assert classes_missing_from_train(folds["b"], labels) == ["pos"]
    assert classes_missing_from_train(folds["c"], labels, classes=["sur", "neg", "other"]) == ["sur", "other"]


def test_leave_one_dataset_out_holds_out_whole_datasets_and_validates_on_training_subjects():
    datasets = [s.split("/")[0] for s in SUBJECTS]
    folds = leave_one_dataset_out(datasets)
    assert [f.name for f in folds] == ["casme2", "samm", "smic"]
    assert_partition(folds, len(SUBJECTS))
    for fold in folds:
        assert {datasets[i] for i in fold.test} == {fold.name}
        assert fold.name not in {datasets[i] for i in fold.train}
        held_subjects = {SUBJECTS[i] for i in fold.test}
        inner = inner_validation(fold, SUBJECTS, fraction=0.5, seed=1)
        assert inner.test == fold.test and inner.val
        assert not held_subjects & {SUBJECTS[i] for i in inner.train + inner.val}
        assert fold.name not in {datasets[i] for i in inner.val}


@pytest.mark.parametrize("datasets, message", [
    ([], "no samples"), (["casme2", "casme2"], "only one dataset"), (["casme2", ""], "sample 1 has no dataset"),
])
def test_leave_one_dataset_out_errors(datasets, message):
    with pytest.raises(ProtocolError, match=message):
        leave_one_dataset_out(datasets)


def test_leave_one_dataset_out_recipe_needs_a_composite():
    from mertk.engine.recipe import load_recipe
    from mertk.engine.recipe import validate_recipe

    recipe = load_recipe("ststnet-cd6me-lodo")
    assert recipe.protocol == "leave_one_dataset_out" and validate_recipe(recipe)["classes"] == [
        "negative", "positive", "surprise"]
    single = load_recipe("ststnet-cd6me-lodo", ["data.dataset=casme2"])
    with pytest.raises(MertkError, match="leave_one_dataset_out needs a composite"):
        validate_recipe(single)
