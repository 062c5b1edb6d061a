import pytest

from facemix.reports.classification import classification_report, format_report


def test_report_numbers_match_hand_computation():
    y_true = [0, 0, 0, 1, 1, 2]
    y_pred = [0, 0, 1, 1, 2, 2]
    r = classification_report(y_true, y_pred, ["a", "b", "c"])
    assert r["a"] == pytest.approx({"precision": 1.0, "recall": 2 / 3, "f1-score": 0.8, "support": 3})
    assert r["b"]["precision"] == pytest.approx(0.5) and r["b"]["recall"] == pytest.approx(0.5)
    assert r["c"]["f1-score"] == pytest.approx(2 / 3)
    assert r["accuracy"] == pytest.approx(4 / 6)
    assert r["macro avg"]["f1-score"] == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)
    assert r["weighted avg"]["f1-score"] == pytest.approx((3 * 0.8 + 2 * 0.5 + 2 / 3) / 6)
    assert r["confusion_matrix"] == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    text = format_report(r, ["a", "b", "c"])
    assert "macro avg" in text and "0.800" in text


def test_absent_class_scores_zero_not_nan():
    r = classification_report([0, 0], [0, 0], ["a", "b"])
    assert r["b"] == {"precision": 0.0, "recall": 0.0, "f1-score": 0.0, "support": 0}
