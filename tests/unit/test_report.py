import pytest

from facemix.evaluation.metrics import classification_report
from facemix.reports.classification import format_report


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


def test_per_source_breakdown_scores_each_source_on_its_own_images():
    from facemix.evaluation.metrics import per_source_breakdown

    # source m: 3 masked (2 right, 1 called real), 2 real (both right); source r: 2 real, 2 fake (1 fake called real)
    sources = ["m", "m", "m", "m", "m", "r", "r", "r", "r"]
    y_true = [2, 2, 2, 0, 0, 0, 0, 1, 1]
    y_pred = [2, 2, 0, 0, 0, 0, 0, 1, 0]
    out = per_source_breakdown(sources, y_true, y_pred, ["real", "fake", "masked"])
    assert out["m"]["images"] == 5 and out["m"]["accuracy"] == pytest.approx(4 / 5)
    # m: real P 2/3 R 1 F1 0.8; masked P 1 R 2/3 F1 0.8 -> macro over the classes present there: 0.8
    assert out["m"]["classes"]["real"]["f1-score"] == pytest.approx(0.8)
    assert out["m"]["classes"]["masked"]["recall"] == pytest.approx(2 / 3)
    assert set(out["m"]["classes"]) == {"real", "masked"} and out["m"]["macro_f1"] == pytest.approx(0.8)
    # r: real P 2/3 R 1 F1 0.8; fake P 1 R 1/2 F1 2/3
    assert out["r"]["macro_f1"] == pytest.approx((0.8 + 2 / 3) / 2)
    assert out["r"]["classes"]["fake"]["support"] == 2


def test_a_sources_macro_f1_counts_only_the_classes_it_has_with_intervals():
    """The mask set holds no fakes: a mask image called fake is an error of its own class (real's recall drops), but
    the absent class's F1 of 0 is not averaged in (it was: 0.642 where the two classes scored 0.936 and 0.992)."""
    from facemix.evaluation.metrics import per_source_breakdown

    y_true = [0] * 10 + [2] * 10
    y_pred = [0] * 9 + [1] + [2] * 10  # one real image called fake
    out = per_source_breakdown(["mask"] * 20, y_true, y_pred, ["real", "fake", "masked"], resamples=500)["mask"]
    real_f1, masked_f1 = 2 * 9 / (2 * 9 + 1), 1.0  # real: TP 9, FN 1; masked: perfect
    assert out["classes_present"] == ["real", "masked"] and set(out["classes"]) == {"real", "masked"}
    assert out["macro_f1"] == pytest.approx((real_f1 + masked_f1) / 2)
    low, high = out["macro_f1_interval"]
    assert low <= out["macro_f1"] <= high <= 1.0 and out["classes"]["masked"]["f1_interval"] == (1.0, 1.0)
