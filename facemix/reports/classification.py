"""The classification report as people read it: the text table (per-class precision / recall / F1 / support,
accuracy, averages, calibration error, bootstrap intervals) and its JSON; the numbers come from
``facemix.evaluation.metrics``."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path


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


def write_report(report: dict, class_names: Sequence[str], text_path: str | Path, json_path: str | Path) -> str:
    """The report as text (returned too, for the console) and as JSON."""
    text = format_report(report, class_names)
    Path(text_path).parent.mkdir(parents=True, exist_ok=True)
    Path(text_path).write_text(text)
    Path(json_path).write_text(json.dumps(report, indent=2))
    return text


def format_intervals(intervals: dict[str, dict[str, float]], resamples: int, confidence: float) -> str:
    """The text block under the classification report."""
    if not intervals:
        return ""
    width = max(len(k) for k in intervals)
    lines = [f"{confidence:.0%} bootstrap intervals ({resamples} resamples of the images, percentile):", ""]
    lines += [f"{name:>{width}} {v['value']:9.3f}  [{v['low']:.3f}, {v['high']:.3f}]" for name, v in intervals.items()]
    return "\n".join(lines) + "\n"
