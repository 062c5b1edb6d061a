"""The merged manifest: one row per image, the contract between data and everything downstream.

A run's manifest (saved in its run dir) plus its config is the single record of what the run saw; loaders,
reports and later tools read it instead of re-scanning folders.
"""

from __future__ import annotations

import csv
import hashlib
import os
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from functools import cached_property
from pathlib import Path

import numpy as np

from facemix.data.duplicates import duplicate_groups
from facemix.data.health import ImageInfo, ScanCache, scan_images
from facemix.data.sources import SourceScan, SourceSpec, scan_source, source_labels
from facemix.errors import FacemixConfigError


@dataclass(frozen=True)
class Sample:
    path: str
    source: str
    source_label: str
    label: str
    split: str  # train | val | test, or "" before splitting
    sha1: str
    width: int
    height: int
    dup_group: str  # samples sharing a group always land in one split
    parent: str = ""  # empty for an original file; the original's path for a generated one
    source_split: str = ""  # the source's own split, where its layout has one
    original: str = ""  # the source file, when ``path`` is a harmonised copy of it
    note: str = ""  # why a row is left out (split "excluded"), e.g. listed in data.exclude


COLUMNS = [f.name for f in fields(Sample)]
OPTIONAL_COLUMNS = ("note",)  # added later: manifests written before them still read


def file_sha1(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha1()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def resolve_label_map(spec: SourceSpec, label: str) -> str:
    return spec.label_map[label] if spec.label_map is not None else label


def infer_classes(specs: Sequence[SourceSpec]) -> list[str]:
    """Class names when the config gives none: the label-map targets, else the folder names, sorted."""
    names: set[str] = set()
    for spec in specs:
        names.update(spec.label_map.values() if spec.label_map is not None else source_labels(spec))
    if len(names) < 2:
        roots = ", ".join(str(spec.root) for spec in specs)
        found = f"only the class {sorted(names)[0]!r}" if names else "no class folders"
        raise FacemixConfigError(
            f"{roots}: {found} found. A classifier needs at least 2 classes, one folder per class holding its "
            "images (<root>/<class>/*.jpg, or <root>/<split>/<class>/*.jpg). Point data.root at such a tree, or add "
            "a source with data.sources.<name>.root=..."
        )
    return sorted(names)


@dataclass
class ManifestBuild:
    samples: list[Sample]
    scan: SourceScan
    infos: dict[str, ImageInfo] = field(default_factory=dict)
    bad_files: list[tuple[str, str]] = field(default_factory=list)  # (path, reason): unreadable, skipped
    label_conflicts: list[list[str]] = field(default_factory=list)  # copies carrying different classes, dropped
    not_in_classes: dict[str, int] = field(default_factory=dict)  # "source/folder -> class": images left out

    @cached_property
    def _infos_by_resolved_path(self) -> dict[str, ImageInfo]:
        return {str(Path(p).resolve()): info for p, info in self.infos.items()}

    def info_of(self, sample: Sample) -> ImageInfo:
        """The scan result behind a manifest row (rows hold resolved paths, the scan the paths as listed)."""
        return self._infos_by_resolved_path[sample.original or sample.path]


def build_manifest(
    specs: Sequence[SourceSpec],
    classes: Sequence[str],
    scan_cache: ScanCache | None = None,
    max_hamming: int | None = None,
    min_correlation: float | None = None,
    drop_label_conflicts: bool = True,
    progress: bool = False,
    require_all_classes: bool = True,
) -> ManifestBuild:
    """Scan every source, decode every file once (cached), map labels into ``classes``, group duplicates.

    Unreadable files are skipped and reported in ``bad_files``; config mistakes raise. Exact and near copies share
    a ``dup_group`` (so a later split keeps them together); a group whose members carry different classes is a
    label conflict, dropped by default.
    ``require_all_classes=False`` (external test sets) allows classes without images. The thresholds: None takes
    the shipped ``data.duplicates`` settings.
    """
    scan = _scan_sources(specs, classes)
    by_name = {spec.name: spec for spec in specs}
    wanted = [f for f in scan.files if resolve_label_map(by_name[f.source], f.source_label) in classes]
    others = Counter(
        f"{f.source}/{f.source_label} -> {resolve_label_map(by_name[f.source], f.source_label)}"
        for f in scan.files
        if resolve_label_map(by_name[f.source], f.source_label) not in classes
    )
    scan_cache = scan_cache if scan_cache is not None else ScanCache(None)
    infos = scan_images([f.path for f in wanted], scan_cache, progress=progress)
    bad = [(str(f.path), infos[str(f.path)].reason) for f in wanted if not infos[str(f.path)].ok]
    good = [f for f in wanted if infos[str(f.path)].ok]
    good_infos = [infos[str(f.path)] for f in good]
    groups = duplicate_groups(
        [i.pixel_sha1 for i in good_infos],
        scan_cache.fingerprints,
        np.array([i.row for i in good_infos], dtype=np.int64),
        max_hamming,
        min_correlation,
    )
    samples = [
        _sample(item, by_name[item.source], infos[str(item.path)], infos[str(good[group].path)].pixel_sha1[:16])
        for item, group in zip(good, groups, strict=True)
    ]
    members: dict[str, list[Sample]] = {}
    for sample in samples:
        members.setdefault(sample.dup_group, []).append(sample)
    conflicted = {g for g, group in members.items() if len({s.label for s in group}) > 1}
    conflicts = [[s.path for s in members[g]] for g in sorted(conflicted)]
    if drop_label_conflicts:
        samples = [s for s in samples if s.dup_group not in conflicted]
    empty = sorted(set(classes) - {s.label for s in samples})
    if empty and require_all_classes:  # training needs every class; an external test set may hold a few
        raise FacemixConfigError(
            f"data.classes {empty} received no images from any source ({', '.join(sorted(by_name))}). "
            "Check each source's root and label_map, or remove the class from data.classes."
        )
    return ManifestBuild(samples, scan, infos, bad, conflicts, dict(others))


def _scan_sources(specs: Sequence[SourceSpec], classes: Sequence[str]) -> SourceScan:
    """Every source's files; a label_map into a class that is not configured is a mistake, said before decoding."""
    scan = SourceScan()
    for spec in specs:
        scan_source(spec, scan)
        if spec.label_map is not None:
            stray = sorted(set(spec.label_map.values()) - set(classes))
            if stray:
                raise FacemixConfigError(
                    f"data.sources.{spec.name}.label_map maps into {stray}, which are not in data.classes "
                    f"{list(classes)}. Add them to data.classes or fix the label_map values."
                )
    return scan


def _sample(item, spec: SourceSpec, info: ImageInfo, dup_group: str) -> Sample:
    return Sample(
        path=str(item.path.resolve()),
        source=item.source,
        source_label=item.source_label,
        label=resolve_label_map(spec, item.source_label),
        split="",
        sha1=info.sha1,
        width=info.width,
        height=info.height,
        dup_group=dup_group,
        source_split=item.source_split or "",
    )


def with_splits(samples: Iterable[Sample], splits: Sequence[str]) -> list[Sample]:
    return [replace(s, split=split) for s, split in zip(samples, splits, strict=True)]


def write_manifest(samples: Iterable[Sample], path: str | Path) -> Path:
    """Write atomically (temp file + rename) so a crash never leaves a half manifest behind."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS)
        writer.writeheader()
        for sample in samples:
            writer.writerow(asdict(sample))
    os.replace(tmp, path)
    return path


def read_manifest(path: str | Path) -> list[Sample]:
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    missing = set(COLUMNS) - set(OPTIONAL_COLUMNS) - set(rows[0]) if rows else set()
    if missing:
        raise FacemixConfigError(
            f"{path} is missing manifest columns {sorted(missing)}; it was not written by this "
            "facemix version. Delete it to have the manifest rebuilt from the sources."
        )
    return [
        Sample(**{**{k: row.get(k, "") for k in COLUMNS}, "width": int(row["width"]), "height": int(row["height"])})
        for row in rows
    ]


def excluded(samples: Sequence[Sample], listing: str | Path) -> tuple[list[Sample], list[Sample]]:
    """``(kept, left out)``: the rows whose path a CSV lists (a ``path`` column, as ``label_issues.csv`` has) are
    left out with split ``excluded`` and the reason in ``note``; a listed path the sources do not hold is an error
    (a typo would otherwise exclude nothing)."""
    listing = Path(listing).expanduser()
    try:
        with open(listing, newline="", encoding="utf-8") as fh:
            listed = {str(Path(row["path"]).expanduser().resolve()) for row in csv.DictReader(fh)}
    except (OSError, KeyError, csv.Error) as exc:
        raise FacemixConfigError(
            f"data.exclude={listing} cannot be read as a CSV with a 'path' column ({exc}); give a file like the "
            "cross-validation's label_issues.csv, keeping the rows whose labels you confirmed wrong."
        ) from exc
    held = {s.path for s in samples} | {s.original for s in samples if s.original}
    unknown = listed - held
    if unknown:
        raise FacemixConfigError(
            f"data.exclude={listing} lists {len(unknown)} images the sources do not hold, e.g. {sorted(unknown)[:3]}. "
            "Fix the paths (absolute, as in the manifest) or remove those rows."
        )
    note = f"listed in data.exclude={listing}"
    out = [s.path in listed or s.original in listed for s in samples]
    kept = [s for s, leave in zip(samples, out, strict=True) if not leave]
    left_out = [replace(s, split="excluded", note=note) for s, leave in zip(samples, out, strict=True) if leave]
    return kept, left_out


def class_counts(samples: Iterable[Sample], classes: Sequence[str], split: str | None = None) -> dict[str, int]:
    counts = Counter(s.label for s in samples if split is None or s.split == split)
    return {c: counts.get(c, 0) for c in classes}


def specs_from_config(sources: Mapping[str, Mapping]) -> list[SourceSpec]:
    if not sources:
        raise FacemixConfigError(
            "data.sources is empty: list at least one source (root, layout, label_map). See conf/data/sources/."
        )
    specs = [SourceSpec.from_config(name, cfg) for name, cfg in sources.items() if cfg is not None]  # null: left out
    if not specs:
        raise FacemixConfigError("every entry of data.sources is null: keep at least one source.")
    return specs
