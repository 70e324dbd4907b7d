"""Synthetic long videos (SAMM long-video layout) and the ``samm-long`` loader."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import av
import cv2
import openpyxl
import pytest

from mertk.data.samm_long import SAMMLong
from mertk.synth.long import FRAMES, LONG_COLUMNS, LONG_ROOT, LONG_XLSX, write_long_videos
from mertk.errors import DataError, MertkError
from mertk.registry import DATASETS


@pytest.fixture(scope="module")
def long_root(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("long") / "a"
    summary = write_long_videos(out, subjects=1, seed=5)
    assert summary["videos"] == 1 and summary["events"] == summary["micro"] + summary["macro"]
    return out


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_gives_identical_files(long_root: Path, tmp_path: Path) -> None:
    write_long_videos(tmp_path, subjects=1, seed=5)
    assert _files(tmp_path / LONG_ROOT) == _files(long_root / LONG_ROOT)


def test_ground_truth_events(long_root: Path) -> None:
    truth = json.loads((long_root / LONG_ROOT / "ground_truth.json").read_text())
    assert [v["video"] for v in truth["videos"]] == ["006_1"]
    for video in truth["videos"]:
        kinds = [e["type"] for e in video["events"]]
        assert 2 <= kinds.count("micro") <= 4 and 1 <= kinds.count("macro") <= 2
        spans = [(e["onset"], e["offset"]) for e in video["events"]]
        assert all(1 <= a <= b <= FRAMES for a, b in spans)
        assert all(b1 < a2 for (_, b1), (a2, _) in zip(spans, spans[1:]))  # ordered, no overlap
        for e in video["events"]:
            seconds = (e["offset"] - e["onset"] + 1) / video["fps"]
            assert (0.1 <= seconds <= 0.5) if e["type"] == "micro" else (0.6 <= seconds <= 1.5)
            assert e["onset"] <= e["apex"] <= e["offset"] and e["megc2019"] in (None, "negative", "positive", "surprise")
        for a, b in video["blinks"]:  # blinks stay clear of every event
            assert all(b < on - 5 or a > off + 5 for on, off in spans)
        assert len(list((long_root / LONG_ROOT / video["frame_dir"]).glob("*.jpg"))) == FRAMES


def test_workbook_matches_ground_truth_and_has_preamble(long_root: Path) -> None:
    root = long_root / LONG_ROOT
    sheet = openpyxl.load_workbook(root / LONG_XLSX).active
    rows = [tuple(c.value for c in r) for r in sheet.iter_rows()]
    assert rows[0][0].startswith("SAMM Long Videos")
    header = next(i for i, r in enumerate(rows) if r[0] == "Subject")
    assert header > 0 and rows[header][: len(LONG_COLUMNS)] == LONG_COLUMNS
    truth = json.loads((root / "ground_truth.json").read_text())
    expected = [(e["filename"], e["onset"], e["apex"], e["offset"], "Micro - 1/2" if e["type"] == "micro" else "Macro",
                 "+".join(e["aus"])) for v in truth["videos"] for e in v["events"]]
    got = [(r[1], r[3], r[4], r[5], r[7], r[8]) for r in rows[header + 1:]]
    assert got == expected


def test_loader_reads_events_and_videos(long_root: Path) -> None:
    assert DATASETS.get("samm-long") is SAMMLong
    ds = SAMMLong(long_root)
    truth = json.loads((long_root / LONG_ROOT / "ground_truth.json").read_text())
    events = [e for v in truth["videos"] for e in v["events"]]
    assert ds.fps == 100.0 and ds.skipped == [] and len(ds) == len(events) == ds.rows
    for record, e in zip(ds.records, events):
        assert (record.clip, record.onset, record.apex, record.offset, record.label) == (
            e["filename"], e["onset"], e["apex"], e["offset"], e["type"])
        assert record.frame_numbers == tuple(range(e["onset"], e["offset"] + 1))
        assert record.frames[0].name == f"{record.clip.rsplit('_', 1)[0]}_{e['onset']:05d}.jpg"
        assert record.subject == f"samm-long/{e['filename'][:3]}"
    videos = ds.videos()
    assert [v for v, _, _ in videos] == ["006_1"]
    assert all(len(paths) == FRAMES for _, paths, _ in videos)
    assert [r.clip for r in videos[0][2]] == [e["filename"] for e in truth["videos"][0]["events"]]
    assert ds.video_frame_numbers("006_1") == tuple(range(1, FRAMES + 1))


def _copy_annotation(long_root: Path, tmp_path: Path) -> Path:
    root = tmp_path / "copy"
    root.mkdir()
    shutil.copy(long_root / LONG_ROOT / LONG_XLSX, root / LONG_XLSX)
    return root


def test_loader_bad_row_names_file_and_row(long_root: Path, tmp_path: Path) -> None:
    root = _copy_annotation(long_root, tmp_path)
    book = openpyxl.load_workbook(root / LONG_XLSX)
    sheet = book.active
    header = next(r[0].row for r in sheet.iter_rows() if r[0].value == "Subject")
    sheet.cell(row=header + 2, column=4, value="12a")  # second event's Onset
    book.save(root / LONG_XLSX)
    with pytest.raises(DataError, match=rf"{LONG_XLSX}, row {header + 2}: Onset is '12a', not a frame number"):
        SAMMLong(root)
    sheet.cell(row=header + 2, column=4, value=5)
    sheet.cell(row=header + 2, column=8, value="Nano")
    book.save(root / LONG_XLSX)
    with pytest.raises(DataError, match=rf"row {header + 2}: .*Type is 'Nano'"):
        SAMMLong(root)


def test_loader_missing_video_folder_and_root(long_root: Path, tmp_path: Path) -> None:
    ds = SAMMLong(_copy_annotation(long_root, tmp_path), fps=200)
    assert ds.fps == 200.0 and ds.videos() == [] and len(ds.skipped) == len(ds) > 0
    assert all("frame folder not found" in s.reason for s in ds.skipped) and not ds.usable()
    with pytest.raises(DataError, match="does not exist"):
        SAMMLong(tmp_path / "nowhere")
    with pytest.raises(DataError, match="annotation workbook not found"):
        SAMMLong(tmp_path)


def test_mp4_decodes_with_opencv_and_pyav(long_root: Path) -> None:
    path = long_root / LONG_ROOT / "006_1.mp4"
    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.read()[0]:
        n += 1
    assert n == FRAMES and cap.get(cv2.CAP_PROP_FPS) == pytest.approx(100.0)
    with av.open(str(path)) as container:
        frames = [f.to_ndarray(format="gray") for f in container.decode(video=0)]
    first = cv2.imread(str(long_root / LONG_ROOT / "006_1" / "006_1_00001.jpg"), cv2.IMREAD_GRAYSCALE)
    assert len(frames) == FRAMES and frames[0].shape == first.shape
    assert abs(frames[0].astype(float) - first).mean() < 6  # same picture, two lossy codecs


def test_writer_rejects_bad_arguments_and_foreign_folder(tmp_path: Path) -> None:
    with pytest.raises(MertkError, match="subjects must be at least 1"):
        write_long_videos(tmp_path, subjects=0, seed=1)
    (tmp_path / LONG_ROOT).mkdir()
    (tmp_path / LONG_ROOT / "mine.txt").write_text("keep")
    with pytest.raises(MertkError, match="not empty"):
        write_long_videos(tmp_path, subjects=1, seed=1)
