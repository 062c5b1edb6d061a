"""The run dir object: its state, what a resume archives and keeps, what a new run refuses, reading runs back."""

from __future__ import annotations

import json

import yaml

from facemix.run.records import read_history, read_run
from facemix.run.rundir import RunDir, fresh_dir


def _finished(tmp_path) -> RunDir:
    run = RunDir(tmp_path / "run")
    run.hydra.mkdir(parents=True)
    run.config.write_text("seed: 1\n")
    run.overrides.write_text(yaml.safe_dump(["+model.options.dropout=0.3", "~callbacks.preview", "seed=3"]))
    for path in (run.train_log, run.manifest, run.card_json, run.card_markdown, run.card_figure):
        path.write_text(f"kept {path.name}")
    run.write_summary({"test_report": {"accuracy": 0.5}})
    run.report.classification_json.write_text("{}")
    run.report.figure("gallery").write_text("old gallery")
    return run


def test_resuming_a_finished_run_moves_its_reports_aside_and_keeps_log_and_data(tmp_path):
    run = _finished(tmp_path)
    before = {p.name: p.read_text() for p in run.path.iterdir() if p.is_file()}
    archive = run.archive_reports()
    assert archive is not None and archive.parent == run.path / "earlier"
    kept = {p.name for p in run.path.iterdir() if p.is_file()}
    assert kept == set(RunDir.KEPT_ON_RESUME) & set(before)
    moved = {p.name: p.read_text() for p in archive.iterdir()}
    assert moved == {k: v for k, v in before.items() if k not in kept}  # every report, unchanged, in the archive
    assert not run.is_finished() and run.archive_reports() is None  # nothing more to archive


def test_status_and_markers_say_what_a_folder_holds(tmp_path):
    run = _finished(tmp_path)
    assert run.status() == "finished" and run.is_training_run()
    assert run.markers() == [".hydra", "summary.json", "manifest.csv"]
    other = RunDir(tmp_path / "other")
    other.path.mkdir()
    (other.path / "train.log").write_text("Traceback (most recent call last)")
    assert other.status() == "failed" and not other.is_training_run()  # no .hydra config: not a run
    other.write_failure({"status": "interrupted"})
    assert other.status() == "interrupted"


def test_read_run_strips_add_and_delete_prefixes_from_saved_overrides(tmp_path):
    record = read_run(_finished(tmp_path).path)
    assert record.status == "finished" and record.report == {"accuracy": 0.5}
    assert record.overrides == {"model.options.dropout": "0.3", "callbacks.preview": "", "seed": "3"}


def test_history_reads_each_epoch_of_the_csv_log(tmp_path):
    run = RunDir(tmp_path)
    run.csv_logs.mkdir()
    run.metrics_csv.write_text("epoch,step,train/loss,val/loss\n0,4,1.5,\n0,4,,1.25\n1,9,0.5,0.75\n")
    assert read_history(run) == {"train/loss": [(0, 1.5), (1, 0.5)], "val/loss": [(0, 1.25), (1, 0.75)]}


def test_a_fresh_dir_never_reuses_an_existing_one(tmp_path):
    first, second = fresh_dir(tmp_path / "eval"), fresh_dir(tmp_path / "eval")
    assert (first.name, second.name) == ("eval", "eval-2") and json.dumps(str(second))
