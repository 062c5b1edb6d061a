"""A k-fold cross-validation assembled from its fold runs: every image predicted once by a model that never saw it.

The fold runs are ordinary run dirs (``data.split.folds=K data.split.fold=i``, each reporting its best checkpoint on
its held-out fold); assembling reads their report predictions, checks they partition the data (every image in
exactly one held-out fold), and writes one report set over all N images: out-of-fold predictions with bootstrap
intervals, a per-fold table with mean ± std, the per-source breakdown, confusion matrix, the images whose label the
models disagree with (``facemix.evaluation.label_issues``), and ``cv_summary.json``, which ``facemix-compare`` reads
like a run's summary (so two variants' CVs pair on all N images).
"""

from __future__ import annotations

import csv
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import yaml

from facemix.augment.presets import eval_transform
from facemix.data.dataset import ManifestDataset
from facemix.data.manifest import Sample, read_manifest
from facemix.data.split import SPLITS
from facemix.errors import FacemixConfigError
from facemix.evaluation.inference import Predictions
from facemix.evaluation.label_issues import LabelIssue, label_issues
from facemix.evaluation.metrics import seed_spread
from facemix.evaluation.report import Evaluation, ReportOptions, write_report_set
from facemix.evaluation.sets import EvaluationSet
from facemix.reports.pages import write_cv_page
from facemix.reports.plots import image_grid, save_figure, to_uint8_image
from facemix.reports.tables import markdown
from facemix.run.overrides import is_place
from facemix.run.records import find_runs, read_run
from facemix.run.rundir import CrossValidationDir, RunDir

log = logging.getLogger("facemix.crossval")
FOLD_KEY = "data.split.fold"


@dataclass(frozen=True)
class FoldRun:
    run: RunDir
    fold: int
    folds: int
    variant: tuple[tuple[str, str], ...]  # the run's overrides apart from its fold (and where it wrote)
    summary: dict


def fold_of(run: RunDir) -> tuple[int, int] | None:
    """``(fold, folds)`` of a cross-validation fold run, from its saved config; None for an ordinary run."""
    if not run.config.is_file():
        return None
    split = ((yaml.safe_load(run.config.read_text()) or {}).get("data") or {}).get("split") or {}
    folds = split.get("folds")
    return (int(split.get("fold") or 0), int(folds)) if folds else None


def fold_runs(paths: Sequence[str | Path]) -> list[FoldRun]:
    """The finished fold runs at or below ``paths`` (unfinished ones are named: a CV needs every fold)."""
    found, unfinished = [], []
    for path in find_runs(paths):
        run = RunDir(path)
        fold = fold_of(run)
        if fold is None:
            continue
        if not run.is_finished():
            unfinished.append(f"{path} ({run.status()})")
            continue
        record = read_run(path)
        variant = tuple(sorted((k, v) for k, v in record.overrides.items() if k != FOLD_KEY and not is_place(k)))
        found.append(FoldRun(run, fold[0], fold[1], variant, record.summary))
    if unfinished:
        raise FacemixConfigError(
            f"cross-validation needs every fold finished; these are not: {'; '.join(unfinished)}. Resume them "
            "(facemix-train ckpt_path=<run dir>) and assemble again."
        )
    return found


def by_variant(runs: Sequence[FoldRun]) -> dict[tuple, list[FoldRun]]:
    groups: dict[tuple, list[FoldRun]] = {}
    for r in runs:
        groups.setdefault(r.variant, []).append(r)
    return {variant: sorted(members, key=lambda r: r.fold) for variant, members in groups.items()}


def _check_complete(runs: Sequence[FoldRun]) -> None:
    folds = {r.folds for r in runs}
    counts = Counter(r.fold for r in runs)
    k = folds.pop() if len(folds) == 1 else None
    if k is None or sorted(counts) != list(range(k)) or max(counts.values()) > 1:
        listing = ", ".join(f"fold {r.fold}/{r.folds} in {r.run.path}" for r in runs)
        raise FacemixConfigError(
            f"these runs are not one complete cross-validation (each fold 0..K-1 exactly once, one K): {listing}. "
            "Run the missing folds (data.split.fold=<i>) or pass the runs of one CV only."
        )


def _read_predictions(run: RunDir) -> list[dict]:
    with open(run.report.predictions, newline="") as fh:
        return list(csv.DictReader(fh))


def out_of_fold(runs: Sequence[FoldRun]) -> tuple[list[Sample], np.ndarray, np.ndarray, list[str]]:
    """Every image's held-out prediction: (rows, probabilities, fold per image, class names), in manifest order.
    Refuses folds that do not partition the data (an image held out twice, or never)."""
    class_names = list(runs[0].summary["class_names"])
    rows = [s for s in read_manifest(runs[0].run.manifest) if s.split in SPLITS and not s.parent]
    position = {s.path: i for i, s in enumerate(rows)}
    probs = np.full((len(rows), len(class_names)), np.nan)
    folds = np.full(len(rows), -1)
    for r in runs:
        for row in _read_predictions(r.run):
            i = position.get(row["path"])
            if i is None or folds[i] >= 0:
                why = "held out twice" if i is not None else "not in the manifest of fold 0"
                raise FacemixConfigError(f"{row['path']} is {why}: the folds of these runs differ. {_SAME_FOLDS}")
            probs[i] = [float(row[f"prob_{c}"]) for c in class_names]
            folds[i] = r.fold
    if (folds < 0).any():
        missing = [rows[i].path for i in np.flatnonzero(folds < 0)[:3]]
        raise FacemixConfigError(f"{int((folds < 0).sum())} images were never held out, e.g. {missing}. {_SAME_FOLDS}")
    return rows, probs, folds, class_names


_SAME_FOLDS = "The fold runs of one CV must share data, seed and data.split (only data.split.fold differs)."


def _per_fold_table(runs: Sequence[FoldRun], class_names: Sequence[str]) -> tuple[str, list[dict]]:
    names = ["accuracy", "macro f1", *(f"f1 {c}" for c in class_names)]

    def values(report: dict) -> list[float]:
        return [report["accuracy"], report["macro avg"]["f1-score"], *(report[c]["f1-score"] for c in class_names)]

    per_fold = [dict(zip(names, values(r.summary["test_report"]), strict=True)) for r in runs]
    rows = [[str(r.fold), str(r.summary["test_report"]["macro avg"]["support"]), *(f"{v:.3f}" for v in f.values())]
            for r, f in zip(runs, per_fold, strict=True)]  # fmt: skip
    spread = [seed_spread([f[n] for f in per_fold]) for n in names]
    rows.append(["mean ± std", "", *(f"{s['mean']:.3f} ± {s['std']:.3f}" for s in spread)])
    return markdown(["fold", "images", *names], rows), per_fold


def _write_oof(path: Path, rows, labels, folds, probs, class_names) -> None:
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", "source", "label", "fold", *(f"prob_{c}" for c in class_names)])
        for s, fold, p in zip(rows, folds, probs, strict=True):
            writer.writerow([s.path, s.source, s.label, int(fold), *(f"{v:.6f}" for v in p)])


def _write_label_issues(cv: CrossValidationDir, rows, issues: Sequence[LabelIssue], class_names, dataset) -> None:
    with open(cv.label_issues, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", "source", "given", "suggested", "score"])
        for issue in issues:
            s = rows[issue.index]
            writer.writerow(
                [s.path, s.source, class_names[issue.given], class_names[issue.suggested], f"{issue.score:.4f}"]
            )
    shown = issues[:24]
    pictures = [to_uint8_image(dataset[i.index][0]) for i in shown]
    titles = [f"{class_names[i.given]} -> {class_names[i.suggested]}\n{i.score:.2f}" for i in shown]
    chunks = [slice(k, k + 8) for k in range(0, max(1, len(shown)), 8)]
    grid = image_grid([pictures[c] or [None] for c in chunks], [titles[c] for c in chunks])
    save_figure(grid, cv.label_issues_figure)


def label_issue_table(rows: Sequence[Sample], issues: Sequence[LabelIssue], class_names) -> str:
    """Per source and given label: images, suspected, share (which source's labels disagree with the rest)."""
    flagged = Counter((rows[i.index].source, rows[i.index].label) for i in issues)
    totals = Counter((s.source, s.label) for s in rows)
    lines = [[src, lab, str(n), str(flagged[(src, lab)]), f"{flagged[(src, lab)] / n:.1%}"]
             for (src, lab), n in sorted(totals.items())]  # fmt: skip
    return markdown(["source", "given label", "images", "suspected", "share"], lines)


def assemble(runs: Sequence[FoldRun], out: Path, options: ReportOptions) -> Evaluation:
    """Write the CV report of one variant's fold runs into ``out``."""
    runs = sorted(runs, key=lambda r: r.fold)
    _check_complete(runs)
    rows, probs, folds, class_names = out_of_fold(runs)
    cv = CrossValidationDir(out)
    cv.path.mkdir(parents=True, exist_ok=True)
    index = {c: i for i, c in enumerate(class_names)}
    labels = np.array([index[s.label] for s in rows])
    _write_oof(cv.oof_predictions, rows, labels, folds, probs, class_names)
    prep = runs[0].summary["preprocessing"]
    dataset = ManifestDataset(rows, index, eval_transform(prep["image_size"], prep.get("interpolation", "area")))
    predictions = Predictions(np.log(np.clip(probs, 1e-12, None)), 1.0, labels)
    options = replace(options, cam=False, tensorboard=False)  # no one model: no Grad-CAM
    data = EvaluationSet(rows, dataset, "out-of-fold")
    evaluation = write_report_set(cv.report, data, predictions, class_names, options)
    table, per_fold = _per_fold_table(runs, class_names)
    issues = label_issues(labels, probs)
    _write_label_issues(cv, rows, issues, class_names, dataset)
    cv.folds_markdown.write_text(table)
    cv.label_issues_markdown.write_text(label_issue_table(rows, issues, class_names))
    summary = {
        "kind": "cross-validation",
        "folds": len(runs),
        "images": len(rows),
        "class_names": class_names,
        "fold_runs": [str(r.run.path) for r in runs],
        "variant": dict(runs[0].variant),
        "preprocessing": prep,
        "per_fold": per_fold,
        "label_issues": len(issues),
        "test_report": evaluation.report,
    }
    cv.write_summary(summary)
    write_cv_page(cv)
    _log_to_tensorboard(cv, per_fold, evaluation.report)
    print(f"\nPer fold:\n{table}\n{len(issues)} suspected label issues: {cv.label_issues}")
    return evaluation


def _log_to_tensorboard(cv: CrossValidationDir, per_fold: list[dict], report: dict) -> None:
    from torch.utils.tensorboard import SummaryWriter

    with SummaryWriter(str(cv.tensorboard)) as writer:
        for fold, values in enumerate(per_fold):
            for name, value in values.items():
                writer.add_scalar(f"fold/{name.replace(' ', '_')}", value, fold)
        writer.add_scalar("oof/accuracy", report["accuracy"], 0)
        writer.add_scalar("oof/f1_macro", report["macro avg"]["f1-score"], 0)


def variant_label(variant: tuple[tuple[str, str], ...], everyone: Sequence[tuple]) -> str:
    """What tells this variant apart from the others of the sweep (``data=balanced``), or ``all``."""
    shared = set.intersection(*(set(v) for v in everyone)) if everyone else set()
    return " ".join(f"{k}={v}" for k, v in variant if (k, v) not in shared) or "all"


def assemble_all(paths: Sequence[str | Path], out: Path, options: ReportOptions) -> list[Path]:
    """One CV report per variant found at or below ``paths``: ``out`` itself for one, ``out/<i>_<variant>`` for
    several."""
    groups = by_variant(fold_runs(paths))
    if not groups:
        raise FacemixConfigError(
            f"no cross-validation fold runs (runs with data.split.folds set) at or below {[str(p) for p in paths]}. "
            "Run one with facemix-train cv=5fold (or -m data.split.folds=5 'data.split.fold=range(5)')."
        )
    written = []
    for i, (variant, members) in enumerate(groups.items()):
        label = variant_label(variant, list(groups))
        target = out if len(groups) == 1 else out / f"{i}_{''.join(c if c.isalnum() else '_' for c in label)[:60]}"
        log.info("cross-validation %s: %d folds -> %s", label, len(members), target)
        assemble(members, target, options)
        written.append(target)
    return written
