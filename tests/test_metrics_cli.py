"""`mertk metrics PREDICTIONS.csv` from the command line."""

from __future__ import annotations

import json

from mertk.cli import main


def test_metrics_cli_json_and_text(tmp_path, capsys):
    csv = tmp_path / "predictions.csv"
    csv.write_text(
        "dataset,subject,clip,y_true,y_pred\n"
        "smic,smic/s1,a,negative,negative\n"
        "smic,smic/s1,b,positive,negative\n"
        "casme2,casme2/sub01,c,surprise,surprise\n"
        "casme2,casme2/sub02,d,negative,negative\n"
    )
    assert main(["metrics", str(csv), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["accuracy"] == 0.75
    assert report["confusion"] == [[2, 0, 0], [1, 0, 0], [0, 0, 1]]  # classes negative, positive, surprise
    # UF1 by hand: negative 2*2/(4+1+0) = 0.8, positive 0, surprise 1 -> 0.6; UAR (1 + 0 + 1) / 3
    assert abs(report["uf1"] - 0.6) < 1e-12 and abs(report["uar"] - 2 / 3) < 1e-12
    assert set(report["per_dataset"]) == {"smic", "casme2"} and report["per_dataset"]["casme2"]["accuracy"] == 1.0
    assert main(["metrics", str(csv)]) == 0
    assert "UF1 0.6000" in capsys.readouterr().out


def test_metrics_cli_missing_column_is_one_line(tmp_path, capsys):
    csv = tmp_path / "bad.csv"
    csv.write_text("dataset,subject,clip,y_true\nsmic,s1,a,negative\n")
    assert main(["metrics", str(csv)]) == 2
    err = capsys.readouterr().err
    assert "bad.csv" in err and "missing column(s) y_pred" in err and err.count("\n") == 1
