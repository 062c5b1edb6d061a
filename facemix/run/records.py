"""Reading finished (or failed) run dirs back for ``facemix-compare``: status, overrides, summary, error."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from facemix.run.overrides import parse_overrides
from facemix.run.rundir import CrossValidationDir, RunDir


@dataclass
class RunRecord:
    path: Path
    status: str  # finished | failed | interrupted | unfinished | unreadable
    overrides: dict[str, str] = field(default_factory=dict)
    summary: dict = field(default_factory=dict)
    error: str = ""  # a failed run's error, from its failed.json

    @property
    def report(self) -> dict:
        return self.summary.get("test_report", {})


def find_runs(paths: Sequence[str | Path]) -> list[Path]:
    """Training run dirs at or below each path, in order."""
    runs: list[Path] = []
    for p in map(Path, paths):
        if RunDir(p).is_training_run():
            runs.append(p)
        else:
            found = (RunDir(c.parent.parent) for c in p.rglob(f"{RunDir.HYDRA}/config.yaml"))
            runs += sorted((r.path for r in found if r.is_training_run()), key=_natural_key)
    return runs


def find_cross_validations(paths: Sequence[str | Path]) -> list[Path]:
    """Cross-validation report dirs at or below each path, in order."""
    found: list[Path] = []
    for p in map(Path, paths):
        if CrossValidationDir(p).is_cross_validation():
            found.append(p)
        else:
            name = CrossValidationDir(p).summary.name
            found += sorted((c.parent for c in p.rglob(name)), key=_natural_key)
    return found


def read_cross_validation(path: Path) -> RunRecord:
    """A cross-validation as one row of facemix-compare: its out-of-fold report, its variant's overrides."""
    cv = CrossValidationDir(path)
    try:
        summary = cv.read_summary()
    except (OSError, ValueError) as exc:
        return RunRecord(path, "unreadable", {}, {}, f"{cv.summary} cannot be read ({exc}); assemble it again")
    return RunRecord(path, "finished", {k: str(v) for k, v in summary.get("variant", {}).items()}, summary)


def _natural_key(p: Path) -> list:
    """``2_x`` before ``10_x`` (multirun job dirs start with the job number)."""
    return [(0, int(t), "") if t.isdigit() else (1, 0, t) for t in re.split(r"(\d+)", str(p)) if t]


def read_run(path: Path) -> RunRecord:
    run = RunDir(path)
    saved = yaml.safe_load(run.overrides.read_text()) if run.overrides.exists() else []
    overrides = {o.key: o.value or "" for o in parse_overrides([str(o) for o in saved or []], strict=False)}
    status = run.status()
    record = run.summary if status == "finished" else run.failure_record
    try:
        summary = run.read_summary() if status == "finished" else {}
        failed = run.failure_record
        error = json.loads(failed.read_text()) if status in ("failed", "interrupted") and failed.exists() else {}
        message = f"{error['error']}: {error['message'].splitlines()[0][:200]}" if error else ""
    except (OSError, ValueError, KeyError, AttributeError) as exc:  # one unreadable run must not lose the table
        return RunRecord(path, "unreadable", overrides, {}, f"{record} cannot be read ({exc}); re-run or remove it")
    return RunRecord(path, status, overrides, summary, message)


def read_history(run: RunDir) -> dict[str, list[tuple[int, float]]]:
    """Per-epoch scalars from the run's CSV log: tag -> [(epoch, value)] (empty when the run kept no CSV log)."""
    import csv

    history: dict[str, list[tuple[int, float]]] = {}
    if not run.metrics_csv.exists():
        return history
    with open(run.metrics_csv, newline="") as fh:
        for row in csv.DictReader(fh):
            for tag, value in row.items():
                if tag not in ("epoch", "step") and value not in ("", None) and row.get("epoch"):
                    history.setdefault(tag, []).append((int(row["epoch"]), float(value)))
    return history
