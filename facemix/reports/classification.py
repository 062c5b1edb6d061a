"""The classification report users read: per-class precision / recall / F1 / support, accuracy, averages."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from facemix.reports.uncertainty import format_intervals


def classification_report(y_true: Sequence[int], y_pred: Sequence[int], class_names: Sequence[str]) -> dict:
    """The same numbers as scikit-learn's ``classification_report(output_dict=True)`` (zero division -> 0)."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    k = len(class_names)
    confusion = np.zeros((k, k), dtype=np.int64)
    np.add.at(confusion, (y_true, y_pred), 1)
    tp = np.diag(confusion).astype(float)
    support = confusion.sum(axis=1)
    predicted = confusion.sum(axis=0)
    precision = np.divide(tp, predicted, out=np.zeros(k), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros(k), where=support > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros(k), where=denom > 0)
    report: dict = {
        name: {"precision": precision[i], "recall": recall[i], "f1-score": f1[i], "support": int(support[i])}
        for i, name in enumerate(class_names)
    }
    total = int(support.sum())
    weights = support / total if total else np.zeros(k)
    report["accuracy"] = float(tp.sum() / total) if total else 0.0
    report["macro avg"] = {
        "precision": precision.mean(),
        "recall": recall.mean(),
        "f1-score": f1.mean(),
        "support": total,
    }
    report["weighted avg"] = {
        "precision": (precision * weights).sum(),
        "recall": (recall * weights).sum(),
        "f1-score": (f1 * weights).sum(),
        "support": total,
    }
    report["confusion_matrix"] = confusion.tolist()
    return json.loads(json.dumps(report, default=float))  # plain floats, JSON-ready


def format_report(report: dict, class_names: Sequence[str], digits: int = 3) -> str:
    width = max(len(n) for n in [*class_names, "weighted avg"])
    head = f"{'':>{width}} {'precision':>9} {'recall':>9} {'f1-score':>9} {'support':>9}"
    lines = [head, ""]
    row = "{:>{w}} {:>9.{d}f} {:>9.{d}f} {:>9.{d}f} {:>9}"
    for name in class_names:
        r = report[name]
        lines.append(row.format(name, r["precision"], r["recall"], r["f1-score"], r["support"], w=width, d=digits))
    total = report["macro avg"]["support"]
    lines += ["", f"{'accuracy':>{width}} {'':>9} {'':>9} {report['accuracy']:>9.{digits}f} {total:>9}"]
    for avg in ("macro avg", "weighted avg"):
        r = report[avg]
        lines.append(row.format(avg, r["precision"], r["recall"], r["f1-score"], r["support"], w=width, d=digits))
    if "calibration" in report:
        lines += [
            "",
            f"expected calibration error ({len(report['calibration']['bins'])} bins): "
            f"{report['calibration']['ece']:.3f}",
        ]
    text = "\n".join(lines) + "\n"
    if report.get("intervals"):
        boot = report["bootstrap"]
        text += "\n" + format_intervals(report["intervals"], boot["resamples"], boot["confidence"])
    return text


def write_report(
    report: dict, class_names: Sequence[str], out_dir: str | Path, stem: str = "classification_report"
) -> str:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    text = format_report(report, class_names)
    (out_dir / f"{stem}.txt").write_text(text)
    (out_dir / f"{stem}.json").write_text(json.dumps(report, indent=2))
    return text
