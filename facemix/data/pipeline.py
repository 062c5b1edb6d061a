"""The data pipeline as one function: sources -> merged manifest -> split -> balance (train only) -> card.

``build_run_data(spec, run)`` is what ``FaceMixDataModule.prepare_data``, ``facemix-scan`` and tests call; it
writes the run's manifest and dataset card (``facemix.run.rundir.RunDir`` names them) and returns the rows and the
card. Everything
it reads and writes is named by a ``DataSpec`` (the pipeline keys of the ``data`` config), so a test or notebook
runs the same pipeline without Lightning, Hydra or a model. The image cache and the loaders come after it
(``facemix.data.cache``, ``facemix.data.datamodule``); the card's figures are drawn by ``facemix.reports``.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from facemix.data.balance import offline_balance
from facemix.data.card import Findings, build_card, write_card
from facemix.data.demo import write_demo
from facemix.data.harmonize import harmonize
from facemix.data.health import ScanCache, scan_images, shortcut_features, shortcut_probe
from facemix.data.manifest import (
    ManifestBuild,
    Sample,
    build_manifest,
    class_counts,
    excluded,
    infer_classes,
    specs_from_config,
    write_manifest,
)
from facemix.data.settings import packaged_settings
from facemix.data.sources import SourceSpec
from facemix.data.split import SPLITS, split_samples
from facemix.errors import FacemixConfigError, nearest_key
from facemix.run.rundir import RunDir

log = logging.getLogger(__name__)
BALANCE_MODES = ("none", "sampler", "offline")


@dataclass(frozen=True)
class DuplicateSpec:
    max_hamming: int  # hash bits (of 128) for a near-copy candidate; -1: exact copies only
    min_correlation: float  # band-pass thumbnail correlation that confirms a candidate
    label_conflicts: str  # drop | keep groups of copies whose members carry different classes


@dataclass(frozen=True)
class HarmonizeSpec:
    enabled: bool
    size: int
    quality: int
    cache_dir: str | None = None  # None: <run dir>/harmonized


@dataclass(frozen=True)
class OfflineSpec:
    recipe: Mapping[str, Any] | None  # named Albumentations ops; required for balance=offline
    target_per_class: int | None = None  # None: the majority class's train count
    cache_dir: str | None = None  # None: <run dir>/offline_cache


@dataclass(frozen=True)
class DemoSpec:
    root: str
    scale: float
    seed: int


_NESTED = {"demo": DemoSpec, "offline": OfflineSpec, "duplicates": DuplicateSpec, "harmonize": HarmonizeSpec}


@dataclass(frozen=True)
class DataSpec:
    """What the pipeline reads and how it merges, splits and balances: the ``data`` config's pipeline keys.

    ``from_config`` fills the settings a mapping leaves out from the shipped YAML (``packaged_settings``), so a
    notebook gives only its sources and the defaults are still written once."""

    sources: tuple[SourceSpec, ...]
    split: Mapping[str, float]
    keep_source_splits: bool
    balance: str
    offline: OfflineSpec
    strict: bool
    duplicates: DuplicateSpec
    harmonize: HarmonizeSpec
    verify: str  # what the caches trust a file by: mtime (size + modification time) or sha1 (its bytes)
    classes: tuple[str, ...] | None = None
    demo: DemoSpec | None = None
    scan_cache: str | None = None
    exclude: str | None = None  # a CSV of images to leave out (e.g. confirmed label issues)
    seed: int = 0

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any], other_keys: Sequence[str] = ()) -> DataSpec:
        """From plain ``data`` config values (``sources`` as ``{name: {root, layout, label_map}}``); an unknown
        key is an error naming the nearest known one (``other_keys``: the caller's own keys, for that hint). A
        setting left out, or null, takes the shipped default."""
        _refuse_unknown("data", cfg, [f.name for f in fields(cls)], other_keys)
        defaults = packaged_settings()
        values = {**defaults, **{k: v for k, v in cfg.items() if v is not None or k not in defaults}}
        values["sources"] = tuple(specs_from_config(cfg.get("sources") or {}))
        if values.get("classes") is not None:
            values["classes"] = tuple(values["classes"])
        for key, spec_type in _NESTED.items():
            given = values.get(key)
            if given is None or isinstance(given, spec_type):
                continue
            if key == "harmonize" and isinstance(given, bool):
                given = {"enabled": given}
            _refuse_unknown(f"data.{key}", given, [f.name for f in fields(spec_type)])
            values[key] = spec_type(**{**defaults.get(key, {}), **given})
        spec = cls(**values)
        if spec.balance not in BALANCE_MODES:
            raise FacemixConfigError(f"data.balance is '{spec.balance}'; choose one of {list(BALANCE_MODES)}.")
        if spec.balance == "offline" and not spec.offline.recipe:
            raise FacemixConfigError(
                "data.balance=offline needs data.offline.recipe, the ops that make the new images (the study's is in "
                "conf/data/unbalanced.yaml); compose from data=balanced_offline or give the recipe."
            )
        return spec


def _refuse_unknown(where: str, given: Mapping[str, Any], known: Sequence[str], other_keys: Sequence[str] = ()) -> None:
    unknown = sorted(set(given) - set(known))
    if unknown:
        everything = sorted({*known, *other_keys})
        hints = [f"{where}.{k}" + _hint(k, everything) for k in unknown]
        raise FacemixConfigError(
            f"{', '.join(hints)}: not a key of {where} (known: {', '.join(everything)}). Fix or remove it."
        )


def _hint(key: str, known: Sequence[str]) -> str:
    close = nearest_key(key, known)
    return f" (did you mean {close}?)" if close else ""


@dataclass
class RunData:
    samples: list[Sample]  # every row with its split ("unused": left out by offline subsampling)
    card: dict
    classes: list[str]


def draw_demo_if_needed(spec: DataSpec) -> None:
    """Draw the built-in demo set once (under a lock) when a source lies inside its root and it is not there yet."""
    if spec.demo is None:
        return
    demo_root = Path(spec.demo.root).resolve()
    wanted = [s for s in spec.sources if s.root.resolve().is_relative_to(demo_root)]
    if wanted and not (demo_root / "DEMO.json").exists():
        write_demo(demo_root, scale=float(spec.demo.scale), seed=int(spec.demo.seed))


def class_names(spec: DataSpec) -> list[str]:
    """``data.classes`` if given (no I/O), else the label-map targets or the sources' folder names (which may
    draw the demo set first)."""
    if spec.classes:
        return list(spec.classes)
    draw_demo_if_needed(spec)
    return infer_classes(spec.sources)


def build_run_data(spec: DataSpec, run: RunDir, progress: bool = True) -> RunData:
    """Run the pipeline; write the run's manifest and dataset card."""
    classes = class_names(spec)
    draw_demo_if_needed(spec)
    built = build_manifest(
        spec.sources,
        classes,
        ScanCache(spec.scan_cache, spec.verify),
        max_hamming=int(spec.duplicates.max_hamming),
        min_correlation=float(spec.duplicates.min_correlation),
        drop_label_conflicts=spec.duplicates.label_conflicts == "drop",
        progress=progress,
    )
    _report_bad_files(built, spec.strict)
    samples = built.samples
    if spec.harmonize.enabled:
        samples = harmonize(
            samples,
            spec.harmonize.cache_dir or run.harmonized,
            int(spec.harmonize.size),
            int(spec.harmonize.quality),
        )
    left_out: list[Sample] = []
    if spec.exclude:  # before the split: the rest is split as if the excluded images had never been there
        samples, left_out = excluded(samples, spec.exclude)
        log.info("left out %d images listed in data.exclude=%s", len(left_out), spec.exclude)
    keep = {s.name: spec.keep_source_splits if s.keep_splits is None else s.keep_splits for s in spec.sources}
    samples = split_samples(samples, spec.split, spec.seed, keep)
    if spec.balance == "offline":  # after the split, on train rows only
        samples = offline_balance(
            samples,
            classes,
            cache_dir=spec.offline.cache_dir or run.offline_cache,
            recipe=spec.offline.recipe,
            target_per_class=spec.offline.target_per_class,
            seed=spec.seed,
            progress=progress,
        )
    samples = samples + left_out
    write_manifest(samples, run.manifest)
    _log_counts(samples, classes)
    card = _card(spec, samples, built, classes)
    write_card(card, run.card_json, run.card_markdown)
    for warning in card["warnings"]:
        log.warning("shortcut: %s", warning)
    return RunData(samples, card, classes)


def _report_bad_files(built: ManifestBuild, strict: bool) -> None:
    if built.bad_files and strict:
        listing = "\n".join(f"  {p}: {why}" for p, why in built.bad_files)
        raise FacemixConfigError(
            f"data.strict=true and {len(built.bad_files)} images cannot be read; fix or remove them, or set "
            f"data.strict=false to skip them:\n{listing}"
        )
    if built.bad_files:
        examples = "; ".join(f"{p} ({why})" for p, why in built.bad_files[:3])
        log.warning("skipped %d unreadable images (listed in dataset_card.md), e.g. %s", len(built.bad_files), examples)
    if built.label_conflicts:
        log.warning("dropped %d groups of copies that carry different classes", len(built.label_conflicts))
    for source, labels in built.scan.unmapped_labels.items():
        log.warning("source %s: folders %s are not in its label_map and were left out", source, labels)
    if built.not_in_classes:  # nothing is left out without a line here
        listing = ", ".join(f"{k} ({n} images)" for k, n in sorted(built.not_in_classes.items()))
        log.warning("left out, their classes are not in data.classes: %s", listing)
    if built.scan.skipped:
        reasons = Counter(_skip_kind(p, why) for p, why in built.scan.skipped)
        log.warning(
            "left out %d files that are not images of a class folder (%s; listed in dataset_card.md)",
            len(built.scan.skipped),
            ", ".join(f"{k}: {n}" for k, n in sorted(reasons.items())),
        )


def _skip_kind(path: Path, why: str) -> str:
    return f"{path.suffix.lower() or 'no extension'} files" if why.startswith("unknown extension") else why


def _card(spec: DataSpec, samples: Sequence[Sample], built: ManifestBuild, classes: Sequence[str]) -> dict:
    originals = [s for s in samples if not s.parent]
    infos = [built.info_of(s) for s in originals]
    formats: dict[str, Counter] = {}
    for s, info in zip(originals, infos, strict=True):
        formats.setdefault(s.source, Counter())[f"{info.format} {info.mode}"] += 1
    labels = [s.label for s in originals]
    probe = shortcut_probe(shortcut_features(infos), labels, seed=spec.seed)
    after = None
    if spec.harmonize.enabled:  # the same probe on what the model will actually see
        copies = scan_images([Path(s.path) for s in originals], ScanCache(spec.scan_cache, spec.verify), progress=False)
        after = shortcut_probe(shortcut_features([copies[s.path] for s in originals]), labels, seed=spec.seed)
    ignored = [(str(p), why) for p, why in built.scan.skipped]
    source_sizes = [replace(s, width=i.width, height=i.height) for s, i in zip(originals, infos, strict=True)]
    found = Findings(built.bad_files, ignored, built.label_conflicts, formats, probe, after, source_sizes)
    return build_card(samples, classes, found)


def _log_counts(samples: Sequence[Sample], classes: Sequence[str]) -> None:
    for split in SPLITS:
        counts = class_counts(samples, classes, split)
        log.info("%-5s %5d images  %s", split, sum(counts.values()), "  ".join(f"{c}={n}" for c, n in counts.items()))
