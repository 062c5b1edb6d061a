"""``facemix-scan [data=...]``: check every configured source before a single training step.

Same config as training. Writes ``dataset_card.md`` / ``.json`` / ``.png`` and the manifest into a new run dir and
prints a summary: counts, unreadable files, duplicates, label conflicts, source-shortcut warnings.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import hydra
from omegaconf import DictConfig

from facemix.config import CONFIG_PATH, register_resolvers
from facemix.errors import user_errors_exit
from facemix.reports.dataset_card import render_card_figures
from facemix.train import build_datamodule, preprocessing_of
from facemix.validation import validate_config


def scan(cfg: DictConfig) -> dict:
    started = time.perf_counter()
    # the scan reads files itself; no decoded cache needed
    datamodule = build_datamodule(cfg, preprocessing_of(cfg), cache=False)
    datamodule.prepare_data()
    out = Path(cfg.paths.output_dir)
    render_card_figures(out)
    card = json.loads((out / "dataset_card.json").read_text())
    print(f"\n{card['images']} images, classes {card['classes']}  (scan {time.perf_counter() - started:.1f} s)")
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
    print(f"dataset card: {out / 'dataset_card.md'}")
    return card


register_resolvers()  # the train config's run dir depends on ckpt_path


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="scan")
def main(cfg: DictConfig) -> None:
    with user_errors_exit():
        validate_config(cfg)
        scan(cfg)


if __name__ == "__main__":
    main()
