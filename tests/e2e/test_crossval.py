"""``facemix-train cv=3fold`` end to end: K ordinary fold runs, the assembled out-of-fold report over every image,
two variants paired by ``facemix-compare`` on all of them, confirmed label issues left out of a retraining, and the
fold ensemble evaluating and predicting."""

from __future__ import annotations

import csv
import json

import pytest

from tests.helpers import run_entry_in_process, run_train, scores_from_predictions, tiny_sweep_overrides


def _rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def sweep(data_dir, tmp_path_factory):
    sweep = tmp_path_factory.mktemp("cv") / "sweep"
    run_train("cv=3fold", "data=balanced,unbalanced", "model=simple_cnn", *tiny_sweep_overrides(data_dir, sweep))
    return sweep


def test_each_variant_gets_a_report_over_every_image_once(sweep):
    jobs = sorted(p for p in sweep.iterdir() if p.name[0].isdigit())
    assert len(jobs) == 6 and all((j / "summary.json").exists() for j in jobs)  # ordinary run dirs
    reports = sorted((sweep / "cv").iterdir())
    assert [p.name.split("_", 1)[1] for p in reports] == ["data_balanced", "data_unbalanced"]
    for cv in reports:
        summary = json.loads((cv / "cv_summary.json").read_text())
        manifest = _rows(summary["fold_runs"][0] + "/manifest.csv")
        originals = sorted(r["path"] for r in manifest if r["split"] in ("train", "val", "test") and not r["parent"])
        oof = _rows(cv / "oof_predictions.csv")
        assert sorted(r["path"] for r in oof) == originals  # every image once
        assert {r["fold"] for r in oof} == {"0", "1", "2"}
        fold_test = {str(f): {r["path"] for r in _rows(run + "/manifest.csv") if r["split"] == "test"}
                     for f, run in enumerate(summary["fold_runs"])}  # fmt: skip
        assert all(r["path"] in fold_test[r["fold"]] for r in oof)  # each image's fold is the run that held it out
        recounted = scores_from_predictions(cv / "predictions.csv")
        assert summary["test_report"]["macro avg"]["f1-score"] == pytest.approx(recounted["macro_f1"], abs=1e-9)
        assert summary["test_report"]["macro avg"]["support"] == len(originals)
        assert "mean ± std" in (cv / "folds.md").read_text()
        issues = _rows(cv / "label_issues.csv")
        assert len(issues) == summary["label_issues"] and all(r["given"] != r["suggested"] for r in issues)
        assert "| source | given label |" in (cv / "label_issues_by_source.md").read_text()


def test_compare_pairs_the_two_variants_on_all_images(sweep, tmp_path):
    table = run_entry_in_process("facemix.compare", [str(sweep), f"output_dir={tmp_path / 'cmp'}"])
    assert table.returncode == 0, table.stdout[-3000:]
    rows = _rows(tmp_path / "cmp" / "comparison.csv")
    assert len(rows) == 2 and {r["status"] for r in rows} == {"finished"}  # the CVs, not their 6 fold runs
    images = len(_rows(next((sweep / "cv").iterdir()) / "oof_predictions.csv"))
    paired = [line for line in table.stdout.splitlines() if line.startswith("| unbalanced | balanced |")]
    assert paired and f"| {images} |" in paired[0]  # paired over all N images, not one test split


def test_confirmed_label_issues_are_left_out_of_a_retraining(sweep, data_dir, tmp_path):
    cv = next((sweep / "cv").iterdir())
    issues = _rows(cv / "label_issues.csv")[:3]
    confirmed = tmp_path / "confirmed.csv"
    with open(confirmed, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(issues[0]))
        writer.writeheader()
        writer.writerows(issues)
    run_dir = tmp_path / "run"
    overrides = [o.replace("hydra.sweep.dir", "hydra.run.dir") for o in tiny_sweep_overrides(data_dir, run_dir)]
    run_train("model=simple_cnn", f"data.exclude={confirmed}", *overrides, "trainer.max_epochs=1")
    excluded = [r for r in _rows(run_dir / "manifest.csv") if r["split"] == "excluded"]
    assert sorted(r["path"] for r in excluded) == sorted(r["path"] for r in issues)
    assert all(f"data.exclude={confirmed}" in r["note"] for r in excluded)
    assert not {r["path"] for r in issues} & {r["path"] for r in _rows(run_dir / "predictions.csv")}


def test_the_fold_ensemble_evaluates_beside_its_members_and_predicts(sweep, shared_data, tmp_path):
    cv = next((sweep / "cv").iterdir())
    tree = shared_data / "realfake"
    ran = run_entry_in_process(
        "facemix.evaluate", [f"ckpt={cv}", "data=folder", f"data.root={tree}", f"data.scan_cache={tmp_path / 's'}"]
    )
    assert ran.returncode == 0, ran.stdout[-3000:]
    out = cv / "evaluation" / "external-realfake-ensemble"
    members = (out / "members.md").read_text()
    assert all(f"| fold {k} |" in members for k in range(3)) and "ensemble (mean of probabilities)" in members
    assert len(_rows(out / "predictions.csv")) == 300
    predicted = run_entry_in_process(
        "facemix.predict", [f"ckpt={cv}", f"inputs={tree / 'real'}", f"hydra.run.dir={tmp_path / 'pred'}"]
    )
    assert predicted.returncode == 0 and len(_rows(tmp_path / "pred" / "predictions.csv")) == 150
    refused = run_entry_in_process("facemix.evaluate", [f"ckpt={cv}"])
    assert refused.returncode == 2 and "is a cross-validation" in refused.stdout
