"""Looking at the data before training, with the training config: ``facemix-scan`` (dataset card and manifest)
and ``facemix-preview`` (augmented train images per class). Both build the datamodule the way training does, so
what they show is what ``facemix-train`` would feed the model."""

from __future__ import annotations

import json
import time
from pathlib import Path

from omegaconf import DictConfig

from facemix.reports.dataset_card import render_card_figures
from facemix.reports.plots import augmentation_grid, save_figure
from facemix.run.rundir import RunDir
from facemix.training.build import build_datamodule, preprocessing_of


def _print_card(card: dict, seconds: float, run: RunDir) -> None:
    print(f"\n{card['images']} images, classes {card['classes']}  (scan {seconds:.1f} s)")
    for key, n in card["counts"]["by_source_label"].items():
        print(f"  {key}: {n}")
    print(f"unreadable (skipped): {len(card['bad_files'])}")
    for bad in card["bad_files"]:
        print(f"  {bad['path']}: {bad['reason']}")
    d = card["duplicates"]
    print(
        f"duplicate groups: {d['groups']} ({d['images_in_groups']} images, {d['cross_source_groups']} across "
        f"sources); label conflicts dropped: {len(card['label_conflicts_dropped'])}"
    )
    for name in ("shortcut_probe", "shortcut_probe_harmonized"):
        p = card.get(name)
        if p and p.get("balanced_accuracy") is not None:
            print(
                f"{name}: balanced accuracy {p['balanced_accuracy']:.3f} (chance {p['balanced_chance']:.3f}), "
                f"accuracy {p['accuracy']:.3f} (majority {p['chance']:.3f})"
            )
    for warning in card["warnings"]:
        print(f"WARNING: {warning}")
    print(f"dataset card: {run.card_markdown}")


def scan(cfg: DictConfig) -> dict:
    """Decode every configured image, write the dataset card and manifest into the run dir, print the summary."""
    started = time.perf_counter()
    datamodule = build_datamodule(cfg, preprocessing_of(cfg), cache=False)  # the scan reads files itself
    datamodule.prepare_data()
    run = RunDir(cfg.paths.output_dir)
    render_card_figures(run.card_json, run.card_figure, run.label_conflicts_figure)
    card = json.loads(run.card_json.read_text())
    _print_card(card, time.perf_counter() - started, run)
    return card


def preview(cfg: DictConfig) -> Path:
    """A PNG grid of augmented train images per class, in the run dir."""
    datamodule = build_datamodule(cfg, preprocessing_of(cfg))
    datamodule.prepare_data()
    datamodule.setup("fit")
    fig = augmentation_grid(datamodule.datasets["train"], datamodule.class_names, cfg.get("per_class", 8), cfg.seed)
    path = save_figure(fig, RunDir(cfg.paths.output_dir).augment_preview)
    ops = ", ".join(name for name, op in cfg.augment.items() if op is not None) or "no ops"
    print(f"augmentation preview ({ops}; {datamodule.image_size} px): {path}")
    return path
