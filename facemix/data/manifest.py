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
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from facemix.data.sources import SourceScan, SourceSpec, scan_source, source_labels
from facemix.errors import FacemixConfigError

EXIF_ORIENTATION = 0x0112


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


COLUMNS = [f.name for f in fields(Sample)]


def file_sha1(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha1()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def upright_size(path: Path) -> tuple[int, int]:
    """Width and height as the image will be shown (EXIF rotation applied); reads the header only."""
    with Image.open(path) as im:
        width, height = im.size
        if im.getexif().get(EXIF_ORIENTATION) in (5, 6, 7, 8):
            width, height = height, width
    return width, height


def resolve_label_map(spec: SourceSpec, label: str) -> str:
    return spec.label_map[label] if spec.label_map is not None else label


def infer_classes(specs: Sequence[SourceSpec]) -> list[str]:
    """Class names when the config gives none: the label-map targets, else the folder names, sorted."""
    names: set[str] = set()
    for spec in specs:
        names.update(spec.label_map.values() if spec.label_map is not None else source_labels(spec))
    return sorted(names)


@dataclass
class ManifestBuild:
    samples: list[Sample]
    scan: SourceScan


def build_manifest(specs: Sequence[SourceSpec], classes: Sequence[str]) -> ManifestBuild:
    """Scan every source, map its labels into ``classes`` and describe each readable file.

    Files whose header cannot be read are skipped and reported in ``scan.skipped``; config mistakes raise.
    """
    scan = SourceScan()
    by_name = {spec.name: spec for spec in specs}
    for spec in specs:
        scan_source(spec, scan)
        if spec.label_map is not None:
            stray = sorted(set(spec.label_map.values()) - set(classes))
            if stray:
                raise FacemixConfigError(
                    f"data.sources.{spec.name}.label_map maps into {stray}, which are not in data.classes "
                    f"{list(classes)}. Add them to data.classes or fix the label_map values."
                )
    samples: list[Sample] = []
    for item in scan.files:
        try:
            width, height = upright_size(item.path)
            sha1 = file_sha1(item.path)
        except (OSError, UnidentifiedImageError, Image.DecompressionBombError) as exc:
            scan.skipped.append((item.path, f"unreadable: {type(exc).__name__}: {exc}"))
            continue
        label = resolve_label_map(by_name[item.source], item.source_label)
        if label not in classes:
            continue  # folder not asked for (no label map and not in data.classes)
        samples.append(
            Sample(
                path=str(item.path.resolve()),
                source=item.source,
                source_label=item.source_label,
                label=label,
                split="",
                sha1=sha1,
                width=width,
                height=height,
                dup_group=sha1,  # identical files form one group; perceptual groups refine this later
                source_split=item.source_split or "",
            )
        )
    empty = sorted(set(classes) - {s.label for s in samples})
    if empty:
        raise FacemixConfigError(
            f"data.classes {empty} received no images from any source ({', '.join(sorted(by_name))}). "
            "Check each source's root and label_map, or remove the class from data.classes."
        )
    return ManifestBuild(samples, scan)


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
    if rows and set(COLUMNS) - set(rows[0]):
        raise FacemixConfigError(
            f"{path} is missing manifest columns {sorted(set(COLUMNS) - set(rows[0]))}; it was not written by this "
            "facemix version. Delete it to have the manifest rebuilt from the sources."
        )
    return [
        Sample(**{**{k: row[k] for k in COLUMNS}, "width": int(row["width"]), "height": int(row["height"])})
        for row in rows
    ]


def count_by(samples: Iterable[Sample], *keys: str) -> Counter:
    return Counter(tuple(getattr(s, k) for k in keys) for s in samples)


def class_counts(samples: Iterable[Sample], classes: Sequence[str], split: str | None = None) -> dict[str, int]:
    counts = Counter(s.label for s in samples if split is None or s.split == split)
    return {c: counts.get(c, 0) for c in classes}


def specs_from_config(sources: Mapping[str, Mapping]) -> list[SourceSpec]:
    if not sources:
        raise FacemixConfigError(
            "data.sources is empty: list at least one source (root, layout, label_map). See conf/data/sources/."
        )
    return [SourceSpec.from_config(name, cfg) for name, cfg in sources.items()]
