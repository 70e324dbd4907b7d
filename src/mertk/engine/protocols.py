"""Evaluation protocols: which samples train and which test, fold by fold.

Every protocol works on sample positions (0..n-1 into the arrays the engine trains on) and returns
:class:`Fold` objects. A fold checks itself when built: train and test are non-empty and disjoint and
the validation set touches neither, so no protocol (nor a hand-made fold) can leak test samples.

- :func:`loso`: leave one subject out; subjects are namespaced (``casme2/sub01``), so two datasets'
  ``sub01`` never merge.
- :func:`lovo`: leave-one-video-out as the STRCN paper runs it ("we leave 5% videos for testing"):
  the videos are shuffled (stratified by class when labels are given) and dealt into
  ``ceil(1 / test_fraction)`` disjoint parts; each part is the test set of one fold, so every video
  is tested exactly once.
- :func:`leave_one_video_out`: true leave-one-out, one fold per video.
- :func:`leave_one_dataset_out`: cross-dataset evaluation over a composite, one fold per component
  dataset (train on the others, test on it).
- :func:`official_splits`: FER2013's ``Usage`` column as SHCNN uses it (Training / PrivateTest as
  validation / PublicTest as test).
- :func:`inner_validation`: move whole training subjects into a validation set (for choosing an epoch
  without looking at the test fold).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from ..errors import MertkError


class ProtocolError(MertkError, ValueError):
    """A protocol cannot build valid folds from its input (empty input, an empty fold, a bad option)."""


def _indices(values: Iterable[int], fold: str, part: str) -> tuple[int, ...]:
    out = tuple(sorted(int(i) for i in values))
    if out and out[0] < 0:
        raise ProtocolError(f"fold {fold!r}: negative sample index {out[0]} in {part}")
    if len(set(out)) != len(out):
        raise ProtocolError(f"fold {fold!r}: a sample index appears twice in {part}")
    return out


@dataclass(frozen=True)
class Fold:
    """One train/test split over sample positions; ``val`` is an optional inner validation set.

    Index tuples are stored sorted. Building a fold with an empty train or test set, or with a sample
    in two of train/val/test, raises :class:`ProtocolError`.
    """

    name: str
    train: tuple[int, ...]
    test: tuple[int, ...]
    val: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        for part in ("train", "test", "val"):
            object.__setattr__(self, part, _indices(getattr(self, part), self.name, part))
        if not self.train:
            raise ProtocolError(f"fold {self.name!r} has an empty train set")
        if not self.test:
            raise ProtocolError(f"fold {self.name!r} has an empty test set")
        train, test, val = set(self.train), set(self.test), set(self.val)
        for a, b, sa, sb in (("train", "test", train, test), ("val", "test", val, test), ("val", "train", val, train)):
            shared = sa & sb
            if shared:
                raise ProtocolError(
                    f"fold {self.name!r}: {len(shared)} sample(s) in both {a} and {b} (first: {min(shared)})"
                )


def _check_nonempty(n: int, what: str) -> None:
    if n == 0:
        raise ProtocolError(f"{what}: no samples")


def loso(subjects: Sequence[str]) -> list[Fold]:
    """Leave-one-subject-out: one fold per distinct subject (named after it, in sorted order).

    ``subjects[i]`` is sample i's namespaced subject id. Raises :class:`ProtocolError` for no samples,
    a sample without a subject, or a single subject (its fold would have nothing to train on).
    """
    _check_nonempty(len(subjects), "LOSO")
    by_subject: dict[str, list[int]] = {}
    for i, subject in enumerate(subjects):
        if subject is None or str(subject).strip() == "":
            raise ProtocolError(f"LOSO: sample {i} has no subject")
        by_subject.setdefault(str(subject), []).append(i)
    if len(by_subject) < 2:
        raise ProtocolError(
            f"LOSO: only one subject ({next(iter(by_subject))}); its fold would have an empty train set"
        )
    n = len(subjects)
    folds = []
    for subject in sorted(by_subject):
        test = by_subject[subject]
        held = set(test)
        folds.append(Fold(subject, tuple(i for i in range(n) if i not in held), tuple(test)))
    return folds


def leave_one_dataset_out(datasets: Sequence[str]) -> list[Fold]:
    """Leave one dataset out: one fold per distinct dataset (named after it, sorted), testing all its samples.

    ``datasets[i]`` is sample i's dataset (``casme2``, ``mmew``...). Every sample is tested exactly
    once, in its own dataset's fold, and never trains there; an inner validation split
    (:func:`inner_validation`) of such a fold draws from the training datasets' subjects only.
    Raises :class:`ProtocolError` for no samples, a sample without a dataset, or a single dataset.
    """
    _check_nonempty(len(datasets), "leave-one-dataset-out")
    by_dataset: dict[str, list[int]] = {}
    for i, name in enumerate(datasets):
        if name is None or str(name).strip() == "":
            raise ProtocolError(f"leave-one-dataset-out: sample {i} has no dataset")
        by_dataset.setdefault(str(name), []).append(i)
    if len(by_dataset) < 2:
        raise ProtocolError(f"leave-one-dataset-out: only one dataset ({next(iter(by_dataset))}); "
                            "it needs a composite of two or more")
    n = len(datasets)
    folds = []
    for name in sorted(by_dataset):
        held = set(by_dataset[name])
        folds.append(Fold(name, tuple(i for i in range(n) if i not in held), tuple(by_dataset[name])))
    return folds


def _check_fraction(fraction: float, what: str) -> None:
    if not (isinstance(fraction, (int, float)) and 0.0 < float(fraction) < 1.0):
        raise ProtocolError(f"{what} must lie strictly between 0 and 1 (got {fraction!r})")


def lovo(
    n: int, *, test_fraction: float = 0.05, seed: int = 0, labels: Sequence[str] | None = None
) -> list[Fold]:
    """STRCN's leave-one-video-out: ``ceil(1 / test_fraction)`` folds, each testing a disjoint ~share.

    The n videos are shuffled with ``seed`` and dealt round-robin into the folds, so fold sizes differ by
    at most one and every video is tested exactly once (20 folds of ~5% for the paper's 0.05). With
    ``labels`` (one per video) the dealing is stratified: each class is shuffled and dealt in turn,
    continuing where the previous class stopped, so every fold gets its share of every class.
    Folds are named ``lovo01``, ``lovo02``, ...
    """
    _check_fraction(test_fraction, "LOVO test_fraction")
    _check_nonempty(n, "LOVO")
    # 1/0.05 is 20.000000000000004 on some inputs; the tolerance keeps ceil from adding a fold
    k = math.ceil(1.0 / test_fraction - 1e-9)
    if n < k:
        raise ProtocolError(f"LOVO: {n} videos cannot fill {k} folds of {test_fraction:g} each (need at least {k})")
    if labels is not None and len(labels) != n:
        raise ProtocolError(f"LOVO: {len(labels)} labels for {n} videos")
    rng = np.random.default_rng(seed)
    if labels is None:
        order = rng.permutation(n)
    else:
        classes = sorted({str(label) for label in labels})
        positions = np.array([classes.index(str(label)) for label in labels])
        order = np.concatenate([rng.permutation(np.flatnonzero(positions == c)) for c in range(len(classes))])
    parts = [order[j::k] for j in range(k)]
    width = len(str(k))
    folds = []
    for j, part in enumerate(parts):
        held = np.zeros(n, dtype=bool)
        held[part] = True
        folds.append(Fold(f"lovo{j + 1:0{max(2, width)}d}", tuple(np.flatnonzero(~held)), tuple(part)))
    return folds


def leave_one_video_out(n: int) -> list[Fold]:
    """True leave-one-out: n folds, fold i tests video i alone (named ``video0001``...)."""
    _check_nonempty(n, "leave-one-video-out")
    if n < 2:
        raise ProtocolError("leave-one-video-out: one video leaves an empty train set")
    width = max(4, len(str(n)))
    everything = range(n)
    return [Fold(f"video{i + 1:0{width}d}", tuple(j for j in everything if j != i), (i,)) for i in everything]


def official_splits(
    splits: Sequence[str],
    *,
    train: str = "Training",
    val: str | None = "PrivateTest",
    test: str = "PublicTest",
) -> list[Fold]:
    """One fold from per-sample official split names (FER2013's ``Usage``), matched case-insensitively.

    The defaults follow SHCNN: train on ``Training``, validate on ``PrivateTest``, test on ``PublicTest``.
    A split name that is none of the three raises :class:`ProtocolError` (nothing is dropped silently);
    pass ``val=None`` when there is no validation split.
    """
    _check_nonempty(len(splits), "official splits")
    roles = {train.lower(): "train", test.lower(): "test"}
    if val is not None:
        roles[val.lower()] = "val"
    if len(roles) != (3 if val is not None else 2):
        raise ProtocolError(
            f"official splits: train, val and test must be different split names (got {train}, {val}, {test})"
        )
    parts: dict[str, list[int]] = {"train": [], "val": [], "test": []}
    for i, split in enumerate(splits):
        role = roles.get(str(split).strip().lower()) if split is not None else None
        if role is None:
            known = ", ".join(s for s in (train, val, test) if s is not None)
            raise ProtocolError(f"official splits: sample {i} has unknown split {split!r} (known: {known})")
        parts[role].append(i)
    return [Fold("official", tuple(parts["train"]), tuple(parts["test"]), tuple(parts["val"]))]


def inner_validation(fold: Fold, subjects: Sequence[str], *, fraction: float = 0.1, seed: int = 0) -> Fold:
    """Move whole training subjects of ``fold`` into its ``val`` set; the test set is never touched.

    ``subjects[i]`` is sample i's subject (all samples, as given to :func:`loso`).
    ``max(1, round(fraction * S))`` of the S training subjects are drawn with ``seed`` (same seed, same
    choice), leaving at least one subject in train. Raises :class:`ProtocolError` when the fold has
    fewer than two training subjects, already has a validation set, or ``fraction`` is outside (0, 1).
    """
    _check_fraction(fraction, "inner validation fraction")
    if fold.val:
        raise ProtocolError(f"fold {fold.name!r} already has a validation set")
    last = max(fold.train[-1], fold.test[-1])
    if last >= len(subjects):
        raise ProtocolError(f"fold {fold.name!r} refers to sample {last} but only {len(subjects)} subjects were given")
    train_subjects = sorted({str(subjects[i]) for i in fold.train})
    if len(train_subjects) < 2:
        raise ProtocolError(
            f"fold {fold.name!r}: {len(train_subjects)} training subject(s); an inner validation split needs two"
        )
    n_val = min(len(train_subjects) - 1, max(1, math.floor(fraction * len(train_subjects) + 0.5)))
    rng = np.random.default_rng(seed)
    chosen = {train_subjects[j] for j in rng.permutation(len(train_subjects))[:n_val]}
    val = tuple(i for i in fold.train if str(subjects[i]) in chosen)
    train = tuple(i for i in fold.train if str(subjects[i]) not in chosen)
    return Fold(fold.name, train, fold.test, val)


def classes_missing_from_train(fold: Fold, labels: Sequence[str], classes: Sequence[str] | None = None) -> list[str]:
    """Classes (of ``classes``, default: all labels) with no training sample in ``fold``, in order.

    A recipe reports these instead of crashing: the model can still be trained and tested, it just
    cannot learn the missing class in that fold.
    """
    present = {str(labels[i]) for i in fold.train}
    wanted = [str(c) for c in classes] if classes is not None else sorted({str(label) for label in labels})
    return [c for c in wanted if c not in present]
