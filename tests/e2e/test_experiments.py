"""Every experiment config runs as is (tiny: 32 px, 2 batches), and composes to what its study used."""

import csv
import json

import pytest
import yaml

from tests.helpers import job_dir, make_imagefolder, run_train, tiny_overrides, tiny_sweep_overrides

DEMO_EXPERIMENTS = [
    "paper_unbalanced",
    "paper_balanced",
    "paper_regularized",
    "original_vgg16_mask",
    "original_mobilenet_realfake",
    "anime_cnn",
]


def _job_config(job_dir) -> dict:
    return yaml.safe_load((job_dir / ".hydra" / "config.yaml").read_text())


def test_demo_experiments_run_and_compose_as_their_studies(data_dir, tmp_path):
    sweep = tmp_path / "sweep"
    run_train(
        "-m",
        f"experiment={','.join(DEMO_EXPERIMENTS)}",
        *tiny_sweep_overrides(data_dir, sweep),
        "trainer.max_epochs=1",
        "data.offline.target_per_class=40",  # the studies' 5000 per class, shrunk
        timeout=600,
    )
    jobs = {_job_config(d)["task_name"]: d for d in sweep.iterdir() if (d / ".hydra").is_dir()}
    assert sorted(jobs) == sorted(DEMO_EXPERIMENTS)
    for name, job in jobs.items():
        summary = json.loads((job / "summary.json").read_text())
        assert summary["test_report"]["macro avg"]["support"] > 0, name

    cfg = {name: _job_config(job) for name, job in jobs.items()}
    assert cfg["paper_unbalanced"]["data"]["balance"] == "none"
    assert cfg["paper_unbalanced"]["model"]["options"]["hidden"] == [256, 256]
    split = cfg["paper_unbalanced"]["data"]["split"]
    assert split == {"train": 0.6, "val": 0.3, "test": 0.1, "folds": None, "fold": 0}  # one split, no folds
    assert cfg["paper_balanced"]["data"]["balance"] == "offline"
    assert cfg["paper_regularized"]["data"]["samples_per_epoch"] == 4000
    assert cfg["paper_regularized"]["augment"]["affine"]["rotate"] == [-20, 20]  # augment=keras
    assert cfg["paper_regularized"]["model"]["options"]["dropout"] == 0.5
    # offline balancing reached the (shrunk) target for every class of the train split
    with open(jobs["paper_balanced"] / "manifest.csv") as fh:
        train = [r["label"] for r in csv.DictReader(fh) if r["split"] == "train"]
    assert {c: train.count(c) for c in set(train)} == {"real": 40, "fake": 40, "masked": 40}
    assert json.loads((jobs["original_vgg16_mask"] / "summary.json").read_text())["class_names"] == [
        "with_mask",
        "without_mask",
    ]
    realfake = json.loads((jobs["original_mobilenet_realfake"] / "summary.json").read_text())
    assert realfake["class_names"] == ["real", "fake"]
    with open(jobs["original_mobilenet_realfake"] / "manifest.csv") as fh:
        assert {r["source"] for r in csv.DictReader(fh)} == {"realfake"}
    assert cfg["anime_cnn"]["model"]["options"]["channels"] == [32, 64, 128, 128, 256]


def test_momee_mobilenetv2_stops_on_its_accuracy_thresholds(data_dir, tmp_path):
    run_dir = tmp_path / "run"
    run_train(
        "experiment=momee_mobilenetv2",
        *tiny_overrides(data_dir, run_dir),
        "trainer.max_epochs=4",
        "callbacks.accuracy_stop.train_acc=-1",  # any accuracy passes: stop after the first epoch
        "callbacks.accuracy_stop.val_acc=-1",
    )
    cfg = _job_config(run_dir)
    assert cfg["model"]["freeze_backbone"] is True and cfg["model"]["options"]["conv_head"] == 128
    assert {"accuracy_stop", "early_stopping"} <= set(cfg["callbacks"])
    with open(run_dir / "csv" / "metrics.csv") as fh:
        epochs = {r["epoch"] for r in csv.DictReader(fh) if r.get("val/loss")}
    assert epochs == {"0"}


@pytest.mark.parametrize("layout", ["split/class"])  # <class>/ folders: tests/e2e/test_scan_and_bad_data.py
def test_muffin_chihuahua_experiments_on_any_binary_folder(data_dir, tmp_path, layout):
    if layout == "class":
        root = make_imagefolder(tmp_path / "imgs", {"chihuahua": 20, "muffin": 20})
    else:
        root = tmp_path / "imgs"
        make_imagefolder(root / "train", {"chihuahua": 16, "muffin": 16})
        make_imagefolder(root / "test", {"chihuahua": 4, "muffin": 4}, seed=1)
    sweep = tmp_path / "sweep"
    run_train(
        "-m",
        "experiment=muffin_chihuahua_base,muffin_chihuahua_vgg16",
        f"data.root={root}",
        *(o for o in tiny_sweep_overrides(data_dir, sweep) if not o.startswith("data.demo")),  # no demo here
        "trainer.max_epochs=1",
    )
    for job in (0, 1):
        summary = json.loads((job_dir(sweep, job) / "summary.json").read_text())
        assert summary["class_names"] == ["chihuahua", "muffin"]  # binary: 2-way softmax, names from folders
        assert summary["report_split"] == "val"  # the study's 80/20 split has no test part
        assert summary["test_report"]["macro avg"]["support"] > 0
    assert _job_config(job_dir(sweep, 0))["model"]["options"]["pool"] is False
