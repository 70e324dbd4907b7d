"""Loaders for precomputed feature images: the shared MEGC 2019 feature folders and a generic
"folder of images + label csv".

Many users hold only the widely shared 28x28 [u, v, strain] PNGs of the MEGC 2019 composite
(SMIC-HS + CASME II + SAMM, 3 classes). ``megc2019-features`` reads the layouts they circulate in, as
shipped, and tells them apart by what lies on disk:

* **STSTNet LOSO folders** (the STSTNet repository; HTNet ships the same as
  ``datasets/three_norm_u_v_os``), one folder per LOSO fold::

      ROOT/<subject>/u_test/<class>/<name>.png    # this subject's images
      ROOT/<subject>/u_train/<class>/<name>.png   # copies of every other subject's images

  Each image is indexed once, from its own subject's ``u_test`` folder.
* **HTNet's flat folder**: ``datasets/STSNet_whole_norm_u_v_os/`` holding one PNG per clip, named
  ``<sub>_<filename_o> .png`` with a space before ``.png`` (``006_006_1_2 .png``,
  ``sub01_EP02_01f .png``, ``s03_s03_ne_05 .png``), and ``combined_3_class2_for_optical_flow.csv``
  (at the HTNet repository's top, beside ``datasets/``) with the header
  ``dataset,sub,filename_o,label,apex,imagename,sub_filename``. See :class:`MEGC2019Features`.
* **any folder with a label csv** given as ``annotation=``.

The source dataset follows from the csv's dataset column or from the subject name (``s1`` SMIC,
``sub01`` CASME II, ``006`` SAMM) and namespaces the subject (``smic/s1``) so LOSO never merges two
people. Subject ids are written the way the native loaders write them (``smic/s3``, ``casme2/sub01``,
``samm/028``) whatever their zero-padding in the files.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from ..errors import DataError
from ..imagefiles import IMAGE_SUFFIXES
from ..records import ImageRecord
from ..registry import DATASETS
from .base import ImageDataset, id_key, norm_header, require_dir

HTNET_FOLDER = "STSNet_whole_norm_u_v_os"
HTNET_CSV = "combined_3_class2_for_optical_flow.csv"
MEGC2019_CLASSES = {"0": "negative", "1": "positive", "2": "surprise"}
_CLASS_IDS = {name: cls for cls, name in MEGC2019_CLASSES.items()}
_SUBJECT_PATTERNS = ((re.compile(r"(?i)s\d+"), "smic"), (re.compile(r"(?i)sub\d+"), "casme2"), (re.compile(r"\d{3}"), "samm"))
_FILE_COLUMNS = ("path", "filename", "image")
HTNET_LOSO_FOLDER = "three_norm_u_v_os"
HTNET_COLUMNS = ("dataset", "sub", "filename_o", "label")
_DIGITS = re.compile(r"\d+")
LAYOUTS_READ = (
    "STSTNet LOSO folders ROOT/<subject>/u_test/<class>/*.png (also HTNet's datasets/three_norm_u_v_os); "
    f"HTNet's flat datasets/{HTNET_FOLDER}/ with {HTNET_CSV} beside or above it; "
    "any image folder with a label csv passed as annotation= (--annotation)"
)


def dataset_of_subject(subject: str) -> str:
    """Source dataset of an MEGC 2019 subject folder name: ``sN`` SMIC, ``subNN`` CASME II,
    three digits SAMM, else ``unknown``."""
    for pattern, dataset in _SUBJECT_PATTERNS:
        if pattern.fullmatch(subject):
            return dataset
    return "unknown"


def canonical_subject(dataset: str, subject: str) -> str:
    """A subject id written as the native loader writes it, whatever its zero-padding: SMIC ``s3``,
    CASME II ``sub01``, SAMM ``028``; other datasets (and ids without a number) are kept as given."""
    numbers = _DIGITS.findall(subject)
    if not numbers or dataset not in ("smic", "casme2", "samm"):
        return subject
    n = int(numbers[-1])
    return {"smic": f"s{n}", "casme2": f"sub{n:02d}", "samm": f"{n:03d}"}[dataset]


def inside_root(root: Path, name: str) -> Path | None:
    """``root / name`` when that path stays inside ``root``, else ``None`` (an absolute path elsewhere
    or one climbing out with ``..``). Decided on the path's text, so the file is never touched;
    symbolic links placed inside ``root`` are the user's own and are followed when read."""
    base = Path(os.path.normpath(Path(root).absolute()))
    full = Path(os.path.normpath(base / name))
    return full if full == base or base in full.parents else None


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
    """A label csv read as text: a file column (path / filename / image), label, optional subject, dataset.

    With ``htnet_ok`` an HTNet csv (columns dataset, sub, filename_o, label) is accepted too and
    ``htnet`` is set; its rows are then read by :meth:`MEGC2019Features._from_htnet`.
    """

    def __init__(self, path: Path, *, htnet_ok: bool = False) -> None:
        if not path.is_file():
            raise DataError(path, "label csv not found")
        try:
            frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        except Exception as exc:  # pandas raises many types for a foreign or corrupt file
            raise DataError(path, f"cannot read as csv ({type(exc).__name__}: {exc})") from None
        frame.columns = [norm_header(c) for c in frame.columns]
        self.path = path
        self.frame = frame
        self.htnet = htnet_ok and all(c in frame.columns for c in HTNET_COLUMNS)
        if self.htnet:
            self.file_column = "filename_o"
            return
        file_column = next((c for c in _FILE_COLUMNS if c in frame.columns), None)
        if file_column is None:
            raise DataError(path, f"missing column 'path' or 'filename' (found: {', '.join(frame.columns)})")
        if "label" not in frame.columns:
            raise DataError(path, f"missing column 'label' (found: {', '.join(frame.columns)})")
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
    folders=("megc2019-features", "STSTNet", "features"),
    description="the shared 28x28 [u, v, strain] PNGs of the MEGC 2019 composite (3 classes): STSTNet "
    "LOSO folders, HTNet's flat folder + csv, or a label csv",
)
class MEGC2019Features(_FeatureBase):
    """The MEGC 2019 feature images, in whichever shared layout ROOT holds (see the module docstring).

    Args:
        root: the STSTNet folder of subject folders; or, for HTNet's copy, the repository folder
            holding ``datasets/``, ``datasets/`` itself, or ``STSNet_whole_norm_u_v_os/`` itself; or,
            with ``annotation``, the folder the csv's file names are relative to.
        annotation: a label csv with columns ``filename`` (or ``image`` / ``path``) and ``label``
            (class ids 0/1/2 or the names negative/positive/surprise), optional ``subject`` and
            ``dataset``. When given, the folder layout is not scanned. An HTNet csv (columns
            ``dataset, sub, filename_o, label``) given here is read as HTNet's.
        allow_outside_root: read label-csv paths that leave ROOT (absolute elsewhere, or ``..``);
            by default such rows are skipped, and the file is never opened.

    The layout is detected in this order: an explicit ``annotation``; ROOT holding ``<subject>/u_test``;
    HTNet's flat folder (ROOT holding PNGs, or ``ROOT[/datasets]/STSNet_whole_norm_u_v_os``) with
    ``combined_3_class2_for_optical_flow.csv`` found beside it, one or two folders above it, or in a
    ``label/`` folder there; HTNet's ``ROOT[/datasets]/three_norm_u_v_os`` LOSO folders. Anything else
    is refused with an error naming the layouts read.

    HTNet's csv, as HTNet's own code reads it (``main_HTNet.py``: the image of row *i* is
    ``str(sub) + '_' + str(filename_o) + ' .png'``), and as checked on the released file:

    * ``dataset``: ``casme2``, ``smic`` or ``samm`` (compared case-insensitively);
    * ``sub``: the subject (``sub01``, ``s01``, ``006``; copies re-saved by a spreadsheet hold SAMM
      subjects unpadded, ``6``, ``28``); ``filename_o``: the clip (``EP02_01f``, ``s01_ne_01``, ``006_1_2``);
    * ``label``: 0 negative, 1 positive, 2 surprise (HTNet's ``label_dict``);
    * ``apex`` and ``sub_filename``: empty in the released file, not used;
    * ``imagename`` (``sub01_EP02_01f.jpg``, ``s01_s1_ne_01.jpg``): HTNet's apex frame in
      ``datasets/combined_datasets_whole`` (used there for landmarks), not the feature file; not used.

    A row is matched to ``<sub>_<filename_o> .png`` with the numbers compared by value, so ``28`` finds
    ``028_028_4_1 .png`` and the space before ``.png`` is optional. Rows without an image, images
    without a row (e.g. the ``_1``/``_2``/``_3`` frame copies some forks add), duplicate rows and
    unknown classes are listed in ``skipped``.

    Records have ``dataset = "megc2019-features"`` (so label maps apply to the 0/1/2 ids), ``label``
    the class id as text, ``subject`` namespaced by the source dataset (``casme2/sub01``; inferred
    from the subject name when the csv has no dataset column) and ``extra`` ``source_dataset``.
    Unknown classes and unreadable images are listed in ``skipped``. ``layout`` names the layout read.
    """

    name = "megc2019-features"
    label_names = dict(MEGC2019_CLASSES)
    labels = tuple(MEGC2019_CLASSES)

    def __init__(self, root: str | Path, *, annotation: str | Path | None = None, allow_outside_root: bool = False) -> None:
        super().__init__()
        self.root = require_dir(root)
        self.allow_outside_root = allow_outside_root
        self.layout = ""
        if annotation is not None:
            self.annotation = Path(annotation).expanduser()
            table = _LabelCsv(self.annotation, htnet_ok=True)
            if table.htnet:
                self._from_htnet(_htnet_folder(self.root) or self.root, table)
            else:
                self.layout = "label csv"
                self._from_csv(table)
            return
        if _loso_folders(self.root):
            self.layout = "STSTNet LOSO folders"
            self._from_folders(self.root)
            return
        flat = _htnet_folder(self.root)
        loso = next((p for p in (self.root / HTNET_LOSO_FOLDER, self.root / "datasets" / HTNET_LOSO_FOLDER) if _loso_folders(p)), None)
        if flat is not None:
            csv = _htnet_csv(flat)
            if csv is not None:
                self.annotation = csv
                if loso is not None:
                    self.notes.append(f"{loso}: the same images in LOSO folders, not read (read {flat} with {csv.name})")
                self._from_htnet(flat, _LabelCsv(csv, htnet_ok=True))
                return
            if loso is None:
                raise DataError(flat, f"HTNet feature folder without {HTNET_CSV} (looked beside it, above it and in label/); pass annotation=")
        if loso is not None:
            self.layout = "STSTNet LOSO folders"
            self._from_folders(loso)
            return
        raise DataError(self.root, f"no <subject>/u_test folders and no MEGC 2019 feature layout found; read are: {LAYOUTS_READ}")

    def _record(self, source: str, item: str, path: Path, label: str, subject: str, dataset: str) -> None:
        cls = label if label in MEGC2019_CLASSES else _CLASS_IDS.get(label.lower())
        if cls is None:
            self.skip(source, item, f"unknown class {label!r} (expected 0 negative, 1 positive, 2 surprise)")
            return
        problem = _readable(path)
        if problem is not None:
            self.skip(source, item, problem)
            return
        subject = canonical_subject(dataset, subject)
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

    def _from_folders(self, root: Path) -> None:
        folds = sorted(p for p in root.iterdir() if p.is_dir())
        tests = [p for p in folds if (p / "u_test").is_dir()]
        missing = [p.name for p in folds if p not in tests]
        if missing:
            self.notes.append(f"folders without u_test, not read: {', '.join(missing)}")
        for fold in tests:
            subject = fold.name
            dataset = dataset_of_subject(subject)
            for class_dir in sorted(p for p in (fold / "u_test").iterdir() if p.is_dir()):
                for path in sorted(p for p in class_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
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
            if p.suffix.lower() in IMAGE_SUFFIXES
        } - seen
        if train_only:
            self.notes.append(
                f"{len(train_only)} images lie only in u_train folders (no subject's u_test holds them), not read: "
                + ", ".join(f"{c}/{n}" for c, n in sorted(train_only)[:5])
                + (" ..." if len(train_only) > 5 else "")
            )

    def _from_htnet(self, flat: Path, table: "_LabelCsv") -> None:
        self.layout = "HTNet flat folder"
        on_disk: dict[str, list[Path]] = {}
        others = []
        for path in sorted(flat.iterdir()):
            if path.is_file() and path.suffix.lower() == ".png":
                on_disk.setdefault(id_key(path.stem), []).append(path)
            elif path.is_file() or path.is_dir():
                others.append(path.name)
        if others:
            self.notes.append(f"{flat}: {len(others)} entries that are not .png, not read: {', '.join(others[:5])}"
                              + (" ..." if len(others) > 5 else ""))
        claimed: dict[Path, str] = {}
        f = table.frame
        for i, (dataset, sub, clip, label) in enumerate(zip(*(f[c].str.strip().tolist() for c in HTNET_COLUMNS))):
            self.rows += 1
            source = f"{table.path}, row {i + 2}"
            expected = f"{sub}_{clip} .png"
            hits = on_disk.get(id_key(f"{sub}_{clip}"), [])
            if not hits:
                self.skip(source, expected, f"no image {expected!r} in {flat}")
                continue
            if len(hits) > 1:
                self.skip(source, expected, f"several images match: {', '.join(repr(p.name) for p in hits)}")
                continue
            path = hits[0]
            if path in claimed:
                self.skip(source, path.name, f"duplicate row for {path.name!r} (first at {claimed[path]})")
                continue
            claimed[path] = source
            dataset = dataset.lower() or dataset_of_subject(sub)
            self._record(source, path.name, path, label, sub, dataset)
        for paths in on_disk.values():
            for path in paths:
                if path not in claimed:
                    why = f"no row in {table.path}" if len(paths) == 1 else "several images share this clip id"
                    self.skip(str(path), path.name, why)

    def _from_csv(self, table: "_LabelCsv") -> None:
        for source, name, label, subject, dataset in table.rows():
            self.rows += 1
            if inside_root(self.root, name) is None and not self.allow_outside_root:
                self.skip(source, name, _outside_root(self.root))
                continue
            dataset = dataset.lower() or (dataset_of_subject(subject) if subject else "unknown")
            self._record(source, name, self.root / name, label, subject, dataset)
        if "subject" not in table.frame.columns:
            self.notes.append(f"{table.path} has no subject column: records carry no subject (LOSO impossible)")


def _outside_root(root: Path) -> str:
    return f"path leaves the dataset root {root}, not read (allow_outside_root=True / --allow-outside-root reads it)"


def _loso_folders(root: Path) -> bool:
    return root.is_dir() and any((p / "u_test").is_dir() for p in root.iterdir() if p.is_dir())


def _htnet_folder(root: Path) -> Path | None:
    """HTNet's flat feature folder: ROOT[/datasets]/STSNet_whole_norm_u_v_os, or ROOT when it holds PNGs."""
    for candidate in (root / HTNET_FOLDER, root / "datasets" / HTNET_FOLDER):
        if candidate.is_dir():
            return candidate
    if any(p.suffix.lower() == ".png" and p.is_file() for p in root.iterdir()):
        return root
    return None


def _htnet_csv(flat: Path) -> Path | None:
    """``combined_3_class2_for_optical_flow.csv`` beside ``flat``, one or two folders up, or in a ``label/``
    folder at any of those (the forks that moved it there)."""
    for folder in (flat, flat.parent, flat.parent.parent):
        for candidate in (folder / HTNET_CSV, folder / "label" / HTNET_CSV):
            if candidate.is_file():
                return candidate
    return None


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
    description="any folder of images with a label csv (path or filename, label, optional subject, dataset)",
)
class ImageFolder(_FeatureBase):
    """A folder of images and a label csv.

    Args:
        root: folder the csv's paths are relative to.
        annotation: the csv (default ``root/labels.csv``, or the only ``*.csv`` in ``root``); columns
            ``path`` or ``filename``, ``label``, optional ``subject`` and ``dataset``.
        allow_outside_root: read csv paths that leave ``root`` (absolute elsewhere, or ``..``); by
            default such rows are skipped and the file is never opened.

    ``dataset`` of each record is the csv's dataset column (default ``image-folder``), ``subject`` is
    namespaced by it (``mine/p1``). Rows whose file is missing or not an image, or whose label is
    empty, are listed in ``skipped``.
    """

    name = "image-folder"

    def __init__(self, root: str | Path, *, annotation: str | Path | None = None, allow_outside_root: bool = False) -> None:
        super().__init__()
        self.root = require_dir(root)
        self.annotation = _find_csv(self.root, annotation)
        table = _LabelCsv(self.annotation)
        for source, name, label, subject, dataset in table.rows():
            self.rows += 1
            if not label:
                self.skip(source, name, "empty label")
                continue
            if inside_root(self.root, name) is None and not allow_outside_root:
                self.skip(source, name, _outside_root(self.root))
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
