"""Reading finished (or failed) run dirs back: config overrides, summary, report, status."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml


@dataclass
class RunRecord:
    path: Path
    status: str  # finished | failed | unfinished
    overrides: dict[str, str] = field(default_factory=dict)
    summary: dict = field(default_factory=dict)
    error: str = ""  # a failed run's error, from its failed.json

    @property
    def report(self) -> dict:
        return self.summary.get("test_report", {})


def fresh_dir(path: Path) -> Path:
    """Create and return ``path``, or ``path-2``, ``path-3``...: earlier results are never overwritten."""
    candidate, n = Path(path), 1
    while candidate.exists():
        n += 1
        candidate = Path(path).with_name(f"{Path(path).name}-{n}")
    candidate.mkdir(parents=True)
    return candidate


def is_training_run(path: Path) -> bool:
    """A ``facemix.train`` run dir (finished, failed or interrupted), not a scan or preview dir."""
    markers = ("summary.json", "failed.json", "train.log", "checkpoints")
    return (path / ".hydra" / "config.yaml").exists() and any((path / m).exists() for m in markers)


def find_runs(paths: Sequence[str | Path]) -> list[Path]:
    """Training run dirs at or below each path, in order."""
    runs: list[Path] = []
    for p in map(Path, paths):
        if is_training_run(p):
            runs.append(p)
        else:
            found = (c.parent.parent for c in p.rglob(".hydra/config.yaml"))
            runs += sorted((r for r in found if is_training_run(r)), key=_natural_key)
    return runs


def _natural_key(p: Path) -> list:
    """``2_x`` before ``10_x`` (multirun job dirs start with the job number)."""
    return [(0, int(t), "") if t.isdigit() else (1, 0, t) for t in re.split(r"(\d+)", str(p)) if t]


def _status(run: Path) -> str:
    if (run / "summary.json").exists():
        return "finished"
    if (run / "failed.json").exists():
        try:  # interrupted runs say so; older records have no status
            return str(json.loads((run / "failed.json").read_text()).get("status", "failed"))
        except (OSError, ValueError, AttributeError):
            return "failed"
    log = next(iter(run.glob("*.log")), None)
    text = log.read_text(errors="replace") if log else ""
    if "Error" in text or "Traceback" in text:
        return "failed"
    return "unfinished"


def read_run(run: Path) -> RunRecord:
    overrides_file = run / ".hydra" / "overrides.yaml"
    overrides = yaml.safe_load(overrides_file.read_text()) if overrides_file.exists() else []
    parsed = dict(o.split("=", 1) if "=" in o else (o, "") for o in overrides or [])
    status = _status(run)
    name = "summary.json" if status == "finished" else "failed.json"
    try:
        summary = json.loads((run / "summary.json").read_text()) if status == "finished" else {}
        failed = run / "failed.json"
        error = json.loads(failed.read_text()) if status in ("failed", "interrupted") and failed.exists() else {}
        message = f"{error['error']}: {error['message'].splitlines()[0][:200]}" if error else ""
    except (OSError, ValueError, KeyError, AttributeError) as exc:  # one unreadable run must not lose the table
        return RunRecord(run, "unreadable", parsed, {}, f"{run / name} cannot be read ({exc}); re-run or remove it")
    return RunRecord(run, status, parsed, summary, message)
