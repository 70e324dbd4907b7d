"""MEGC metrics against hand-computed confusion matrices, and the predictions CSV reader."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mertk.engine.metrics import (
    MetricsError,
    format_metrics,
    megc_metrics,
    metrics_command,
    metrics_report,
    read_predictions,
)
from mertk.errors import DataError, MertkError

ABC = ["a", "b", "c"]


def write_csv(path: Path, header: str, rows: list[str]) -> Path:
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def test_hand_computed_three_classes_ten_samples():
    # true a a a a b b b c c c ; pred a a a b b a a c b b
    # confusion (rows true): a -> [3 1 0], b -> [2 1 0], c -> [0 2 1]
    # TP 3 1 1; FP (column sum - TP) 2 3 0; FN (row sum - TP) 1 2 2
    # F1 = 2TP/(2TP+FP+FN): a 6/9, b 2/7, c 2/4 -> UF1 = (2/3 + 2/7 + 1/2)/3 = 61/126
    # recall: a 3/4, b 1/3, c 1/3 -> UAR = 17/36; precision a 3/5, b 1/4, c 1/1; accuracy 5/10
    m = megc_metrics(list("aaaabbbccc"), list("aaabbaacbb"), ABC)
    assert m["confusion"] == [[3, 1, 0], [2, 1, 0], [0, 2, 1]]
    assert m["n"] == 10
    assert m["accuracy"] == pytest.approx(0.5)
    assert m["uf1"] == pytest.approx(61 / 126)
    assert m["macro_f1"] == m["uf1"]
    assert m["uar"] == pytest.approx(17 / 36)
    assert m["per_class"]["a"] == pytest.approx(
        {"precision": 3 / 5, "recall": 3 / 4, "f1": 2 / 3, "support": 4, "tp": 3, "fp": 2, "fn": 1}
    )
    assert m["per_class"]["b"] == pytest.approx(
        {"precision": 1 / 4, "recall": 1 / 3, "f1": 2 / 7, "support": 3, "tp": 1, "fp": 3, "fn": 2}
    )
    assert m["per_class"]["c"] == pytest.approx(
        {"precision": 1.0, "recall": 1 / 3, "f1": 1 / 2, "support": 3, "tp": 1, "fp": 0, "fn": 2}
    )
    assert m["classes"] == ABC and m["absent"] == []
    json.dumps(m)  # the report is plain JSON


def test_confusion_follows_the_given_class_order():
    m = megc_metrics(list("aaaabbbccc"), list("aaabbaacbb"), ["c", "a", "b"])
    assert m["confusion"] == [[1, 0, 2], [0, 3, 1], [0, 2, 1]]
    assert m["uf1"] == pytest.approx(61 / 126)


def test_perfect_predictions_score_one():
    y = ["neg", "pos", "sur", "neg", "neg", "sur"]
    m = megc_metrics(y, y, ["neg", "pos", "sur"])
    assert (m["accuracy"], m["uf1"], m["uar"]) == (1.0, 1.0, 1.0)
    assert m["confusion"] == [[3, 0, 0], [0, 1, 0], [0, 0, 2]]


def test_class_never_predicted_has_precision_and_f1_zero():
    # true a a b c ; pred a a b b: c is never predicted -> precision 0 (convention), recall 0, F1 0
    # F1: a 4/4 = 1, b 2/(2+1+0) = 2/3, c 0 -> UF1 = 5/9; recall 1, 1, 0 -> UAR = 2/3
    m = megc_metrics(list("aabc"), list("aabb"), ABC)
    assert m["per_class"]["c"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1, "tp": 0, "fp": 0, "fn": 1}
    assert m["uf1"] == pytest.approx(5 / 9)
    assert m["uar"] == pytest.approx(2 / 3)
    assert m["uf1_classes"] == ABC and m["uar_classes"] == ABC


def test_class_with_no_samples_and_no_predictions_is_left_out():
    with_d = megc_metrics(list("aabc"), list("aabb"), ["a", "b", "c", "d"])
    assert with_d["uf1"] == pytest.approx(5 / 9) and with_d["uar"] == pytest.approx(2 / 3)
    assert with_d["absent"] == ["d"]
    assert with_d["per_class"]["d"] == {"precision": 0.0, "recall": None, "f1": None, "support": 0, "tp": 0, "fp": 0, "fn": 0}
    assert with_d["confusion"][3] == [0, 0, 0, 0]


def test_class_predicted_but_absent_from_truth_counts_in_uf1_not_uar():
    # true a a b b ; pred a c b b: c has FP 1, no samples -> F1 0 (in UF1), recall undefined (not in UAR)
    # F1: a 2/(2+0+1) = 2/3, b 4/4 = 1, c 0 -> UF1 = 5/9; UAR = (1/2 + 1)/2 = 3/4
    m = megc_metrics(list("aabb"), list("acbb"), ABC)
    assert m["uf1"] == pytest.approx(5 / 9)
    assert m["uar"] == pytest.approx(3 / 4)
    assert m["uf1_classes"] == ABC and m["uar_classes"] == ["a", "b"]
    assert m["per_class"]["c"]["recall"] is None and m["per_class"]["c"]["f1"] == 0.0


def test_pooling_over_folds_differs_from_mean_of_folds():
    # fold 1: true a a, pred a a -> UF1 1 (b absent); fold 2: true b b a, pred a b a -> F1 a 2/3, b 2/3
    # mean of folds = (1 + 2/3)/2 = 5/6; pooled: a TP 3 FP 1 FN 0 -> 6/7, b TP 1 FP 0 FN 1 -> 2/3
    # pooled UF1 = (6/7 + 2/3)/2 = 16/21
    f1 = megc_metrics(list("aa"), list("aa"), ["a", "b"])
    f2 = megc_metrics(list("bba"), list("aba"), ["a", "b"])
    pooled = megc_metrics(list("aabba"), list("aaaba"), ["a", "b"])
    assert f1["uf1"] == 1.0 and f2["uf1"] == pytest.approx(2 / 3)
    assert pooled["uf1"] == pytest.approx(16 / 21)
    assert (f1["uf1"] + f2["uf1"]) / 2 == pytest.approx(5 / 6)
    assert pooled["confusion"] == [[3, 0], [1, 1]]


def test_int_labels_match_classes_by_string_form():
    m = megc_metrics([0, 1, 2, 2], [0, 2, 2, 2], ["0", "1", "2"])
    assert m["confusion"] == [[1, 0, 0], [0, 0, 1], [0, 0, 2]]


def test_megc_metrics_errors():
    with pytest.raises(MetricsError, match="sample 1: prediction 'x' is not a class \\(a, b, c\\)"):
        megc_metrics(["a", "b"], ["a", "x"], ABC)
    with pytest.raises(MetricsError, match="2 true labels but 1 predictions"):
        megc_metrics(["a", "b"], ["a"], ABC)
    with pytest.raises(MetricsError, match="no predictions to score"):
        megc_metrics([], [], ABC)
    with pytest.raises(MetricsError, match="distinct"):
        megc_metrics(["a"], ["a"], ["a", "a"])
    assert issubclass(MetricsError, MertkError)


# ---------------------------------------------------------------- predictions CSV

HEADER = "dataset,subject,clip,fold,y_true,y_pred"


def composite_csv(tmp_path: Path) -> Path:
    # casme2: true n n p s, pred n p p s -> confusion [[1,1,0],[0,1,0],[0,0,1]]
    #   F1 n 2/3, p 2/3, s 1 -> UF1 7/9; recall n 1/2, p 1, s 1 -> UAR 5/6; acc 3/4
    # smic: true n p p s s s, pred n p n s n s -> confusion [[1,0,0],[1,1,0],[1,0,2]]
    #   F1 n 2/(2+2+0) = 1/2, p 2/3, s 4/5 -> UF1 (1/2 + 2/3 + 4/5)/3 = 59/90
    #   recall n 1, p 1/2, s 2/3 -> UAR 13/18; acc 4/6
    rows = [
        "casme2,casme2/sub01,EP01,casme2/sub01,n,n",
        "casme2,casme2/sub01,EP02,casme2/sub01,n,p",
        "casme2,casme2/sub02,EP03,casme2/sub02,p,p",
        "casme2,casme2/sub02,EP04,casme2/sub02,s,s",
        "smic,smic/s1,c1,smic/s1,n,n",
        "smic,smic/s1,c2,smic/s1,p,p",
        "smic,smic/s2,c3,smic/s2,p,n",
        "smic,smic/s2,c4,smic/s2,s,s",
        "smic,smic/s3,c5,smic/s3,s,n",
        "smic,smic/s3,c6,smic/s3,s,s",
    ]
    return write_csv(tmp_path / "predictions.csv", HEADER, rows)


def test_per_dataset_breakdown(tmp_path):
    report = metrics_command(composite_csv(tmp_path))
    assert report["classes"] == ["n", "p", "s"]
    assert report["n"] == 10
    # pooled: confusion [[2,1,0],[1,2,0],[1,0,3]]; F1 n 4/7, p 2/3, s 6/7 -> UF1 (4/7+2/3+6/7)/3 = 44/63
    assert report["confusion"] == [[2, 1, 0], [1, 2, 0], [1, 0, 3]]
    assert report["uf1"] == pytest.approx(44 / 63)
    assert report["uar"] == pytest.approx((2 / 3 + 2 / 3 + 3 / 4) / 3)
    casme2, smic = report["per_dataset"]["casme2"], report["per_dataset"]["smic"]
    assert (casme2["n"], smic["n"]) == (4, 6)
    assert casme2["accuracy"] == pytest.approx(3 / 4)
    assert casme2["uf1"] == pytest.approx(7 / 9) and casme2["uar"] == pytest.approx(5 / 6)
    assert smic["accuracy"] == pytest.approx(4 / 6)
    assert smic["uf1"] == pytest.approx(59 / 90) and smic["uar"] == pytest.approx(13 / 18)
    assert set(report["per_fold"]) == {"casme2/sub01", "casme2/sub02", "smic/s1", "smic/s2", "smic/s3"}
    assert report["per_fold"]["casme2/sub02"]["accuracy"] == 1.0
    json.dumps(report)


def test_per_dataset_class_missing_from_a_dataset(tmp_path):
    # samm has no "s" samples and no "s" predictions: its UF1/UAR are over n and p only
    path = write_csv(
        tmp_path / "p.csv",
        "dataset,subject,clip,y_true,y_pred",
        ["samm,samm/006,a,n,n", "samm,samm/006,b,p,n", "smic,smic/s1,c,s,s"],
    )
    report = metrics_command(path)
    samm = report["per_dataset"]["samm"]
    # samm: F1 n 2/3, p 0 -> UF1 1/3; recall n 1, p 0 -> UAR 1/2
    assert samm["uf1"] == pytest.approx(1 / 3) and samm["uar"] == pytest.approx(1 / 2)
    assert samm["absent"] == ["s"]
    assert "per_fold" not in report


def test_int_labels_sorted_numerically_and_mixed_labels_read_as_text(tmp_path):
    path = write_csv(
        tmp_path / "ints.csv",
        "dataset,subject,clip,y_true,y_pred",
        ["fer,,1,10,10", "fer,,2,2,10", "fer,,3,2,2", "fer,,4,0,0"],
    )
    report = metrics_command(path)
    assert report["classes"] == ["0", "2", "10"]
    assert report["confusion"] == [[1, 0, 0], [0, 1, 1], [0, 0, 1]]
    mixed = write_csv(
        tmp_path / "mixed.csv",
        "dataset,subject,clip,y_true,y_pred",
        ["d,s,1,1,neg", "d,s,2,neg,neg", "d,s,3,1,1"],
    )
    report = metrics_command(mixed)
    assert report["classes"] == ["1", "neg"]
    assert report["confusion"] == [[1, 1], [0, 1]]


def test_classes_given_and_probability_column_order(tmp_path):
    path = composite_csv(tmp_path)
    report = metrics_command(path, classes=["s", "p", "n", "x"])
    assert report["classes"] == ["s", "p", "n", "x"]
    assert report["confusion"][0] == [3, 0, 1, 0]
    assert report["absent"] == ["x"]
    probs = write_csv(
        tmp_path / "probs.csv",
        "dataset,subject,clip,y_true,y_pred,p_surprise,p_negative,p_positive",
        ["d,s,1,negative,negative,0.1,0.8,0.1", "d,s,2,surprise,negative,0.3,0.6,0.1"],
    )
    report = metrics_command(probs)
    assert report["classes"] == ["surprise", "negative", "positive"]  # the run's order, not sorted
    assert report["confusion"] == [[0, 1, 0], [0, 1, 0], [0, 0, 0]]
    assert read_predictions(probs)["p_surprise"].tolist() == [0.1, 0.3]


def test_csv_missing_columns(tmp_path):
    path = write_csv(tmp_path / "bad.csv", "dataset,subject,clip,y_true", ["d,s,c,a"])
    with pytest.raises(DataError) as err:
        read_predictions(path)
    assert str(err.value) == f"{path}: missing column(s) y_pred; found dataset, subject, clip, y_true"
    path = write_csv(tmp_path / "bad2.csv", "Dataset,clip,Y_TRUE", ["d,c,a"])
    with pytest.raises(DataError, match="missing column\\(s\\) subject, y_pred; found dataset, clip, y_true$"):
        read_predictions(path)


def test_csv_empty_and_missing_files(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(DataError) as err:
        read_predictions(empty)
    assert str(err.value) == f"{empty}: empty file: no header and no rows"
    header_only = write_csv(tmp_path / "h.csv", "dataset,subject,clip,y_true,y_pred", [])
    with pytest.raises(DataError) as err:
        read_predictions(header_only)
    assert str(err.value) == f"{header_only}: no prediction rows (header only)"
    with pytest.raises(DataError, match="predictions file not found"):
        metrics_command(tmp_path / "nope.csv")


def test_csv_unknown_label_names_file_and_row(tmp_path):
    path = composite_csv(tmp_path)
    with pytest.raises(DataError) as err:
        metrics_command(path, classes=["n", "p"])
    # the first row with y_true s is line 5 of the file (header = line 1)
    assert str(err.value) == f"{path}, row 5: y_true 's' is not a class (n, p)"
    path = write_csv(
        tmp_path / "u.csv",
        "dataset,subject,clip,y_true,y_pred",
        ["d,s,1,n,n", "d,s,2,n,q"],
    )
    with pytest.raises(DataError) as err:
        metrics_command(path, classes=["n", "p"])
    assert str(err.value) == f"{path}, row 3: y_pred 'q' is not a class (n, p)"
    probs = write_csv(tmp_path / "pr.csv", "dataset,subject,clip,y_true,y_pred,p_n,p_p", ["d,s,1,n,q,0.5,0.5"])
    with pytest.raises(DataError, match="row 2: y_pred 'q' is not a class \\(n, p\\)"):
        metrics_command(probs)
    with pytest.raises(DataError, match="distinct"):
        metrics_command(probs, classes=["n", "n"])


def test_csv_bad_cells_and_duplicates(tmp_path):
    header = "dataset,subject,clip,y_true,y_pred,p_a"
    path = write_csv(tmp_path / "e.csv", header, ["d,s,1,a,a,1", "d,s,2,a, ,0"])
    with pytest.raises(DataError) as err:
        read_predictions(path)
    assert str(err.value) == f"{path}, row 3: empty y_pred"
    path = write_csv(tmp_path / "p.csv", header, ["d,s,1,a,a,high"])
    with pytest.raises(DataError) as err:
        read_predictions(path)
    assert str(err.value) == f"{path}, row 2: p_a is not a number: 'high'"
    path = write_csv(tmp_path / "d.csv", header, ["d,s,1,a,a,1", "d,s,2,a,a,1", "d,s,1,a,a,1"])
    with pytest.raises(DataError) as err:
        read_predictions(path)
    assert str(err.value) == f"{path}, row 4: clip d/s/1 is listed twice (first at row 2)"


def test_metrics_report_on_an_in_memory_frame():
    import pandas as pd

    df = pd.DataFrame(
        {"dataset": ["x"] * 4, "subject": ["x/1"] * 4, "clip": list("1234"), "y_true": [0, 1, 1, 2], "y_pred": [0, 1, 2, 2]}
    )
    report = metrics_report(df, classes=["0", "1", "2"])
    assert report["confusion"] == [[1, 0, 0], [0, 1, 1], [0, 0, 1]]
    with pytest.raises(DataError, match="^row 3: y_true '2' is not a class \\(0, 1\\)$"):
        metrics_report(df, classes=["0", "1"])


def test_format_metrics_lists_everything(tmp_path):
    text = format_metrics(metrics_command(composite_csv(tmp_path)))
    lines = text.splitlines()
    assert lines[0] == f"predictions: {tmp_path / 'predictions.csv'}"
    assert lines[1] == "overall (10 samples, 3 classes): accuracy 0.7000  UF1 0.6984  UAR 0.6944"
    assert "n         0.5000  0.6667  0.5714        3" in lines
    assert "smic     6    0.6667  0.6556  0.7222" in lines
    assert "n            2  1  0" in lines and "true \\ pred  n  p  s" in lines
    # fold casme2/sub01: true n n, pred n p -> F1 n 2/3, p 0 -> UF1 1/3; UAR over n only = 1/2
    assert "casme2/sub01  2    0.5000  0.3333  0.5000" in lines
