"""Run reports: ``report.html`` (one self-contained page) and ``report.md`` of a run directory.

:func:`write_report` reads what the run wrote (``config.yaml``, ``results.json``,
``predictions.csv``, ``clips.csv``, the plots, ``model.pt``), reads the run's arrays from the feature
cache by the keys in ``clips.csv`` (never the dataset) and adds the analyses of the papers: per-class
mean input maps (cost-effective-cnn-belaiche-2020, Fig. 6), the intra/inter-class cosine similarity of
penultimate features (ibid., Tables 5-7) and sample saliency maps, original vs improved, with the
adversarial check (shcnn-miao-2019, III.F and IV.G). A piece
that cannot be made is replaced in place by a sentence saying why; the report itself does not fail.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import DataError, MertkError
from .analysis import (
    RunData,
    class_mean_maps,
    cosine_similarity_matrix,
    load_run,
    penultimate_features,
    record_clip_name,
    reproduce_command,
    run_features,
)
from .html import Code, Details, Image, Section, Table, Text, iter_images, render_html, render_markdown

FILES_DIR = "report_files"
HEADLINE = (("UF1", "uf1"), ("UAR", "uar"), ("accuracy", "accuracy"), ("macro F1", "macro_f1"))

__all__ = ["write_report", "add_report_parser", "cmd_report"]


def fmt(value: Any, digits: int = 4) -> str:
    """A metric as text: 4 decimals, ``n/a`` for None / NaN."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return str(int(value))
    return f"{float(value):.{digits}f}"


# ---------------------------------------------------------------------------------------------
# sections from results.json
# ---------------------------------------------------------------------------------------------


def _headline(run: RunData) -> Section:
    r = run.results
    m = r["metrics"]
    rows = [[fmt(m.get(key)) for _, key in HEADLINE] + [fmt(m.get("n")), str(len(r.get("folds", [])))]]
    blocks: list[Any] = [Table([h for h, _ in HEADLINE] + ["n clips", "folds"], rows, numeric=range(6),
                               caption=f"{r.get('protocol', '')} over the pooled test predictions (MEGC: TP/FP/FN summed "
                                       "over folds)")]
    selection = r.get("selection")
    if selection:
        blocks.append(Text(f"Epoch selection: {selection} (the test folds choose nothing).", "note"))
    inflated = r.get("best_test_epoch_inflated")
    if inflated:
        blocks += _inflated_blocks(r, inflated)
    return Section("metrics", "Headline metrics", blocks)


INFLATED_KEYS = (("UF1", "uf1"), ("UAR", "uar"), ("accuracy", "accuracy"))


def honest_label(results: dict[str, Any]) -> str:
    """What chose the epoch (and hyper-parameters) of this run's own figure."""
    selection = results.get("selection") or "last"
    how = "last epoch" if selection == "last" else f"epoch chosen by {selection} on inner validation subjects"
    if results.get("selected_hyperparameters"):
        how = "hyper-parameters chosen per fold on inner validation subjects (--select-grid), " + how
    return f"this run ({how}; honest)"


def _inflated_blocks(r: dict[str, Any], inflated: dict[str, Any]) -> list[Any]:
    """The honest figure beside the inflated best-test-epoch one, with their difference."""
    honest = r["metrics"]
    diffs = []
    for _, key in INFLATED_KEYS:
        a, b = inflated.get(key), honest.get(key)
        diffs.append(f"{float(a) - float(b):+.4f}" if a is not None and b is not None else "n/a")
    rows = [[honest_label(r)] + [fmt(honest.get(k)) for _, k in INFLATED_KEYS],
            [inflated.get("label", "best test epoch per fold (inflated, for comparison with papers only)")]
            + [fmt(inflated.get(k)) for _, k in INFLATED_KEYS],
            ["difference (inflated - honest)"] + diffs]
    uf1 = diffs[0]
    return [Table(["figure"] + [h for h, _ in INFLATED_KEYS], rows, numeric=range(1, 4),
                  caption="train.test_curve is on: the figure papers print that pick each fold's best test epoch, "
                          "beside this run's own"),
            Text(f"The inflated row picks each fold's epoch by its own test accuracy, as many papers do; it is not a "
                 f"result of this run's protocol. It differs from the honest figure by {uf1} UF1.", "warn")]


def _selection(run: RunData) -> Section | None:
    """Nested selection (``--select-grid``): the values chosen in every outer fold, and how often each won."""
    chosen = run.results.get("selected_hyperparameters")
    if not chosen:
        return None
    folds = {name: (c or {}) for name, c in chosen.items()}
    keys = list(dict.fromkeys(k for c in folds.values() for k in (c.get("chosen") or {})))
    rows = [[name] + [str((c.get("chosen") or {}).get(k, "n/a")) for k in keys]
            + [", ".join(f"{v:.4f}" for v in c.get("inner_uf1") or []), ", ".join(c.get("val_subjects") or [])]
            for name, c in folds.items()]
    counts: dict[tuple[str, str], int] = {}
    for c in folds.values():
        for k in keys:
            value = (c.get("chosen") or {}).get(k, "n/a")
            counts[(k, str(value))] = counts.get((k, str(value)), 0) + 1
    return Section("selection", "Nested selection", [
        Text(f"--select-grid chose {', '.join('train.' + k for k in keys)} inside each of the {len(folds)} outer folds, "
             "by UF1 on inner validation subjects drawn from that fold's training subjects; the outer test subject "
             "chose nothing."),
        Table(["value", "folds"], [[f"train.{k} = {v}", str(n)] for (k, v), n in counts.items()], numeric=(1,),
              caption="how many folds chose each value"),
        Details(f"chosen values in all {len(folds)} folds", [
            Table(["fold"] + [f"train.{k}" for k in keys] + ["inner UF1 per combination", "inner validation subjects"],
                  rows)], open=len(folds) <= 30),
    ])


def _ensemble(run: RunData) -> Section | None:
    """A seed ensemble (``ensemble.seeds``): the ensemble's figures beside every member's and their mean ± std."""
    ens = run.results.get("ensemble")
    if not ens:
        return None
    keys = (("UF1", "uf1"), ("UAR", "uar"), ("accuracy", "accuracy"))
    m = run.results["metrics"]

    def spread(v: dict[str, Any]) -> str:
        return fmt(v.get("mean")) + ("" if v.get("std") is None else f" ± {fmt(v['std'])}")

    rows = [[f"ensemble of {len(ens['seeds'])} seeds"] + [fmt(m.get(k)) for _, k in keys]]
    rows += [[f"seed {member['seed']}"] + [fmt(member["metrics"].get(k)) for _, k in keys] for member in ens["members"]]
    rows.append(["members: mean ± std"] + [spread(ens["member_mean"][k]) for _, k in keys])
    per = ens.get("member_mean_per_dataset") or {}
    ens_per = run.results.get("report", {}).get("per_dataset") or {}
    blocks: list[Any] = [
        Text("Every fold was trained once per seed; the ensemble's test probabilities are the mean of its members' "
             "(ensemble.seeds). The headline figures are the ensemble's; the spread over seeds is below."),
        Table(["model"] + [h for h, _ in keys], rows, numeric=range(1, 4),
              caption="honest figures of the ensemble and of each seed (std: sample standard deviation over seeds)")]
    if per:
        blocks.append(Table(["dataset", "ensemble UF1", "members UF1", "ensemble UAR", "members UAR"],
                            [[name, fmt(ens_per.get(name, {}).get("uf1")), spread(v.get("uf1", {})),
                              fmt(ens_per.get(name, {}).get("uar")), spread(v.get("uar", {}))]
                             for name, v in per.items()], numeric=range(1, 5), caption="per dataset"))
    return Section("ensemble", "Seed ensemble", blocks)


def _per_dataset(run: RunData) -> Section:
    per = run.results.get("report", {}).get("per_dataset") or {}
    if not per:
        return Section("datasets", "Per dataset", [Text("No per-dataset breakdown (a single dataset).", "note")])
    rows = [[name, fmt(v.get("n")), fmt(v.get("uf1")), fmt(v.get("uar")), fmt(v.get("accuracy")),
             ", ".join(v.get("absent") or []) or "-"] for name, v in per.items()]
    m = run.results["metrics"]
    rows.append(["overall", fmt(m.get("n")), fmt(m.get("uf1")), fmt(m.get("uar")), fmt(m.get("accuracy")),
                 ", ".join(run.results.get("report", {}).get("absent") or []) or "-"])
    return Section("datasets", "Per dataset", [
        Table(["dataset", "n", "UF1", "UAR", "accuracy", "classes absent"], rows, numeric=(1, 2, 3, 4),
              caption="each dataset of the composite scored on its own clips; overall = the whole composite")])


def _per_class(run: RunData) -> Section:
    per = run.results.get("report", {}).get("per_class") or {}
    rows = [[c, fmt(v.get("support")), fmt(v.get("precision")), fmt(v.get("recall")), fmt(v.get("f1")),
             fmt(v.get("tp")), fmt(v.get("fp")), fmt(v.get("fn"))] for c, v in per.items()]
    return Section("classes", "Per class", [
        Table(["class", "support", "precision", "recall", "F1", "TP", "FP", "FN"], rows, numeric=range(1, 8))])


def _confusion(run: RunData) -> Section:
    report = run.results.get("report", {})
    classes = report.get("classes") or run.classes
    matrix = report.get("confusion") or []
    blocks: list[Any] = []
    path = run.run_dir / "confusion.png"
    if path.is_file():
        blocks.append(Image("confusion", path.read_bytes(), "confusion matrix", "rows: true class, columns: predicted",
                            width=min(520, 180 + 90 * len(classes))))
    elif matrix:
        from .plots import confusion_figure

        blocks.append(Image("confusion", confusion_figure(report, run.results.get("recipe", "")), "confusion matrix",
                            "redrawn from results.json (confusion.png is missing)", width=min(520, 180 + 90 * len(classes))))
    if matrix:
        blocks.append(Table(["true \\ predicted"] + list(classes),
                            [[c] + [str(int(v)) for v in row] for c, row in zip(classes, matrix)],
                            numeric=range(1, len(classes) + 1)))
    return Section("confusion", "Confusion matrix", blocks or [Text("No confusion matrix in results.json.", "warn")])


def _curves(run: RunData) -> Section:
    path = run.run_dir / "training_curves.png"
    if not path.is_file():
        return Section("curves", "Training curves", [Text("training_curves.png is missing from the run directory.", "warn")])
    return Section("curves", "Training curves", [
        Image("training_curves", path.read_bytes(), "training curves",
              "training loss and accuracy per epoch: one grey line per fold, their mean in blue", width=860)])


def _timings(run: RunData) -> Section:
    t = run.results.get("timings") or {}
    names = (("prepare", "prepare_s"), ("pretrain", "pretrain_s"), ("train (folds)", "train_s"),
             ("final model", "final_model_s"), ("total", "total_s"))
    rows = [[label, fmt(t[key], 2)] for label, key in names if key in t]
    rows += [[k.removesuffix("_s"), fmt(v, 2)] for k, v in t.items() if k not in {key for _, key in names}]
    blocks: list[Any] = [Table(["stage", "seconds"], rows, numeric=(1,))]
    seconds = [float(f.get("seconds", 0.0)) for f in run.results.get("folds", [])]
    if seconds:
        s = np.asarray(seconds)
        blocks.append(Table(["folds", "sum", "min", "median", "mean", "max"],
                            [[str(len(s)), fmt(s.sum(), 2), fmt(s.min(), 2), fmt(float(np.median(s)), 2),
                              fmt(s.mean(), 2), fmt(s.max(), 2)]], numeric=range(6),
                            caption="seconds per fold (folds trained together in one batch share their time)"))
    resumed = [f["fold"] for f in run.results.get("folds", []) if f.get("resumed")]
    if resumed:
        blocks.append(Text(f"{len(resumed)} fold(s) were resumed from an earlier, interrupted run: their seconds come "
                           "from that run.", "note"))
    versions = run.results.get("versions") or {}
    if versions:
        blocks.append(Text("Versions: " + ", ".join(f"{k} {v}" for k, v in versions.items())
                           + (f"; torch threads {run.results['torch_threads']}" if "torch_threads" in run.results else ""),
                           "note"))
    return Section("timings", "Timings", blocks)


def skipped_items(results: dict[str, Any]) -> list[tuple[str, str, str]]:
    """Every skipped or excluded item of a run as ``(kind, item, reason)`` rows (nothing dropped)."""
    rows: list[tuple[str, str, str]] = []
    skipped = results.get("skipped") or {}
    for s in skipped.get("loader") or []:
        rows.append(("loader", s.get("item", ""), f"{s.get('reason', '')} ({s.get('source', '')})"))
    for s in skipped.get("prepare") or []:
        rows.append(("prepare", s.get("item", ""), f"{s.get('reason', '')} ({s.get('source', '')})"))
    for label, count in (skipped.get("excluded_by_label_map") or {}).items():
        rows.append(("excluded by the label map", label, f"{count} clip(s) whose label has no class in the map"))
    for fold, classes in (results.get("classes_missing_from_training") or {}).items():
        rows.append(("class missing from training", fold, f"the fold's training clips lack: {', '.join(classes)}"))
    for e in results.get("empty_folds") or []:
        rows.append(("empty fold", e.get("subject", ""), e.get("reason", "")))
    pre = results.get("pretrain") or {}
    for s in pre.get("loader_skipped") or []:
        rows.append(("pretrain loader", s.get("item", ""), f"{s.get('reason', '')} ({s.get('source', '')})"))
    for s in pre.get("prepare_skipped") or []:
        rows.append(("pretrain prepare", s.get("item", ""), f"{s.get('reason', '')} ({s.get('source', '')})"))
    for label, count in (pre.get("excluded") or {}).items():
        rows.append(("pretrain excluded by the label map", label, f"{count} clip(s) whose label has no class in the map"))
    return rows


def _data(run: RunData) -> Section:
    """How the data was defined (a composite's official list or its sheets), the per-component table,
    and every annotation error that was repaired rather than losing the clip."""
    r = run.results
    blocks: list[Any] = []
    composite = r.get("composite")
    if composite:
        blocks.append(Text(f"Composite: {composite.get('definition', 'n/a')}."))
        rows = []
        for component, row in (composite.get("components") or {}).items():
            classes = ", ".join(f"{k} {v}" for k, v in (row.get("classes") or {}).items())
            official = row.get("official")
            rows.append([component, str(row.get("clips", "")), str(row.get("subjects", "")), classes,
                         "" if not official else f"{official['clips']} clips, {official['subjects']} subjects: "
                         + ", ".join(f"{k} {v}" for k, v in official["classes"].items())])
        blocks.append(Table(["dataset", "clips", "subjects", "classes", "official list"], rows, numeric=(1, 2)))
        check = composite.get("official_check")
        if check:
            blocks.append(Text(f"Against the sheets: {len(check['label_disagreements'])} label disagreements, "
                               f"{len(check['only_official'])} clips only in the official list, "
                               f"{len(check['only_sheets'])} only in the sheets (all in results.json)."))
    warnings = r.get("warnings") or []
    if warnings:
        table = Table(["clip", "problem", "fallback", "row"],
                      [[w.get("item", ""), w.get("problem", ""), w.get("fallback", ""), w.get("source", "")] for w in warnings])
        blocks.append(Text(f"{len(warnings)} annotation error(s) repaired, the clips kept:", "warn"))
        blocks.append(Details(f"all {len(warnings)} warnings", [table], open=len(warnings) <= 30))
    else:
        blocks.append(Text("No annotation error needed repairing.", "note"))
    return Section("data", "Data", blocks)


def _skipped(run: RunData) -> Section:
    rows = skipped_items(run.results)
    r = run.results
    counts: dict[str, int] = {}
    for kind, *_ in rows:
        counts[kind] = counts.get(kind, 0) + 1
    blocks: list[Any] = [Text(f"{r.get('clips_used', 'n/a')} clips used, {r.get('clips_tested', 'n/a')} tested, "
                              f"{r.get('samples', 'n/a')} samples. Every item the run left out is listed below.")]
    if not rows:
        blocks.append(Text("Nothing was skipped or excluded.", "note"))
        return Section("skipped", "Skipped items", blocks)
    blocks.append(Table(["kind", "rows"], [[k, str(v)] for k, v in counts.items()], numeric=(1,)))
    table = Table(["kind", "item", "reason"], [list(row) for row in rows])
    blocks.append(Details(f"all {len(rows)} rows", [table], open=len(rows) <= 30))
    return Section("skipped", "Skipped items", blocks)


def _config(run: RunData) -> Section:
    path = run.run_dir / "config.yaml"
    if not path.is_file():
        return Section("config", "Resolved configuration", [Text("config.yaml is missing.", "warn")])
    return Section("config", "Resolved configuration", [Details("config.yaml", [Code(path.read_text().rstrip())])])


def _reproduce(run: RunData, files: Path) -> Section:
    try:
        recipe_file = None
        from ..registry import RECIPES

        if run.config.recipe.name not in RECIPES:
            import yaml

            files.mkdir(parents=True, exist_ok=True)
            recipe_file = files / "recipe.yaml"
            recipe_file.write_text(yaml.safe_dump(run.config.recipe.to_dict(), sort_keys=False))
        cmd = reproduce_command(run, recipe_file=recipe_file)
    except MertkError as exc:
        return Section("reproduce", "Reproduce this run", [Text(f"No command can be given: {exc}", "warn")])
    blocks: list[Any] = [Code(cmd["command"]),
                         Text("The shipped recipe plus every value of this run that differs from it; the same command "
                              "finds this run directory again (its name hashes the resolved configuration) and "
                              "resumes or reuses it.", "note")]
    if cmd["note"]:
        blocks.append(Text(cmd["note"], "warn"))
    return Section("reproduce", "Reproduce this run", blocks)


# ---------------------------------------------------------------------------------------------
# sections from the features and the final model
# ---------------------------------------------------------------------------------------------


def _mean_maps(run: RunData, features: Any, problem: str | None) -> Section:
    title = "Per-class mean inputs"
    if features is None:
        return Section("meanmaps", title, [Text(f"Not available: {problem}", "warn")])
    from .plots import mean_maps_figure

    try:
        maps = class_mean_maps(features)
    except MertkError as exc:
        return Section("meanmaps", title, [Text(f"Not available: {exc}", "warn")])
    k = len(features.classes)
    width = int(min(980, 100 * (1.9 * len(maps.panels) + 1.6)))
    return Section("meanmaps", title, [
        Text(f"{maps.note}, over the run's {len(features.records)} clips (as in Fig. 6 of Belaiche et al. 2020). "
             "A column shares one colour scale across classes."),
        Image("mean_maps", mean_maps_figure(maps, features.classes), "per-class mean input maps",
              " · ".join(f"{features.classes[c]}: {int(maps.counts[c])} clips" for c in range(k)), width=width)])


def _similarity(run: RunData, features: Any, checkpoint: Any, model: Any, problem: str | None) -> tuple[Section, dict]:
    title = "Feature similarity"
    if features is None or model is None:
        return Section("similarity", title, [Text(f"Not available: {problem}", "warn")]), {}
    from .plots import cosine_figure

    vectors = penultimate_features(checkpoint, model, features.arrays)
    matrix, counts = cosine_similarity_matrix(vectors, features.y, len(features.classes))
    classes = list(features.classes)
    rows = [[c] + [fmt(v) for v in matrix[i]] + [str(int(counts[i]))] for i, c in enumerate(classes)]
    diag = np.diag(matrix)
    off = matrix[~np.eye(len(classes), dtype=bool)]
    summary = {"intra_mean": float(np.nanmean(diag)) if np.isfinite(diag).any() else None,
               "inter_mean": float(np.nanmean(off)) if np.isfinite(off).any() else None}
    return Section("similarity", title, [
        Text(f"Mean cosine similarity of the {vectors.shape[1]}-dimensional vectors the final layer classifies (the "
             "final model's penultimate features), between every pair of clips of two classes; the diagonal pairs "
             "distinct clips of one class (Belaiche et al. 2020, eq. 5, Tables 5-7). Intra-class mean "
             f"{fmt(summary['intra_mean'])}, inter-class mean {fmt(summary['inter_mean'])}."),
        Text("model.pt was trained on all clips of the run, so these are training features: they show what the model "
             "separates on data it has seen, not how it generalises (the LOSO figures above do that).", "warn"),
        Table(["class"] + classes + ["clips"], rows, numeric=range(1, len(classes) + 2)),
        Image("cosine_similarity", cosine_figure(matrix, classes), "cosine similarity matrix",
              width=int(min(560, 100 * (1.6 + 0.95 * len(classes))))),
    ]), summary


def _choose_samples(y: np.ndarray, groups: Sequence[str], num_classes: int, n: int) -> list[int]:
    """Up to ``n`` clip indices, taking classes in turn; within a class the first clip of a group
    (``dataset/subject``) whose dataset, else subject, is not shown yet, so the samples spread out."""
    queues = [list(np.flatnonzero(y == c)) for c in range(num_classes)]
    chosen: list[int] = []
    seen: set[str] = set()
    datasets = [g.split("/")[0] for g in groups]
    while len(chosen) < n and any(queues):
        for q in queues:
            if q and len(chosen) < n:
                pick = next((i for i in q if datasets[i] not in seen), None)
                pick = pick if pick is not None else next((i for i in q if groups[i] not in seen), q[0])
                q.remove(pick)
                seen.update((groups[pick], datasets[pick]))
                chosen.append(int(pick))
    return chosen


def _saliency(run: RunData, features: Any, checkpoint: Any, model: Any, samples: int, problem: str | None) -> Section:
    title = "Sample saliency maps"
    if features is None or model is None:
        return Section("saliency", title, [Text(f"Not available: {problem}", "warn")])
    from ..engine.checkpoint import classify, model_inputs
    from ..explain.figures import representative_sample, saliency_figure
    from ..explain.saliency import adversarial_check, saliency_maps, saliency_pixels

    classes = list(features.classes)
    loso: dict[tuple[str, str], tuple[str, str]] = {}
    if run.predictions is not None:
        for row in run.predictions.itertuples(index=False):
            loso[(str(row.subject), str(row.clip))] = (str(row.y_pred), str(row.fold))
    blocks: list[Any] = [Text(
        "The final model (model.pt) on a few of the run's clips, one class after another. Original map: gradient of "
        "softmax(o)_j; improved map: gradient of softmax(o / M)_j with the shrinkage factor M = max|o_k| "
        "(Miao et al. 2019, eqs. 4 and 10); saliency pixels: improved gradient >= 0 (eq. 11). Adversarial check: "
        "lower the saliency pixels by 20 (20/255 for inputs in [0, 1]) and re-classify, against the same number of "
        "random pixels. The final model has seen these clips in training.")]
    rows = []
    groups = [record_clip_name(r)[0] for r in features.records]
    for i in _choose_samples(features.y, groups, len(classes), samples):
        arrays = features.arrays[i]
        subject, clip = record_clip_name(features.records[i])
        xs, apex = model_inputs(checkpoint, arrays)
        probs, pred = classify(checkpoint, model, arrays)
        sample = xs[representative_sample(apex, checkpoint.inference)]
        result = saliency_maps(model, sample, target=pred)
        check = adversarial_check(model, sample, target=pred)
        name = f"{subject}/{clip}"
        blocks.append(Image(f"saliency_{len(rows) + 1}", saliency_figure(sample.numpy(), result, classes, title=name,
                                                                          check=check),
                            f"saliency maps of {name}", f"{name}: true {classes[features.y[i]]}, predicted "
                            f"{classes[pred]} (final model)", width=980))
        loso_pred, fold = loso.get((subject, clip), ("n/a", "n/a"))
        mask = saliency_pixels(result.improved)
        rows.append([name, classes[features.y[i]], classes[pred], fmt(float(probs[pred])), loso_pred,
                     f"{np.linalg.norm(result.original):.3e}", f"{np.linalg.norm(result.improved):.3e}",
                     f"{int(mask.sum())}/{mask.size}",
                     f"{classes[check['pred_saliency']]} ({check['score_change_saliency']:+.4f})",
                     f"{classes[check['pred_random']]} ({check['score_change_random']:+.4f})"])
    blocks.insert(1, Table(["clip", "true", "predicted", "top score", "LOSO prediction", "|original|", "|improved|",
                            "saliency pixels", "saliency px lowered: class (ΔS_j)", "random px lowered: class (ΔS_j)"],
                           rows, numeric=(3, 5, 6, 7, 8, 9),
                           caption="predicted / top score: the final model; LOSO prediction: the fold model that did "
                                   "not see the clip (predictions.csv)"))
    return Section("saliency", title, blocks)


def _load_model(run: RunData) -> tuple[Any, Any, str | None]:
    from ..engine.checkpoint import load_checkpoint

    if not (run.run_dir / "model.pt").is_file():
        return None, None, "the run has no model.pt (recipe final_model: false, or the run did not finish)"
    try:
        checkpoint = load_checkpoint(run.run_dir / "model.pt")
        return checkpoint, checkpoint.build_model(), None
    except MertkError as exc:
        return None, None, str(exc)


# ---------------------------------------------------------------------------------------------
# the report
# ---------------------------------------------------------------------------------------------


def build_sections(run: RunData, *, samples: int = 4) -> tuple[str, list[tuple[str, str]], list[Section], dict[str, Any]]:
    """The report's title, metadata line, sections and a summary of what could not be made."""
    r = run.results
    dataset = run.config.recipe.data.dataset
    when = _dt.datetime.fromtimestamp((run.run_dir / "results.json").stat().st_mtime).strftime("%Y-%m-%d %H:%M")
    title = f"{r.get('recipe', run.run_dir.name)}: {r.get('model', '')} on {dataset}"
    meta = [("recipe", str(r.get("recipe", ""))), ("paper", str(r.get("paper", "") or "-")),
            ("model", str(r.get("model", ""))), ("dataset", dataset), ("protocol", str(r.get("protocol", ""))),
            ("classes", ", ".join(run.classes)), ("seed", str(r.get("seed", ""))), ("finished", when),
            ("run", run.run_dir.name)]
    notes: dict[str, Any] = {}
    features, feature_problem = None, None
    try:
        features = run_features(run)
        if not features.records:
            features, feature_problem = None, "clips.csv lists no clip"
    except MertkError as exc:
        feature_problem = f"the run's arrays could not be read ({exc})"
    checkpoint, model, model_problem = _load_model(run)
    problem = feature_problem or model_problem
    sim_section, sim = _similarity(run, features, checkpoint, model, problem)
    sections = [
        _headline(run), *filter(None, [_ensemble(run), _selection(run)]), _per_dataset(run), _per_class(run), _confusion(run), _curves(run),
        _mean_maps(run, features, feature_problem), sim_section,
        _saliency(run, features, checkpoint, model, samples, problem),
        _timings(run), _data(run), _skipped(run), _config(run), _reproduce(run, run.run_dir / FILES_DIR),
    ]
    notes.update({"features": feature_problem, "model": model_problem, "similarity": sim})
    return title, meta, sections, notes


def write_report(run_dir: str | Path, *, samples: int = 4) -> dict[str, Any]:
    """Write ``report.html`` (self-contained) and ``report.md`` (+ ``report_files/*.png``) into a run directory.

    Args:
        run_dir: a run directory written by :func:`mertk.engine.run.run_recipe`.
        samples: clips shown with saliency maps.

    Returns:
        ``{"html", "markdown", "files", "sections", "images", "seconds", "unavailable"}``; ``unavailable``
        maps a part (``features``, ``model``) to why it could not be made (None when it was).

    Raises:
        DataError: ``run_dir`` is not a run directory (no ``results.json``).
    """
    start = time.perf_counter()
    run = load_run(run_dir)
    if run.config is None:
        raise DataError(run.run_dir / "config.yaml", "missing: the report needs the run's resolved configuration")
    if run.predictions is None:
        raise DataError(run.run_dir / "predictions.csv", "missing: the report needs the run's test predictions")
    title, meta, sections, notes = build_sections(run, samples=samples)
    files = run.run_dir / FILES_DIR
    files.mkdir(parents=True, exist_ok=True)
    images = [img for s in sections for img in iter_images(s.blocks)]
    for img in images:
        (files / f"{img.name}.png").write_bytes(img.data)
    html_path = run.run_dir / "report.html"
    md_path = run.run_dir / "report.md"
    html_path.write_text(render_html(title, meta, sections), encoding="utf-8")
    md_path.write_text(render_markdown(title, meta, sections, files_dir=FILES_DIR), encoding="utf-8")
    return {"html": str(html_path), "markdown": str(md_path), "files": str(files),
            "sections": [s.title for s in sections], "images": len(images),
            "seconds": round(time.perf_counter() - start, 2),
            "unavailable": {"features": notes["features"], "model": notes["model"]},
            "similarity": notes["similarity"]}


# ---------------------------------------------------------------------------------------------
# command line
# ---------------------------------------------------------------------------------------------

HELP = "write report.html (self-contained) and report.md of a run directory"


def add_report_parser(sub: Any) -> argparse.ArgumentParser:
    """Add ``mertk report`` to an argparse sub-parsers object."""
    p = sub.add_parser("report", help=HELP, description=HELP + ": metrics, per-dataset and per-class tables, plots, "
                       "per-class mean inputs, feature similarity, saliency samples, timings, skipped items, config "
                       "and the command that reproduces the run.")
    p.add_argument("run_dir", type=Path, help="a run directory (holds results.json)")
    p.add_argument("--samples", type=int, default=4, help="clips shown with saliency maps (default 4)")
    p.add_argument("--json", action="store_true", help="print the paths and summary as JSON")
    return p


def cmd_report(args: argparse.Namespace) -> int:
    """Run :func:`write_report` for parsed arguments and print the paths."""
    summary = write_report(args.run_dir, samples=args.samples)
    if args.json:
        print(json.dumps(summary, indent=2, default=str))
    else:
        print(f"report: {summary['html']}")
        print(f"markdown: {summary['markdown']} (images in {summary['files']})")
        for part, why in summary["unavailable"].items():
            if why:
                print(f"  {part}: {why}")
    return 0
