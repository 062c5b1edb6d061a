"""``python -m facemix.compare RUN_OR_SWEEP_DIR [...]``: one table across runs, the paper-style comparison.

Prints Markdown, writes ``comparison.csv`` and ``comparison.png`` (test macro F1 and per-class F1 per run). Failed or
unfinished runs are listed as such instead of vanishing.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np

from facemix.reports.plots import plt, save_figure
from facemix.reports.runs import RunRecord, find_runs, read_run

HIDDEN_OVERRIDES = {"hydra.run.dir", "hydra.sweep.dir", "paths.data_dir", "hydra.job.num"}


def differing_overrides(runs: list[RunRecord]) -> list[str]:
    keys = sorted({k for r in runs for k in r.overrides} - HIDDEN_OVERRIDES)
    return [k for k in keys if len({r.overrides.get(k, "") for r in runs}) > 1] or keys


def comparison_rows(runs: list[RunRecord]) -> tuple[list[str], list[list[str]]]:
    keys = differing_overrides(runs)
    class_names = next((r.summary["class_names"] for r in runs if r.summary.get("class_names")), [])
    header = [
        "run",
        "status",
        *keys,
        "val acc",
        "val macro F1 (best)",
        "test acc",
        "test macro F1",
        *(f"F1 {c}" for c in class_names),
        "best epoch",
        "wall time (s)",
        "parameters",
    ]
    rows = []
    for r in runs:
        m, rep = r.summary.get("metrics", {}), r.report

        def fmt(v, digits=3):
            return "" if v is None else f"{v:.{digits}f}" if isinstance(v, float) else str(v)

        rows.append(
            [
                f"{r.path.parent.name}/{r.path.name}" if r.path.name.isdigit() else r.path.name,  # multirun job dirs
                r.status,
                *(r.overrides.get(k, "") for k in keys),
                fmt(m.get("val/acc")),
                fmt(r.summary.get("val_f1_best")),
                fmt(rep.get("accuracy")),
                fmt(rep.get("macro avg", {}).get("f1-score")),
                *(fmt(rep.get(c, {}).get("f1-score")) for c in class_names),
                fmt(r.summary.get("best_epoch")),
                fmt(r.summary.get("wall_time_s"), 1),
                f"{r.summary['parameters']:,}" if "parameters" in r.summary else "",
            ]
        )
    return header, rows


def markdown(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def bar_chart(runs: list[RunRecord], labels: list[str]):
    finished = [(r, lab) for r, lab in zip(runs, labels, strict=True) if r.report]
    class_names = finished[0][0].summary.get("class_names", []) if finished else []
    series = ["macro avg", *class_names]
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(finished) * len(series) / 2), 4))
    width = 0.8 / max(1, len(series))
    x = np.arange(len(finished))
    for i, name in enumerate(series):
        ax.bar(
            x + i * width,
            [r.report[name]["f1-score"] for r, _ in finished],
            width,
            label="macro F1" if name == "macro avg" else f"F1 {name}",
        )
    ax.set_xticks(x + width * (len(series) - 1) / 2, [lab for _, lab in finished], rotation=20, ha="right")
    ax.set_ylim(0, 1)
    ax.set_ylabel("test")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


def compare(paths: list[str | Path], out_dir: str | Path | None = None) -> str:
    run_dirs = find_runs(paths)
    if not run_dirs:
        raise SystemExit(
            f"no run dirs (folders with .hydra/config.yaml) found at or below {', '.join(map(str, paths))}"
        )
    runs = [read_run(p) for p in run_dirs]
    header, rows = comparison_rows(runs)
    table = markdown(header, rows)
    failures = [f"- {r.path}: {r.error}" for r in runs if r.error]
    if failures:
        table += "\nFailed runs:\n" + "\n".join(failures) + "\n"
    out = Path(out_dir) if out_dir else Path(paths[0]) if len(paths) == 1 and Path(paths[0]).is_dir() else Path(".")
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "comparison.csv", "w", newline="") as fh:
        csv.writer(fh).writerows([header, *rows])
    (out / "comparison.md").write_text(table)
    keys = differing_overrides(runs)
    labels = [" ".join(r.overrides.get(k, "") for k in keys) or r.path.name for r in runs]
    save_figure(bar_chart(runs, labels), out / "comparison.png")
    print(table)
    print(f"written: {out / 'comparison.csv'}, {out / 'comparison.md'}, {out / 'comparison.png'}")
    return table


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+", help="run dirs, or a multirun / outputs dir to search")
    parser.add_argument("--out", help="where to write comparison.csv / .md / .png (default: the one dir given)")
    args = parser.parse_args(argv)
    compare(args.paths, args.out)


if __name__ == "__main__":
    main(sys.argv[1:])
