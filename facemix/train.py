"""``python -m facemix.train [overrides]``: config -> datamodule, model, trainer -> fit, test, report.

Thin on purpose: everything it wires is built from ``_target_`` configs, so a sweep or a test changes behaviour
by overriding config, never by editing this file.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import hydra
import numpy as np
import pytorch_lightning as pl
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from facemix.errors import user_errors_exit
from facemix.reports.classification import classification_report, write_report

log = logging.getLogger("facemix.train")


def _instantiate_all(group: DictConfig | None) -> list:
    return [instantiate(c) for c in (group or {}).values() if c is not None and "_target_" in c]


def _guard_run_dir(output_dir: Path, resuming: bool) -> None:
    """Never overwrite an earlier run's results (a resumed run writes into its own dir on purpose)."""
    if not resuming and (output_dir / "checkpoints").exists():
        raise FileExistsError(
            f"{output_dir} already holds a run's checkpoints. Start a new run dir (the default hydra.run.dir is "
            "unique per start) or resume it with ckpt_path=<its checkpoint>."
        )


def write_test_report(model, datamodule, out_dir: Path) -> dict:
    predictions = model.test_predictions
    dataset = datamodule.datasets["test"]
    y_true = np.asarray(dataset.targets)[predictions["index"]]
    y_pred = predictions["probs"].argmax(axis=1)
    report = classification_report(y_true, y_pred, model.class_names)
    text = write_report(report, model.class_names, out_dir)
    print(f"\nClassification report (test split, {len(y_true)} images, best checkpoint):\n{text}")
    return report


def train(cfg: DictConfig) -> float | None:
    """Fit, test the best checkpoint, write the report; return ``cfg.optimized_metric`` (for sweepers)."""
    output_dir = Path(cfg.paths.output_dir)
    _guard_run_dir(output_dir, resuming=cfg.get("ckpt_path") is not None)
    pl.seed_everything(cfg.seed, workers=True)

    datamodule = instantiate(cfg.data)
    classes = datamodule.class_names
    model = instantiate(
        cfg.model,
        _convert_="all",  # plain containers in hparams, so checkpoints load with torch.load(weights_only=True)
        num_classes=len(classes),
        class_names=classes,
        image_size=cfg.data.image_size,
        class_weights=cfg.loss.class_weights,
        label_smoothing=cfg.loss.label_smoothing,
    )
    trainer: pl.Trainer = instantiate(
        cfg.trainer, callbacks=_instantiate_all(cfg.get("callbacks")), logger=_instantiate_all(cfg.get("logger"))
    )

    trainer.fit(model, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
    trainer.test(model, datamodule=datamodule, ckpt_path=best or None, weights_only=True)
    metrics.update({k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("test/")})

    if trainer.is_global_zero:
        report = write_test_report(model, datamodule, output_dir)
        summary = {"best_checkpoint": best, "metrics": metrics, "test_report": report}
        (output_dir / "summary.json").write_text(json.dumps(summary, indent=2))
        log.info("run dir: %s", output_dir.resolve())
    return metrics.get(cfg.get("optimized_metric")) if cfg.get("optimized_metric") else None


@hydra.main(version_base="1.3", config_path="../conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    log.debug("config:\n%s", OmegaConf.to_yaml(cfg))
    with user_errors_exit():
        return train(cfg)


if __name__ == "__main__":
    main()
