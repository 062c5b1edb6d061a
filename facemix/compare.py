"""``facemix-compare RUN_OR_SWEEP_DIR [...]`` (or ``runs=[...]``): one table across runs, the paper-style comparison.

Prints Markdown, writes ``comparison.csv`` / ``.md`` and ``comparison.png`` (test macro F1 and per-class F1 per run)
into a new folder. Failed or unfinished runs are listed as such instead of vanishing.
"""

from __future__ import annotations

import csv
import re
import sys
from collections.abc import Sequence
from pathlib import Path

import hydra
import numpy as np
from omegaconf import DictConfig

from facemix.config import CONFIG_PATH
from facemix.errors import FacemixConfigError, user_errors_exit
from facemix.reports.plots import plt, save_figure
from facemix.reports.runs import RunRecord, find_runs, fresh_dir, read_run

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
                r.path.name,
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


def compare(paths: Sequence[str | Path], out_dir: str | Path) -> str:
    """Tabulate the runs at or below ``paths``; write comparison.csv / .md / .png into ``out_dir`` (a new folder: an
    existing one gets a ``-2``, ``-3``... sibling, so nothing earlier is replaced)."""
    run_dirs = find_runs(paths)
    if not run_dirs:
        raise FacemixConfigError(
            f"runs={[str(p) for p in paths]}: no facemix run dirs (folders with .hydra/config.yaml and a train.log, "
            "checkpoints/ or summary.json) at or below these paths. Pass run dirs, a multirun dir or outputs/."
        )
    runs = [read_run(p) for p in run_dirs]
    header, rows = comparison_rows(runs)
    table = markdown(header, rows)
    failures = [f"- {r.path}: {r.error}" for r in runs if r.error]
    if failures:
        table += "\nFailed runs:\n" + "\n".join(failures) + "\n"
    out = fresh_dir(Path(out_dir))
    with open(out / "comparison.csv", "w", newline="") as fh:
        csv.writer(fh).writerows([header, *rows])
    (out / "comparison.md").write_text(table)
    keys = differing_overrides(runs)
    labels = [" ".join(r.overrides.get(k, "") for k in keys) or r.path.name for r in runs]
    save_figure(bar_chart(runs, labels), out / "comparison.png")
    print(table)
    print(f"written: {out / 'comparison.csv'}, {out / 'comparison.md'}, {out / 'comparison.png'}")
    return table


def _hydra_quoted(text: str) -> str:
    """A single-quoted Hydra string: quotes escaped, backslashes doubled only before a quote or at the end."""
    text = re.sub(r"(\\*)'", lambda m: m.group(1) * 2 + "\\'", text)
    return "'" + re.sub(r"(\\+)$", lambda m: m.group(1) * 2, text) + "'"


def paths_as_override(argv: Sequence[str]) -> list[str]:
    """``facemix-compare A B key=value`` -> ``runs=['A','B'] key=value``: plain paths are the runs to compare."""
    paths = [a for a in argv if "=" not in a and not a.startswith("-")]
    if not paths:
        return list(argv)
    quoted = ",".join(_hydra_quoted(a) for a in paths)
    return [f"runs=[{quoted}]", *(a for a in argv if a not in paths)]


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="compare")
def _main(cfg: DictConfig) -> None:
    with user_errors_exit():
        runs = [str(cfg.runs)] if isinstance(cfg.runs, str) else [str(r) for r in cfg.runs]
        compare(runs, cfg.output_dir or cfg.paths.output_dir)


def main() -> None:
    sys.argv = [sys.argv[0], *paths_as_override(sys.argv[1:])]
    _main()


if __name__ == "__main__":
    main()
