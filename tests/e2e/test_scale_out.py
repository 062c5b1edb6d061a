"""Sweeps, DDP, SLURM: the 4-run grid survives failing jobs; DDP ranks (also inside -m) share one run dir."""

import csv
import json

import pytest
import yaml

from facemix.evaluation.compare import compare
from tests.helpers import (
    REPO,
    job_dir,
    run_entry_in_process,
    run_train,
    scores_from_predictions,
    tiny_overrides,
    tiny_sweep_overrides,
)


def _rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _dirs_under(path):
    return {p for p in path.rglob("*") if p.is_dir()} if path.exists() else set()


def test_grid_keeps_finished_jobs_when_others_fail_and_compare_lists_both(data_dir, tmp_path):
    sweep = tmp_path / "grid"
    result = run_train(
        "-m",
        "data=balanced,unbalanced",
        "model=simple_cnn,mobilenetv2",
        *tiny_sweep_overrides(data_dir, sweep),
        "data.image_size=16",  # too small for MobileNetV2: those two jobs fail with a config error
        "trainer.max_epochs=1",
        check=False,
    )
    assert result.returncode != 0  # the sweep reports the failure at its end...
    jobs = sorted(p for p in sweep.iterdir() if p.name[0].isdigit())
    assert len(jobs) == 4  # ...after running every job
    finished = [j for j in jobs if (j / "summary.json").exists()]
    failed = [j for j in jobs if (j / "failed.json").exists()]
    assert len(finished) == 2 and len(failed) == 2
    assert all("image_size" in json.loads((j / "failed.json").read_text())["message"] for j in failed)

    table = compare([sweep], tmp_path / "cmp")
    assert table.count("| finished |") == 2 and table.count("| failed |") == 2
    assert "Runs that did not finish:" in table and "data.image_size=16 is too small" in table
    assert (tmp_path / "cmp" / "comparison.md").exists() and (tmp_path / "cmp" / "comparison.png").exists()
    compare([sweep], tmp_path / "cmp")  # again: a new folder beside the first, nothing replaced
    assert (tmp_path / "cmp-2" / "comparison.md").read_text() == (tmp_path / "cmp" / "comparison.md").read_text()


def test_optuna_search_maximises_val_macro_f1(data_dir, tmp_path):
    sweep = tmp_path / "optuna"
    run_train(
        "hparams_search=optuna",
        "hydra.sweeper.n_trials=2",
        "model=simple_cnn",
        *tiny_sweep_overrides(data_dir, sweep),
        "trainer.max_epochs=1",
    )
    result = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    trials = [json.loads((job_dir(sweep, j) / "summary.json").read_text()) for j in (0, 1)]
    assert result["best_value"] == pytest.approx(max(t["val_f1_best"] for t in trials))
    assert set(result["best_params"]) >= {"model.optimizer.lr", "model.options.dropout"}  # batch size: fixed by the CLI


DDP = ["trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2", "model=simple_cnn"]


def _assert_one_ddp_run(run_dir):
    summary = json.loads((run_dir / "summary.json").read_text())
    # the report is one unpadded pass over the whole test split: recounted from its per-image predictions
    recounted = scores_from_predictions(run_dir / "predictions.csv")
    test_rows = [r for r in _rows(run_dir / "manifest.csv") if r["split"] == "test"]
    assert len(_rows(run_dir / "predictions.csv")) == len(test_rows)
    assert summary["metrics"]["test/f1_macro"] == pytest.approx(recounted["macro_f1"], abs=1e-6)
    assert summary["metrics"]["test/acc"] == pytest.approx(recounted["accuracy"], abs=1e-6)
    assert (run_dir / "train_ddp_process_1.log").exists()  # rank 1 ran, and in this dir
    assert sorted(p.name for p in (run_dir / ".hydra").iterdir()) == ["config.yaml", "hydra.yaml", "overrides.yaml"]
    assert len(list((run_dir / "tensorboard").glob("events.out.tfevents.*"))) >= 1


def test_ddp_on_cpu_writes_one_run_dir(data_dir, tmp_path):
    """Also with the recipe switches that touch the optimizer and the weights (param groups, dropped gradients,
    averaged weights, mixed batches): every rank trains the same way."""
    before = _dirs_under(REPO / "outputs")
    run_dir = tmp_path / "run"
    recipe = ["finetune=discriminative", "averaging=ema", "regularization=mixup"]
    run_train(*DDP, *recipe, *tiny_overrides(data_dir, run_dir), fresh_process=True)
    _assert_one_ddp_run(run_dir)
    assert _dirs_under(REPO / "outputs") == before  # no rank wandered into a default run dir
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_ddp_inside_a_multirun_keeps_one_dir_per_job(data_dir, tmp_path):
    before = _dirs_under(REPO / "outputs")
    sweep = tmp_path / "sweep"
    run_train("-m", "data=balanced,unbalanced", *DDP, *tiny_sweep_overrides(data_dir, sweep), fresh_process=True)
    assert sorted(p.name.split("_")[0] for p in sweep.iterdir() if p.is_dir()) == ["0", "1"]
    for job in (0, 1):
        _assert_one_ddp_run(job_dir(sweep, job))
    assert yaml.safe_load((job_dir(sweep, 1) / ".hydra" / "overrides.yaml").read_text())[0] == "data=unbalanced"
    assert _dirs_under(REPO / "outputs") == before


def test_slurm_launcher_composes_and_submitit_runs_a_job_locally(data_dir, tmp_path):
    composed = run_entry_in_process(
        "facemix.train",
        ["hydra/launcher=slurm", "trainer=ddp", "trainer.devices=4"]
        + ["trainer.num_nodes=2", "hydra.launcher.partition=gpu", "--cfg", "all", "--resolve"],
    )
    assert composed.returncode == 0, composed.stdout[-3000:]
    launcher = yaml.safe_load(composed.stdout)["hydra"]["launcher"]
    assert launcher["_target_"].endswith("submitit_launcher.SlurmLauncher")
    assert (launcher["nodes"], launcher["gpus_per_node"], launcher["tasks_per_node"]) == (2, 4, 4)
    assert launcher["partition"] == "gpu"

    sweep = tmp_path / "local"
    run_train(
        "-m",
        "hydra/launcher=submitit_local",
        "model=simple_cnn",
        *tiny_sweep_overrides(data_dir, sweep),
        fresh_process=True,
    )
    assert (job_dir(sweep, 0) / "summary.json").exists() and (sweep / ".submitit").is_dir()


def test_gpu_trainer_composes_its_fast_defaults():
    composed = run_entry_in_process("facemix.train", ["trainer=gpu", "model=vgg16", "--cfg", "job"])
    assert composed.returncode == 0, composed.stdout[-3000:]
    cfg = yaml.safe_load(composed.stdout)
    assert cfg["trainer"]["accelerator"] == "gpu"
    # chosen on the machine (facemix.training.speed; the decisions per GPU kind: tests/unit/test_tuning.py)
    assert cfg["trainer"]["precision"] == "auto" and cfg["model"]["channels_last"] == "auto"
    assert cfg["model"]["compile"] == "auto"
    assert cfg["data"]["pin_memory"] is True and cfg["data"]["num_workers"] == 8
    assert cfg["trainer"]["max_epochs"] == 12  # the rest of trainer/default still applies
