"""Bootstrap intervals, paired differences, seed spread and calibration: checked against scipy, hand-computed
cases and their statistical promise (coverage)."""

import csv
import json

import numpy as np
import pytest
from scipy import stats

from facemix.evaluation.compare import compare, paired_table, seed_table
from facemix.evaluation.metrics import (
    bootstrap_intervals,
    calibration,
    classification_report,
    paired_bootstrap,
    seed_spread,
)
from facemix.reports.classification import format_report
from facemix.run.records import RunRecord
from tests.helpers import assert_drawn

CLASSES = ["real", "fake", "masked"]


def _predictions(n, accuracy, seed):
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, 3, n)
    wrong = rng.random(n) > accuracy
    y_pred = np.where(wrong, (y_true + rng.integers(1, 3, n)) % 3, y_true)
    return y_true, y_pred


def test_point_values_are_the_classification_report_and_intervals_hold_them():
    y_true, y_pred = _predictions(300, 0.8, 0)
    report = classification_report(y_true, y_pred, CLASSES)
    intervals = bootstrap_intervals(y_true, y_pred, CLASSES, resamples=1000)
    assert intervals["accuracy"]["value"] == pytest.approx(report["accuracy"])
    assert intervals["macro f1"]["value"] == pytest.approx(report["macro avg"]["f1-score"])
    for c in CLASSES:
        assert intervals[f"f1 {c}"]["value"] == pytest.approx(report[c]["f1-score"])
        assert intervals[f"precision {c}"]["value"] == pytest.approx(report[c]["precision"])
        assert intervals[f"recall {c}"]["value"] == pytest.approx(report[c]["recall"])
    for v in intervals.values():
        assert v["low"] <= v["value"] <= v["high"] and v["high"] - v["low"] > 0


def test_accuracy_interval_matches_scipy_percentile_bootstrap():
    y_true, y_pred = _predictions(400, 0.75, 1)
    ours = bootstrap_intervals(y_true, y_pred, CLASSES, resamples=4000, seed=3)["accuracy"]
    correct = (y_true == y_pred).astype(float)
    ref = stats.bootstrap((correct,), np.mean, n_resamples=4000, method="percentile", random_state=3)
    assert ours["low"] == pytest.approx(ref.confidence_interval.low, abs=0.01)
    assert ours["high"] == pytest.approx(ref.confidence_interval.high, abs=0.01)


def test_intervals_are_seeded_and_narrow_with_more_images():
    small = _predictions(100, 0.8, 2)
    large = _predictions(10_000, 0.8, 2)
    a = bootstrap_intervals(*small, CLASSES, resamples=1000, seed=5)
    assert a == bootstrap_intervals(*small, CLASSES, resamples=1000, seed=5)
    b = bootstrap_intervals(*large, CLASSES, resamples=1000, seed=5)
    width = {k: v["high"] - v["low"] for k, v in a.items()}
    assert b["accuracy"]["high"] - b["accuracy"]["low"] < width["accuracy"] / 5


def test_accuracy_intervals_cover_the_true_accuracy_about_95_percent_of_the_time():
    covered = 0
    for rep in range(200):
        interval = bootstrap_intervals(*_predictions(200, 0.8, 100 + rep), CLASSES, resamples=1000, seed=rep)
        covered += interval["accuracy"]["low"] <= 0.8 <= interval["accuracy"]["high"]
    assert 0.89 <= covered / 200 <= 0.99


def test_paired_bootstrap_finds_a_real_difference_and_not_a_null_one():
    y_true, pred_a = _predictions(500, 0.7, 4)
    same = paired_bootstrap(y_true, pred_a, pred_a, CLASSES, resamples=1000)
    assert all(d["difference"] == 0 and not d["excludes_zero"] for d in same.values())
    pred_b = pred_a.copy()
    fix = np.flatnonzero(pred_a != y_true)[:60]  # b corrects 60 of a's mistakes
    pred_b[fix] = y_true[fix]
    better = paired_bootstrap(y_true, pred_a, pred_b, CLASSES, resamples=1000)
    assert better["accuracy"]["difference"] == pytest.approx(60 / 500)
    assert better["accuracy"]["excludes_zero"] and better["accuracy"]["low"] > 0
    # the paired interval is narrower than the two unpaired ones side by side would suggest
    unpaired = bootstrap_intervals(y_true, pred_a, CLASSES, resamples=1000)["accuracy"]
    assert better["accuracy"]["high"] - better["accuracy"]["low"] < unpaired["high"] - unpaired["low"]


def test_seed_spread_is_mean_and_sample_std():
    assert seed_spread([0.8, 0.9, 1.0]) == {"mean": pytest.approx(0.9), "std": pytest.approx(0.1), "seeds": 3}
    assert seed_spread([0.5]) == {"mean": 0.5, "std": 0.0, "seeds": 1}


def test_calibration_error_by_hand_and_on_calibrated_draws():
    probs = np.array([[0.9, 0.05, 0.05], [0.9, 0.05, 0.05], [0.6, 0.3, 0.1], [0.2, 0.7, 0.1]])
    y_true = np.array([0, 1, 0, 1])  # bin 0.9: 1 of 2 right (|0.5-0.9|), 0.6: right, 0.7: right
    expected = (2 * 0.4 + abs(1 - 0.6) + abs(1 - 0.7)) / 4
    assert calibration(probs, y_true, bins=10)["ece"] == pytest.approx(expected)
    rng = np.random.default_rng(0)
    confidence = rng.uniform(0.4, 1.0, 20_000)
    probs = np.stack([confidence, (1 - confidence) / 2, (1 - confidence) / 2], axis=1)
    calibrated = np.where(rng.random(20_000) < confidence, 0, 1)
    overconfident = np.where(rng.random(20_000) < confidence - 0.2, 0, 1)
    assert calibration(probs, calibrated)["ece"] < 0.02
    assert calibration(probs, overconfident)["ece"] == pytest.approx(0.2, abs=0.02)


def _fake_run(root, name, seed, variant, y_true, y_pred):
    run = root / name
    run.mkdir(parents=True)
    report = classification_report(y_true, y_pred, CLASSES)
    report["intervals"] = bootstrap_intervals(y_true, y_pred, CLASSES, resamples=500)
    with open(run / "predictions.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "source", "true", "predicted"])
        w.writerows([f"img{i}.jpg", "s", CLASSES[t], CLASSES[p]] for i, (t, p) in enumerate(zip(y_true, y_pred)))
    overrides = {"seed": str(seed), "data": variant}
    summary = {"class_names": CLASSES, "test_report": report}
    (run / "summary.json").write_text(json.dumps(summary))
    (run / ".hydra").mkdir()
    (run / ".hydra" / "config.yaml").write_text("seed: 0\n")
    (run / ".hydra" / "overrides.yaml").write_text("".join(f"- {k}={v}\n" for k, v in overrides.items()))
    return RunRecord(run, "finished", overrides, summary)


def test_compare_reports_seed_spread_and_paired_differences(tmp_path):
    y_true, weak = _predictions(400, 0.6, 7)
    runs = []
    for seed in (1, 2, 3):
        strong = weak.copy()
        fix = np.flatnonzero(weak != y_true)[: 80 + 5 * seed]
        strong[fix] = y_true[fix]
        noisy = weak.copy()
        noisy[:seed] = y_true[:seed]
        runs.append(_fake_run(tmp_path, f"{2 * seed}_u", seed, "unbalanced", y_true, noisy))
        runs.append(_fake_run(tmp_path, f"{2 * seed + 1}_b", seed, "balanced", y_true, strong))
    spread = seed_table(runs)
    assert "| data=unbalanced | 3 |" in spread and "| data=balanced | 3 |" in spread
    labels = [f"{r.overrides['data']} {r.overrides['seed']}" for r in runs]
    paired = paired_table(runs, labels, resamples=500)
    rows = [line for line in paired.splitlines() if line.startswith("| balanced")]
    assert len(rows) == 3 and all(" *" in row.split("|")[4] for row in rows)  # Δ accuracy excludes zero
    table = compare([tmp_path], tmp_path / "out")
    assert "Across seeds" in table and "Paired differences" in table and "macro F1 95% CI" in table
    assert_drawn(tmp_path / "out" / "comparison.png")


def test_the_report_text_carries_the_intervals_and_the_calibration():
    y_true, y_pred = _predictions(120, 0.8, 9)
    report = classification_report(y_true, y_pred, CLASSES)
    report["intervals"] = bootstrap_intervals(y_true, y_pred, CLASSES, resamples=300)
    report["bootstrap"] = {"resamples": 300, "confidence": 0.95, "method": "percentile"}
    report["calibration"] = calibration(np.eye(3)[y_pred], y_true)
    text = format_report(report, CLASSES)
    assert "95% bootstrap intervals (300 resamples" in text and "macro f1" in text
    assert "expected calibration error" in text


def test_a_corrupt_summary_is_listed_and_the_other_runs_stay_in_the_table(tmp_path):
    y_true, y_pred = _predictions(50, 0.8, 11)
    _fake_run(tmp_path, "0_good", 1, "balanced", y_true, y_pred)
    broken = _fake_run(tmp_path, "1_broken", 1, "unbalanced", y_true, y_pred)
    (broken.path / "summary.json").write_text('{"class_names": [')
    table = compare([tmp_path], tmp_path / "out")
    assert "| 0_good | finished |" in table and "| 1_broken | unreadable |" in table
    assert f"{broken.path / 'summary.json'} cannot be read" in table
