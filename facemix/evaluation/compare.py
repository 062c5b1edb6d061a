"""``facemix-compare``: one table across runs, the paper-style comparison, with mean ± std over seeds and paired
bootstrap differences on shared test images.

Prints Markdown, writes ``comparison.csv`` / ``.md`` and ``comparison.png`` (test macro F1 and per-class F1 per run)
into a new folder. Failed or unfinished runs are listed as such instead of vanishing.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

from facemix.errors import FacemixConfigError
from facemix.evaluation.metrics import DEFAULT_RESAMPLES, paired_bootstrap, seed_spread
from facemix.reports.pages import write_comparison_page
from facemix.reports.plots import save_figure
from facemix.reports.tables import comparison_chart, markdown
from facemix.run.overrides import is_place
from facemix.run.records import RunRecord, find_cross_validations, find_runs, read_cross_validation, read_run
from facemix.run.rundir import ReportFiles, fresh_dir

SEED_KEY = "seed"
TABLE, MARKDOWN, CHART = "comparison.csv", "comparison.md", "comparison.png"


def differing_overrides(runs: list[RunRecord]) -> list[str]:
    keys = sorted({k for r in runs for k in r.overrides if not is_place(k)})
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
        "macro F1 95% CI",
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
                _ci(rep.get("intervals", {}).get("macro f1")),
                *(fmt(rep.get(c, {}).get("f1-score")) for c in class_names),
                fmt(r.summary.get("best_epoch")),
                fmt(r.summary.get("wall_time_s"), 1),
                f"{r.summary['parameters']:,}" if "parameters" in r.summary else "",
            ]
        )
    return header, rows


def _ci(interval: dict | None) -> str:
    return f"[{interval['low']:.3f}, {interval['high']:.3f}]" if interval else ""


def variant_of(run: RunRecord) -> tuple[tuple[str, str], ...]:
    """What a run is apart from its seed: runs with equal variants are repeats of one experiment."""
    return tuple(sorted((k, v) for k, v in run.overrides.items() if not is_place(k) and k != SEED_KEY))


SPREAD_METRICS = ("accuracy", "macro f1")


def seed_table(runs: list[RunRecord]) -> str:
    """Mean ± std over the seeds of each variant (finished runs only); empty when no variant has two seeds."""
    groups: dict[tuple, list[RunRecord]] = {}
    for r in runs:
        if r.report:
            groups.setdefault(variant_of(r), []).append(r)
    if not any(len(g) > 1 for g in groups.values()):
        return ""
    class_names = next(iter(groups.values()))[0].summary.get("class_names", [])
    names = [*SPREAD_METRICS, *(f"{m} {c}" for c in class_names for m in ("precision", "recall", "f1"))]
    header = ["variant", "seeds", *(f"test {n}" for n in names)]
    rows = []
    for variant, members in groups.items():
        values = [_metric_values(m.report, class_names) for m in members]
        spreads = [seed_spread([v[n] for v in values]) for n in names]
        rows.append(
            [_variant_label(variant, runs), str(len(members)), *(f"{x['mean']:.3f} ± {x['std']:.3f}" for x in spreads)]
        )
    return "Across seeds (mean ± sample std over the runs that differ only in seed):\n\n" + markdown(header, rows)


def _metric_values(report: dict, class_names: list[str]) -> dict[str, float]:
    out = {"accuracy": report["accuracy"], "macro f1": report["macro avg"]["f1-score"]}
    for c in class_names:
        out[f"precision {c}"], out[f"recall {c}"] = report[c]["precision"], report[c]["recall"]
        out[f"f1 {c}"] = report[c]["f1-score"]
    return out


def read_predictions(run: RunRecord) -> dict[str, tuple[str, str]] | None:
    """``path -> (true, predicted)`` from the run's report predictions, or None when the run has none."""
    path = ReportFiles(run.path).predictions
    if not path.exists():
        return None
    with open(path, newline="") as fh:
        return {row["path"]: (row["true"], row["predicted"]) for row in csv.DictReader(fh)}


def paired_table(runs: list[RunRecord], labels: list[str], resamples: int = DEFAULT_RESAMPLES) -> str:
    """Each finished run against a run of the baseline variant (the first run's) that predicted exactly the same
    test images (with seeds that change the split: the baseline run of the same seed): the paired bootstrap
    interval of each difference; ``*`` marks an interval that excludes zero. Runs with no such partner are left
    out (their test images differ, so no pairing is possible)."""
    finished = [(r, lab, read_predictions(r)) for r, lab in zip(runs, labels, strict=True) if r.report]
    finished = [(r, lab, p) for r, lab, p in finished if p]
    if len(finished) < 2:
        return ""
    baseline_variant = variant_of(finished[0][0])
    baselines = [(r, lab, p) for r, lab, p in finished if variant_of(r) == baseline_variant]
    class_names = finished[0][0].summary.get("class_names", [])
    index = {c: i for i, c in enumerate(class_names)}
    names = [*SPREAD_METRICS, *(f"f1 {c}" for c in class_names)]
    header = ["run", "vs baseline", "images", *(f"Δ {n} [95% CI]" for n in names)]
    rows = []
    for run, label, preds in finished:
        if variant_of(run) == baseline_variant:
            continue
        partner = next(((lab, p) for _, lab, p in baselines if set(p) == set(preds)), None)
        if partner is None:
            continue
        base_label, base = partner
        shared = sorted(preds)
        if any(preds[p][0] != base[p][0] for p in shared):
            continue  # same files, different labels: not the same test set
        y_true = [index[base[p][0]] for p in shared]
        diff = paired_bootstrap(
            y_true, [index[base[p][1]] for p in shared], [index[preds[p][1]] for p in shared], class_names, resamples
        )
        cells = [
            f"{d['difference']:+.3f} [{d['low']:+.3f}, {d['high']:+.3f}]{' *' if d['excludes_zero'] else ''}"
            for d in (diff[n] for n in names)
        ]
        rows.append([label, base_label, str(len(shared)), *cells])
    if not rows:
        return ""
    return (
        f"Paired differences against the baseline variant ({_variant_label(baseline_variant, runs)}) on the same "
        f"test images, {resamples} bootstrap resamples; * = the 95 % interval excludes zero:\n\n"
        + markdown(header, rows)
    )


def _variant_label(variant: tuple[tuple[str, str], ...], runs: list[RunRecord]) -> str:
    """Only the keys that tell variants apart (not the ones every run shares)."""
    differing = set(differing_overrides(runs)) - {SEED_KEY}
    return " ".join(f"{k}={v}" for k, v in variant if k in differing) or "(defaults)"


def _records(paths: Sequence[str | Path]) -> list[RunRecord]:
    """The runs and cross-validations at or below ``paths``; the fold runs of a cross-validation found here are
    its row (their held-out folds are in its out-of-fold report), not rows of their own."""
    crossvals = [read_cross_validation(p) for p in find_cross_validations(paths)]
    folded = {str(Path(f).resolve()) for cv in crossvals for f in cv.summary.get("fold_runs", [])}
    runs = [read_run(p) for p in find_runs(paths) if str(p.resolve()) not in folded]
    if not runs and not crossvals:
        raise FacemixConfigError(
            f"runs={[str(p) for p in paths]}: no facemix run dirs (folders with .hydra/config.yaml and a train.log, "
            "checkpoints/ or summary.json) or cross-validations (cv_summary.json) at or below these paths. Pass run "
            "dirs, a multirun dir or outputs/."
        )
    return runs + crossvals


def compare(paths: Sequence[str | Path], out_dir: str | Path) -> str:
    """Tabulate the runs at or below ``paths``; write comparison.csv / .md / .png into ``out_dir`` (an empty or new
    folder; one that already holds a comparison gets a ``-2``, ``-3``... sibling, so nothing earlier is replaced)."""
    runs = _records(paths)
    header, rows = comparison_rows(runs)
    table = markdown(header, rows)
    failures = [f"- {r.path} ({r.status}): {r.error}" for r in runs if r.error]
    if failures:
        table += "\nRuns that did not finish:\n" + "\n".join(failures) + "\n"
    keys = differing_overrides(runs)
    labels = [" ".join(r.overrides.get(k, "") for k in keys) or r.path.name for r in runs]
    for section in (seed_table(runs), paired_table(runs, labels)):
        if section:
            table += "\n" + section
    out = Path(out_dir)
    if not (out.is_dir() and not any((out / name).exists() for name in (TABLE, MARKDOWN, CHART))):
        out = fresh_dir(out)  # an empty folder is used as it is; one holding a comparison gets a new sibling
    with open(out / TABLE, "w", newline="") as fh:
        csv.writer(fh).writerows([header, *rows])
    (out / MARKDOWN).write_text(table)
    finished = [(r, lab) for r, lab in zip(runs, labels, strict=True) if r.report]
    class_names = finished[0][0].summary.get("class_names", []) if finished else []
    chart = comparison_chart([lab for _, lab in finished], [r.report for r, _ in finished], class_names)
    save_figure(chart, out / CHART)
    page = write_comparison_page(out, table, out / CHART)
    print(table)
    print(f"written: {out / TABLE}, {out / MARKDOWN}, {out / CHART}, {page}")
    return table
