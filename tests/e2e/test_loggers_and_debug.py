"""Logger presets read back with their own readers, debug presets, and a timm model's own input statistics."""

import json

import pytest
import torch

from tests.helpers import run_train, tensorboard_scalars, tiny_overrides

pytestmark = pytest.mark.slow


def test_logger_many_records_params_metrics_tags_and_reports(data_dir, tmp_path):
    run_dir = tmp_path / "run"
    tracking = f"sqlite:///{tmp_path / 'mlflow.db'}"
    result = run_train(
        "model=simple_cnn",
        "logger=many",
        f"logger.mlflow.tracking_uri={tracking}",
        f"logger.mlflow.artifact_location={tmp_path / 'artifacts'}",
        "tags=[smoke,ci]",
        *tiny_overrides(data_dir, run_dir),
    )
    assert "config groups" in result.stdout and "logger: many  (changed)" in result.stdout  # the printed tree

    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking)
    (run,) = client.search_runs([client.get_experiment_by_name("facemix").experiment_id])
    assert run.info.run_name == json.loads((run_dir / "summary.json").read_text())["run_name"]
    assert run.data.params["choice/model"] == "simple_cnn" and run.data.params["seed"] == "42"
    assert run.data.params["override/trainer.max_epochs"] == "2" and "override/paths.data_dir" not in run.data.params
    assert {"smoke", "ci"} <= set(run.data.tags)
    val_loss = client.get_metric_history(run.info.run_id, "val/loss")
    assert len(val_loss) == 2  # one per epoch
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"classification_report.json", "confusion_matrix.png", "gallery.png", "summary.json"} <= artifacts
    assert "dataset_card.md" in artifacts

    # wandb, offline: its own run folder with the report files
    (wandb_run,) = (run_dir / "wandb").glob("offline-run-*")
    assert any(wandb_run.glob("run-*.wandb"))
    assert (wandb_run / "files" / "classification_report.json").exists()

    # TensorBoard: train and val share tags in sub-runs; the HParams tab has the params and final metrics
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    scalars = tensorboard_scalars(run_dir)
    assert {"train/loss", "val/loss", "train/acc", "val/acc"} <= set(scalars)
    events = EventAccumulator(str(run_dir / "tensorboard"))
    events.Reload()
    content = events.PluginTagToContent("hparams")
    session = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"])
    hparams = session.session_start_info.hparams
    assert hparams["choice/model"].string_value == "simple_cnn" and hparams["tags"].string_value == "smoke,ci"
    summary = json.loads((run_dir / "summary.json").read_text())
    assert scalars["hparams/test_f1_macro"] == [pytest.approx(summary["test_report"]["macro avg"]["f1-score"])]
    assert summary["tags"] == ["smoke", "ci"]


def test_debug_fdr_finishes_with_a_report_and_no_best_checkpoint(data_dir, tmp_path):
    run_dir = tmp_path / "run"
    run_train("model=simple_cnn", "debug=fdr", *tiny_overrides(data_dir, run_dir))
    assert not list(run_dir.rglob("epoch_*.ckpt"))  # fast_dev_run: no monitored checkpoint, report from memory
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["best_checkpoint"] == "" and summary["test_report"]["macro avg"]["support"] > 0
    assert (run_dir / "classification_report.txt").exists() and (run_dir / "gallery.png").exists()


def test_debug_overfit_drives_the_train_loss_to_near_zero(data_dir, tmp_path):
    run_dir = tmp_path / "run"
    overrides = [o for o in tiny_overrides(data_dir, run_dir) if not o.startswith("trainer.")]
    run_train("model=simple_cnn", "debug=overfit", "trainer.enable_progress_bar=false", *overrides)
    losses = tensorboard_scalars(run_dir)["train/loss"]
    assert len(losses) == 40 and losses[-1] < 0.05 < losses[0], losses


def test_debug_profiler_writes_its_report_into_the_run_dir(data_dir, tmp_path):
    run_dir = tmp_path / "run"
    run_train("model=simple_cnn", "debug=profiler", *tiny_overrides(data_dir, run_dir), "trainer.max_epochs=1")
    assert "run_training_epoch" in (run_dir / "fit-profile.txt").read_text()


def test_a_timm_model_trains_on_its_own_input_statistics(data_dir, tmp_path):
    """test_convnext's pretrained config says mean = std = 0.5, 160 px, bicubic; a weights file brings them in."""
    import timm
    from safetensors.torch import save_file

    weights = tmp_path / "test_convnext.safetensors"
    save_file(timm.create_model("test_convnext", num_classes=0).state_dict(), str(weights))
    run_dir = tmp_path / "run"
    overrides = [o for o in tiny_overrides(data_dir, run_dir) if not o.startswith("data.image_size")]
    run_train("model=timm", "model.name=test_convnext", f"model.pretrained={weights}", *overrides)
    hparams = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)[
        "hyper_parameters"
    ]
    assert hparams["input_mean"] == [0.5, 0.5, 0.5] and hparams["input_std"] == [0.5, 0.5, 0.5]
    assert hparams["image_size"] == 160 and hparams["interpolation"] == "bicubic"  # data.image_size left unset
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["preprocessing"] == {
        "image_size": 160,
        "mean": [0.5, 0.5, 0.5],
        "std": [0.5, 0.5, 0.5],
        "interpolation": "bicubic",
    }
