"""What ``report.html`` shows for a run, a comparison and a cross-validation: the files each already holds, in the
order a reader looks at them (headline numbers, the report, its figures, per source, the data, how it ran)."""

from __future__ import annotations

from pathlib import Path

import yaml

from facemix.reports.html import Section, figures, markdown_to_html, preformatted, render_page
from facemix.run.rundir import CrossValidationDir, ReportFiles, RunDir


def _text(path: Path) -> str:
    return path.read_text() if path.is_file() else ""


def _kpis(summary: dict) -> list[tuple[str, str]]:
    report = summary.get("test_report") or {}
    ci = (report.get("intervals") or {}).get("macro f1")
    kpis = []
    if report:
        span = f" [{ci['low']:.3f}, {ci['high']:.3f}]" if ci else ""
        kpis += [(f"{report['macro avg']['f1-score']:.3f}{span}", "macro F1 (95% CI)")]
        kpis += [(f"{report['accuracy']:.3f}", "accuracy"), (str(report["macro avg"]["support"]), "images")]
    for key, label, fmt in (
        ("val_f1_best", "best val macro F1", "{:.3f}"),
        ("best_epoch", "best epoch", "{}"),
        ("train_images_per_s", "train images/s", "{:.0f}"),
        ("wall_time_s", "wall time (s)", "{:.0f}"),
    ):
        if summary.get(key) is not None:
            kpis.append((fmt.format(summary[key]), label))
    return kpis


def _report_sections(files: ReportFiles, split: str) -> list[Section]:
    return [
        Section(f"Classification report ({split})", preformatted(_text(files.classification_text))),
        Section(
            "Figures",
            figures=figures(
                (files.figure("confusion_matrix"), "confusion matrix (counts, row-normalised)"),
                (files.figure("reliability"), "reliability: confidence against accuracy"),
                (files.figure("curves"), "loss and accuracy per epoch"),
                (files.figure("gallery"), "prediction gallery, mistakes first"),
                (files.figure("gradcam"), "Grad-CAM of the same images"),
            ),
        ),
        Section("Per source", markdown_to_html(_text(files.per_source_markdown))),
    ]


def _settings(run: RunDir, summary: dict) -> Section:
    rows = ["| setting | value | why |", "| --- | --- | --- |"]
    rows += [f"| {k} | {v['value']} | {v['reason']} |" for k, v in (summary.get("speed_settings") or {}).items()]
    overrides = yaml.safe_load(run.overrides.read_text()) if run.overrides.is_file() else []
    changed = "\n".join(f"- `{o}`" for o in overrides) or "(the defaults)"
    return Section("How it ran", markdown_to_html("\n".join(rows)) + markdown_to_html(f"Overrides:\n\n{changed}"))


def write_run_page(run: RunDir) -> Path:
    summary = run.read_summary()
    sections = _report_sections(run.report, summary.get("report_split", "test"))
    card = Section(
        "Data",
        markdown_to_html(_text(run.card_markdown)),
        figures(
            (run.card_figure, "images per class, split and source"),
            (run.label_conflicts_figure, "copies carrying different classes (dropped)"),
            (run.augment_preview, "augmented train images, as the model sees them"),
        ),
    )
    sections += [card, _settings(run, summary)]
    page = render_page(
        f"facemix run {summary.get('run_name') or run.path.name}", str(run.path), sections, _kpis(summary)
    )
    run.report.page.write_text(page)
    return run.report.page


def write_cv_page(cv: CrossValidationDir) -> Path:
    summary = cv.read_summary()
    sections = _report_sections(cv.report, f"out-of-fold, {summary['images']} images, {summary['folds']} folds")
    sections.insert(1, Section("Per fold", markdown_to_html(_text(cv.folds_markdown))))
    sections.append(
        Section(
            f"Label issues ({summary['label_issues']} suspected)",
            markdown_to_html(_text(cv.label_issues_markdown)),
            figures((cv.label_issues_figure, "given label -> the models' class (self-confidence)")),
        )
    )
    variant = " ".join(f"{k}={v}" for k, v in summary.get("variant", {}).items())
    cv.report.page.write_text(
        render_page("facemix cross-validation", variant or str(cv.path), sections, _kpis(summary))
    )
    return cv.report.page


def write_comparison_page(out: Path, markdown: str, chart: Path) -> Path:
    sections = [Section("Runs", markdown_to_html(markdown), figures((chart, "test macro F1 and F1 per class")))]
    page = ReportFiles(out).page
    page.write_text(render_page("facemix comparison", str(out), sections))
    return page
