"""The real ``python -m facemix.train`` with tiny overrides: artefacts exist and parse."""

import csv
import json

import pytest
import torch

from tests.helpers import count_tiles, run_train, scores_from_predictions, tensorboard_scalars, tiny_overrides

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(
    ("model", "data", "cache"), [("vgg16", "balanced", "true"), ("mobilenetv2", "unbalanced", "false")]
)
def test_train_writes_checkpoints_curves_and_report(data_dir, tmp_path, model, data, cache):
    run_dir = tmp_path / "run"
    cache_dir = tmp_path / "image_cache"
    result = run_train(
        f"model={model}",
        f"data={data}",
        f"data.cache={cache}",
        f"data.cache_dir={cache_dir}",
        *tiny_overrides(data_dir, run_dir),
    )
    assert any(cache_dir.glob("32px/*.npy")) == (cache == "true")

    ckpts = sorted(p.name for p in (run_dir / "checkpoints").glob("*.ckpt"))
    assert "last.ckpt" in ckpts and any(n.startswith("epoch_") for n in ckpts)
    ckpt = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert ckpt["hyper_parameters"]["class_names"] == ["real", "fake", "masked"]
    assert ckpt["hyper_parameters"]["name"] == model

    scalars = tensorboard_scalars(run_dir)
    for tag in (
        "train/loss",
        "val/loss",
        "train/acc",
        "val/acc",
        "val/f1_macro",
        "val/f1_fake",
        "test/f1_macro",
        "train/perf/data_wait_fraction",
        "train/perf/train_images_per_s",
        "train/lr",
    ):
        assert tag in scalars, sorted(scalars)
    assert len(scalars["train/loss"]) == 2 and len(scalars["val/acc"]) == 2  # one point per epoch
    assert "epoch" not in scalars and "train/epoch" not in scalars  # no clutter card

    report = json.loads((run_dir / "classification_report.json").read_text())
    with open(run_dir / "manifest.csv") as fh:
        test_rows = [r for r in csv.DictReader(fh) if r["split"] == "test"]
    assert report["macro avg"]["support"] == len(test_rows)
    assert set(report) >= {"real", "fake", "masked", "accuracy", "macro avg", "weighted avg"}
    text = (run_dir / "classification_report.txt").read_text()
    assert "precision" in text and "macro avg" in text and "Classification report" in result.stdout
    recounted = scores_from_predictions(run_dir / "predictions.csv")  # counted again, not copied
    assert abs(report["macro avg"]["f1-score"] - recounted["macro_f1"]) < 1e-9
    assert abs(scalars["test/f1_macro"][-1] - recounted["macro_f1"]) < 1e-4  # TensorBoard shows the same number
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["best_checkpoint"].endswith(".ckpt")
    assert 0 <= summary["data_wait_fraction"] < 1 and summary["train_images_per_s"] > 0


def test_unknown_model_fails_with_the_list(data_dir, tmp_path):
    result = run_train("model=vgg16", "model.name=nope", *tiny_overrides(data_dir, tmp_path / "run"), check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 2
    assert "'nope' is not a registered model. Available:" in output
    assert "mobilenetv2" in output and "vgg16" in output and "Traceback" not in output


def test_unknown_model_group_option_names_the_choices(data_dir, tmp_path):
    result = run_train("model=nope", *tiny_overrides(data_dir, tmp_path / "run"), check=False)
    assert result.returncode != 0 and "vgg16" in result.stderr and "mobilenetv2" in result.stderr


def test_a_second_run_never_overwrites_the_first(data_dir, tmp_path):
    run_dir = tmp_path / "run"
    run_train("model=simple_cnn", *tiny_overrides(data_dir, run_dir), "trainer.max_epochs=1")
    before = (run_dir / "classification_report.json").read_bytes()
    result = run_train("model=simple_cnn", *tiny_overrides(data_dir, run_dir), "trainer.max_epochs=1", check=False)
    assert result.returncode == 2 and "already holds an earlier run" in result.stdout + result.stderr
    assert (run_dir / "classification_report.json").read_bytes() == before


def test_fresh_demo_then_loader_worker_processes(tmp_path):
    """Drawing the demo and the preview decode images in the parent; forked loader workers must not hang."""
    run_dir = tmp_path / "run"
    overrides = tiny_overrides(tmp_path / "fresh_data", run_dir)
    overrides = [o for o in overrides if not o.startswith("data.num_workers")]
    result = run_train(
        "model=simple_cnn", *overrides, "data.num_workers=2", "trainer.max_epochs=2", timeout=240, fresh_process=True
    )
    # stdout is a pipe here (as under SLURM or `| tee`): one line per epoch there and in train.log, no library noise
    console = result.stdout + result.stderr
    for text in (console, (run_dir / "train.log").read_text()):
        assert [line.split(" · ")[0].rsplit(" ", 1)[-1] for line in text.splitlines() if " - epoch " in line] == [
            "1/2",
            "2/2",
        ]
    for noise in ("litlogger", "LeafSpec", "was configured so 100%", "not supported by the model summary", "FLOPs"):
        assert noise not in console, noise
    summary = json.loads((run_dir / "summary.json").read_text())
    assert "too short to pay for a probe" in summary["speed_settings"]["channels_last"]["reason"]
    assert (tmp_path / "fresh_data" / "demo_faces" / "scale_0.02_seed_0" / "DEMO.json").exists()
    assert count_tiles(run_dir / "augment_preview.png") == 3 * 8  # 8 augmented train images per class
    assert (run_dir / "classification_report.json").exists()
