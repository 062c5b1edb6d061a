"""The recipe switches through the real ``facemix-train``: the learning-rate finder's plot and suggestion, weight
averaging with checkpoint averaging and test-time augmentation in the report, the presets composing."""

from __future__ import annotations

import json

import pytest
import torch

from tests.helpers import assert_drawn, run_train, scores_from_predictions, tiny_overrides


def test_the_lr_finder_plots_suggests_and_trains_with_its_rate(data_dir, tmp_path):
    run_dir = tmp_path / "run"
    run_train(
        "model=simple_cnn", *tiny_overrides(data_dir, run_dir), "tune.lr_find=true", "tune.lr_find_steps=20",
        "trainer.limit_train_batches=10", "trainer.max_epochs=2",
    )  # fmt: skip
    summary = json.loads((run_dir / "summary.json").read_text())
    found = summary["lr_find"]
    assert found["applied"] and found["suggestion"] > 0 and found["configured"] == 1e-3
    assert_drawn(run_dir / "lr_find.png")
    ckpt = torch.load(summary["best_checkpoint"], map_location="cpu", weights_only=True)
    assert ckpt["hyper_parameters"]["optimizer"]["lr"] == pytest.approx(found["suggestion"])  # trained with it


def test_ema_averaged_checkpoints_and_tta_make_one_coherent_report(data_dir, tmp_path):
    run_dir = tmp_path / "run"
    run_train(
        "model=simple_cnn", *tiny_overrides(data_dir, run_dir), "averaging=ema", "average_top_k=2",
        "callbacks.model_checkpoint.save_top_k=2", "report.tta=flip", "trainer.max_epochs=3",
        "regularization=mixup", "finetune=discriminative",
    )  # fmt: skip
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["best_checkpoint"].endswith("averaged_top2.ckpt") and len(summary["averaged_from"]) == 2
    averaged = torch.load(summary["best_checkpoint"], map_location="cpu", weights_only=True)["state_dict"]
    members = [torch.load(p, map_location="cpu", weights_only=True)["state_dict"] for p in summary["averaged_from"]]
    key = next(k for k, v in averaged.items() if v.is_floating_point() and v.ndim == 4)
    assert torch.allclose(averaged[key], (members[0][key] + members[1][key]) / 2, atol=1e-6)
    assert "current_model_state" in torch.load(summary["averaged_from"][0], map_location="cpu", weights_only=True)
    recounted = scores_from_predictions(run_dir / "predictions.csv")
    assert summary["test_report"]["macro avg"]["f1-score"] == pytest.approx(recounted["macro_f1"], abs=1e-9)
