"""Tables and the comparison chart of ``facemix-compare`` (and of the cross-validation report)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from facemix.reports.plots import plt


def markdown(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def comparison_chart(labels: Sequence[str], reports: Sequence[dict], class_names: Sequence[str]):
    """Macro F1 and per-class F1 per run, bars with their 95 % bootstrap interval where the report has one."""
    series = ["macro avg", *class_names]
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(reports) * len(series) / 2), 4))
    width = 0.8 / max(1, len(series))
    x = np.arange(len(reports))
    for i, name in enumerate(series):
        key = "macro f1" if name == "macro avg" else f"f1 {name}"
        values = [r[name]["f1-score"] for r in reports]
        intervals = [r.get("intervals", {}).get(key) for r in reports]
        errors = np.array(
            [[v - ci["low"], ci["high"] - v] if ci else [0.0, 0.0] for v, ci in zip(values, intervals, strict=True)]
        ).T
        label = "macro F1" if name == "macro avg" else f"F1 {name}"
        ax.bar(x + i * width, values, width, yerr=errors if len(reports) else None, capsize=2, label=label)
    ax.set_xticks(x + width * (len(series) - 1) / 2, list(labels), rotation=20, ha="right")
    ax.set_ylim(0, 1)
    ax.set_ylabel("test (bars: 95 % bootstrap interval)")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig
