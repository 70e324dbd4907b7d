"""Run reports: numbers equal results.json, every section and skipped item present, the reproduce
command re-parses to the run's recipe, and the HTML renders in a real browser with every image."""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from mertk.engine.recipe import load_recipe, resolve_root
from mertk.engine.run import run_recipe
from mertk.errors import DataError
from mertk.report import add_report_parser, cmd_report, fmt, write_report

SECTIONS = ("Headline metrics", "Per dataset", "Per class", "Confusion matrix", "Training curves",
            "Per-class mean inputs", "Feature similarity", "Sample saliency maps", "Timings", "Data", "Skipped items",
            "Resolved configuration", "Reproduce this run")


@pytest.fixture(scope="module")
def run(synth_root, tmp_path_factory):
    """One trained laenet-megc2019 run and its report."""
    import torch

    torch.set_num_threads(1)
    tmp = tmp_path_factory.mktemp("report")
    run_dir = run_recipe("laenet-megc2019", data=synth_root, out=tmp / "runs",
                         overrides=("train.epochs=3", "pretrain.epochs=2"), progress=False, cache_dir=tmp / "cache")
    summary = write_report(run_dir, samples=3)
    results = json.loads((run_dir / "results.json").read_text())
    return run_dir, summary, results


def _section(md: str, title: str) -> str:
    body = md.split(f"\n## {title}\n", 1)[1]
    return body.split("\n## ", 1)[0]


def md_table(md: str, title: str, index: int = 0) -> list[list[str]]:
    """Rows (header first) of the index-th Markdown table of a section."""
    tables, current = [], []
    for line in _section(md, title).splitlines():
        if line.startswith("| "):
            current.append([c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]])
        elif current:
            tables.append(current)
            current = []
    if current:
        tables.append(current)
    rows = tables[index]
    return [rows[0]] + rows[2:]  # drop the alignment row


def test_markdown_numbers_equal_results(run):
    run_dir, _summary, results = run
    md = (run_dir / "report.md").read_text()
    m = results["metrics"]
    header, row = md_table(md, "Headline metrics")
    assert header == ["UF1", "UAR", "accuracy", "macro F1", "n clips", "folds"]
    assert row == [fmt(m["uf1"]), fmt(m["uar"]), fmt(m["accuracy"]), fmt(m["macro_f1"]), str(m["n"]),
                   str(len(results["folds"]))]
    rows = md_table(md, "Per dataset")[1:]
    per = results["report"]["per_dataset"]
    assert [r[0] for r in rows] == list(per) + ["overall"]
    for r in rows[:-1]:
        v = per[r[0]]
        assert r[1:5] == [str(v["n"]), fmt(v["uf1"]), fmt(v["uar"]), fmt(v["accuracy"])]
    assert rows[-1][1:5] == [str(m["n"]), fmt(m["uf1"]), fmt(m["uar"]), fmt(m["accuracy"])]
    for r in md_table(md, "Per class")[1:]:
        v = results["report"]["per_class"][r[0]]
        assert r[1:] == [str(v["support"]), fmt(v["precision"]), fmt(v["recall"]), fmt(v["f1"]),
                         str(v["tp"]), str(v["fp"]), str(v["fn"])]
    confusion = [[int(c) for c in r[1:]] for r in md_table(md, "Confusion matrix")[1:]]
    assert confusion == results["report"]["confusion"]
    # cosine similarity: a class x class matrix of values in [-1, 1]
    sim = md_table(md, "Feature similarity")
    assert [r[0] for r in sim[1:]] == results["classes"]
    values = np.array([[float(c) for c in r[1:-1]] for r in sim[1:]])
    assert values.shape == (3, 3) and np.all(np.abs(values) <= 1) and np.allclose(values, values.T)


def test_every_section_and_image_present(run):
    run_dir, summary, _results = run
    html = (run_dir / "report.html").read_text()
    md = (run_dir / "report.md").read_text()
    assert summary["sections"] == list(SECTIONS)
    for title in SECTIONS:
        assert f"<h2>{title}</h2>" in html and f"\n## {title}\n" in md
    assert summary["unavailable"] == {"features": None, "model": None}
    assert "Not available" not in md
    data = _section(md, "Data")
    assert "built from the sheets, not the official list" in data
    for component, row in _results["composite"]["components"].items():
        assert f"| {component} | {row['clips']} | {row['subjects']} |" in data
    # self-contained: every image a PNG data URI, no script, no external resource
    srcs = re.findall(r'<img src="([^"]+)"', html)
    assert len(srcs) == summary["images"] == 4 + 3  # confusion, curves, mean maps, cosine + 3 saliency
    assert all(s.startswith("data:image/png;base64,") for s in srcs)
    assert "<script" not in html and not re.search(r'(src|href)="(https?:|//)', html)
    linked = re.findall(r"\]\((report_files/[^)]+\.png)\)", md)
    assert len(linked) == len(srcs)
    for rel in linked:
        assert (run_dir / rel).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "training features" in _section(md, "Feature similarity")
    saliency_rows = md_table(md, "Sample saliency maps")[1:]
    assert len(saliency_rows) == 3
    assert {r[1] for r in saliency_rows} == {"negative", "positive", "surprise"}  # one clip per class


def test_reproduce_command_reparses_to_the_resolved_recipe(run):
    run_dir, _summary, results = run
    import yaml

    md = (run_dir / "report.md").read_text()
    command = re.search(r"```\n(mertk train .+)\n```", _section(md, "Reproduce this run")).group(1)
    argv = shlex.split(command)
    assert argv[:3] == ["mertk", "train", "laenet-megc2019"]
    sets = [argv[i + 1] for i, a in enumerate(argv) if a == "--set"]
    assert sorted(sets) == ["pretrain.epochs=2", "train.epochs=3"]
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert load_recipe(argv[2], sets).to_dict() == config["recipe"]
    data = Path(argv[argv.index("--data") + 1])
    assert resolve_root("megc2019", None, data) == Path(config["data_root"])
    assert Path(argv[argv.index("--out") + 1]) == run_dir.parent


def test_reproduce_sets_a_train_setting_put_back_to_its_default():
    """config.yaml lists only non-default train settings; one the shipped recipe changes must still be set."""
    from mertk.report.analysis import recipe_overrides

    recipe = load_recipe("strcn-a-casme2", ["train.loss=ce", "seed=3"])
    name, sets = recipe_overrides(recipe.to_dict())
    assert name == "strcn-a-casme2" and sorted(sets) == ["seed=3", "train.loss=ce"]
    assert load_recipe(name, sets) == recipe


def test_every_skipped_item_listed_and_missing_model_said_in_place(run, tmp_path):
    run_dir, _summary, results = run
    copy = tmp_path / run_dir.name
    shutil.copytree(run_dir, copy, ignore=shutil.ignore_patterns("model.pt", "report*"))
    results = dict(results)
    results["skipped"] = {
        "loader": [{"source": "CASME2-coding.xlsx, row 7", "item": "sub09/EP01_01", "reason": "frames folder missing"}],
        "prepare": [{"source": "sub02/img1.jpg", "item": "casme2/sub02/EP03_02", "reason": "no face found"},
                    {"source": "006_1.jpg", "item": "samm/006/006_1_2", "reason": "a clip of 1 frame(s)"}],
        "excluded_by_label_map": {"casme2:others": 3, "samm:Other": 2},
    }
    results["classes_missing_from_training"] = {"smic/s3": ["surprise"]}
    results["empty_folds"] = [{"subject": "casme2/sub09", "reason": "every clip of this subject was skipped"}]
    (copy / "results.json").write_text(json.dumps(results))
    summary = write_report(copy, samples=1)
    md = (copy / "report.md").read_text()
    rows = md_table(md, "Skipped items", index=1)[1:]
    assert [r[:2] for r in rows] == [
        ["loader", "sub09/EP01_01"], ["prepare", "casme2/sub02/EP03_02"], ["prepare", "samm/006/006_1_2"],
        ["excluded by the label map", "casme2:others"], ["excluded by the label map", "samm:Other"],
        ["class missing from training", "smic/s3"], ["empty fold", "casme2/sub09"]]
    assert "frames folder missing" in rows[0][2] and "3 clip(s)" in rows[3][2]
    counts = dict((r[0], int(r[1])) for r in md_table(md, "Skipped items", index=0)[1:])
    assert counts == {"loader": 1, "prepare": 2, "excluded by the label map": 2, "class missing from training": 1,
                      "empty fold": 1}
    assert summary["unavailable"]["model"].startswith("the run has no model.pt")
    for title in ("Feature similarity", "Sample saliency maps"):
        assert "Not available: the run has no model.pt" in _section(md, title)
    assert "Not available" not in _section(md, "Per-class mean inputs")  # features need no model


def test_not_a_run_dir_is_one_line_error(tmp_path, capsys):
    with pytest.raises(DataError, match=rf"^{re.escape(str(tmp_path))}: not a run directory \(no results.json"):
        write_report(tmp_path)
    parser = argparse.ArgumentParser()
    add_report_parser(parser.add_subparsers())
    with pytest.raises(DataError, match="not a run directory"):
        cmd_report(parser.parse_args(["report", str(tmp_path / "nowhere")]))


def test_cli_prints_paths(run, capsys):
    run_dir, _summary, _results = run
    parser = argparse.ArgumentParser()
    add_report_parser(parser.add_subparsers())
    assert cmd_report(parser.parse_args(["report", str(run_dir), "--json", "--samples", "1"])) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["html"] == str(run_dir / "report.html") and out["markdown"] == str(run_dir / "report.md")
    write_report(run_dir, samples=3)  # leave the module's report as the fixture made it


# ---------------------------------------------------------------------------------------------
# a real browser
# ---------------------------------------------------------------------------------------------

CHECK_SCRIPT = """<script>
window.addEventListener('load', function () {
  var imgs = document.images, broken = 0;
  for (var i = 0; i < imgs.length; i++) {
    if (!imgs[i].complete || imgs[i].naturalWidth === 0) broken++;
  }
  var d = document.createElement('div');
  d.id = 'imgcheck';
  d.textContent = 'images=' + imgs.length + ' broken=' + broken;
  document.body.appendChild(d);
});
</script>"""


def _chromium() -> str:
    path = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed (CI is set; `make browser` installs it)")
        pytest.skip("chromium is not installed")
    return path


def _browser(args: list[str], profile: Path) -> subprocess.CompletedProcess:
    base = [_chromium(), "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
            "--hide-scrollbars", f"--user-data-dir={profile}"]
    return subprocess.run(base + args, capture_output=True, text=True, timeout=120)


def _image_check(page: Path, profile: Path) -> tuple[int, int]:
    """Load a copy of the page with a script that counts images the browser failed to decode."""
    probe = page.with_name(page.stem + "_probe.html")
    probe.write_text(page.read_text().replace("</body>", CHECK_SCRIPT + "</body>"))
    done = _browser(["--virtual-time-budget=10000", "--dump-dom", probe.as_uri()], profile)
    found = re.search(r'<div id="imgcheck">images=(\d+) broken=(\d+)</div>', done.stdout)
    assert found, f"no image check in the DOM; stderr: {done.stderr[-800:]}"
    return int(found.group(1)), int(found.group(2))


def test_report_renders_in_chromium_with_every_image(run, tmp_path):
    run_dir, summary, _results = run
    page = tmp_path / "report.html"
    shutil.copy(run_dir / "report.html", page)
    assert _image_check(page, tmp_path / "profile") == (summary["images"], 0)

    # the check itself catches a data URI that does not decode
    good = re.search(r'data:image/png;base64,[^"]+', page.read_text()).group(0)
    bad = tmp_path / "broken.html"
    bad.write_text(f'<!DOCTYPE html><html><body><img src="{good}"/><img src="data:image/png;base64,iVBORw0KGgoAAAA"/>'
                   "</body></html>")
    assert _image_check(bad, tmp_path / "profile") == (2, 1)

    shot = tmp_path / "report.png"
    _browser([f"--screenshot={shot}", "--window-size=1280,4000", page.as_uri()], tmp_path / "profile")
    import matplotlib.image

    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pixels = matplotlib.image.imread(shot)
    assert pixels.shape[:2] == (4000, 1280)
    grey = pixels[..., :3].mean(axis=2)
    assert grey.std() > 0.05 and (grey < 0.5).mean() > 0.005  # text and figures, not a blank page


# ---------------------------------------------------------------------------------------------
# the report reads the run (clips.csv + the feature cache), never the dataset; nested selection;
# the honest figure beside the inflated one
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def selected_run(synth_root, tmp_path_factory):
    """A ststnet run with --select-grid and train.test_curve, trained on a copy of the data that is then deleted."""
    import torch

    torch.set_num_threads(1)
    tmp = tmp_path_factory.mktemp("selected")
    data = tmp / "data"
    shutil.copytree(synth_root, data)
    run_dir = run_recipe("ststnet-megc2019", data=data, out=tmp / "runs", progress=False, cache_dir=tmp / "cache",
                         overrides=("train.epochs=3", "train.val_fraction=0.3", "train.test_curve=true"),
                         select_grid=["train.lr=1e-2,1e-4"])
    shutil.rmtree(data)
    return run_dir, tmp / "cache"


def _forbid_dataset(monkeypatch):
    import mertk.data
    import mertk.engine.run
    import mertk.preprocess.pipeline

    def refuse(*_a, **_k):
        raise AssertionError("the report opened the dataset or re-ran prepare")

    for module, name in ((mertk.engine.run, "load_clips"), (mertk.preprocess.pipeline, "prepare"),
                         (mertk.preprocess.pipeline, "prepare_frames"), (mertk.data, "open_dataset")):
        monkeypatch.setattr(module, name, refuse)


def test_report_reads_the_run_after_its_data_folder_is_deleted(selected_run, monkeypatch):
    run_dir, _cache = selected_run
    _forbid_dataset(monkeypatch)
    summary = write_report(run_dir, samples=2)
    assert summary["unavailable"] == {"features": None, "model": None}
    md = (run_dir / "report.md").read_text()
    assert "Not available" not in md
    clips = (run_dir / "clips.csv").read_text().splitlines()
    assert f"over the run's {len(clips) - 1} clips" in _section(md, "Per-class mean inputs")
    assert len(md_table(md, "Sample saliency maps")[1:]) == 2
    assert "Nested selection" in summary["sections"]


def test_missing_cache_entry_or_clips_csv_omits_the_array_panels(selected_run, tmp_path):
    run_dir, cache = selected_run
    copy = tmp_path / run_dir.name
    shutil.copytree(run_dir, copy, ignore=shutil.ignore_patterns("report*"))
    import csv

    with open(copy / "clips.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    entry = cache / rows[1]["cache_key"][:2] / f"{rows[1]['cache_key']}.npz"
    moved = tmp_path / "entry.npz"
    shutil.move(entry, moved)
    try:
        summary = write_report(copy, samples=1)
    finally:
        shutil.move(moved, entry)
    line = f"1 of {len(rows)} clips have no entry in the feature cache at {cache}"
    assert line in summary["unavailable"]["features"]
    md = (copy / "report.md").read_text()
    for title in ("Per-class mean inputs", "Feature similarity", "Sample saliency maps"):
        assert line in _section(md, title)
    assert md_table(md, "Headline metrics")[1][0] == fmt(json.loads((copy / "results.json").read_text())["metrics"]["uf1"])

    (copy / "clips.csv").unlink()  # a run directory written before clips.csv existed
    summary = write_report(copy, samples=1)
    assert "the run predates clips.csv" in summary["unavailable"]["features"]
    assert "the run predates clips.csv" in _section((copy / "report.md").read_text(), "Per-class mean inputs")


def test_report_shows_the_values_chosen_per_fold(selected_run):
    run_dir, _cache = selected_run
    results = json.loads((run_dir / "results.json").read_text())
    chosen = results["selected_hyperparameters"]
    html = (run_dir / "report.html").read_text()
    assert "<h2>Nested selection</h2>" in html
    section = html.split('<section id="selection">', 1)[1].split("</section>", 1)[0]
    for fold, choice in chosen.items():
        assert f"<tr><td>{fold}</td><td>{choice['chosen']['lr']}</td>" in section
    counts = {}
    for choice in chosen.values():
        counts[choice["chosen"]["lr"]] = counts.get(choice["chosen"]["lr"], 0) + 1
    for value, n in counts.items():
        assert f'<tr><td>train.lr = {value}</td><td class="num">{n}</td></tr>' in section
    assert sum(counts.values()) == len(results["folds"]) == 12


def test_report_states_the_honest_figure_beside_the_inflated_one(selected_run):
    run_dir, _cache = selected_run
    results = json.loads((run_dir / "results.json").read_text())
    inflated, honest = results["best_test_epoch_inflated"], results["metrics"]
    assert inflated is not None
    html = (run_dir / "report.html").read_text()
    headline = html.split('<section id="metrics">', 1)[1].split("</section>", 1)[0]
    cells = lambda m: "".join(f'<td class="num">{fmt(m[k])}</td>' for k in ("uf1", "uar", "accuracy"))
    assert ("<tr><td>this run (hyper-parameters chosen per fold on inner validation subjects (--select-grid), last "
            f"epoch; honest)</td>{cells(honest)}</tr>") in headline
    assert f"<tr><td>{inflated['label']}</td>{cells(inflated)}</tr>" in headline
    diff = "".join(f'<td class="num">{inflated[k] - honest[k]:+.4f}</td>' for k in ("uf1", "uar", "accuracy"))
    assert f"<tr><td>difference (inflated - honest)</td>{diff}</tr>" in headline
    assert f"differs from the honest figure by {inflated['uf1'] - honest['uf1']:+.4f} UF1" in headline
