"""A run dir and everything in it, and the other folders facemix writes: the one place that knows their file names.

Every command writes into or reads from run dirs (train writes one, evaluate / export / compare read them, a resume
continues one), so the layout is an object instead of names spread over the code: ``RunDir(path).summary``,
``.failure_record``, ``.last_checkpoint``, ``.report`` (the report set of the run's own evaluation)... A run dir's
state (finished / failed / interrupted / unfinished) lives here too; reading runs back for ``facemix-compare`` is
``facemix.run.records``.
"""

from __future__ import annotations

import json
import logging
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from facemix.errors import FacemixConfigError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReportFiles:
    """The report set of one evaluation (the run dir itself for training's own report, or an ``evaluation/...`` or
    cross-validation folder)."""

    path: Path

    @property
    def classification_json(self) -> Path:
        return self.path / "classification_report.json"

    @property
    def classification_text(self) -> Path:
        return self.path / "classification_report.txt"

    @property
    def predictions(self) -> Path:
        return self.path / "predictions.csv"

    @property
    def per_source_json(self) -> Path:
        return self.path / "per_source.json"

    @property
    def per_source_markdown(self) -> Path:
        return self.path / "per_source.md"

    @property
    def manifest(self) -> Path:
        """The rows an external tree's evaluation saw (a run's own evaluation reads the run's manifest)."""
        return self.path / "manifest.csv"

    @property
    def page(self) -> Path:
        """``report.html``: the whole report set on one self-contained page."""
        return self.path / "report.html"

    @property
    def members(self) -> Path:
        """Beside a fold ensemble's report: each fold model alone on the same images."""
        return self.path / "members.md"

    def figure(self, name: str) -> Path:
        """``confusion_matrix``, ``reliability``, ``curves``, ``gallery``, ``gradcam``... as PNG."""
        return self.path / f"{name}.png"

    def holds_report(self) -> bool:
        return self.classification_json.exists()


@dataclass(frozen=True)
class PredictionFiles:
    """The output folder of ``facemix-predict``."""

    path: Path

    @property
    def json(self) -> Path:
        return self.path / "predictions.json"

    @property
    def table(self) -> Path:
        return self.path / "predictions.csv"

    @property
    def cam(self) -> Path:
        return self.path / "cam"


@dataclass(frozen=True)
class RunDir:
    """One training run's folder (``outputs/<date>/<time>_<run name>/``)."""

    path: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))

    # --- what Hydra and Lightning write -----------------------------------------------------------------------
    HYDRA = ".hydra"  # Hydra's output_subdir of the first start; a resume adds .hydra/resumed-<time>/
    TRAIN_LOG = "train.log"  # Hydra's job log: <job name>.log, the job being facemix.train

    @property
    def hydra(self) -> Path:
        return self.path / self.HYDRA

    @property
    def config(self) -> Path:
        return self.hydra / "config.yaml"

    @property
    def overrides(self) -> Path:
        return self.hydra / "overrides.yaml"

    def saved_overrides_files(self) -> list[Path]:
        """Every ``overrides.yaml`` the run was started with, oldest first (the first start, then each resume)."""
        resumed = sorted(self.hydra.glob("resumed-*/overrides.yaml"))
        return [self.overrides, *resumed] if self.overrides.is_file() else resumed

    @property
    def train_log(self) -> Path:
        return self.path / self.TRAIN_LOG

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def last_checkpoint(self) -> Path:
        return self.checkpoints / "last.ckpt"

    def averaged_checkpoint(self, k: int) -> Path:
        """The mean of the run's ``k`` best checkpoints (``average_top_k=k``)."""
        return self.checkpoints / f"averaged_top{k}.ckpt"

    @property
    def lr_find_figure(self) -> Path:
        return self.path / "lr_find.png"

    @property
    def tensorboard(self) -> Path:
        return self.path / "tensorboard"

    @property
    def csv_logs(self) -> Path:
        return self.path / "csv"

    @property
    def metrics_csv(self) -> Path:
        return self.csv_logs / "metrics.csv"

    # --- what facemix writes ----------------------------------------------------------------------------------
    @property
    def manifest(self) -> Path:
        return self.path / "manifest.csv"

    @property
    def summary(self) -> Path:
        return self.path / "summary.json"

    @property
    def failure_record(self) -> Path:
        return self.path / "failed.json"

    @property
    def augment_preview(self) -> Path:
        return self.path / "augment_preview.png"

    @property
    def card_json(self) -> Path:
        return self.path / "dataset_card.json"

    @property
    def card_markdown(self) -> Path:
        return self.path / "dataset_card.md"

    @property
    def card_figure(self) -> Path:
        return self.path / "dataset_card.png"

    @property
    def label_conflicts_figure(self) -> Path:
        return self.path / "label_conflicts.png"

    # where a run keeps data artefacts when the config names no shared folder for them (paths.data_dir holds them
    # by default, shared by every run on that data root)
    @property
    def image_cache(self) -> Path:
        return self.path / "image_cache"

    @property
    def harmonized(self) -> Path:
        return self.path / "harmonized"

    @property
    def offline_cache(self) -> Path:
        return self.path / "offline_cache"

    @property
    def report(self) -> ReportFiles:
        """Training's own report of its best checkpoint, at the top of the run dir."""
        return ReportFiles(self.path)

    def evaluation(self, split: str, checkpoint: str | Path) -> Path:
        """Where ``facemix-evaluate`` writes a split's report by default (a fresh ``-2``... sibling if taken)."""
        return self.path / "evaluation" / f"{split}-{Path(checkpoint).stem}"

    def external_evaluation(self, tree: str, checkpoint: str | Path) -> Path:
        return self.path / "evaluation" / f"external-{tree}-{Path(checkpoint).stem}"

    def export(self, fmt: str) -> Path:
        return self.path / "export" / fmt

    # --- the run's state ----------------------------------------------------------------------------------------
    # what makes a folder an earlier run that a new one must not write into
    RUN_MARKERS = (".hydra", "checkpoints", "summary.json", "failed.json", "manifest.csv")
    # what a resumed run keeps in place: its log and the description of the data it started with
    KEPT_ON_RESUME = (
        "train.log", "manifest.csv", "dataset_card.md", "dataset_card.png", "dataset_card.json", ".writer.lock",
        ".writer",
    )  # fmt: skip

    def markers(self) -> list[str]:
        return [m for m in self.RUN_MARKERS if (self.path / m).exists()]

    def is_training_run(self) -> bool:
        """A ``facemix.train`` run dir (finished, failed or interrupted), not a scan or preview dir."""
        held = (self.summary, self.failure_record, self.train_log, self.checkpoints)
        return self.config.exists() and any(p.exists() for p in held)

    def is_finished(self) -> bool:
        return self.summary.exists()

    def status(self) -> str:
        """finished | failed | interrupted | unfinished (no record: still running, or killed without one)."""
        if self.is_finished():
            return "finished"
        if self.failure_record.exists():
            try:  # interrupted runs say so; older records have no status
                return str(json.loads(self.failure_record.read_text()).get("status", "failed"))
            except (OSError, ValueError, AttributeError):
                return "failed"
        logs = sorted(self.path.glob("*.log"))
        text = logs[0].read_text(errors="replace") if logs else ""
        return "failed" if "Error" in text or "Traceback" in text else "unfinished"

    def read_summary(self) -> dict:
        return json.loads(self.summary.read_text())

    def write_summary(self, summary: dict) -> None:
        self.summary.write_text(json.dumps(summary, indent=2))

    def write_failure(self, record: dict) -> None:
        self.failure_record.write_text(json.dumps(record, indent=2))

    def clear_failure(self) -> None:
        """A resumed run that finishes is finished: the record of its interruption goes (into the log, not lost)."""
        if self.failure_record.exists():
            text = " ".join(self.failure_record.read_text().split())[:500]
            log.info("run finished after an earlier stop; removing its record: %s", text)
            self.failure_record.unlink()

    def report_files(self) -> list[Path]:
        """The files a logger that stores files (MLflow, wandb) receives at the end of a run."""
        report = self.report
        files = [self.summary, report.page, report.classification_text, report.classification_json]
        files += [report.per_source_markdown]
        files += [report.figure(name) for name in ("confusion_matrix", "curves", "gallery")]
        files += [self.card_markdown, self.card_figure, self.augment_preview]
        return [f for f in files if f.is_file()]

    def archive_reports(self) -> Path | None:
        """Training a finished run further writes new reports: the earlier ones move to ``earlier/<time>/`` first,
        so nothing a user has is overwritten. Returns the archive (None when the run had not finished)."""
        if not self.is_finished():
            return None
        archive = self.path / "earlier" / datetime.now().strftime("%Y-%m-%d_%H-%M-%S-%f")
        archive.mkdir(parents=True)
        for path in self.path.iterdir():
            if path.is_file() and path.name not in self.KEPT_ON_RESUME:
                path.rename(archive / path.name)
        log.info("the run had finished; its earlier reports moved to %s", archive)
        return archive

    @classmethod
    def of_checkpoint(cls, checkpoint: str | Path) -> RunDir:
        """``<run>/checkpoints/x.ckpt`` -> ``<run>``; a checkpoint elsewhere: its folder."""
        checkpoint = Path(checkpoint).resolve()
        return cls(checkpoint.parent.parent if checkpoint.parent.name == "checkpoints" else checkpoint.parent)


@dataclass(frozen=True)
class CrossValidationDir:
    """A cross-validation's report (``facemix-cv``, or ``<sweep dir>/cv`` after ``facemix-train cv=5fold``): the
    out-of-fold report set at the top, what ``facemix-compare`` reads from ``cv_summary.json``."""

    path: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))

    @property
    def summary(self) -> Path:
        return self.path / "cv_summary.json"

    @property
    def report(self) -> ReportFiles:
        return ReportFiles(self.path)

    @property
    def oof_predictions(self) -> Path:
        """Every image once: path, source, label, the fold that held it out, its probabilities."""
        return self.path / "oof_predictions.csv"

    @property
    def folds_markdown(self) -> Path:
        return self.path / "folds.md"

    @property
    def label_issues(self) -> Path:
        return self.path / "label_issues.csv"

    @property
    def label_issues_figure(self) -> Path:
        return self.path / "label_issues.png"

    @property
    def label_issues_markdown(self) -> Path:
        return self.path / "label_issues_by_source.md"

    @property
    def tensorboard(self) -> Path:
        return self.path / "tensorboard"

    def external_evaluation(self, tree: str) -> Path:
        """Where ``facemix-evaluate ckpt=<this dir> data=folder ...`` writes the fold ensemble's report."""
        return self.path / "evaluation" / f"external-{tree}-ensemble"

    def export(self, fmt: str) -> Path:
        return self.path / "export" / fmt

    def is_cross_validation(self) -> bool:
        return self.summary.is_file()

    def read_summary(self) -> dict:
        return json.loads(self.summary.read_text())

    def write_summary(self, summary: dict) -> None:
        self.summary.write_text(json.dumps(summary, indent=2))


@contextmanager
def one_writer(run: RunDir) -> Iterator[None]:
    """One run dir, one writer: a second ``facemix-train`` into the same dir (two resumes started together) is
    refused while the first holds the lock; the kernel releases it when the holder exits or is killed."""
    from filelock import FileLock, Timeout

    run.path.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(run.path / ".writer.lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        owner = (run.path / ".writer").read_text().strip() if (run.path / ".writer").is_file() else "another process"
        raise FacemixConfigError(
            f"{run.path} is being written by {owner}: one run dir has one writer, so this command left it alone. "
            "Wait for that run to end (or stop it), then resume: facemix-train ckpt_path=<run dir>."
        ) from None
    try:
        (run.path / ".writer").write_text(f"facemix-train pid {os.getpid()} on {socket.gethostname()}")
        yield
    finally:
        lock.release()


def fresh_dir(path: Path) -> Path:
    """Create and return ``path``, or ``path-2``, ``path-3``...: earlier results are never overwritten."""
    candidate, n = Path(path), 1
    while candidate.exists():
        n += 1
        candidate = Path(path).with_name(f"{Path(path).name}-{n}")
    candidate.mkdir(parents=True)
    return candidate
