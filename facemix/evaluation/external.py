"""A labelled tree nobody trained on (an external test set), read into a checkpoint's classes."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from facemix.data.health import ScanCache
from facemix.data.manifest import Sample, build_manifest, specs_from_config
from facemix.data.sources import source_labels
from facemix.errors import FacemixConfigError

log = logging.getLogger("facemix.evaluate")


def _refuse_unknown_folders(specs, class_names: Sequence[str]) -> None:
    """Every class folder must map to one of the checkpoint's classes: a folder the model was never trained on
    has no right answer, so it is an error that lists each such folder and the label_map that would fix it."""
    unknown = {
        spec.name: sorted(set(source_labels(spec)) - set(class_names))
        for spec in specs
        if spec.label_map is None and set(source_labels(spec)) - set(class_names)
    }
    if not unknown:
        return
    listing = "; ".join(f"data.sources.{name}: {folders}" for name, folders in unknown.items())
    example = ", ".join(f"{folder}: {class_names[0]}" for folder in next(iter(unknown.values()))[:2])
    raise FacemixConfigError(
        f"the external test set has class folders the checkpoint does not know ({listing}); its classes are "
        f"{list(class_names)}. Map each folder into them, e.g. "
        f"data.sources.{next(iter(unknown))}.label_map='{{{example}}}' (folders left out of a label_map are "
        "skipped)."
    )


def external_samples(
    sources: Mapping[str, Any], class_names: Sequence[str], scan_cache: str | Path | None
) -> list[Sample]:
    """The images of another labelled tree, mapped into the checkpoint's classes (split ``external``); copies are
    kept (an external set is scored as it is)."""
    specs = specs_from_config(sources)
    _refuse_unknown_folders(specs, class_names)
    built = build_manifest(
        specs, class_names, ScanCache(scan_cache), drop_label_conflicts=False, require_all_classes=False
    )
    for source, folders in built.scan.unmapped_labels.items():
        log.info("source %s: folders %s are not in its label_map and were left out", source, folders)
    if built.bad_files:
        examples = "; ".join(f"{p} ({why})" for p, why in built.bad_files[:3])
        log.warning("skipped %d unreadable images, e.g. %s", len(built.bad_files), examples)
    if not built.samples:
        raise FacemixConfigError(
            f"the external test set under {[str(s.root) for s in specs]} has no readable images in the classes "
            f"{list(class_names)}. Check data.root and the label_map."
        )
    return [replace(s, split="external") for s in built.samples]
