"""Loaders for precomputed feature images: the shared STSTNet-style MEGC 2019 folder and a generic
"folder of images + label csv".

Many users hold only the widely shared 28x28 [u, v, strain] PNGs of the MEGC 2019 composite
(SMIC-HS + CASME II + SAMM, 3 classes), laid out as in the STSTNet repository, one folder per LOSO
fold::

    ROOT/<subject>/u_test/<class>/<name>.png    # this subject's images
    ROOT/<subject>/u_train/<class>/<name>.png   # copies of every other subject's images

Each image is indexed once, from its own subject's ``u_test`` folder. The source dataset follows from
the subject name (``s1`` SMIC, ``sub01`` CASME II, ``006`` SAMM) and namespaces the subject
(``smic/s1``) so LOSO never merges two people.
"""

from __future__ import annotations

import re
from pathlib import Path
import cv2
import numpy as np
import pandas as pd

from ..errors import DataError
from ..records import ImageRecord
from ..registry import DATASETS
from .base import IMAGE_EXTS, ImageDataset, norm_header, require_dir
from .fake.static import write_fake_features, write_fake_image_folder

MEGC2019_CLASSES = {"0": "negative", "1": "positive", "2": "surprise"}
_CLASS_IDS = {name: cls for cls, name in MEGC2019_CLASSES.items()}
_SUBJECT_PATTERNS = ((re.compile(r"(?i)s\d+"), "smic"), (re.compile(r"(?i)sub\d+"), "casme2"), (re.compile(r"\d{3}"), "samm"))
_FILE_COLUMNS = ("path", "filename", "image")


def dataset_of_subject(subject: str) -> str:
    """Source dataset of an MEGC 2019 subject folder name: ``sN`` SMIC, ``subNN`` CASME II,
    three digits SAMM, else ``unknown``."""
    for pattern, dataset in _SUBJECT_PATTERNS:
        if pattern.fullmatch(subject):
            return dataset
    return "unknown"


def read_rgb(path: Path) -> np.ndarray:
    """An image file as an H x W x 3 uint8 RGB array; :class:`DataError` naming it when unreadable."""
    if not path.is_file():
        raise DataError(path, "image file not found")
    image = cv2.imread(str(path), cv2.IMREAD_COLOR_RGB)
    if image is None:
        raise DataError(path, "cannot read as an image")
    return image


def _readable(path: Path) -> str | None:
    """Why ``path`` cannot be used (missing, or no image decoder recognises its header), else None."""
    if not path.is_file():
        return f"file not found: {path}"
    if not cv2.haveImageReader(str(path)):
        return f"not a readable image: {path}"
    return None


class _LabelCsv:
    """A label csv read as text: a file column (path / filename / image), label, optional subject, dataset."""

    def __init__(self, path: Path) -> None:
        if not path.is_file():
            raise DataError(path, "label csv not found")
        try:
            frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        except Exception as exc:  # pandas raises many types for a foreign or corrupt file
            raise DataError(path, f"cannot read as csv ({type(exc).__name__}: {exc})") from None
        frame.columns = [norm_header(c) for c in frame.columns]
        file_column = next((c for c in _FILE_COLUMNS if c in frame.columns), None)
        if file_column is None:
            raise DataError(path, f"missing column 'path' or 'filename' (found: {', '.join(frame.columns)})")
        if "label" not in frame.columns:
            raise DataError(path, f"missing column 'label' (found: {', '.join(frame.columns)})")
        self.path = path
        self.frame = frame
        self.file_column = file_column

    def rows(self) -> list[tuple[str, str, str, str, str]]:
        """(source, file, label, subject, dataset) per data row, stripped; '' where absent."""
        f = self.frame
        empty = [""] * len(f)
        columns = [f[c].str.strip().tolist() if c in f.columns else empty for c in (self.file_column, "label", "subject", "dataset")]
        return [(f"{self.path}, row {i + 2}", *values) for i, values in enumerate(zip(*columns))]


class _FeatureBase(ImageDataset):
    def load_image(self, record: ImageRecord) -> np.ndarray:
        """The record's image as H x W x 3 uint8 RGB ([u, v, strain] for the MEGC 2019 features)."""
        if record.path is None:
            raise DataError(record.source or None, f"{record.item}: record has no image path")
        return read_rgb(record.path)


@DATASETS.register(
    "megc2019-features",
    kind="images",
    fake=write_fake_features,
    description="STSTNet-style 28x28 [u, v, strain] PNGs of the MEGC 2019 composite (3 classes, LOSO folders)",
)
class MEGC2019Features(_FeatureBase):
    """The MEGC 2019 feature images, from the STSTNet folder layout or from a label csv.

    Args:
        root: the folder of subject folders (``ROOT/<subject>/u_test/<class>/``), or the folder the
            csv's file names are relative to.
        annotation: a label csv with columns ``filename`` (or ``image`` / ``path``) and ``label``
            (class ids 0/1/2 or the names negative/positive/surprise), optional ``subject`` and
            ``dataset``. When given, the folder layout is not scanned.

    Records have ``dataset = "megc2019-features"`` (so label maps apply to the 0/1/2 ids), ``label``
    the class id as text, ``subject`` namespaced by the source dataset (``casme2/sub01``; inferred
    from the subject name when the csv has no dataset column) and ``extra`` ``source_dataset``.
    Unknown classes and unreadable images are listed in ``skipped``.
    """

    name = "megc2019-features"
    label_names = dict(MEGC2019_CLASSES)
    labels = tuple(MEGC2019_CLASSES)

    def __init__(self, root: str | Path, *, annotation: str | Path | None = None) -> None:
        super().__init__()
        self.root = require_dir(root)
        if annotation is not None:
            self.annotation = Path(annotation).expanduser()
            self._from_csv(_LabelCsv(self.annotation))
        else:
            self._from_folders()

    def _record(self, source: str, item: str, path: Path, label: str, subject: str, dataset: str) -> None:
        cls = label if label in MEGC2019_CLASSES else _CLASS_IDS.get(label.lower())
        if cls is None:
            self.skip(source, item, f"unknown class {label!r} (expected 0 negative, 1 positive, 2 surprise)")
            return
        problem = _readable(path)
        if problem is not None:
            self.skip(source, item, problem)
            return
        self.records.append(
            ImageRecord(
                dataset=self.name,
                item=item,
                label=cls,
                subject=f"{dataset}/{subject}" if subject else None,
                path=path,
                source=source,
                extra=(("source_dataset", dataset),),
            )
        )

    def _from_folders(self) -> None:
        folds = sorted(p for p in self.root.iterdir() if p.is_dir())
        tests = [p for p in folds if (p / "u_test").is_dir()]
        if not tests:
            raise DataError(self.root, "no <subject>/u_test folders (STSTNet layout) and no label csv given")
        missing = [p.name for p in folds if p not in tests]
        if missing:
            self.notes.append(f"folders without u_test, not read: {', '.join(missing)}")
        for fold in tests:
            subject = fold.name
            dataset = dataset_of_subject(subject)
            for class_dir in sorted(p for p in (fold / "u_test").iterdir() if p.is_dir()):
                for path in sorted(p for p in class_dir.iterdir() if p.suffix.lower() in IMAGE_EXTS):
                    self.rows += 1
                    item = f"{subject}/{path.name}"
                    if class_dir.name not in MEGC2019_CLASSES:
                        self.skip(str(path), item, f"unknown class folder {class_dir.name!r} (expected 0, 1, 2)")
                        continue
                    self._record(str(path), item, path, class_dir.name, subject, dataset)
        seen = {(Path(s.source).parent.name, Path(s.source).name) for s in self.skipped}
        seen |= {(r.path.parent.name, r.path.name) for r in self.records}
        train_only = {
            (p.parent.name, p.name)
            for fold in tests
            if (fold / "u_train").is_dir()
            for p in (fold / "u_train").glob("*/*")
            if p.suffix.lower() in IMAGE_EXTS
        } - seen
        if train_only:
            self.notes.append(
                f"{len(train_only)} images lie only in u_train folders (no subject's u_test holds them), not read: "
                + ", ".join(f"{c}/{n}" for c, n in sorted(train_only)[:5])
                + (" ..." if len(train_only) > 5 else "")
            )

    def _from_csv(self, table: _LabelCsv) -> None:
        for source, name, label, subject, dataset in table.rows():
            self.rows += 1
            dataset = dataset.lower() or (dataset_of_subject(subject) if subject else "unknown")
            self._record(source, name, self.root / name, label, subject, dataset)
        if "subject" not in table.frame.columns:
            self.notes.append(f"{table.path} has no subject column: records carry no subject (LOSO impossible)")


def _find_csv(root: Path, explicit: str | Path | None) -> Path:
    if explicit is not None:
        return Path(explicit).expanduser()
    if (root / "labels.csv").is_file():
        return root / "labels.csv"
    found = sorted(root.glob("*.csv"))
    if len(found) == 1:
        return found[0]
    if not found:
        raise DataError(root, "no label csv (labels.csv or one *.csv) in the folder")
    raise DataError(root, f"several csv files ({', '.join(p.name for p in found)}); pass annotation=")


@DATASETS.register(
    "image-folder",
    kind="images",
    fake=write_fake_image_folder,
    description="any folder of images with a label csv (path or filename, label, optional subject, dataset)",
)
class ImageFolder(_FeatureBase):
    """A folder of images and a label csv.

    Args:
        root: folder the csv's paths are relative to.
        annotation: the csv (default ``root/labels.csv``, or the only ``*.csv`` in ``root``); columns
            ``path`` or ``filename``, ``label``, optional ``subject`` and ``dataset``.

    ``dataset`` of each record is the csv's dataset column (default ``image-folder``), ``subject`` is
    namespaced by it (``mine/p1``). Rows whose file is missing or not an image, or whose label is
    empty, are listed in ``skipped``.
    """

    name = "image-folder"

    def __init__(self, root: str | Path, *, annotation: str | Path | None = None) -> None:
        super().__init__()
        self.root = require_dir(root)
        self.annotation = _find_csv(self.root, annotation)
        table = _LabelCsv(self.annotation)
        for source, name, label, subject, dataset in table.rows():
            self.rows += 1
            if not label:
                self.skip(source, name, "empty label")
                continue
            path = self.root / name
            problem = _readable(path)
            if problem is not None:
                self.skip(source, name, problem)
                continue
            dataset = dataset or self.name
            if subject and "/" not in subject:
                subject = f"{dataset}/{subject}"
            self.records.append(
                ImageRecord(dataset=dataset, item=name, label=label, subject=subject or None, path=path, source=source)
            )
        self.labels = tuple(sorted({r.label for r in self.records}))
